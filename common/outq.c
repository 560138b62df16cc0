/* Output that never blocks: a bounded queue in front of an fd, drained without waiting. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "outq.h"

#define OUTQ_STDIO_CAP (256 * 1024) /* a stress report and its JSON fit many times over */

uint64_t outq_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * A FIFO or terminal is reopened through /proc: a new open file description
 * that can be O_NONBLOCK without changing the shell's (F_SETFL on a dup
 * would).  Sockets cannot be reopened, nor anything without /proc.
 */
static void outq_choose_mode(struct outq *q, int fd)
{
	char path[40];
	struct stat st;
	int nfd;

	q->fd = fd;
	q->mode = OUTQ_POLLED;
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		q->mode = OUTQ_DIRECT;
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (nfd < 0)
		return;
	q->fd = nfd;
	q->own_fd = true;
	q->mode = OUTQ_NONBLOCK;
}

int outq_init(struct outq *q, int fd, size_t cap)
{
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = q->wake_fd = -1;
	q->buf = malloc(cap);
	if (!q->buf)
		return -ENOMEM;
	q->cap = cap;
	ret = -pthread_mutex_init(&q->lock, NULL);
	if (ret) {
		free(q->buf);
		q->buf = NULL;
		return ret;
	}
	outq_choose_mode(q, fd);
	return 0;
}

void outq_destroy(struct outq *q)
{
	if (!q->buf)
		return;
	if (q->own_fd)
		close(q->fd);
	pthread_mutex_destroy(&q->lock);
	free(q->buf);
	q->buf = NULL;
}

/*
 * One write that cannot wait, with or without the lock (fd and mode never
 * change).  Returns the bytes written, 0 if none now, -errno if the reader
 * is gone (EPIPE, EBADF, EIO, ENOSPC).
 */
