/* The device registry: one attach path, one unwind path, and every device destroyed, summarised and counted alike. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>

#include "log.h"
#include "sandbox.h"
#include "vdev.h"
#include "vm.h"

#define IO_RING_ENTRIES 512

/* Indexed by kind: adding a device type is a dev_*.c with its ops, a kind, and a line here. */
static const struct vdev_ops *const vdev_types[VDEV_NR_KINDS] = {
	[VDEV_BLK] = &vdev_blk_ops,
	[VDEV_BALLOON] = &vdev_balloon_ops,
	[VDEV_RNG] = &vdev_rng_ops,
	[VDEV_VCON] = &vdev_vcon_ops,
};

/* The registry and its I/O thread's ring, made with the first device; NULL if that failed. */
static struct vm_virtio *virtio_of(struct vm *vm)
{
	if (!vm->virtio) {
		vm->virtio = calloc(1, sizeof(*vm->virtio));
		if (vm->virtio && iothread_init(&vm->virtio->io, IO_RING_ENTRIES) == 0)
			vm->virtio->io_ready = true;
	}
	return vm->virtio && vm->virtio->io_ready ? vm->virtio : NULL;
}

int vm_devices_inject_failure(struct vm *vm, unsigned int step)
{
	struct vm_virtio *vv = virtio_of(vm);

	if (!vv)
		return -ENOMEM;
	vv->fail_at = step;
	return 0;
}

int vdev_step(struct vdev *v, char *err, size_t errlen)
{
	struct vm_virtio *vv = v->vm->virtio;

	if (!vv->fail_at || --vv->fail_at)
		return 0;
	snprintf(err, errlen, "injected failure");
	return -EIO;
}

struct vdev *vdev_next(struct vm *vm, enum vdev_kind kind, struct vdev *prev)
{
	struct vm_virtio *vv = vm->virtio;
	unsigned int i = 0;

	if (!vv)
		return NULL;
	if (prev) {
		while (i < vv->nr && vv->dev[i] != prev)
			i++;
		i++;
	}
	for (; i < vv->nr; i++)
		if (vv->dev[i]->kind == kind)
			return vv->dev[i];
	return NULL;
}

unsigned int vm_devices_count(struct vm *vm, enum vdev_kind kind)
{
	unsigned int n = 0;

	for (struct vdev *v = vdev_next(vm, kind, NULL); v; v = vdev_next(vm, kind, v))
		n++;
	return n;
}

/* The one unwind: undoes what the attach recorded in v, whether it failed or the VM goes. */
static void vdev_detach(struct vdev *v)
{
	vdev_transport_detach(v);
	if (v->model_ready)
		v->ops->destroy(v);
	free(v);
}

/* A wrapper of the type's size, named, with nothing attached yet. */
static struct vdev *vdev_alloc(struct vm *vm, enum vdev_kind kind, unsigned int index)
{
	const struct vdev_ops *ops = vdev_types[kind];
	struct vdev *v = calloc(1, ops->size);

	if (!v)
		return NULL;
	v->vm = vm;
	v->ops = ops;
	v->kind = kind;
	v->index = index;
	v->kick_efd = -1;
	v->irq_efd = v->resample_efd = -1;
	if (ops->max > 1)
		snprintf(v->name, sizeof(v->name), "%s%u", ops->name, index);
	else
		snprintf(v->name, sizeof(v->name), "%s", ops->name);
	return v;
}

/* Whether one more of kind fits; -errno with err set if not. */
static int vdev_room(struct vm *vm, enum vdev_kind kind, char *err, size_t errlen)
{
	const struct vdev_ops *ops = vdev_types[kind];
	unsigned int n = vm_devices_count(vm, kind);

	if (n == ops->max && ops->max == 1) {
		snprintf(err, errlen, "one %s only", ops->name);
		return -EEXIST;
	}
	if (n == ops->max || vm->virtio->nr == VM_MAX_VDEVS) {
		snprintf(err, errlen, "at most %u %s devices", ops->max, ops->name);
		return -ENOSPC;
	}
	return 0;
}

/*
 * As Firecracker's attach_boot_virtio_device: the type builds its model,
 * the registry puts it on the transport, and only a device that got all the
 * way is published.  Any failure runs the one unwind, vdev_detach().
 */
