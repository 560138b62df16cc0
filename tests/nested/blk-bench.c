/*
 * blk-bench DEVICE BYTES ROUND [qd32]: one round of the bench-blk rows on DEVICE
 * (O_DIRECT), over its first BYTES, printed as one marker line (with qd32, the
 * rand4k_qd32 row alone, for bench-blk-prof):
 *   rand4k_qd1   4 KiB reads at random 4 KiB offsets, one at a time (pread)
 *   rand4k_qd32  the same with 32 in flight (io_uring; threads with pread
 *                if the kernel refuses io_uring)
 *   seqread_1m, seqwrite_1m  1 MiB requests front to back, one at a time
 * in requests per second (4 KiB rows) and MB/s (1 MiB rows), timed with
 * CLOCK_MONOTONIC.  Static: it runs in the L2 initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QD 32
#define N_QD1 1024
#define N_QD32 4096
#define SEQ_BYTES (32ULL << 20)

static uint64_t span_pages;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A random page of the span (xorshift64*, seeded per stream). */
static uint64_t rnd_off(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return (*x * 0x2545f4914f6cdd1dULL >> 11) % span_pages * 4096;
}

static void *alloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, 4096, n)) {
		fprintf(stderr, "blk-bench: out of memory\n");
		exit(1);
	}
	memset(p, 0x5a, n);
	return p;
}

static int qd1(int fd, double *iops)
{
	uint8_t *buf = alloc(4096);
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	double t0 = now();

	for (int i = 0; i < N_QD1; i++)
		if (pread(fd, buf, 4096, (off_t)rnd_off(&x)) != 4096)
			return -1;
	*iops = N_QD1 / (now() - t0);
	free(buf);
	return 0;
}

static int qd32_uring(int fd, double *iops)
{
	struct io_uring ring;
	uint8_t *buf = alloc(QD * 4096);
	uint64_t x = 0x2545f4914f6cdd1dULL;
	int sent = 0, done = 0, ret = 0;
	double t0;

	if (io_uring_queue_init(QD, &ring, 0))
		return -ENOSYS;
	t0 = now();
	while (done < N_QD32 && !ret) {
		struct io_uring_cqe *cqe;

		while (sent < N_QD32 && sent - done < QD) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			if (!sqe)
				break;
			io_uring_prep_read(sqe, fd, buf + (sent % QD) * 4096, 4096, rnd_off(&x));
			sent++;
		}
		if (io_uring_submit_and_wait(&ring, 1) < 0)
			ret = -1;
		while (!ret && io_uring_peek_cqe(&ring, &cqe) == 0) {
			if (cqe->res != 4096)
				ret = -1;
			io_uring_cqe_seen(&ring, cqe);
			done++;
		}
	}
	*iops = N_QD32 / (now() - t0);
	io_uring_queue_exit(&ring);
	free(buf);
	return ret;
}

struct worker {
	pthread_t t;
	int fd, n, bad;
	uint64_t seed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = alloc(4096);

	for (int i = 0; i < w->n; i++)
		w->bad |= pread(w->fd, buf, 4096, (off_t)rnd_off(&w->seed)) != 4096;
	free(buf);
	return NULL;
}

static int qd32_threads(int fd, double *iops)
{
	struct worker w[QD];
	double t0 = now();
	int bad = 0;

	for (int i = 0; i < QD; i++) {
		w[i] = (struct worker){ .fd = fd, .n = N_QD32 / QD, .seed = 0x9e37ULL * (i + 1) };
		if (pthread_create(&w[i].t, NULL, worker_main, &w[i]))
			return -1;
	}
	for (int i = 0; i < QD; i++) {
		pthread_join(w[i].t, NULL);
		bad |= w[i].bad;
	}
	*iops = N_QD32 / (now() - t0);
	return bad ? -1 : 0;
}

static int seq(int fd, bool write, double *mbs)
{
	uint8_t *buf = alloc(1 << 20);
	double t0 = now();

	for (uint64_t off = 0; off < SEQ_BYTES; off += 1 << 20) {
		ssize_t n = write ? pwrite(fd, buf, 1 << 20, (off_t)off) :
				    pread(fd, buf, 1 << 20, (off_t)off);

		if (n != 1 << 20)
			return -1;
	}
	*mbs = SEQ_BYTES / 1e6 / (now() - t0);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	double q1, q32, rd, wr;
	const char *how = "uring";
	int fd, ret;

	if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "qd32"))) {
		fprintf(stderr, "usage: blk-bench DEVICE BYTES ROUND [qd32]\n");
		return 2;
	}
	span_pages = strtoull(argv[2], NULL, 0) / 4096;
	fd = open(argv[1], O_RDWR | O_DIRECT);
	if (fd < 0 || span_pages < 1 || (SEQ_BYTES >> 12) > span_pages) {
		printf("VEIL-L2: blk_bench failed: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (argc == 5) {
		ret = qd32_uring(fd, &q32);
		if (ret == -ENOSYS) {
			how = "threads";
			ret = qd32_threads(fd, &q32);
		}
		if (ret) {
			printf("VEIL-L2: blk_bench failed: rand4k_qd32\n");
			return 1;
		}
		printf("VEIL-L2: blk_bench round=%s rand4k_qd32=%.0f qd32_by=%s\n", argv[3], q32, how);
		close(fd);
		return 0;
	}
	if (qd1(fd, &q1)) {
		printf("VEIL-L2: blk_bench failed: rand4k_qd1\n");
		return 1;
	}
	ret = qd32_uring(fd, &q32);
	if (ret == -ENOSYS) {
		how = "threads";
		ret = qd32_threads(fd, &q32);
	}
	if (ret) {
		printf("VEIL-L2: blk_bench failed: rand4k_qd32\n");
		return 1;
	}
	if (seq(fd, false, &rd) || seq(fd, true, &wr)) {
		printf("VEIL-L2: blk_bench failed: 1 MiB sequential\n");
		return 1;
	}
	printf("VEIL-L2: blk_bench round=%s rand4k_qd1=%.0f rand4k_qd32=%.0f seqread_1m=%.1f "
	       "seqwrite_1m=%.1f qd32_by=%s\n", argv[3], q1, q32, rd, wr, how);
	close(fd);
	return 0;
}
