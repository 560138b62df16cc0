/* virtio-blk disks on virtio-mmio: files, the I/O thread, ioeventfd kicks, interrupts. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "kvm.h"
#include "log.h"
#include "sandbox.h"
#include "virtio_devs.h"
#include "vm.h"

#define IO_RING_ENTRIES 512

int vm_disk_parse(char *spec, struct vm_disk_cfg *cfg, char *err, size_t errlen)
{
	char *opt;

	memset(cfg, 0, sizeof(*cfg));
	cfg->fd = -1;
	cfg->path = strsep(&spec, ",");
	if (!cfg->path[0]) {
		snprintf(err, errlen, "no file name");
		return -EINVAL;
	}
	while ((opt = strsep(&spec, ","))) {
		if (!strcmp(opt, "ro")) {
			cfg->read_only = true;
		} else if (!strcmp(opt, "direct")) {
			cfg->direct = true;
		} else {
			snprintf(err, errlen, "unknown option '%s' (ro, direct)", opt);
			return -EINVAL;
		}
	}
	return 0;
}

static int disk_open_flags(const struct vm_disk_cfg *cfg)
{
	return (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0);
}

int vm_disk_open(struct vm_disk_cfg *cfg)
{
	cfg->fd = open(cfg->path, disk_open_flags(cfg));
	return cfg->fd < 0 ? -errno : 0;
}

static struct vm_virtio *virtio_of(struct vm *vm)
{
	if (!vm->virtio) {
		vm->virtio = calloc(1, sizeof(*vm->virtio));
		if (vm->virtio && iothread_init(&vm->virtio->io, IO_RING_ENTRIES) == 0)
			vm->virtio->io_ready = true;
	}
	return vm->virtio && vm->virtio->io_ready ? vm->virtio : NULL;
}

static int disk_size(int fd, uint64_t *size)
{
	struct stat st;

	if (file_fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return __kvm_ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* The guest's interrupt line for a device: level, on the in-kernel IOAPIC. */