static int attach(struct vm *vm, struct vm_virtio *vv, enum vdev_kind kind, const void *kind_cfg,
		  char *err, size_t errlen)
{
	struct vdev *v;
	int ret;

	ret = vdev_room(vm, kind, err, errlen);
	if (ret)
		return ret;
	v = vdev_alloc(vm, kind, vm_devices_count(vm, kind));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = vdev_step(v, err, errlen);
	if (!ret)
		ret = v->ops->attach(v, kind_cfg, err, errlen);
	if (ret)
		goto err;
	/* Confidential: the driver goes through its DMA API, which bounces through shared pages. */
	if (vm->coco.on && v->vd)
		v->vd->features |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	v->model_ready = true;
	ret = vdev_transport_attach(v, err, errlen);
	if (ret)
		goto err;
	if (!v->pci)
		vv->mmio_devs[vv->nr_mmio++] = v->slot;
	vv->dev[vv->nr++] = v;
	if (v->pci)
		pr_info("%s: virtio-pci 00:%02x.0, BAR0 0x%llx", v->name, v->pci_slot,
			(unsigned long long)pci_bar_addr(&v->vp.pci, 0));
	else
		pr_info("%s: virtio-mmio at 0x%llx, GSI %u", v->name,
			(unsigned long long)v->slot.base, v->slot.irq);
	return 0;
err:
	if (!err[0])
		snprintf(err, errlen, "%s", strerror(-ret));
	vdev_detach(v);
	return ret;
}

int vm_device_attach(struct vm *vm, enum vdev_kind kind, const void *kind_cfg, char *err,
		     size_t errlen)
{
	struct vm_virtio *vv = virtio_of(vm);
	int ret;

	err[0] = '\0';
	if ((unsigned int)kind >= VDEV_NR_KINDS) {
		snprintf(err, errlen, "no such device type");
		return -EINVAL;
	}
	if (!vv) {
		snprintf(err, errlen, "cannot set up the I/O thread's io_uring");
		return -ENOMEM;
	}
	ret = attach(vm, vv, kind, kind_cfg, err, errlen);
	vv->fail_at = 0; /* an injected failure is for one attach only */
	return ret;
}

void vm_devices_destroy(struct vm *vm)
{
	struct vm_virtio *vv = vm->virtio;

	if (!vv)
		return;
	/* The ring goes first: the kernel finishes or cancels I/O into guest memory. */
	if (vv->io_ready)
		iothread_destroy(&vv->io);
	vv->destroying = true;
	while (vv->nr) {
		struct vdev *v = vv->dev[--vv->nr];

		/* The VM fd's close takes the ioeventfds; a confined thread may not. */
		v->nr_ioeventfds = 0;
		vdev_detach(v);
	}
	free(vv);
	vm->virtio = NULL;
}

/* How often virtio-pci functions raised INTA#: drivers without MSI-X (Linux: pci=nomsi). */
static void intx_summary(struct vm_virtio *vv, FILE *f)
{
	unsigned long long raised = 0;
	unsigned int i, functions = 0;

	for (i = 0; i < vv->nr; i++) {
		if (vv->dev[i]->pci && vv->dev[i]->vp.intx_raised) {
			raised += vv->dev[i]->vp.intx_raised;
			functions++;
		}
	}
	if (raised)
		fprintf(f, "veil: INTx: %llu assertions of INTA# by %u virtio-pci functions\n",
			raised, functions);
}

/* A device's queues together: what the ring features (event indices, indirect tables) spared. */
static struct vq_stats queue_stats(const struct virtio_dev *vd)
{
	struct vq_stats sum = { 0 };
	unsigned int q;

	for (q = 0; q < vd->nr_queues; q++) {
		struct vq_stats s = vq_stats(&vd->vq[q]);

		sum.popped += s.popped;
		sum.interrupts += s.interrupts;
		sum.suppressed += s.suppressed;
		sum.kick_asks += s.kick_asks;
		sum.indirect += s.indirect;
	}
	return sum;
}

