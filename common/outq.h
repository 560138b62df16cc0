/*
 * Output that never blocks: a bounded byte queue in front of an fd (stdout,
 * stderr, the guest's console), written without ever waiting on the reader.
 *
 * Producers put bytes from any thread; what does not fit is dropped and
 * counted, or (for a device that asks outq_room() first) held back by the
 * device as back-pressure.  Draining never blocks: the fd is reopened as a
 * separate non-blocking open file description where it can be (FIFOs,
 * terminals: the shell's own description keeps its flags), a regular file is
 * written as is, and anything else gets a poll() before each write of at
 * most PIPE_BUF bytes.  At the end, outq_flush() waits for the reader up to
 * a deadline and no longer.
 */
#ifndef VEIL_OUTQ_H
#define VEIL_OUTQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "compiler.h"

enum outq_mode {
	OUTQ_DIRECT,   /* a regular file or block device: writes do not wait on a reader */
	OUTQ_NONBLOCK, /* our own O_NONBLOCK description of a FIFO or terminal */
	OUTQ_POLLED,   /* poll() then at most PIPE_BUF bytes (sockets, no /proc) */
};

struct outq {
	pthread_mutex_t lock;
	int fd;           /* what is written: the caller's fd, or our reopened one */
	bool own_fd;
	enum outq_mode mode;
	bool broken;      /* the reader is gone (EPIPE, EBADF...): everything is dropped */
	uint8_t *buf;
	size_t cap, head, len;
	uint64_t written; /* bytes the fd took */
	uint64_t dropped; /* bytes that did not fit, or that a broken fd refused */
	int wake_fd;      /* an eventfd told when bytes arrive in an empty queue, or -1 */
	bool draining;    /* outq_drain() writes the bytes at head outside the lock */
};

/* Sets up the queue in front of fd (not taken over: the caller still closes it). */
int outq_init(struct outq *q, int fd, size_t cap) __must_check;
void outq_destroy(struct outq *q);

/* The drainer's eventfd: written (never waited on) when an empty queue gets bytes. */
void outq_set_wake(struct outq *q, int efd);
/* Free space; with a broken fd, cap (bytes go nowhere, and nobody should wait for that). */
size_t outq_room(struct outq *q);
/* Queues what fits and drops the rest, counted; returns the bytes queued. */
size_t outq_put(struct outq *q, const void *buf, size_t len);
/* Bytes waiting for the fd. */
size_t outq_pending(struct outq *q);
/* Writes what the fd takes now, never waiting.  Returns the bytes still pending. */
size_t outq_drain(struct outq *q);
/* Drains until empty or until deadline_ns (CLOCK_MONOTONIC); returns the bytes left. */
size_t outq_flush(struct outq *q, uint64_t deadline_ns);
/* The fd to poll for POLLOUT while bytes are pending (DIRECT: always writable). */
int outq_poll_fd(const struct outq *q);
uint64_t outq_dropped(struct outq *q);

/*
 * A stdio stream over the queue: each write drains what it can, queues the
 * rest, and returns at once.  Used to replace stdout and stderr, so a stalled
 * reader costs output, never a blocked thread.
 */
FILE *outq_fopen(struct outq *q);

uint64_t outq_now_ns(void);

/*
 * stdout, and stderr where it can be written without waiting (not in
 * OUTQ_POLLED mode: logging threads may not poll under seccomp), replaced
 * by streams over queues.  Lives until process exit: stdio refers to it.
 */
struct outq_stdio {
	struct outq out, err;
	bool out_wrapped, err_wrapped;
};
struct outq_stdio *outq_stdio_wrap(void);
/*
 * Writes out what stdout and stderr still owe, waiting for their readers
 * until budget_ns from now in all, then says on stderr what stdout did not
 * take.  Returns the bytes stdout did not take.
 */
size_t outq_stdio_finish(struct outq_stdio *s, uint64_t budget_ns);

#endif