static void vdev_set_irq(void *opaque, bool level)
{
	struct vm_vdev *v = opaque;
	struct kvm_irq_level irq = { .irq = v->slot.irq, .level = level };

	if (__kvm_ioctl(v->vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		pr_warn("%s: KVM_IRQ_LINE %u: %s", v->name, v->slot.irq, strerror(errno));
}

/* How often virtio-pci functions raised INTA#: drivers without MSI-X (Linux: pci=nomsi). */
static void vdev_intx_summary(struct vm *vm, FILE *f)
{
	struct vm_virtio *vv = vm->virtio;
	struct vm_vdev *all[VM_MAX_DISKS + 3];
	unsigned long long raised = 0;
	unsigned int i, n = 0, functions = 0;

	if (!vv)
		return;
	for (i = 0; i < vv->nr_blk; i++)
		all[n++] = &vv->blk[i]->v;
	all[n++] = vv->balloon ? &vv->balloon->v : NULL;
	all[n++] = vv->rng ? &vv->rng->v : NULL;
	all[n++] = vv->vcon ? &vv->vcon->v : NULL;
	for (i = 0; i < n; i++) {
		if (all[i] && all[i]->pci && all[i]->vp.intx_raised) {
			raised += all[i]->vp.intx_raised;
			functions++;
		}
	}
	if (raised)
		fprintf(f, "veil: INTx: %llu assertions of INTA# by %u virtio-pci functions\n",
			raised, functions);
}

/* A kick that came through the bus (no ioeventfd): wake the I/O thread. */
static void vdev_kick(void *opaque)
{
	struct vm_vdev *v = opaque;
	uint64_t one = 1;

	if (write(v->kick_efd, &one, sizeof(one)) < 0)
		pr_warn("%s: kick: %s", v->name, strerror(errno));
}

static void vdev_run(struct vm_vdev *v);
static void vdev_settle_msi(struct vm *vm);

static void vdev_retry_fired(struct io_cb *cb, int res)
{
	struct vm_vdev *v = (struct vm_vdev *)((char *)cb - offsetof(struct vm_vdev, retry_cb));

	(void)res; /* -ETIME: the timeout expired, as meant */
	v->retry_armed = false;
	vdev_run(v);
}

/*
 * A device that met a buffer or a ring under conversion asked to be run
 * again, which a 1 ms timeout on the ring does, so the I/O thread keeps
 * completing the requests that conversion may be waiting for.
 */
static void vdev_retry(struct vm_vdev *v)
{
	struct io_uring_sqe *sqe;

	if (!virtio_dev_take_retry(v->vd) || v->retry_armed)
		return;
	sqe = iothread_sqe(&v->vm->virtio->io);
	if (!sqe) {
		pr_warn("%s: no room on the ring to retry; the next kick will", v->name);
		return;
	}
	v->retry_ts = (struct __kernel_timespec){ .tv_sec = 0, .tv_nsec = 1000000 };
	v->retry_cb.fn = vdev_retry_fired;
	io_uring_prep_timeout(sqe, &v->retry_ts, 0, 0);
	io_uring_sqe_set_data(sqe, &v->retry_cb);
	v->retry_armed = true;
	v->retries++;
}

static void vdev_run(struct vm_vdev *v)
{
	v->process(v);
	vdev_settle_msi(v->vm);
	vdev_retry(v);
}

static void vdev_kicked(void *opaque)
{
	vdev_run(opaque);
}

/*
 * An MSI from a virtio-pci device, with the device's lock held: an eventfd
 * write on the vector's irqfd, routed to the LAPICs by KVM's GSI table
 * (msi.c), or a direct message while the vector's route is missing or stale.
 */
static void vdev_signal_msi(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	struct vm_vdev *v = opaque;
	int ret;

	if (vector >= VPCI_VECTORS)
		return;
	if (v->msi[vector] < 0)
		v->msi[vector] = vm_msi_source(&v->vm->msi);
	ret = v->msi[vector] < 0 ? v->msi[vector] :
	      vm_msi_send(&v->vm->msi, v->msi[vector], addr, data);
	if (ret)
		pr_warn("%s: MSI vector %u: %s", v->name, vector, strerror(-ret));
}

/* Moves the MSI routes that settled, with no device lock held (KVM_SET_GSI_ROUTING waits). */
static void vdev_settle_msi(struct vm *vm)
{
	int ret = vm_msi_settle(&vm->msi);

	if (ret)
		pr_warn("MSI: KVM_SET_GSI_ROUTING: %s; messages go directly", strerror(-ret));
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

static uint32_t pci_class(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK: return 0x010000;   /* mass storage */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* communication, other */
	default: return 0xff0000;                /* unassigned class */
	}
}

/* virtio-pci: a function on the root bus, an ioeventfd per queue's notify register. */
static int vdev_attach_pci(struct vm *vm, struct vm_vdev *v, char *err, size_t errlen)
{
	struct vm_virtio *vv = vm->virtio;
	unsigned int slot, q;
	int ret;

	v->pci = true;
	for (q = 0; q < VPCI_VECTORS; q++)
		v->msi[q] = -1;
	virtio_pci_init(&v->vp, v->vd, pci_class(v->vd->device_id));
	v->vp.signal_msi = vdev_signal_msi;
	v->vp.msi_opaque = v;
	ret = pci_host_add(vv->pci, &v->vp.pci, &slot);
	if (!ret)
		ret = iothread_watch(&vv->io, v->kick_efd, vdev_kicked, v);
	if (ret) {
		snprintf(err, errlen, "registering the PCI function: %s", strerror(-ret));
		return ret;
	}
	/* INTA#, for drivers that do not enable MSI-X: the line the firmware tables route. */
	v->slot.irq = arch_pci_intx_gsi(slot);
	v->vp.pci.cfg[PCI_INTERRUPT_LINE] = (uint8_t)v->slot.irq;
	v->vp.set_intx = vdev_set_irq;
	v->vp.intx_opaque = v;
	/* Linux writes a queue's index to its notify register, 16 bits wide. */
	v->ioeventfd = true;
	for (q = 0; q < v->vd->nr_queues; q++) {
		struct kvm_ioeventfd ev = {
			.addr = pci_bar_addr(&v->vp.pci, 0) + VPCI_NOTIFY + q * VPCI_NOTIFY_MULT,
			.len = 2, .fd = v->kick_efd,
		};

		v->ioeventfd &= __kvm_ioctl(vm->vm_fd, KVM_IOEVENTFD, &ev) == 0;
	}
	if (!v->ioeventfd)
		pr_info("%s: no ioeventfd (%s); kicks go through the bus", v->name, strerror(errno));
	pr_info("%s: virtio-pci 00:%02x.0, BAR0 0x%llx", v->name, slot,
		(unsigned long long)pci_bar_addr(&v->vp.pci, 0));
	return 0;
}

/*
 * Puts a device on the VM's transport: virtio-pci, or the next virtio-mmio
 * slot with an ioeventfd on QueueNotify (every queue: no datamatch), the
 * I/O thread's watch, and the interrupt line.
 */
static int vdev_attach(struct vm *vm, struct vm_vdev *v, struct virtio_dev *vd,
		       void (*process)(struct vm_vdev *), char *err, size_t errlen)
{
	struct vm_virtio *vv = vm->virtio;
	struct kvm_ioeventfd ev = { .len = 4 };
	int ret;

	v->vm = vm;
	v->vd = vd;
	v->process = process;
	if (vv->use_pci) {
		v->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->kick_efd < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			return -errno;
		}
		return vdev_attach_pci(vm, v, err, errlen);
	}
	ret = arch_mmio_slot(vv->nr_mmio, &v->slot);
	if (ret) {
		snprintf(err, errlen, "no virtio-mmio slot left on this architecture");
		return ret;
	}
	v->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->kick_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	vd->set_irq = vdev_set_irq;
	vd->irq_opaque = v;
	virtio_mmio_init(&v->mmio, vd);
	ret = bus_register(vm->bus, BUS_MMIO, v->slot.base, v->slot.size, &virtio_mmio_ops,
			   &v->mmio, v->name);
	if (!ret)
		ret = iothread_watch(&vv->io, v->kick_efd, vdev_kicked, v);
	if (ret) {
		snprintf(err, errlen, "registering the device: %s", strerror(-ret));
		return ret;
	}
	/* Without ioeventfd the kick still arrives, through a vCPU exit and the bus. */
	ev.addr = v->slot.base + VIRTIO_MMIO_QUEUE_NOTIFY;
	ev.fd = v->kick_efd;
	v->ioeventfd = __kvm_ioctl(vm->vm_fd, KVM_IOEVENTFD, &ev) == 0;
	if (!v->ioeventfd)
		pr_info("%s: no ioeventfd (%s); kicks go through the bus", v->name, strerror(errno));
	vv->mmio_devs[vv->nr_mmio++] = v->slot;
	pr_info("%s: virtio-mmio at 0x%llx, GSI %u", v->name, (unsigned long long)v->slot.base,
		v->slot.irq);
	return 0;
}

static void vdev_close(struct vm_vdev *v)
{
	if (v->kick_efd >= 0)
		close(v->kick_efd);
	v->kick_efd = -1;
}

static void blk_io_cqe(struct io_cb *cb, int res)
{
	struct blk_io *io = ((struct blk_cb *)cb)->io;
	struct vm_blk *b = io->blk->backend_opaque;

	io->result = res;
	blk_io_done(io);
	/* A completion the used ring could not take yet (under conversion) is retried. */
	vdev_retry(&b->v);
	vdev_settle_msi(b->v.vm);
}

static int blk_submit(void *opaque, struct blk_io *io)
{
	struct vm_blk *b = opaque;
	struct io_uring_sqe *sqe = iothread_sqe(&b->v.vm->virtio->io);
	struct blk_cb *cb = &b->cbs[io - b->blk.io];

	if (!sqe)
		return -EBUSY;
	switch (io->op) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, b->fd, io->iov, io->niov, io->offset);
		break;
	case BLK_OP_WRITE:
		io_uring_prep_writev(sqe, b->fd, io->iov, io->niov, io->offset);
		break;
	case BLK_OP_FLUSH:
		io_uring_prep_fsync(sqe, b->fd, 0);
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		/* Reads of a punched range return zeros: both requests' contract. */
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					io->offset, io->len);
		break;
	}
	cb->cb.fn = blk_io_cqe;
	cb->io = io;
	io_uring_sqe_set_data(sqe, &cb->cb);
	return 0;
}