static void queue_summary(const struct vdev *v, FILE *f)
{
	struct vq_stats s = queue_stats(v->vd);

	if (!s.popped)
		return;
	fprintf(f, "veil: %s: queues: %llu requests, %llu interrupts, %llu suppressed, %llu kicks "
		"asked for, %llu through indirect tables\n", v->name, (unsigned long long)s.popped,
		(unsigned long long)s.interrupts, (unsigned long long)s.suppressed,
		(unsigned long long)s.kick_asks, (unsigned long long)s.indirect);
}

void vm_devices_summary(struct vm *vm, FILE *f)
{
	struct vm_virtio *vv = vm->virtio;
	unsigned int i;

	for (i = 0; vv && i < vv->nr; i++) {
		vv->dev[i]->ops->summary(vv->dev[i], f);
		queue_summary(vv->dev[i], f);
	}
	if (vm->msi.nr) {
		struct vm_msi_stats st = vm_msi_stats(&vm->msi);

		fprintf(f, "veil: MSI: %llu messages through irqfd, %llu sent directly while their "
			"route settled, %llu GSI route updates\n", (unsigned long long)st.sent,
			(unsigned long long)st.direct, (unsigned long long)st.reroutes);
	}
	if (vv)
		intx_summary(vv, f);
}

struct count_ctx {
	void (*fn)(void *opaque, const char *dev, const char *name, uint64_t v);
	void *opaque;
	int n;
};

static void count_one(void *opaque, const char *dev, const char *name, uint64_t v)
{
	struct count_ctx *c = opaque;

	c->fn(c->opaque, dev, name, v);
	c->n++;
}

int vm_devices_counters(struct vm *vm,
			void (*fn)(void *opaque, const char *dev, const char *name, uint64_t v),
			void *opaque)
{
	struct count_ctx c = { fn, opaque, 0 };
	struct vm_virtio *vv = vm->virtio;
	unsigned int i;

	for (i = 0; vv && i < vv->nr; i++) {
		struct vdev *v = vv->dev[i];
		struct vq_stats qs;

		v->ops->counters(v, count_one, &c);
		count_one(&c, v->name, "deferred", v->retries);
		count_one(&c, v->name, "guest_errors", v->vd->errors);
		qs = queue_stats(v->vd);
		count_one(&c, v->name, "vq_requests", qs.popped);
		count_one(&c, v->name, "vq_interrupts", qs.interrupts);
		count_one(&c, v->name, "vq_interrupts_suppressed", qs.suppressed);
		count_one(&c, v->name, "vq_kicks_asked", qs.kick_asks);
		count_one(&c, v->name, "vq_indirect", qs.indirect);
		if (v->pci)
			count_one(&c, v->name, "intx_raised", v->vp.intx_raised);
	}
	return c.n;
}

void vm_devices_reset(struct vm *vm)
{
	struct vm_virtio *vv = vm->virtio;
	unsigned int i;

	for (i = 0; vv && i < vv->nr; i++) {
		if (vv->dev[i]->ops->reset)
			vv->dev[i]->ops->reset(vv->dev[i]);
		virtio_dev_set_status(vv->dev[i]->vd, 0);
	}
}

int vm_virtio_transport(struct vm *vm, bool pci)
{
	struct vm_virtio *vv = virtio_of(vm);

	if (!vv)
		return -ENOMEM;
	vv->pci = pci ? arch_board_pci(vm->board) : NULL;
	if (pci && !vv->pci)
		return -EOPNOTSUPP;
	vv->use_pci = pci;
	return 0;
}

bool vm_virtio_has_pci(struct vm *vm)
{
	return vm->virtio && vm->virtio->pci;
}

const struct arch_mmio_dev *vm_mmio_devs(struct vm *vm, unsigned int *nr)
{
	*nr = vm->virtio ? vm->virtio->nr_mmio : 0;
	return vm->virtio ? vm->virtio->mmio_devs : NULL;
}

int vm_virtio_start(struct vm *vm)
{
	struct vmm_sandbox_fds fds;
	int ret;

	if (!vm->virtio || !vm->virtio->nr)
		return 0;
	ret = vmm_sandbox_fds_of(vm, NULL, &fds);
	return ret ? ret : iothread_start(&vm->virtio->io, vm->cfg.seccomp ? &fds : NULL);
}

int vm_virtio_stop(struct vm *vm)
{
	return vm->virtio ? iothread_stop(&vm->virtio->io) : 0;
}
