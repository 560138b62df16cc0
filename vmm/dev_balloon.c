/* virtio-balloon for the registry: free page reports and the target, punched through gmem, and measured. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "balloon.h"
#include "vdev.h"
#include "vm.h"

struct vm_balloon {
	struct vdev v;
	struct virtio_balloon b;
	uint64_t alloc_drop;   /* guest_memfd bytes freed across report batches, by fstat */
	uint64_t memfree_rise; /* the host's MemFree gain across report batches */
	int meminfo_fd;        /* /proc/meminfo, opened up front: the I/O thread may not open */
};

/* The host's MemFree in bytes, or 0 if /proc/meminfo (fd, or -1) cannot say. */
static uint64_t host_memfree(int fd)
{
	unsigned long long kb = 0;
	char buf[512];
	const char *p;
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "MemFree:");
	if (!p || sscanf(p, "MemFree: %llu kB", &kb) != 1)
		return 0;
	return (uint64_t)kb * 1024;
}

/*
 * Reports and inflations are served here, and measured two ways:
 * guest_memfd's st_blocks (0 on kernels whose guest_memfd does not account
 * blocks), and the host's MemFree around each batch (system-wide, so an
 * upper bound on noise only).
 */
static void balloon_proc(struct vdev *v)
{
	struct vm_balloon *b = (struct vm_balloon *)v;
	uint64_t before, after, free0 = host_memfree(b->meminfo_fd), free1;
	bool measured = gmem_allocated_bytes(v->vm->gmem, &before) == 0;
	uint64_t discarded = b->b.stats.discarded_bytes;

	balloon_process(&b->b);
	if (b->b.stats.discarded_bytes == discarded)
		return; /* nothing punched: not a batch worth measuring */
	if (measured && gmem_allocated_bytes(v->vm->gmem, &after) == 0 && after < before)
		b->alloc_drop += before - after;
	free1 = host_memfree(b->meminfo_fd);
	if (free0 && free1 > free0)
		b->memfree_rise += free1 - free0;
}

static int balloon_attach(struct vdev *v, const void *cfg, char *err, size_t errlen)
{
	struct vm_balloon *b = (struct vm_balloon *)v;
	int ret;

	(void)cfg;
	ret = virtio_balloon_init(&b->b, v->vm->gmem, v->name);
	if (ret) {
		snprintf(err, errlen, "virtio-balloon: %s", strerror(-ret));
		return ret;
	}
	b->meminfo_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC); /* -1: not measured */
	b->b.kick = vdev_kick;
	b->b.kick_opaque = v;
	v->vd = &b->b.vdev;
	return 0;
}

static void balloon_destroy(struct vdev *v)
{
	struct vm_balloon *b = (struct vm_balloon *)v;

	virtio_balloon_destroy(&b->b);
	if (b->meminfo_fd >= 0)
		close(b->meminfo_fd);
}

static void balloon_summary(struct vdev *v, FILE *f)
{
	struct vm_balloon *b = (struct vm_balloon *)v;

	fprintf(f, "veil: virtio-balloon: %llu free page reports, %llu MiB reported, "
		"%llu MiB punched, %llu refused, %llu busy, %llu inflated pages, %llu deflated; "
		"target %llu pages, the guest holds %llu; across the reports guest_memfd's "
		"st_blocks dropped by %llu MiB and the host's MemFree rose by %llu MiB\n",
		(unsigned long long)b->b.stats.reports,
		(unsigned long long)(b->b.stats.reported_bytes >> 20),
		(unsigned long long)(b->b.stats.discarded_bytes >> 20),
		(unsigned long long)b->b.stats.discard_errors,
		(unsigned long long)b->b.stats.discard_busy,
		(unsigned long long)b->b.stats.inflated_pages,
		(unsigned long long)b->b.stats.deflated_pages,
		(unsigned long long)__atomic_load_n(&b->b.num_pages, __ATOMIC_RELAXED),
		(unsigned long long)virtio_balloon_actual(&b->b),
		(unsigned long long)(b->alloc_drop >> 20),
		(unsigned long long)(b->memfree_rise >> 20));
}

static void balloon_counters(struct vdev *v, vdev_counter_fn fn, void *o)
{
	struct vm_balloon *b = (struct vm_balloon *)v;

	fn(o, v->name, "reports", b->b.stats.reports);
	fn(o, v->name, "reported_bytes", b->b.stats.reported_bytes);
	fn(o, v->name, "discarded_bytes", b->b.stats.discarded_bytes);
	fn(o, v->name, "discard_errors", b->b.stats.discard_errors);
	fn(o, v->name, "discard_busy", b->b.stats.discard_busy);
	fn(o, v->name, "inflated_pages", b->b.stats.inflated_pages);
	fn(o, v->name, "deflated_pages", b->b.stats.deflated_pages);
	fn(o, v->name, "target_pages", __atomic_load_n(&b->b.num_pages, __ATOMIC_RELAXED));
	fn(o, v->name, "actual_pages", virtio_balloon_actual(&b->b));
	fn(o, v->name, "malformed", b->b.stats.malformed);
}

int vm_balloon_set_target(struct vm *vm, uint64_t bytes)
{
	struct vdev *v = vdev_next(vm, VDEV_BALLOON, NULL);

	if (!v)
		return -ENODEV;
	if (bytes % GMEM_PAGE_SIZE || bytes > vm->cfg.mem_size || bytes / 4096 > UINT32_MAX)
		return -EINVAL;
	virtio_balloon_set_target(&((struct vm_balloon *)v)->b, (uint32_t)(bytes / 4096));
	vdev_settle_msi(vm); /* the configuration vector's route, on virtio-pci */
	return 0;
}

const struct vdev_ops vdev_balloon_ops = {
	.name = "virtio-balloon", .max = 1, .size = sizeof(struct vm_balloon),
	.attach = balloon_attach, .process = balloon_proc, .destroy = balloon_destroy,
	.summary = balloon_summary, .counters = balloon_counters,
};