static const struct blk_backend_ops uring_backend = { .submit = blk_submit };

static void blk_proc(struct vm_vdev *v)
{
	blk_process(&((struct vm_blk *)v)->blk);
}

/* An OFD lock on the whole file, or its removal (F_UNLCK); -errno. */
static int ofd_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* The kind of lock another holder has that conflicts with type: F_RDLCK or F_WRLCK. */
static short ofd_holder(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK ? F_WRLCK : fl.l_type;
}

/*
 * Locks the image against other processes: shared for ,ro, exclusive for
 * read-write, so no veil writes an image another has open, or reads one
 * another writes.  The same image twice in this VM shares one lock, moved
 * to the read-write disk if need be.  -EBUSY with err set on a conflict;
 * a file system without OFD locks gets a warning.
 */
static int blk_lock(struct vm_virtio *v, struct vm_blk *b, bool write, char *err, size_t errlen)
{
	struct vm_blk *same = NULL;
	struct stat st;
	unsigned int i;
	int ret;

	if (fstat(b->fd, &st) < 0)
		return -errno;
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	for (i = 0; i < v->nr_blk && !same; i++)
		if (v->blk[i]->locked && v->blk[i]->dev == b->dev && v->blk[i]->ino == b->ino)
			same = v->blk[i];
	if (same && (same->lock_write || !write))
		return 0; /* this VM's lock covers it */
	if (same && ofd_lock(same->fd, F_UNLCK) == 0)
		same->locked = false; /* the write lock goes on this disk's descriptor */
	ret = ofd_lock(b->fd, write ? F_WRLCK : F_RDLCK);
	if (ret == -EAGAIN || ret == -EACCES) {
		bool w = ofd_holder(b->fd, write ? F_WRLCK : F_RDLCK) == F_WRLCK;

		if (same && !same->locked)
			same->locked = ofd_lock(same->fd, F_RDLCK) == 0;
		snprintf(err, errlen, "disk image in use by another process, which holds it locked "
			 "for %s", w ? "writing" : "reading (read-write needs it alone)");
		return -EBUSY;
	}
	if (ret) {
		pr_warn("%s: not locked against other processes (fcntl: %s)", b->v.name,
			strerror(-ret));
		return 0;
	}
	b->locked = true;
	b->lock_write = write;
	return 0;
}

