/* virtio-blk disks for the registry: image files, their locks, and I/O through the I/O thread's io_uring. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"
#include "file.h"
#include "kvm.h"
#include "log.h"
#include "vdev.h"
#include "vm.h"

/* An I/O's completion, as the ring sees it. */
struct blk_cb {
	struct io_cb cb;
	struct blk_io *io;
};

struct vm_blk {
	struct vdev v;
	struct virtio_blk blk;
	int fd;
	dev_t dev;       /* the image's, to find it attached twice */
	ino_t ino;
	bool locked;     /* fd holds the image's OFD lock (in this VM, one disk per image does) */
	bool lock_write;
	struct vm_blk *lock_from; /* the disk whose read lock this one's write lock replaced */
	struct io_batch batch;    /* the device's batch end, after the ring's completions */
	struct blk_cb cbs[BLK_MAX_INFLIGHT];
};

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
		} else if (!strncmp(opt, "queues=", 7)) {
			char *end;
			unsigned long n = strtoul(opt + 7, &end, 10);

			if (!opt[7] || *end || !n || n > VIRTIO_MAX_QUEUES) {
				snprintf(err, errlen, "queues: 1 to %u", VIRTIO_MAX_QUEUES);
				return -EINVAL;
			}
			cfg->queues = (unsigned int)n;
		} else {
			snprintf(err, errlen, "unknown option '%s' (ro, direct, queues=N)", opt);
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

static void blk_io_cqe(struct io_cb *cb, int res)
{
	struct blk_io *io = ((struct blk_cb *)cb)->io;

	io->result = res;
	blk_io_done(io); /* the queue is signalled at the batch end */
}

/* The batch end: every queue that moved is signalled once, then MSI routes and retries. */
static void blk_batch_fired(struct io_batch *bt)
{
	struct vm_blk *b = (struct vm_blk *)((char *)bt - offsetof(struct vm_blk, batch));

	blk_batch_end(&b->blk);
	vdev_after_io(&b->v);
}

static void blk_batch_sched(void *opaque)
{
	struct vm_blk *b = opaque;

	iothread_after_batch(&b->v.vm->virtio->io, &b->batch);
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

/* This VM's disk on the same image that holds its lock, or NULL. */
static struct vm_blk *blk_same_locked(struct vm_blk *b)
{
	struct vdev *v;

	for (v = vdev_next(b->v.vm, VDEV_BLK, NULL); v; v = vdev_next(b->v.vm, VDEV_BLK, v)) {
		struct vm_blk *o = (struct vm_blk *)v;

		if (o->locked && o->dev == b->dev && o->ino == b->ino)
			return o;
	}
	return NULL;
}

/*
 * Locks the image against other processes: shared for ,ro, exclusive for
 * read-write, so no veil writes an image another has open, or reads one
 * another writes.  The same image twice in this VM shares one lock, moved
 * to the read-write disk if need be (and back if that disk goes).  -EBUSY
 * with err set on a conflict; a file system without OFD locks gets a warning.
 */
static int blk_lock(struct vm_blk *b, bool write, char *err, size_t errlen)
{
	struct vm_blk *same;
	struct stat st;
	int ret;

	if (fstat(b->fd, &st) < 0)
		return -errno;
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	same = blk_same_locked(b);
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
	b->lock_from = same && !same->locked ? same : NULL;
	return 0;
}

static void blk_close(struct vm_blk *b)
{
	/*
	 * A disk that took the image's lock from another gives it back (it was
	 * a read lock), unless the VM goes (its thread may be confined by then).
	 */
	if (b->lock_from && b->lock_from->fd >= 0 && !b->v.vm->virtio->destroying)
		b->lock_from->locked = ofd_lock(b->lock_from->fd, F_RDLCK) == 0;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

static int blk_open(struct vm_blk *b, const struct vm_disk_cfg *cfg, uint64_t *size, char *err,
		    size_t errlen)
{
	int ret;

	b->fd = cfg->fd >= 0 ? fcntl(cfg->fd, F_DUPFD_CLOEXEC, 0) : open(cfg->path, disk_open_flags(cfg));
	if (b->fd < 0)
		return -errno;
	ret = vdev_step(&b->v, err, errlen);
	if (!ret)
		ret = blk_lock(b, !cfg->read_only, err, errlen);
	if (ret)
		return ret;
	ret = disk_size(b->fd, size);
	if (ret || !*size || *size % BLK_SECTOR) {
		snprintf(err, errlen, ret ? "not a regular file or block device" :
			 "its size, %llu bytes, is not a positive multiple of 512",
			 (unsigned long long)*size);
		return -EINVAL;
	}
	return 0;
}

static int blk_attach(struct vdev *v, const void *cfgp, char *err, size_t errlen)
{
	const struct vm_disk_cfg *cfg = cfgp;
	struct vm_blk *b = (struct vm_blk *)v;
	unsigned int queues = cfg->queues;
	uint64_t size = 0;
	int ret;

	/* One queue per vCPU by default, as many as the transports carry. */
	if (!queues)
		queues = v->vm->cfg.nr_cpus < VIRTIO_MAX_QUEUES ? v->vm->cfg.nr_cpus : VIRTIO_MAX_QUEUES;
	ret = blk_open(b, cfg, &size, err, errlen);
	if (!ret)
		ret = vdev_step(v, err, errlen);
	if (!ret)
		ret = virtio_blk_init_mq(&b->blk, v->vm->gmem, v->name, size, cfg->read_only, v->name,
					 queues ? queues : 1);
	if (ret) {
		blk_close(b);
		return ret;
	}
	b->blk.backend = &uring_backend;
	b->blk.backend_opaque = b;
	b->blk.kick = vdev_kick;
	b->blk.kick_queue = vdev_kick_queue;
	b->blk.kick_opaque = v;
	b->blk.batch = blk_batch_sched;
	b->blk.batch_opaque = b;
	b->batch.fn = blk_batch_fired;
	v->vd = &b->blk.vdev;
	pr_info("%s: %s, %llu MiB, %u queue%s%s%s", v->name, cfg->path ? cfg->path : "(fd)",
		(unsigned long long)(size >> 20), queues, queues > 1 ? "s" : "",
		cfg->read_only ? ", read-only" : "", cfg->direct ? ", O_DIRECT" : "");
	return 0;
}

static void blk_proc(struct vdev *v)
{
	blk_process(&((struct vm_blk *)v)->blk);
}

static void blk_proc_queue(struct vdev *v, unsigned int q)
{
	blk_process_queue(&((struct vm_blk *)v)->blk, q);
}

static void blk_destroy(struct vdev *v)
{
	struct vm_blk *b = (struct vm_blk *)v;

	virtio_blk_destroy(&b->blk);
	blk_close(b);
}

static void blk_summary(struct vdev *v, FILE *f)
{
	struct virtio_blk *blk = &((struct vm_blk *)v)->blk;
	struct iothread *io = &v->vm->virtio->io;

	fprintf(f, "veil: %s: %llu reads (%llu MiB), %llu writes (%llu MiB), %llu flushes, "
		"%llu discards, %llu write-zeroes, %llu errors, %llu malformed, %llu deferred; "
		"%u queue%s, %llu interrupts in %llu batches%s%s\n",
		v->name, (unsigned long long)blk->stats.reads,
		(unsigned long long)(blk->stats.bytes_read >> 20),
		(unsigned long long)blk->stats.writes,
		(unsigned long long)(blk->stats.bytes_written >> 20),
		(unsigned long long)blk->stats.flushes, (unsigned long long)blk->stats.discards,
		(unsigned long long)blk->stats.write_zeroes, (unsigned long long)blk->stats.errors,
		(unsigned long long)blk->stats.malformed, (unsigned long long)v->retries,
		blk->vdev.nr_queues, blk->vdev.nr_queues > 1 ? "s" : "",
		(unsigned long long)blk->stats.signals, (unsigned long long)blk->stats.batches,
		v->ioeventfd ? "" : " (kicks through the bus)", vdev_transport_note(v));
	/* The I/O thread is the VM's, shared by its devices: these cover them all. */
	fprintf(f, "veil: %s: I/O thread (all devices): %llu wakeups, %llu SQEs submitted, "
		"%llu completions\n", v->name,
		(unsigned long long)__atomic_load_n(&io->waits, __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&io->submitted, __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&io->completions, __ATOMIC_RELAXED));
}

static void blk_counters(struct vdev *v, vdev_counter_fn fn, void *o)
{
	struct virtio_blk *blk = &((struct vm_blk *)v)->blk;

	fn(o, v->name, "reads", __atomic_load_n(&blk->stats.reads, __ATOMIC_RELAXED));
	fn(o, v->name, "bytes_read", __atomic_load_n(&blk->stats.bytes_read, __ATOMIC_RELAXED));
	fn(o, v->name, "writes", __atomic_load_n(&blk->stats.writes, __ATOMIC_RELAXED));
	fn(o, v->name, "bytes_written", __atomic_load_n(&blk->stats.bytes_written, __ATOMIC_RELAXED));
	fn(o, v->name, "flushes", __atomic_load_n(&blk->stats.flushes, __ATOMIC_RELAXED));
	fn(o, v->name, "discards", __atomic_load_n(&blk->stats.discards, __ATOMIC_RELAXED));
	fn(o, v->name, "write_zeroes", __atomic_load_n(&blk->stats.write_zeroes, __ATOMIC_RELAXED));
	fn(o, v->name, "errors", __atomic_load_n(&blk->stats.errors, __ATOMIC_RELAXED));
	fn(o, v->name, "malformed", __atomic_load_n(&blk->stats.malformed, __ATOMIC_RELAXED));
	fn(o, v->name, "interrupts", __atomic_load_n(&blk->stats.signals, __ATOMIC_RELAXED));
	fn(o, v->name, "batches", __atomic_load_n(&blk->stats.batches, __ATOMIC_RELAXED));
}

bool vm_disk_last_buffer(struct vm *vm, uint64_t x, uint64_t *gpa, uint64_t *pages)
{
	unsigned int n = vm_devices_count(vm, VDEV_BLK);
	struct vdev *v = vdev_next(vm, VDEV_BLK, NULL);

	if (!n)
		return false;
	for (x %= n; x; x--)
		v = vdev_next(vm, VDEV_BLK, v);
	return virtio_blk_last_buffer(&((struct vm_blk *)v)->blk, gpa, pages);
}

const struct vdev_ops vdev_blk_ops = {
	.name = "virtio-blk", .max = VM_MAX_DISKS, .size = sizeof(struct vm_blk),
	.attach = blk_attach, .process = blk_proc, .process_queue = blk_proc_queue,
	.destroy = blk_destroy,
	.summary = blk_summary, .counters = blk_counters,
};