static ssize_t write_now(const struct outq *q, const uint8_t *p, size_t n)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
	ssize_t w;

	if (q->mode == OUTQ_POLLED) {
		/* POLLOUT on a pipe means a free page: PIPE_BUF bytes go in without waiting. */
		if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		if (n > PIPE_BUF)
			n = PIPE_BUF;
	}
	do {
		w = write(q->fd, p, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return errno == EAGAIN ? 0 : -errno;
	return w;
}

/* With the lock held: what a write came to.  Returns the bytes written. */
static size_t account_write(struct outq *q, ssize_t w)
{
	if (w > 0) {
		q->written += (uint64_t)w;
		return (size_t)w;
	}
	if (w < 0)
		q->broken = true; /* the reader will take no more */
	return 0;
}

/* With the lock held: one write that cannot wait.  Returns bytes written, 0 if none now. */
static size_t write_some(struct outq *q, const uint8_t *p, size_t n)
{
	return account_write(q, write_now(q, p, n));
}

/* With the lock held: drops what is queued if the fd broke. */
static void drop_if_broken(struct outq *q)
{
	if (!q->broken)
		return;
	q->dropped += q->len;
	q->head = q->len = 0;
}

/* The bytes from head that one write can take: up to the end of the buffer. */
static size_t head_chunk(const struct outq *q)
{
	return q->cap - q->head < q->len ? q->cap - q->head : q->len;
}

/*
 * With the lock held, writing under it: for a stdio stream's writes.  While
 * outq_drain() writes outside the lock, the bytes at head are on their way
 * already: writing them again would duplicate them, so nothing is written.
 */
static size_t drain_locked(struct outq *q)
{
	if (q->draining)
		return q->len;
	while (q->len && !q->broken) {
		size_t w = write_some(q, q->buf + q->head, head_chunk(q));

		if (!w)
			break;
		q->head = (q->head + w) % q->cap;
		q->len -= w;
	}
	if (!q->len)
		q->head = 0;
	drop_if_broken(q);
	return q->len;
}

static size_t put_locked(struct outq *q, const uint8_t *p, size_t len)
{
	size_t n = q->cap - q->len < len ? q->cap - q->len : len, i, tail;

	if (q->broken) {
		q->dropped += len;
		return 0;
	}
	if (!q->len && n && q->wake_fd >= 0) {
		uint64_t one = 1;

		/* An eventfd never blocks; EAGAIN means a saturated counter, the drainer is awake. */
		if (write(q->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			q->wake_fd = -1; /* not an eventfd after all: stop writing to it */
	}
	tail = (q->head + q->len) % q->cap;
	i = q->cap - tail < n ? q->cap - tail : n;
	memcpy(q->buf + tail, p, i);
	memcpy(q->buf, p + i, n - i);
	q->len += n;
	q->dropped += len - n;
	return n;
}

void outq_set_wake(struct outq *q, int efd)
{
	pthread_mutex_lock(&q->lock);
	q->wake_fd = efd;
	pthread_mutex_unlock(&q->lock);
}

size_t outq_room(struct outq *q)
{
	size_t room;

	pthread_mutex_lock(&q->lock);
	room = q->broken ? q->cap : q->cap - q->len;
	pthread_mutex_unlock(&q->lock);
	return room;
}

size_t outq_put(struct outq *q, const void *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = put_locked(q, buf, len);
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t outq_pending(struct outq *q)
{
	size_t len;

	pthread_mutex_lock(&q->lock);
	len = q->len;
	pthread_mutex_unlock(&q->lock);
	return len;
}

/*
 * The write happens outside the lock: a write to a slow terminal can take a
 * while, and producers (vCPU threads in the UART's exit) must not wait for
 * it on the lock (measured under nested TCG: 166 us per UART exit, against
 * 6 us for a PCI config exit, in a verbose Linux boot).  The bytes being
 * written stay counted in len, so no producer overwrites them; draining
 * keeps a second drainer from writing them again.
 */
size_t outq_drain(struct outq *q)
{
	size_t left;

	pthread_mutex_lock(&q->lock);
	if (q->draining) {
		left = q->len;
		pthread_mutex_unlock(&q->lock);
		return left;
	}
	q->draining = true;
	while (q->len && !q->broken) {
		const uint8_t *p = q->buf + q->head;
		size_t n = head_chunk(q), w;
		ssize_t r;

		pthread_mutex_unlock(&q->lock);
		r = write_now(q, p, n);
		pthread_mutex_lock(&q->lock);
		w = account_write(q, r);
		if (!w)
			break;
		q->head = (q->head + w) % q->cap;
		q->len -= w;
	}
	if (!q->len)
		q->head = 0;
	drop_if_broken(q);
	q->draining = false;
	left = q->len;
	pthread_mutex_unlock(&q->lock);
	return left;
}

size_t outq_flush(struct outq *q, uint64_t deadline_ns)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
	size_t left;

	while ((left = outq_drain(q))) {
		uint64_t now = outq_now_ns();
		int ms;

		if (now >= deadline_ns)
			break;
		ms = (int)((deadline_ns - now + 999999) / 1000000);
		if (poll(&pfd, 1, ms > 50 ? 50 : ms) < 0 && errno != EINTR)
			break;
	}
	return left;
}

int outq_poll_fd(const struct outq *q)
{
	return q->fd;
}

uint64_t outq_dropped(struct outq *q)
{
	uint64_t d;

	pthread_mutex_lock(&q->lock);
	d = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return d;
}

/* stdio's write: what the fd takes now, then the queue; stdio never sees an error or a wait. */
static ssize_t outq_cookie_write(void *cookie, const char *buf, size_t size)
{
	struct outq *q = cookie;
	const uint8_t *p = (const uint8_t *)buf;
	size_t off = 0;

	pthread_mutex_lock(&q->lock);
	if (!drain_locked(q)) {
		size_t w;

		while (off < size && !q->broken && (w = write_some(q, p + off, size - off)))
			off += w;
	}
	put_locked(q, p + off, size - off);
	pthread_mutex_unlock(&q->lock);
	return (ssize_t)size;
}

FILE *outq_fopen(struct outq *q)
{
	cookie_io_functions_t io = { .write = outq_cookie_write };

	return fopencookie(q, "w", io);
}

/* Replaces *fp by a stream over q in front of fd; false (and q unused) if it cannot. */
static bool wrap_stream(FILE **fp, struct outq *q, int fd, int buf_mode, bool polled_ok)
{
	FILE *f;

	if (outq_init(q, fd, OUTQ_STDIO_CAP))
		return false;
	if (q->mode == OUTQ_POLLED && !polled_ok) {
		outq_destroy(q);
		return false;
	}
	f = outq_fopen(q);
	if (!f) {
		outq_destroy(q);
		return false;
	}
	fflush(*fp);
	setvbuf(f, NULL, buf_mode, 0);
	*fp = f;
	return true;
}

struct outq_stdio *outq_stdio_wrap(void)
{
	struct outq_stdio *s = calloc(1, sizeof(*s));

	if (!s) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		return NULL;
	}
#ifdef __SANITIZE_ADDRESS__
	/* Kept until process exit on purpose: stdio may write through it to the end. */
	__lsan_ignore_object(s);
#endif
	/* Only the main thread and helpers without seccomp write stdout: poll() is theirs. */
	s->out_wrapped = wrap_stream(&stdout, &s->out, STDOUT_FILENO, _IOLBF, true);
	if (!s->out_wrapped)
		setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines still come out as they happen */
	s->err_wrapped = wrap_stream(&stderr, &s->err, STDERR_FILENO, _IONBF, false);
	return s;
}

size_t outq_stdio_finish(struct outq_stdio *s, uint64_t budget_ns)
{
	uint64_t deadline = outq_now_ns() + budget_ns;
	size_t left = 0;

	if (!s)
		return 0;
	fflush(stdout);
	if (s->out_wrapped)
		left = outq_flush(&s->out, deadline);
	if (left)
		fprintf(stderr, "veil: stdout did not take the last %zu bytes of output within "
			"%llu ms; exiting without them\n", left,
			(unsigned long long)(budget_ns / 1000000));
	fflush(stderr);
	if (s->err_wrapped)
		outq_flush(&s->err, deadline);
	return left;
}