static void blk_free(struct vm_blk *b)
{
	vdev_close(&b->v);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

int vm_add_disk(struct vm *vm, const struct vm_disk_cfg *cfg, char *err, size_t errlen)
{
	struct vm_virtio *v = virtio_of(vm);
	uint64_t size = 0;
	struct vm_blk *b;
	int ret;

	if (!v) {
		snprintf(err, errlen, "cannot set up the I/O thread's io_uring");
		return -ENOMEM;
	}
	if (v->nr_blk == VM_MAX_DISKS) {
		snprintf(err, errlen, "at most %u disks", VM_MAX_DISKS);
		return -ENOSPC;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->v.kick_efd = -1;
	snprintf(b->v.name, sizeof(b->v.name), "virtio-blk%u", v->nr_blk);
	b->fd = cfg->fd >= 0 ? fcntl(cfg->fd, F_DUPFD_CLOEXEC, 0) : open(cfg->path, disk_open_flags(cfg));
	if (b->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		goto err;
	}
	ret = blk_lock(v, b, !cfg->read_only, err, errlen);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "%s", strerror(-ret));
		goto err;
	}
	ret = disk_size(b->fd, &size);
	if (ret || !size || size % BLK_SECTOR) {
		snprintf(err, errlen, ret ? "not a regular file or block device" :
			 "its size, %llu bytes, is not a positive multiple of 512",
			 (unsigned long long)size);
		ret = -EINVAL;
		goto err;
	}
	ret = virtio_blk_init(&b->blk, vm->gmem, b->v.name, size, cfg->read_only, b->v.name);
	if (ret) {
		snprintf(err, errlen, "virtio-blk: %s", strerror(-ret));
		goto err;
	}
	b->blk.backend = &uring_backend;
	b->blk.backend_opaque = b;
	b->blk.kick = vdev_kick;
	b->blk.kick_opaque = &b->v;
	ret = vdev_attach(vm, &b->v, &b->blk.vdev, blk_proc, err, errlen);
	if (ret) {
		virtio_blk_destroy(&b->blk);
		goto err;
	}
	v->blk[v->nr_blk++] = b;
	pr_info("%s: %s, %llu MiB%s%s", b->v.name, cfg->path, (unsigned long long)(size >> 20),
		cfg->read_only ? ", read-only" : "", cfg->direct ? ", O_DIRECT" : "");
	return 0;
err:
	blk_free(b);
	return ret;
}

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
 * Reports are served here, and measured two ways: guest_memfd's st_blocks
 * (0 on kernels whose guest_memfd does not account blocks), and the host's
 * MemFree around each batch (system-wide, so an upper bound on noise only).
 */
