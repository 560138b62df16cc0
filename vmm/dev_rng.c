/* virtio-rng for the registry: entropy from getrandom(2). */
#include <stdio.h>
#include <string.h>

#include "rng.h"
#include "vdev.h"
#include "vm.h"

struct vm_rng {
	struct vdev v;
	struct virtio_rng r;
};

static int rng_attach(struct vdev *v, const void *cfg, char *err, size_t errlen)
{
	struct vm_rng *r = (struct vm_rng *)v;
	int ret = virtio_rng_init(&r->r, v->vm->gmem, v->name);

	(void)cfg;
	if (ret) {
		snprintf(err, errlen, "virtio-rng: %s", strerror(-ret));
		return ret;
	}
	r->r.kick = vdev_kick;
	r->r.kick_opaque = v;
	v->vd = &r->r.vdev;
	return 0;
}

static void rng_proc(struct vdev *v)
{
	rng_process(&((struct vm_rng *)v)->r);
}

static void rng_destroy(struct vdev *v)
{
	virtio_rng_destroy(&((struct vm_rng *)v)->r);
}

static void rng_summary(struct vdev *v, FILE *f)
{
	struct virtio_rng *r = &((struct vm_rng *)v)->r;

	fprintf(f, "veil: virtio-rng: %llu requests, %llu bytes of entropy, %llu errors\n",
		(unsigned long long)r->stats.requests, (unsigned long long)r->stats.bytes,
		(unsigned long long)r->stats.errors);
}

static void rng_counters(struct vdev *v, vdev_counter_fn fn, void *o)
{
	struct virtio_rng *r = &((struct vm_rng *)v)->r;

	fn(o, v->name, "requests", __atomic_load_n(&r->stats.requests, __ATOMIC_RELAXED));
	fn(o, v->name, "bytes", __atomic_load_n(&r->stats.bytes, __ATOMIC_RELAXED));
	fn(o, v->name, "errors", __atomic_load_n(&r->stats.errors, __ATOMIC_RELAXED));
}

const struct vdev_ops vdev_rng_ops = {
	.name = "virtio-rng", .max = 1, .size = sizeof(struct vm_rng),
	.attach = rng_attach, .process = rng_proc, .destroy = rng_destroy,
	.summary = rng_summary, .counters = rng_counters,
};
