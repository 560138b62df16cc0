/* Unit test: output queues never wait on a reader, keep order, and count what they drop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_stalled_reader();
	test_broken_reader();
	test_stream();
	return test_done("test_outq");
}
