/*
 * The stress DMA device.  Each request pins a guest page in gmem, reads 4 KiB
 * from a source file into it with io_uring (through a registered buffer when
 * the page is in the registered window), and, still pinned, checks that the
 * guest's view of the page holds the data: a write that went to an orphaned
 * page would show up here as a lost write.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stress_dma.h"
#include "veil_boot.h"

#define SRC_BLOCKS 256
#define BLOCK 4096

struct stress_dma {
	struct stress_dma_config cfg;
	struct io_uring ring;
	bool ring_ok;
	int src_fd;
	int sink_fd;
	/*
	 * Held from the check of registered to a fixed read's completion, and by
	 * gmem's release and restore: otherwise a conversion elsewhere in the
	 * window could unregister the buffer under a read_fixed in flight, which
	 * then fails (the "DMA: 1 errors" once seen in scripts/demo under load).
	 */
	pthread_mutex_t reg_lock;
	bool registered;   /* the window is a registered buffer right now */
	bool lt_registered; /* the window is known to gmem as a long-term pin */
	uint64_t x;        /* PRNG state */
	struct stress_dma_stats st;
};

static void inc(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void block_fill(uint64_t seed, uint64_t k, uint64_t *buf)
{
	unsigned int j;

	for (j = 0; j < BLOCK / 8; j++)
		buf[j] = veil_mix64(seed ^ (k << 32) ^ j);
}

static int src_create(struct stress_dma *d)
{
	uint64_t buf[BLOCK / 8];
	uint64_t k;

	d->src_fd = memfd_create("veil-dma-source", MFD_CLOEXEC);
	d->sink_fd = memfd_create("veil-dma-sink", MFD_CLOEXEC);
	if (d->src_fd < 0 || d->sink_fd < 0)
		return -errno;
	for (k = 0; k < SRC_BLOCKS; k++) {
		block_fill(d->cfg.seed, k, buf);
		if (pwrite(d->src_fd, buf, BLOCK, (off_t)(k * BLOCK)) != BLOCK)
			return -EIO;
	}
	return 0;
}

static void *win_hva(struct stress_dma *d)
{
	void *hva = NULL;

	/* Only for registering: the window is pinned per request like any other page. */
	if (gmem_translate(d->cfg.gm, d->cfg.host_gpa, (uint64_t)d->cfg.win_pages * BLOCK, &hva))
		return NULL;
	return hva;
}

/* gmem calls these when a conversion or punch needs the window's pages. */
static int dma_release(void *opaque)
{
	struct stress_dma *d = opaque;
	int ret;

	pthread_mutex_lock(&d->reg_lock);
	ret = io_uring_unregister_buffers(&d->ring);
	if (ret == 0 || ret == -ENXIO)
		d->registered = false;
	pthread_mutex_unlock(&d->reg_lock);
	return ret == -ENXIO ? 0 : ret;
}

static int dma_restore(void *opaque)
{
	struct stress_dma *d = opaque;
	struct iovec iov = { .iov_base = win_hva(d), .iov_len = (size_t)d->cfg.win_pages * BLOCK };
	int ret;

	if (!iov.iov_base)
		return -EACCES;
	pthread_mutex_lock(&d->reg_lock);
	ret = io_uring_register_buffers(&d->ring, &iov, 1);
	if (!ret)
		d->registered = true;
	pthread_mutex_unlock(&d->reg_lock);
	return ret;
}

static const struct gmem_longterm_ops dma_lt_ops = {
	.release = dma_release, .restore = dma_restore, .name = "stress-dma registered buffer",
};

int stress_dma_create(const struct stress_dma_config *cfg, struct stress_dma **out)
{
	struct stress_dma *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->x = cfg->seed;
	pthread_mutex_init(&d->reg_lock, NULL);
	d->src_fd = d->sink_fd = -1;
	ret = io_uring_queue_init(8, &d->ring, 0);
	d->ring_ok = ret == 0;
	if (!ret)
		ret = src_create(d);
	if (!ret && cfg->win_pages) {
		ret = dma_restore(d);
		if (!ret)
			ret = gmem_longterm_register(cfg->gm, cfg->host_gpa,
						     (uint64_t)cfg->win_pages * BLOCK, &dma_lt_ops, d);
		d->lt_registered = ret == 0;
	}
	if (ret) {
		pr_err("stress DMA device: %s", strerror(-ret));
		stress_dma_destroy(d);
		return ret;
	}
	*out = d;
	return 0;
}

void stress_dma_destroy(struct stress_dma *d)
{
	if (!d)
		return;
	if (d->lt_registered)
		gmem_longterm_unregister(d->cfg.gm, d);
	if (d->ring_ok)
		io_uring_queue_exit(&d->ring);
	if (d->src_fd > 0)
		close(d->src_fd);
	if (d->sink_fd > 0)
		close(d->sink_fd);
	pthread_mutex_destroy(&d->reg_lock);
	free(d);
}

static uint64_t rnd(struct stress_dma *d)
{
	d->x = veil_mix64(d->x + 0x9e3779b97f4a7c15ULL);
	return d->x;
}

static int dma_wait(struct stress_dma *d)
{
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_submit_and_wait(&d->ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(&d->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&d->ring, cqe);
	return ret;
}

/* One read of block k into the pinned page (device to guest); returns the kernel's result. */
static int dma_read(struct stress_dma *d, const struct gmem_pin *pin, uint64_t k, bool *fixed)
{
	bool in_win = pin->gpa >= d->cfg.host_gpa &&
		      pin->gpa < d->cfg.host_gpa + (uint64_t)d->cfg.win_pages * BLOCK;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
	int ret;

	if (!sqe)
		return -EBUSY;
	if (in_win)
		pthread_mutex_lock(&d->reg_lock);
	*fixed = in_win && d->registered;
	if (*fixed)
		io_uring_prep_read_fixed(sqe, d->src_fd, pin->hva, BLOCK, k * BLOCK, 0);
	else
		io_uring_prep_read(sqe, d->src_fd, pin->hva, BLOCK, k * BLOCK);
	ret = dma_wait(d);
	if (in_win)
		pthread_mutex_unlock(&d->reg_lock);
	return ret;
}

/* One write of the pinned page to the sink (guest to device): it must not change the page. */
static int dma_write(struct stress_dma *d, const struct gmem_pin *pin)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_write(sqe, d->sink_fd, pin->hva, BLOCK, 0);
	return dma_wait(d);
}

/*
 * Requests aimed at the guest's pool only read guest memory (the guest owns
 * those contents), and while a page is private they must be refused (I3).
 * Requests into the host's pages write them and check the result (I1).
 */
static void dma_one(struct stress_dma *d, uint64_t req)
{
	uint64_t r = rnd(d), k = rnd(d) % SRC_BLOCKS, want[BLOCK / 8], t0 = now_ns(), gpa;
	bool to_pool = d->cfg.pool_pages && r % 5 == 0, private = false, fixed = false;
	struct gmem_pin pin;
	int ret;

	gpa = to_pool ? d->cfg.pool_gpa + ((r >> 8) % d->cfg.pool_pages) * BLOCK
		      : d->cfg.host_gpa + ((r >> 8) % d->cfg.host_pages) * BLOCK;
	ret = gmem_pin(d->cfg.gm, gpa, BLOCK, "stress-dma", req, &pin);
	if (ret) {
		inc(ret == -EACCES ? &d->st.refused : &d->st.pin_timeouts);
		return;
	}
	if (gmem_attr_is_private(d->cfg.gm, gpa, &private) || private)
		inc(&d->st.violations);
	ret = to_pool ? dma_write(d, &pin) : dma_read(d, &pin, k, &fixed);
	if (ret == BLOCK) {
		block_fill(d->cfg.seed, k, want);
		if (!to_pool && memcmp(pin.hva, want, BLOCK))
			inc(&d->st.lost_writes);
		inc(&d->st.ops);
		if (fixed)
			inc(&d->st.fixed_ops);
		lat_add(d->cfg.lat, now_ns() - t0);
	} else {
		inc(&d->st.io_errors);
	}
	gmem_unpin(&pin);
}

void stress_dma_run(struct stress_dma *d, const volatile bool *stop)
{
	uint64_t req = 0;

	while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE))
		dma_one(d, ++req);
}

void stress_dma_get_stats(struct stress_dma *d, struct stress_dma_stats *out)
{
	const uint64_t *src = (const uint64_t *)&d->st;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
