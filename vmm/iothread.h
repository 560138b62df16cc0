/*
 * The I/O thread: one io_uring serves eventfds (guest kicks through
 * ioeventfd, or through the bus when ioeventfd is unavailable) and the
 * block I/O the virtio devices start.  Everything submitted to the ring is
 * submitted from this thread, so the ring needs no lock.  No busy polling:
 * the thread sleeps in io_uring_submit_and_wait().
 */
#ifndef VEIL_IOTHREAD_H
#define VEIL_IOTHREAD_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>

#include "compiler.h"

struct vmm_sandbox_fds;

#define IOTHREAD_MAX_WATCHES 48 /* a multiqueue disk watches one eventfd per queue */

/* A completion: what a CQE's user_data points at. */
struct io_cb {
	void (*fn)(struct io_cb *cb, int res);
};

/*
 * Work for the end of a batch: after the thread handled every completion
 * the ring had, before it submits and sleeps (a device signals each queue
 * once per batch, not once per request).
 */
struct io_batch {
	void (*fn)(struct io_batch *b);
	struct io_batch *next;
	bool queued;
};

struct io_watch {
	struct io_cb cb;
	struct iothread *t;
	int fd;                     /* an eventfd */
	void (*handler)(void *opaque);
	void *opaque;
};

struct iothread {
	struct io_uring ring;
	pthread_t thread;
	bool started;
	bool stuck;     /* did not stop in time: it may still use the ring, which is left alone */
	bool stop;
	int stop_efd;
	struct io_watch watches[IOTHREAD_MAX_WATCHES];
	unsigned int nr_watches;
	struct io_batch *batch;     /* queued for the batch end */
	uint64_t completions;
	uint64_t batches;           /* waits that returned completions */
	uint64_t waits;             /* io_uring_submit_and_wait() calls: the thread's wakeups */
	uint64_t submitted;         /* SQEs those calls (and iothread_sqe()'s overflow) submitted */
};

int iothread_init(struct iothread *t, unsigned int entries) __must_check;
/*
 * Calls handler(opaque) on the I/O thread each time eventfd fd becomes
 * readable, after reading it.  Before iothread_start() only.
 */
int iothread_watch(struct iothread *t, int fd, void (*handler)(void *), void *opaque) __must_check;
/* Removes fd's watch, before iothread_start() only (an attach unwinding); -ENOENT if none. */
int iothread_unwatch(struct iothread *t, int fd) __must_check;
/* fds: unless NULL, the thread confines itself with the worker seccomp filter first. */
int iothread_start(struct iothread *t, const struct vmm_sandbox_fds *fds) __must_check;
/*
 * Stops and joins the thread, waiting at most IOTHREAD_STOP_MS: -ETIMEDOUT
 * if it did not stop (t->stuck; it is left running, to process exit).
 */
#define IOTHREAD_STOP_MS 500
int iothread_stop(struct iothread *t) __must_check;
void iothread_destroy(struct iothread *t);

/* On the I/O thread: runs b->fn once at the end of this batch (again if queued again by it). */
void iothread_after_batch(struct iothread *t, struct io_batch *b);

/* On the I/O thread: a free SQE, submitting queued ones first if the ring is full. */
struct io_uring_sqe *iothread_sqe(struct iothread *t);

#endif