static void balloon_proc(struct vm_vdev *v)
{
	struct vm_balloon *b = (struct vm_balloon *)v;
	uint64_t before, after, free0 = host_memfree(b->meminfo_fd), free1;
	bool measured = gmem_allocated_bytes(v->vm->gmem, &before) == 0;
	uint64_t discarded = b->b.stats.discarded_bytes;

	balloon_process(&b->b);
	if (b->b.stats.discarded_bytes == discarded)
		return; /* nothing punched: not a report batch worth measuring */
	if (measured && gmem_allocated_bytes(v->vm->gmem, &after) == 0 && after < before)
		b->alloc_drop += before - after;
	free1 = host_memfree(b->meminfo_fd);
	if (free0 && free1 > free0)
		b->memfree_rise += free1 - free0;
}

/*
 * Allocates a device wrapper of size bytes, whose first member is its
 * struct vm_vdev, for a one-of-a-kind device; NULL with *ret and err set.
 */
static void *vdev_alloc(struct vm *vm, size_t size, bool taken, const char *name, int *ret,
			char *err, size_t errlen)
{
	struct vm_vdev *v;

	if (!virtio_of(vm)) {
		snprintf(err, errlen, "cannot set up the I/O thread's io_uring");
		*ret = -ENOMEM;
		return NULL;
	}
	if (taken) {
		snprintf(err, errlen, "one %s only", name);
		*ret = -EEXIST;
		return NULL;
	}
	v = calloc(1, size);
	if (!v) {
		snprintf(err, errlen, "out of memory");
		*ret = -ENOMEM;
		return NULL;
	}
	v->kick_efd = -1;
	snprintf(v->name, sizeof(v->name), "%s", name);
	return v;
}

int vm_add_balloon(struct vm *vm, char *err, size_t errlen)
{
	struct vm_balloon *b;
	int ret = 0;

	b = vdev_alloc(vm, sizeof(*b), vm->virtio && vm->virtio->balloon, "virtio-balloon", &ret,
		       err, errlen);
	if (!b)
		return ret;
	ret = virtio_balloon_init(&b->b, vm->gmem, b->v.name);
	if (ret) {
		snprintf(err, errlen, "virtio-balloon: %s", strerror(-ret));
		free(b);
		return ret;
	}
	b->meminfo_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC); /* -1: not measured */
	b->b.kick = vdev_kick;
	b->b.kick_opaque = &b->v;
	ret = vdev_attach(vm, &b->v, &b->b.vdev, balloon_proc, err, errlen);
	if (ret) {
		virtio_balloon_destroy(&b->b);
		vdev_close(&b->v);
		if (b->meminfo_fd >= 0)
			close(b->meminfo_fd);
		free(b);
		return ret;
	}
	vm->virtio->balloon = b;
	return 0;
}

static void rng_proc(struct vm_vdev *v)
{
	rng_process(&((struct vm_rng *)v)->r);
}

