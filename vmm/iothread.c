/* The I/O thread: io_uring for eventfd watches and device I/O. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iothread.h"
#include "log.h"
#include "sandbox.h"

static void watch_arm(struct io_watch *w)
{
	struct io_uring_sqe *sqe = iothread_sqe(w->t);

	if (!sqe) {
		pr_err("I/O thread: no room to watch fd %d; its device stalls", w->fd);
		return;
	}
	io_uring_prep_poll_add(sqe, w->fd, POLLIN);
	io_uring_sqe_set_data(sqe, &w->cb);
}

static void watch_fired(struct io_cb *cb, int res)
{
	struct io_watch *w = (struct io_watch *)cb;
	uint64_t v;

	if (res < 0 && res != -EINTR) {
		pr_err("I/O thread: polling fd %d: %s", w->fd, strerror(-res));
		return;
	}
	if (read(w->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("I/O thread: reading eventfd %d: %s", w->fd, strerror(errno));
	if (w->t->stop)
		return;
	w->handler(w->opaque);
	watch_arm(w);
}

static void stop_handler(void *opaque)
{
	struct iothread *t = opaque;

	t->stop = true;
}

/*
 * io_uring carries out its operations in the kernel, past seccomp: a ring that
 * could open files or sockets would undo the I/O thread's filter.  So the ring
 * starts disabled, is limited to the operations veil submits, with no
 * io_uring_register() at all once enabled, and only then enabled.
 */
static int ring_restrict(struct io_uring *ring)
{
	static const uint8_t ops[] = {
		IORING_OP_POLL_ADD, /* watches on kick eventfds */
		IORING_OP_TIMEOUT,  /* a deferred device's 1 ms retry */
		IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, /* virtio-blk */
		IORING_OP_FALLOCATE, /* virtio-blk discard and write-zeroes */
	};
	struct io_uring_restriction r[ARRAY_SIZE(ops)];
	int ret;

	memset(r, 0, sizeof(r));
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		r[i].opcode = IORING_RESTRICTION_SQE_OP;
		r[i].sqe_op = ops[i];
	}
	/*
	 * Raw io_uring_register(): Debian 12's liburing.so does not export
	 * io_uring_register_restrictions() or io_uring_enable_rings() (only
	 * its static library has them).  Like them, it returns -errno.
	 */
	ret = io_uring_register(ring->ring_fd, IORING_REGISTER_RESTRICTIONS, r, ARRAY_SIZE(r));
	return ret < 0 ? ret : io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}

int iothread_init(struct iothread *t, unsigned int entries)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stop_efd < 0)
		return -errno;
	ret = io_uring_queue_init(entries, &t->ring, IORING_SETUP_R_DISABLED);
	if (!ret) {
		ret = ring_restrict(&t->ring);
		if (ret)
			io_uring_queue_exit(&t->ring);
	}
	if (ret) {
		pr_err("I/O thread: a restricted io_uring (Linux 5.10+): %s", strerror(-ret));
		close(t->stop_efd);
		return ret;
	}
	ret = iothread_watch(t, t->stop_efd, stop_handler, t);
	if (ret)
		iothread_destroy(t);
	return ret;
}

int iothread_watch(struct iothread *t, int fd, void (*handler)(void *), void *opaque)
{
	struct io_watch *w;

	if (t->started || t->nr_watches == IOTHREAD_MAX_WATCHES)
		return -ENOSPC;
	w = &t->watches[t->nr_watches++];
	*w = (struct io_watch){ .cb.fn = watch_fired, .t = t, .fd = fd, .handler = handler,
				.opaque = opaque };
	return 0;
}

int iothread_unwatch(struct iothread *t, int fd)
{
	unsigned int i;

	if (t->started)
		return -EBUSY;
	for (i = 0; i < t->nr_watches && t->watches[i].fd != fd; i++)
		;
	if (i == t->nr_watches)
		return -ENOENT;
	memmove(&t->watches[i], &t->watches[i + 1], (t->nr_watches - i - 1) * sizeof(t->watches[0]));
	t->nr_watches--;
	return 0;
}

struct io_uring_sqe *iothread_sqe(struct iothread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	int n;

	if (!sqe && (n = io_uring_submit(&t->ring)) >= 0) {
		__atomic_store_n(&t->submitted, t->submitted + (unsigned int)n, __ATOMIC_RELAXED);
		sqe = io_uring_get_sqe(&t->ring);
	}
	return sqe;
}

void iothread_after_batch(struct iothread *t, struct io_batch *b)
{
	if (b->queued)
		return;
	b->queued = true;
	b->next = t->batch;
	t->batch = b;
}

/* The batch end: what the completions queued; its work may queue more, run in the same pass. */
static void run_batch(struct iothread *t)
{
	while (t->batch && !t->stop) {
		struct io_batch *b = t->batch;

		t->batch = b->next;
		b->queued = false;
		b->fn(b);
	}
}

static void *iothread_main(void *arg)
{
	struct iothread *t = arg;
	unsigned int i;

	for (i = 0; i < t->nr_watches; i++)
		watch_arm(&t->watches[i]);
	while (!t->stop) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_submit_and_wait(&t->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EBUSY) {
			pr_err("I/O thread: io_uring_submit_and_wait: %s", strerror(-ret));
			break;
		}
		/* One writer (this thread); the summary may read them while it runs. */
		__atomic_store_n(&t->waits, t->waits + 1, __ATOMIC_RELAXED);
		if (ret > 0)
			__atomic_store_n(&t->submitted, t->submitted + (unsigned int)ret,
					 __ATOMIC_RELAXED);
		while (!t->stop && io_uring_peek_cqe(&t->ring, &cqe) == 0) {
			struct io_cb *cb = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			/* Seen before the callback runs: callbacks queue SQEs but never reap. */
			io_uring_cqe_seen(&t->ring, cqe);
			if (cb)
				cb->fn(cb, res);
			__atomic_store_n(&t->completions, t->completions + 1, __ATOMIC_RELAXED);
		}
		t->batches += t->batch != NULL;
		run_batch(t);
	}
	return NULL;
}

int iothread_start(struct iothread *t, const struct vmm_sandbox_fds *fds)
{
	int ret;

	ret = vmm_thread_start(&t->thread, VMM_THREAD_WORKER, fds, "I/O", iothread_main, t);
	t->started = ret == 0;
	return ret;
}

int iothread_stop(struct iothread *t)
{
	uint64_t one = 1;
	struct timespec ts;

	if (!t->started)
		return t->stuck ? -ETIMEDOUT : 0;
	if (write(t->stop_efd, &one, sizeof(one)) < 0)
		pr_warn("I/O thread: cannot signal the stop: %s", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += IOTHREAD_STOP_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	t->started = false;
	if (pthread_timedjoin_np(t->thread, NULL, &ts) == 0)
		return 0;
	pr_err("I/O thread did not stop within %d ms; giving up on it", IOTHREAD_STOP_MS);
	t->stuck = true;
	return -ETIMEDOUT;
}

void iothread_destroy(struct iothread *t)
{
	if (iothread_stop(t))
		return; /* the thread may still be in the ring: process exit takes it all */
	io_uring_queue_exit(&t->ring);
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	t->stop_efd = -1;
}
