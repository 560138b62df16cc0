/* Unit test: output queues never wait on a reader, keep order, and count what they drop. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "outq.h"
#include "test.h"

/* A pipe nobody reads, shrunk to one page so that it fills at once. */
static void stalled_pipe(int p[2])
{
	if (pipe(p)) {
		perror("pipe");
		exit(1);
	}
	fcntl(p[1], F_SETPIPE_SZ, 4096);
}

static size_t read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (n < len && (r = read(fd, buf + n, len - n)) > 0)
		n += (size_t)r;
	return n;
}

/* A full pipe: the queue takes what fits, drops the rest, and a flush gives up at its deadline. */
static void test_stalled_reader(void)
{
	static char in[20000], out[20000];
	struct outq q;
	uint64_t t0;
	size_t i, got;
	int p[2];

	for (i = 0; i < sizeof(in); i++)
		in[i] = (char)('a' + i % 26);
	stalled_pipe(p);
	CHECK_EQ(outq_init(&q, p[1], 8192), 0);
	/* Its own description where /proc allows: p[1] keeps blocking. */
	CHECK(q.mode == OUTQ_NONBLOCK || access("/proc/self/fd", F_OK));
	CHECK_EQ(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	CHECK_EQ(outq_put(&q, in, sizeof(in)), 8192);
	CHECK_EQ(outq_dropped(&q), sizeof(in) - 8192);
	CHECK_EQ(outq_room(&q), 0);
	CHECK_EQ(outq_drain(&q), 8192 - 4096); /* the pipe took a page, without waiting */
	CHECK_EQ(outq_room(&q), 4096);
	t0 = outq_now_ns();
	CHECK_EQ(outq_flush(&q, t0 + 100000000ULL), 4096);
	CHECK(outq_now_ns() - t0 >= 100000000ULL);
	CHECK(outq_now_ns() - t0 < 2000000000ULL);
	/* The reader wakes: everything queued arrives, in order. */
	got = read_all(p[0], out, sizeof(out));
	CHECK_EQ(got, 4096);
	CHECK_EQ(outq_flush(&q, outq_now_ns() + 100000000ULL), 0);
	got += read_all(p[0], out + got, sizeof(out) - got);
	CHECK_EQ(got, 8192);
	CHECK(memcmp(in, out, 8192) == 0);
	outq_destroy(&q);
	close(p[0]);
	close(p[1]);
}

/* The reader is gone: output is dropped and counted, and room never runs out. */
static void test_broken_reader(void)
{
	struct outq q;
	int p[2];

	stalled_pipe(p);
	CHECK_EQ(outq_init(&q, p[1], 64), 0);
	close(p[0]);
	CHECK_EQ(outq_put(&q, "hello", 5), 5);
	CHECK_EQ(outq_drain(&q), 0);
	CHECK_EQ(outq_dropped(&q), 5);
	CHECK_EQ(outq_room(&q), 64);
	CHECK_EQ(outq_put(&q, "more", 4), 0);
	CHECK_EQ(outq_dropped(&q), 9);
	outq_destroy(&q);
	close(p[1]);
}

/* A stdio stream over a queue returns at once even with nobody reading. */
static void test_stream(void)
{
	char out[64] = "";
	struct outq q;
	FILE *f;
	int p[2];

	stalled_pipe(p);
	CHECK_EQ(outq_init(&q, p[1], 64), 0);
	f = outq_fopen(&q);
	CHECK(f != NULL);
	if (!f)
		return;
	for (int i = 0; i < 1000; i++)
		fprintf(f, "line %d\n", i);
	fflush(f);
	CHECK(outq_dropped(&q) > 0);
	CHECK_EQ(read_all(p[0], out, 7), 7);
	CHECK(memcmp(out, "line 0\n", 7) == 0);
	fclose(f);
	outq_destroy(&q);
	close(p[0]);
	close(p[1]);
}

#define RACE_BYTES (1u << 20)

struct race {
	struct outq q;
	int rfd;
	bool done; /* the producer finished: drainers empty the queue and stop */
	uint8_t *out;
	size_t got;
};

/* Puts the byte sequence i * 7 as room allows, in pieces of up to 64 bytes. */
static void *race_producer(void *arg)
{
	struct race *r = arg;
	uint8_t piece[64];
	size_t i = 0, n, k;

	while (i < RACE_BYTES) {
		n = outq_room(&r->q);
		n = n > sizeof(piece) ? sizeof(piece) : n;
		n = n > RACE_BYTES - i ? RACE_BYTES - i : n;
		for (k = 0; k < n; k++)
			piece[k] = (uint8_t)((i + k) * 7);
		CHECK_EQ(outq_put(&r->q, piece, n), n);
		i += n;
	}
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void *race_drainer(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) || outq_pending(&r->q))
		outq_drain(&r->q);
	return NULL;
}

/* Reads to the end, keeping the first RACE_BYTES: a duplicate only lengthens what it counts. */
static void *race_reader(void *arg)
{
	struct race *r = arg;
	uint8_t sink[4096];
	ssize_t n;

	for (;;) {
		size_t room = r->got < RACE_BYTES ? RACE_BYTES - r->got : 0;

		n = read(r->rfd, room ? r->out + r->got : sink, room ? room : sizeof(sink));
		if (n <= 0)
			break;
		r->got += (size_t)n;
	}
	return NULL;
}

/*
 * Drains write outside the queue's lock while a producer puts and a second
 * drainer tries too: every byte comes out once, in order (a second writer
 * of the bytes in flight would duplicate them).
 */
static void test_concurrent_drains(void)
{
	static struct race r;
	pthread_t t[4];
	int p[2];
	size_t i, bad = 0;

	CHECK_EQ(pipe(p), 0);
	r.out = malloc(RACE_BYTES + 1);
	r.rfd = p[0];
	CHECK_EQ(outq_init(&r.q, p[1], 4096), 0);
	pthread_create(&t[0], NULL, race_reader, &r);
	pthread_create(&t[1], NULL, race_drainer, &r);
	pthread_create(&t[2], NULL, race_drainer, &r);
	pthread_create(&t[3], NULL, race_producer, &r);
	for (i = 1; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(outq_dropped(&r.q), 0);
	outq_destroy(&r.q); /* closes our reopened write end */
	close(p[1]);
	pthread_join(t[0], NULL);
	CHECK_EQ(r.got, RACE_BYTES);
	for (i = 0; i < r.got && i < RACE_BYTES; i++)
		bad += r.out[i] != (uint8_t)(i * 7);
	CHECK_EQ(bad, 0);
	free(r.out);
	close(p[0]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_stalled_reader();
	test_broken_reader();
	test_stream();
	test_concurrent_drains();
	return test_done("test_outq");
}