int vm_add_rng(struct vm *vm, char *err, size_t errlen)
{
	struct vm_rng *r;
	int ret = 0;

	r = vdev_alloc(vm, sizeof(*r), vm->virtio && vm->virtio->rng, "virtio-rng", &ret, err,
		       errlen);
	if (!r)
		return ret;
	ret = virtio_rng_init(&r->r, vm->gmem, r->v.name);
	if (ret) {
		snprintf(err, errlen, "virtio-rng: %s", strerror(-ret));
		free(r);
		return ret;
	}
	r->r.kick = vdev_kick;
	r->r.kick_opaque = &r->v;
	ret = vdev_attach(vm, &r->v, &r->r.vdev, rng_proc, err, errlen);
	if (ret) {
		virtio_rng_destroy(&r->r);
		vdev_close(&r->v);
		free(r);
		return ret;
	}
	vm->virtio->rng = r;
	return 0;
}

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

static void vcon_proc(struct vm_vdev *v)
{
	console_process_tx(&((struct vm_vcon *)v)->c);
}

int vm_add_vconsole(struct vm *vm, int out_fd, char *err, size_t errlen)
{
	struct vm_vcon *c;
	int ret = 0;

	c = vdev_alloc(vm, sizeof(*c), vm->virtio && vm->virtio->vcon, "virtio-console", &ret, err,
		       errlen);
	if (!c)
		return ret;
	c->out = vm_console_queue(vm, out_fd);
	if (!c->out) {
		snprintf(err, errlen, "output must go where the UART's goes");
		free(c);
		return -EINVAL;
	}
	ret = virtio_console_init(&c->c, vm->gmem, c->v.name);
	if (ret) {
		snprintf(err, errlen, "virtio-console: %s", strerror(-ret));
		free(c);
		return ret;
	}
	c->c.output = vcon_output;
	c->c.output_room = vcon_output_room;
	c->c.output_opaque = c;
	c->c.kick = vdev_kick;
	c->c.kick_opaque = &c->v;
	ret = vdev_attach(vm, &c->v, &c->c.vdev, vcon_proc, err, errlen);
	if (ret) {
		virtio_console_destroy(&c->c);
		vdev_close(&c->v);
		free(c);
		return ret;
	}
	vm->virtio->vcon = c;
	return 0;
}

long vm_vconsole_input(struct vm *vm, const uint8_t *buf, size_t len)
{
	struct virtio_console *c;
	long n;

	if (!vm->virtio || !vm->virtio->vcon)
		return -1;
	c = &vm->virtio->vcon->c;
	/* Held until the guest has used the console (see console_guest_attached()). */
	if (!console_guest_attached(c))
		return 0;
	/* The device locks its queues and never waits: safe from the event loop's thread. */
	n = (long)console_input(c, buf, len);
	vdev_settle_msi(vm);
	return n;
}

const struct arch_mmio_dev *vm_mmio_devs(struct vm *vm, unsigned int *nr)
{
	*nr = vm->virtio ? vm->virtio->nr_mmio : 0;
	return vm->virtio ? vm->virtio->mmio_devs : NULL;
}

int vm_virtio_start(struct vm *vm)
{
	struct vm_virtio *v = vm->virtio;
	struct vmm_sandbox_fds fds;
	int ret;

	if (!v || !(v->nr_blk || v->balloon || v->rng || v->vcon))
		return 0;
	ret = vmm_sandbox_fds_of(vm, NULL, &fds);
	return ret ? ret : iothread_start(&vm->virtio->io, vm->cfg.seccomp ? &fds : NULL);
}

int vm_virtio_stop(struct vm *vm)
{
	return vm->virtio ? iothread_stop(&vm->virtio->io) : 0;
}

void vm_vconsole_tx_ready(struct vm *vm)
{
	struct vm_vcon *c = vm->virtio ? vm->virtio->vcon : NULL;

	if (c && console_tx_take_waiting(&c->c))
		vdev_kick(&c->v);
}

