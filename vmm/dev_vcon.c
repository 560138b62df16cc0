/* virtio-console for the registry: hvc0's output into the VM's console queue, and its input. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vdev.h"
#include "virtio/console.h" /* not vmm's console.h */
#include "vm.h"

struct vm_vcon {
	struct vdev v;
	struct virtio_console c;
	struct outq *out;   /* the VM's console queue (vm_console_queue()) */
};

/* Into the VM's console queue, which the event loop drains: the I/O thread never waits on stdout. */
static void vcon_output(void *opaque, const void *buf, size_t len)
{
	struct vm_vcon *c = opaque;

	outq_put(c->out, buf, len);
}

static size_t vcon_output_room(void *opaque)
{
	struct vm_vcon *c = opaque;

	return outq_room(c->out);
}

static int vcon_attach(struct vdev *v, const void *cfgp, char *err, size_t errlen)
{
	const struct vm_vcon_cfg *cfg = cfgp;
	struct vm_vcon *c = (struct vm_vcon *)v;
	int ret;

	c->out = cfg ? vm_console_queue(v->vm, cfg->out_fd) : NULL;
	if (!c->out) {
		snprintf(err, errlen, "output must go where the UART's goes");
		return -EINVAL;
	}
	ret = virtio_console_init(&c->c, v->vm->gmem, v->name);
	if (ret) {
		snprintf(err, errlen, "virtio-console: %s", strerror(-ret));
		return ret;
	}
	c->c.output = vcon_output;
	c->c.output_room = vcon_output_room;
	c->c.output_opaque = c;
	c->c.kick = vdev_kick;
	c->c.kick_opaque = v;
	v->vd = &c->c.vdev;
	return 0;
}

static void vcon_proc(struct vdev *v)
{
	console_process_tx(&((struct vm_vcon *)v)->c);
}

static void vcon_destroy(struct vdev *v)
{
	virtio_console_destroy(&((struct vm_vcon *)v)->c);
}

static void vcon_summary(struct vdev *v, FILE *f)
{
	struct virtio_console *c = &((struct vm_vcon *)v)->c;

	fprintf(f, "veil: virtio-console: %llu bytes from the guest, transmit held back %llu "
		"times for want of output room\n", (unsigned long long)c->stats.tx_bytes,
		(unsigned long long)c->stats.tx_waits);
}

static void vcon_counters(struct vdev *v, vdev_counter_fn fn, void *o)
{
	struct virtio_console *c = &((struct vm_vcon *)v)->c;

	fn(o, v->name, "tx_bytes", __atomic_load_n(&c->stats.tx_bytes, __ATOMIC_RELAXED));
	fn(o, v->name, "tx_waits", __atomic_load_n(&c->stats.tx_waits, __ATOMIC_RELAXED));
}

long vm_vconsole_input(struct vm *vm, const uint8_t *buf, size_t len)
{
	struct vdev *v = vdev_next(vm, VDEV_VCON, NULL);
	struct virtio_console *c;
	long n;

	if (!v)
		return -1;
	c = &((struct vm_vcon *)v)->c;
	/* Held until the guest has used the console (see console_guest_attached()). */
	if (!console_guest_attached(c))
		return 0;
	/* The device locks its queues and never waits: safe from the event loop's thread. */
	n = (long)console_input(c, buf, len);
	vdev_settle_msi(vm);
	return n;
}

void vm_vconsole_tx_ready(struct vm *vm)
{
	struct vdev *v = vdev_next(vm, VDEV_VCON, NULL);

	if (v && console_tx_take_waiting(&((struct vm_vcon *)v)->c))
		vdev_kick(v);
}

const struct vdev_ops vdev_vcon_ops = {
	.name = "virtio-console", .max = 1, .size = sizeof(struct vm_vcon),
	.attach = vcon_attach, .process = vcon_proc, .destroy = vcon_destroy,
	.summary = vcon_summary, .counters = vcon_counters,
};
