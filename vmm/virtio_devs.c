/* virtio-blk disks on virtio-mmio: files, the I/O thread, ioeventfd kicks, interrupts. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm_uapi.h"
#include "log.h"
#include "virtio_devs.h"
#include "vm.h"

#define IO_RING_ENTRIES 512

int vm_disk_parse(char *spec, struct vm_disk_cfg *cfg, char *err, size_t errlen)
{
	char *opt;

	memset(cfg, 0, sizeof(*cfg));
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

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* The guest's interrupt line for this device: level, on the in-kernel IOAPIC. */
static void blk_set_irq(void *opaque, bool level)
{
	struct vm_blk *b = opaque;
	struct kvm_irq_level irq = { .irq = b->slot.irq, .level = level };

	if (ioctl(b->vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		pr_warn("%s: KVM_IRQ_LINE %u: %s", b->name, b->slot.irq, strerror(errno));
}

/* A kick that came through the bus (no ioeventfd): wake the I/O thread. */
static void blk_kick(void *opaque)
{
	struct vm_blk *b = opaque;
	uint64_t one = 1;

	if (write(b->kick_efd, &one, sizeof(one)) < 0)
		pr_warn("%s: kick: %s", b->name, strerror(errno));
}

static void blk_kicked(void *opaque)
{
	struct vm_blk *b = opaque;

	blk_process(&b->blk);
}

static void blk_io_cqe(struct io_cb *cb, int res)
{
	struct blk_io *io = ((struct blk_cb *)cb)->io;

	io->result = res;
	blk_io_done(io);
}

static int blk_submit(void *opaque, struct blk_io *io)
{
	struct vm_blk *b = opaque;
	struct io_uring_sqe *sqe = iothread_sqe(&b->vm->virtio->io);
	size_t idx = (size_t)(io - b->blk.io);
	struct blk_cb *cb = &b->cbs[idx];

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

static int register_ioeventfd(struct vm_blk *b)
{
	struct kvm_ioeventfd ev = {
		.datamatch = 0, .addr = b->slot.base + VIRTIO_MMIO_QUEUE_NOTIFY, .len = 4,
		.fd = b->kick_efd, .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};

	return ioctl(b->vm->vm_fd, KVM_IOEVENTFD, &ev) < 0 ? -errno : 0;
}

static void blk_free(struct vm_blk *b)
{
	if (b->kick_efd >= 0)
		close(b->kick_efd);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

int vm_add_disk(struct vm *vm, const struct vm_disk_cfg *cfg, char *err, size_t errlen)
{
	struct vm_virtio *v = virtio_of(vm);
	uint64_t size = 0;
	struct vm_blk *b;
	int ret, flags;

	if (!v) {
		snprintf(err, errlen, "cannot set up the I/O thread's io_uring");
		return -ENOMEM;
	}
	if (v->nr_blk == VM_MAX_DISKS || v->nr_mmio == ARCH_MAX_MMIO_DEVS) {
		snprintf(err, errlen, "at most %u disks", VM_MAX_DISKS);
		return -ENOSPC;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vm = vm;
	b->kick_efd = -1;
	snprintf(b->name, sizeof(b->name), "virtio-blk%u", v->nr_blk);
	flags = (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0);
	b->fd = open(cfg->path, flags);
	if (b->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
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
	ret = arch_mmio_slot(v->nr_mmio, &b->slot);
	if (ret) {
		snprintf(err, errlen, "no virtio-mmio slot left on this architecture");
		goto err;
	}
	b->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->kick_efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto err;
	}
	ret = virtio_blk_init(&b->blk, vm->gmem, b->name, size, cfg->read_only, b->name);
	if (ret) {
		snprintf(err, errlen, "virtio-blk: %s", strerror(-ret));
		goto err;
	}
	b->blk.backend = &uring_backend;
	b->blk.backend_opaque = b;
	b->blk.kick = blk_kick;
	b->blk.kick_opaque = b;
	b->blk.vdev.set_irq = blk_set_irq;
	b->blk.vdev.irq_opaque = b;
	virtio_mmio_init(&b->mmio, &b->blk.vdev);
	ret = bus_register(vm->bus, BUS_MMIO, b->slot.base, b->slot.size, &virtio_mmio_ops,
			   &b->mmio, b->name);
	if (!ret)
		ret = iothread_watch(&v->io, b->kick_efd, blk_kicked, b);
	if (ret) {
		snprintf(err, errlen, "registering the device: %s", strerror(-ret));
		virtio_blk_destroy(&b->blk);
		goto err;
	}
	/* Without ioeventfd the kick still arrives, through a vCPU exit and the bus. */
	b->ioeventfd = register_ioeventfd(b) == 0;
	if (!b->ioeventfd)
		pr_info("%s: no ioeventfd (%s); kicks go through the bus", b->name, strerror(errno));
	v->blk[v->nr_blk++] = b;
	v->mmio_devs[v->nr_mmio++] = b->slot;
	pr_info("%s: %s, %llu MiB%s%s, MMIO 0x%llx, GSI %u", b->name, cfg->path,
		(unsigned long long)(size >> 20), cfg->read_only ? ", read-only" : "",
		cfg->direct ? ", O_DIRECT" : "", (unsigned long long)b->slot.base, b->slot.irq);
	return 0;
err:
	blk_free(b);
	return ret;
}

const struct arch_mmio_dev *vm_mmio_devs(struct vm *vm, unsigned int *nr)
{
	*nr = vm->virtio ? vm->virtio->nr_mmio : 0;
	return vm->virtio ? vm->virtio->mmio_devs : NULL;
}

int vm_virtio_start(struct vm *vm)
{
	if (!vm->virtio || !vm->virtio->nr_blk)
		return 0;
	return iothread_start(&vm->virtio->io);
}

void vm_virtio_stop(struct vm *vm)
{
	if (vm->virtio)
		iothread_stop(&vm->virtio->io);
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
	free(v);
	vm->virtio = NULL;
}

void vm_virtio_summary(struct vm *vm, FILE *f)
{
	unsigned int i;

	for (i = 0; vm->virtio && i < vm->virtio->nr_blk; i++) {
		struct virtio_blk *blk = &vm->virtio->blk[i]->blk;

		fprintf(f, "veil: %s: %llu reads (%llu MiB), %llu writes (%llu MiB), %llu flushes, "
			"%llu discards, %llu write-zeroes, %llu errors, %llu malformed%s\n",
			vm->virtio->blk[i]->name, (unsigned long long)blk->stats.reads,
			(unsigned long long)(blk->stats.bytes_read >> 20),
			(unsigned long long)blk->stats.writes,
			(unsigned long long)(blk->stats.bytes_written >> 20),
			(unsigned long long)blk->stats.flushes, (unsigned long long)blk->stats.discards,
			(unsigned long long)blk->stats.write_zeroes, (unsigned long long)blk->stats.errors,
			(unsigned long long)blk->stats.malformed,
			vm->virtio->blk[i]->ioeventfd ? "" : " (kicks through the bus)");
	}
}