void vm_virtio_destroy(struct vm *vm)
{
	struct vm_virtio *v = vm->virtio;
	unsigned int i;

	if (!v)
		return;
	/* The ring goes first: the kernel finishes or cancels I/O into guest memory. */
	if (v->io_ready)
		iothread_destroy(&v->io);
	for (i = 0; i < v->nr_blk; i++) {
		virtio_blk_destroy(&v->blk[i]->blk);
		blk_free(v->blk[i]);
	}
	if (v->balloon) {
		virtio_balloon_destroy(&v->balloon->b);
		vdev_close(&v->balloon->v);
		if (v->balloon->meminfo_fd >= 0)
			close(v->balloon->meminfo_fd);
		free(v->balloon);
	}
	if (v->rng) {
		virtio_rng_destroy(&v->rng->r);
		vdev_close(&v->rng->v);
		free(v->rng);
	}
	if (v->vcon) {
		virtio_console_destroy(&v->vcon->c);
		vdev_close(&v->vcon->v);
		free(v->vcon);
	}
	free(v);
	vm->virtio = NULL;
}

void vm_virtio_summary(struct vm *vm, FILE *f)
{
	unsigned int i;

	for (i = 0; vm->virtio && i < vm->virtio->nr_blk; i++) {
		struct virtio_blk *blk = &vm->virtio->blk[i]->blk;

		fprintf(f, "veil: %s: %llu reads (%llu MiB), %llu writes (%llu MiB), %llu flushes, "
			"%llu discards, %llu write-zeroes, %llu errors, %llu malformed, %llu deferred%s%s\n",
			vm->virtio->blk[i]->v.name, (unsigned long long)blk->stats.reads,
			(unsigned long long)(blk->stats.bytes_read >> 20),
			(unsigned long long)blk->stats.writes,
			(unsigned long long)(blk->stats.bytes_written >> 20),
			(unsigned long long)blk->stats.flushes, (unsigned long long)blk->stats.discards,
			(unsigned long long)blk->stats.write_zeroes, (unsigned long long)blk->stats.errors,
			(unsigned long long)blk->stats.malformed,
			(unsigned long long)vm->virtio->blk[i]->v.retries,
			vm->virtio->blk[i]->v.ioeventfd ? "" : " (kicks through the bus)",
			!vm->virtio->blk[i]->v.pci ? "" : vm->virtio->blk[i]->v.vp.intx_raised ?
			"; on virtio-pci with INTx" : "; on virtio-pci with MSI-X");
	}
	if (vm->virtio && vm->virtio->balloon) {
		struct vm_balloon *b = vm->virtio->balloon;

		fprintf(f, "veil: virtio-balloon: %llu free page reports, %llu MiB reported, "
			"%llu MiB punched, %llu refused, %llu busy, %llu inflated pages; across the reports "
			"guest_memfd's st_blocks dropped by %llu MiB and the host's MemFree rose by "
			"%llu MiB\n",
			(unsigned long long)b->b.stats.reports,
			(unsigned long long)(b->b.stats.reported_bytes >> 20),
			(unsigned long long)(b->b.stats.discarded_bytes >> 20),
			(unsigned long long)b->b.stats.discard_errors,
			(unsigned long long)b->b.stats.discard_busy,
			(unsigned long long)b->b.stats.inflated_pages,
			(unsigned long long)(b->alloc_drop >> 20),
			(unsigned long long)(b->memfree_rise >> 20));
	}
	if (vm->msi.nr) {
		struct vm_msi_stats st = vm_msi_stats(&vm->msi);

		fprintf(f, "veil: MSI: %llu messages through irqfd, %llu sent directly while their "
			"route settled, %llu GSI route updates\n", (unsigned long long)st.sent,
			(unsigned long long)st.direct, (unsigned long long)st.reroutes);
	}
	vdev_intx_summary(vm, f);
	if (vm->virtio && vm->virtio->rng)
		fprintf(f, "veil: virtio-rng: %llu requests, %llu bytes of entropy, %llu errors\n",
			(unsigned long long)vm->virtio->rng->r.stats.requests,
			(unsigned long long)vm->virtio->rng->r.stats.bytes,
			(unsigned long long)vm->virtio->rng->r.stats.errors);
	if (vm->virtio && vm->virtio->vcon)
		fprintf(f, "veil: virtio-console: %llu bytes from the guest, transmit held back %llu "
			"times for want of output room\n",
			(unsigned long long)vm->virtio->vcon->c.stats.tx_bytes,
			(unsigned long long)vm->virtio->vcon->c.stats.tx_waits);
}
