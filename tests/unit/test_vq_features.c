/*
 * unit: the ring features of the split virtqueue.  VIRTIO_RING_F_EVENT_IDX:
 * vring_need_event across the 16-bit wrap, used_event deciding interrupts
 * (NO_INTERRUPT ignored then), avail_event published when the ring is found
 * empty and never while the device drains it, and a driver thread and a
 * device thread that never lose a kick.  VIRTIO_RING_F_INDIRECT_DESC:
 * tables alone and after direct descriptors, the table pinned only while it
 * is read, and every malformed table (nested, with NEXT, zero, unaligned,
 * too long, outside RAM, private, wrapping, looping, next out of range,
 * direction order, not negotiated, under conversion).  Both offered by the
 * core and taken at queue enable over virtio-mmio and virtio-pci.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmem.h"
#include "mmio.h"
#include "rng.h"
#include "test.h"
#include "virtio_drv.h"
#include "virtqueue.h"
#include "vpci.h"

#define PAGE GMEM_PAGE_SIZE
#define MiB (1ULL << 20)
#define MEM (4 * MiB)
#define DESC_GPA 0x10000ULL
#define AVAIL_GPA 0x20000ULL
#define USED_GPA 0x30000ULL
#define TBL_GPA 0x80000ULL   /* indirect tables */
#define BUF_GPA 0x100000ULL
#define OWNER "vq-feat q0"
#define R 0
#define W VIRTQ_DESC_F_WRITE
#define N VIRTQ_DESC_F_NEXT
#define I VIRTQ_DESC_F_INDIRECT
#define EVENT_IDX (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define INDIRECT (1ULL << VIRTIO_RING_F_INDIRECT_DESC)

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct drv {
	struct gmem *gm;
	struct virtqueue vq;
	struct vq_req *req;
	uint16_t size, avail_idx;
};

static void gput(struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len)
{
	CHECK_EQ(gmem_write(gm, gpa, buf, len), 0);
}

static uint16_t get16(struct gmem *gm, uint64_t gpa)
{
	uint16_t v = 0xdead;

	CHECK_EQ(gmem_read(gm, gpa, &v, sizeof(v)), 0);
	return v;
}

static void setup_on(struct drv *d, struct gmem *gm, uint16_t size, uint64_t features)
{
	static const uint8_t zero[0x10000];

	*d = (struct drv){ .gm = gm, .size = size };
	gput(gm, DESC_GPA, zero, sizeof(zero));
	gput(gm, AVAIL_GPA, zero, sizeof(zero));
	gput(gm, USED_GPA, zero, sizeof(zero));
	d->req = calloc(1, sizeof(*d->req));
	CHECK(d->req != NULL);
	vq_init(&d->vq, gm, OWNER);
	vq_set_features(&d->vq, features);
	CHECK_EQ(vq_configure(&d->vq, size, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(d->vq.event_idx, !!(features & EVENT_IDX));
	CHECK_EQ(d->vq.indirect, !!(features & INDIRECT));
}

static void setup(struct drv *d, uint16_t size, uint64_t features)
{
	setup_on(d, test_gmem(MEM, 20), size, features);
}

static void teardown(struct drv *d)
{
	vq_reset(&d->vq);
	vq_destroy(&d->vq);
	free(d->req);
	gmem_destroy(d->gm);
}

static void put_desc(struct drv *d, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct desc x = { addr, len, flags, next };

	gput(d->gm, table + 16ULL * i, &x, sizeof(x));
}

static void publish(struct drv *d, uint16_t head)
{
	uint16_t idx = (uint16_t)(d->avail_idx + 1);

	gput(d->gm, AVAIL_GPA + 4 + 2ULL * (d->avail_idx & (d->size - 1)), &head, 2);
	gput(d->gm, AVAIL_GPA + 2, &idx, 2);
	d->avail_idx = idx;
}

static void set_used_event(struct drv *d, uint16_t v)
{
	gput(d->gm, AVAIL_GPA + 4 + 2ULL * d->size, &v, 2);
}

static uint16_t avail_event(struct drv *d)
{
	return get16(d->gm, USED_GPA + 4 + 8ULL * d->size);
}

/* The queue's indices moved to idx, as after a long run. */
static void run_to(struct drv *d, uint16_t idx)
{
	d->vq.last_avail = d->vq.used_idx = d->avail_idx = idx;
	gput(d->gm, AVAIL_GPA + 2, &idx, 2);
	gput(d->gm, USED_GPA + 2, &idx, 2);
}

/* One one-descriptor request through the ring: popped and completed. */
static void one_request(struct drv *d)
{
	put_desc(d, DESC_GPA, 0, BUF_GPA, 16, W, 0);
	publish(d, 0);
	CHECK_EQ(vq_pop(&d->vq, d->req), 1);
	CHECK_EQ(vq_push(&d->vq, d->req, 0), 0);
}

/* Whether gpa's page is pinned: a conversion of it times out naming the queue. */
static bool pinned(struct gmem *gm, uint64_t gpa)
{
	struct gmem_conv_result res;
	uint64_t page = ALIGN_DOWN(gpa, PAGE);
	int ret;

	memset(&res, 0, sizeof(res));
	ret = gmem_convert(gm, page, PAGE, true, &res);
	if (!ret) {
		CHECK_EQ(gmem_convert(gm, page, PAGE, false, &res), 0);
		return false;
	}
	CHECK_EQ(ret, -ETIMEDOUT);
	return true;
}

/* ---- EVENT_IDX ---- */

static void test_need_event_wrap(void)
{
	/* used_event in [old, new): the move crossed it. */
	CHECK(vq_need_event(5, 6, 5));
	CHECK(!vq_need_event(6, 6, 5));     /* at new: not yet */
	CHECK(!vq_need_event(4, 6, 5));     /* behind old: crossed before */
	CHECK(vq_need_event(5, 9, 2));
	CHECK(!vq_need_event(5, 5, 5));     /* no move, no interrupt */
	/* Across the wrap. */
	CHECK(vq_need_event(0xffff, 0, 0xffff));
	CHECK(vq_need_event(0xffff, 2, 0xfffe));
	CHECK(vq_need_event(0, 2, 0xfffe));
	CHECK(vq_need_event(1, 2, 0xfffe));
	CHECK(!vq_need_event(2, 2, 0xfffe));
	CHECK(!vq_need_event(0xfffd, 2, 0xfffe));
	CHECK(vq_need_event(0xfff0, 0x10, 0xfff0));
	CHECK(!vq_need_event(0x10, 0x10, 0xfff0));
	/* A full lap less one: everything but new is crossed. */
	CHECK(vq_need_event(0x1234, 0x1233, 0x1234));
	CHECK(!vq_need_event(0x1233, 0x1233, 0x1234));
}

/* used_event decides; NO_INTERRUPT means nothing under EVENT_IDX; near and across the wrap. */
static void test_used_event(void)
{
	static const uint16_t starts[] = { 0, 0xfffd };
	struct drv d;

	for (unsigned int k = 0; k < 2; k++) {
		uint16_t s = starts[k];

		setup(&d, 8, EVENT_IDX);
		run_to(&d, s);
		/* NO_INTERRUPT is the driver's flag without EVENT_IDX only. */
		gput(d.gm, AVAIL_GPA, &(uint16_t){ VIRTQ_AVAIL_F_NO_INTERRUPT }, 2);
		set_used_event(&d, (uint16_t)(s + 2));
		one_request(&d);
		CHECK(vq_should_interrupt(&d.vq)); /* the first decision of a generation interrupts */
		one_request(&d);                    /* used s+1 -> s+2: used_event s+2 not crossed */
		CHECK(!vq_should_interrupt(&d.vq));
		CHECK(!vq_should_interrupt(&d.vq)); /* nothing moved: nothing to say */
		one_request(&d);                    /* s+2 -> s+3: crossed */
		CHECK(vq_should_interrupt(&d.vq));
		/* Two completions at once, used_event on the first of them: crossed. */
		set_used_event(&d, (uint16_t)(s + 3));
		one_request(&d);
		one_request(&d);
		CHECK(vq_should_interrupt(&d.vq));
		/* used_event behind: the driver did not ask. */
		set_used_event(&d, (uint16_t)(s + 1));
		one_request(&d);
		CHECK(!vq_should_interrupt(&d.vq));
		/* A reset forgets the last decision: the new generation's first interrupts. */
		vq_reset(&d.vq);
		vq_set_features(&d.vq, EVENT_IDX);
		CHECK_EQ(vq_configure(&d.vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
		run_to(&d, s);
		set_used_event(&d, (uint16_t)(s + 100));
		one_request(&d);
		CHECK(vq_should_interrupt(&d.vq));
		one_request(&d);
		CHECK(!vq_should_interrupt(&d.vq));
		CHECK_EQ(vq_stats(&d.vq).interrupts, 4);
		CHECK_EQ(vq_stats(&d.vq).suppressed, 4);
		teardown(&d);
	}
}

/* Without EVENT_IDX, used_event means nothing and NO_INTERRUPT decides, as before. */
static void test_no_event_idx(void)
{
	struct drv d;

	setup(&d, 8, 0);
	set_used_event(&d, 0x40);
	one_request(&d);
	CHECK(vq_should_interrupt(&d.vq));
	one_request(&d);
	CHECK(vq_should_interrupt(&d.vq));
	gput(d.gm, AVAIL_GPA, &(uint16_t){ VIRTQ_AVAIL_F_NO_INTERRUPT }, 2);
	one_request(&d);
	CHECK(!vq_should_interrupt(&d.vq));
	/* Nor is avail_event written. */
	CHECK_EQ(vq_pop(&d.vq, d.req), 0);
	CHECK_EQ(avail_event(&d), 0);
	teardown(&d);
}

/* avail_event: written when the ring is found empty, not while the device drains it. */
static void test_avail_event(void)
{
	struct drv d;

	setup(&d, 8, EVENT_IDX);
	run_to(&d, 0xfffe);
	gput(d.gm, USED_GPA + 4 + 8ULL * 8, &(uint16_t){ 0x5555 }, 2);
	for (uint16_t i = 0; i < 3; i++)
		put_desc(&d, DESC_GPA, i, BUF_GPA + 64ULL * i, 16, W, 0);
	publish(&d, 0);
	publish(&d, 1);
	publish(&d, 2);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(vq_push(&d.vq, d.req, 0), 0);
	CHECK_EQ(avail_event(&d), 0x5555); /* draining: no kick asked for */
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(vq_push(&d.vq, d.req, 0), 0);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(vq_push(&d.vq, d.req, 0), 0);
	CHECK_EQ(avail_event(&d), 0x5555);
	CHECK_EQ(vq_pop(&d.vq, d.req), 0); /* empty, across the wrap: kick me at 1 */
	CHECK_EQ(avail_event(&d), 1);
	CHECK_EQ(d.vq.last_avail, 1);
	CHECK_EQ(vq_stats(&d.vq).kick_asks, 1);
	/* A driver that publishes now sees avail_event in [old, new): it kicks. */
	CHECK(vq_need_event(avail_event(&d), 2, 1));
	teardown(&d);
}

/*
 * The lost-kick race: a driver thread publishes and kicks only when
 * avail_event asks (need_event), a device thread drains and then waits for
 * a kick.  If the device went to sleep after publishing avail_event without
 * looking at the avail idx again, an entry published in between would wait
 * for a kick that never comes: the wait below times out.
 */
#define RACE_REQS 100000
struct race {
	struct drv d;
	sem_t kick;
	uint64_t kicks;
	bool done;
};

static void *race_driver(void *arg)
{
	struct race *r = arg;
	struct drv *d = &r->d;

	for (unsigned int n = 0; n < RACE_REQS; n++) {
		uint16_t old = d->avail_idx;

		/* Room: never more than the queue size ahead of the device's used idx. */
		while ((uint16_t)(d->avail_idx - get16(d->gm, USED_GPA + 2)) >= d->size)
			sched_yield();
		publish(d, (uint16_t)(n % d->size));
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (vq_need_event(avail_event(d), d->avail_idx, old)) {
			r->kicks++;
			sem_post(&r->kick);
		}
	}
	return NULL;
}

static void test_no_lost_kick(void)
{
	struct race *r = calloc(1, sizeof(*r));
	struct drv *d = &r->d;
	unsigned int done = 0;
	pthread_t t;

	setup(d, 64, EVENT_IDX);
	for (uint16_t i = 0; i < 64; i++)
		put_desc(d, DESC_GPA, i, BUF_GPA + 64ULL * i, 16, W, 0);
	sem_init(&r->kick, 0, 0);
	CHECK_EQ(pthread_create(&t, NULL, race_driver, r), 0);
	while (done < RACE_REQS) {
		struct timespec deadline;
		int ret;

		while ((ret = vq_pop(&d->vq, d->req)) == 1) {
			CHECK_EQ(vq_push(&d->vq, d->req, 0), 0);
			done++;
		}
		CHECK_EQ(ret, 0);
		if (done == RACE_REQS)
			break;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 5;
		if (sem_timedwait(&r->kick, &deadline)) {
			fprintf(stderr, "no kick after %u requests, avail idx %u, avail_event %u\n",
				done, get16(d->gm, AVAIL_GPA + 2), avail_event(d));
			CHECK(!"a kick was lost");
			break;
		}
	}
	pthread_join(t, NULL);
	printf("no lost kick: %u requests, %llu kicks, %llu asked for\n", done,
	       (unsigned long long)r->kicks, (unsigned long long)vq_stats(&d->vq).kick_asks);
	/* Each kick answers one request for it. */
	CHECK(r->kicks <= vq_stats(&d->vq).kick_asks + 1);
	sem_destroy(&r->kick);
	teardown(d);
	free(r);
}

/* ---- INDIRECT_DESC ---- */

/* A good table: alone, then after direct descriptors; the table pinned only while read. */
static void test_indirect_good(void)
{
	struct drv d;

	setup(&d, 8, INDIRECT);
	/* Entries in table order 0 -> 2 -> 1: the walk follows next. */
	put_desc(&d, TBL_GPA, 0, BUF_GPA, 16, R | N, 2);
	put_desc(&d, TBL_GPA, 2, BUF_GPA + PAGE, 512, W | N, 1);
	put_desc(&d, TBL_GPA, 1, BUF_GPA + 2 * PAGE, 1, W, 7); /* next without NEXT: ignored */
	/* WRITE on the table's descriptor means nothing (virtio 1.2 §2.7.5.3.2). */
	put_desc(&d, DESC_GPA, 5, TBL_GPA, 48, I | W, 3);
	publish(&d, 5);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(d.req->head, 5);
	CHECK_EQ(d.req->nr_segs, 3);
	CHECK_EQ(d.req->nr_out, 1);
	CHECK_EQ(d.req->nr_pins, 3);
	CHECK_EQ(d.req->out_len, 16);
	CHECK_EQ(d.req->in_len, 513);
	CHECK_EQ(d.req->seg[1].gpa, BUF_GPA + PAGE);
	CHECK_EQ(d.req->seg[2].gpa, BUF_GPA + 2 * PAGE);
	CHECK(d.req->seg[2].write);
	CHECK(pinned(d.gm, BUF_GPA + PAGE));
	CHECK(!pinned(d.gm, TBL_GPA)); /* the request holds its buffers, not the table */
	CHECK_EQ(vq_push(&d.vq, d.req, 513), 0);
	CHECK(!pinned(d.gm, BUF_GPA + PAGE));

	/* Two direct descriptors, then a table of one; the direction order carries on. */
	put_desc(&d, DESC_GPA, 0, BUF_GPA, 16, R | N, 1);
	put_desc(&d, DESC_GPA, 1, BUF_GPA + 16, 16, W | N, 2);
	put_desc(&d, DESC_GPA, 2, TBL_GPA, 16, I, 0);
	put_desc(&d, TBL_GPA, 0, BUF_GPA + 32, 4, W, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(d.req->nr_segs, 3);
	CHECK_EQ(d.req->nr_out, 1);
	CHECK_EQ(d.req->in_len, 20);
	CHECK_EQ(d.req->seg[2].gpa, BUF_GPA + 32);
	CHECK_EQ(vq_push(&d.vq, d.req, 0), 0);

	/* The longest chain through a table: VQ_MAX_SEGS entries, more than the queue holds. */
	for (uint16_t i = 0; i < VQ_MAX_SEGS; i++)
		put_desc(&d, TBL_GPA, i, BUF_GPA + 16ULL * i, 16, i + 1 < VQ_MAX_SEGS ? N : 0,
			 (uint16_t)(i + 1));
	put_desc(&d, DESC_GPA, 3, TBL_GPA, 16 * VQ_MAX_SEGS, I, 0);
	publish(&d, 3);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(d.req->nr_segs, VQ_MAX_SEGS);
	CHECK_EQ(vq_push(&d.vq, d.req, 0), 0);
	CHECK_EQ(vq_stats(&d.vq).indirect, 3);
	teardown(&d);
}

/* A malformed chain: refused with err, consumed, nothing pinned, returned through the used ring. */
static void expect_error(struct drv *d, uint16_t head, int err, const char *why)
{
	uint16_t last = d->vq.last_avail;

	publish(d, head);
	CHECK_EQ(vq_pop(&d->vq, d->req), err);
	CHECK_STR_CONTAINS(d->vq.error, why);
	CHECK_EQ(d->req->head, head);
	CHECK_EQ(d->req->nr_pins, 0);
	/* A private buffer's chain is described, unpinned, for vq_fail_status(). */
	for (unsigned int k = 0; err == -EACCES && k < d->req->nr_segs; k++)
		CHECK(d->req->seg[k].hva == NULL);
	if (err != -EACCES)
		CHECK_EQ(d->req->nr_segs, 0);
	CHECK_EQ(d->vq.last_avail, (uint16_t)(last + 1));
	CHECK_EQ(vq_push(&d->vq, d->req, 0), 0);
	CHECK(!pinned(d->gm, BUF_GPA));
	CHECK(!pinned(d->gm, TBL_GPA));
}

static void test_indirect_errors(void)
{
	struct gmem *gm = test_gmem(MEM, 20);
	const uint64_t priv = 0x200000;
	struct drv d;

	setup_on(&d, gm, 8, INDIRECT);
	put_desc(&d, TBL_GPA, 0, BUF_GPA, 16, R | N, 1);
	put_desc(&d, TBL_GPA, 1, BUF_GPA + 16, 16, W, 0);
	/* The table's descriptor: with NEXT, zero, not whole descriptors, too long, unknown flags. */
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 32, I | N, 1);
	expect_error(&d, 0, -EINVAL, "desc 0 (GPA 0x80000+0x20): INDIRECT with NEXT");
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 0, I, 0);
	expect_error(&d, 0, -EINVAL, "indirect table of zero length");
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 24, I, 0);
	expect_error(&d, 0, -EINVAL, "not a multiple of 16");
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 16 * (VQ_MAX_INDIRECT + 1), I, 0);
	expect_error(&d, 0, -E2BIG, "over 1024 descriptors");
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 32, I | 0x10, 0);
	expect_error(&d, 0, -EINVAL, "unknown flags 0x10");
	/* Where the table is: outside RAM, across its end, wrapping, in private memory. */
	put_desc(&d, DESC_GPA, 0, 1ULL << 40, 32, I, 0);
	expect_error(&d, 0, -EFAULT, "indirect table outside RAM");
	put_desc(&d, DESC_GPA, 0, MEM - 16, 32, I, 0);
	expect_error(&d, 0, -EFAULT, "indirect table outside RAM");
	put_desc(&d, DESC_GPA, 0, UINT64_MAX - 15, 32, I, 0);
	expect_error(&d, 0, -EFAULT, "wraps");
	CHECK_EQ(gmem_attr_set_private(gm, priv, PAGE, true), 0);
	put_desc(&d, DESC_GPA, 0, priv - 16, 32, I, 0);
	expect_error(&d, 0, -EACCES, "indirect table in private memory");
	/* Inside the table: nested, a loop, next out of the table, direction, a bad buffer. */
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 48, I, 0);
	put_desc(&d, TBL_GPA, 1, TBL_GPA, 16, I | N, 2);
	expect_error(&d, 0, -EINVAL, "indirect desc 1 (GPA 0x80000+0x10): INDIRECT inside");
	put_desc(&d, TBL_GPA, 1, BUF_GPA + 16, 16, R | N, 2);
	put_desc(&d, TBL_GPA, 2, BUF_GPA + 32, 16, R | N, 0);
	expect_error(&d, 0, -ELOOP, "indirect desc 0 (GPA 0x100000+0x10): seen twice");
	put_desc(&d, TBL_GPA, 2, BUF_GPA + 32, 16, R | N, 2);
	expect_error(&d, 0, -ELOOP, "indirect desc 2");
	put_desc(&d, TBL_GPA, 2, BUF_GPA + 32, 16, R | N, 3);
	expect_error(&d, 0, -EINVAL, "indirect desc 2 (GPA 0x100020+0x10): next 3 is outside the table of 3");
	put_desc(&d, TBL_GPA, 1, BUF_GPA + 16, 16, W | N, 2);
	put_desc(&d, TBL_GPA, 2, BUF_GPA + 32, 16, R, 0);
	expect_error(&d, 0, -EINVAL, "indirect desc 2 (GPA 0x100020+0x10): device-readable after");
	put_desc(&d, TBL_GPA, 2, priv, 16, W, 0);
	expect_error(&d, 0, -EACCES, "indirect desc 2 (GPA 0x200000+0x10): buffer in private");
	put_desc(&d, TBL_GPA, 2, BUF_GPA, 0, W, 0);
	expect_error(&d, 0, -EINVAL, "zero length");
	/* A writable direct descriptor, then a table that starts readable. */
	put_desc(&d, DESC_GPA, 0, BUF_GPA, 16, W | N, 1);
	put_desc(&d, DESC_GPA, 1, TBL_GPA, 16, I, 0);
	put_desc(&d, TBL_GPA, 0, BUF_GPA + 16, 16, R, 0);
	expect_error(&d, 0, -EINVAL, "indirect desc 0 (GPA 0x100010+0x10): device-readable");
	/* Longer than VQ_MAX_SEGS through the table. */
	for (uint16_t i = 0; i <= VQ_MAX_SEGS; i++)
		put_desc(&d, TBL_GPA, i, BUF_GPA + 16ULL * i, 16, N, (uint16_t)(i + 1));
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 16 * (VQ_MAX_SEGS + 1), I, 0);
	expect_error(&d, 0, -E2BIG, "over 130 long");
	/* The queue still works. */
	put_desc(&d, TBL_GPA, 0, BUF_GPA, 16, W, 0);
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 16, I, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(vq_push(&d.vq, d.req, 16), 0);
	teardown(&d);

	/* Not negotiated: INDIRECT is a malformed chain, as before. */
	setup(&d, 8, 0);
	put_desc(&d, TBL_GPA, 0, BUF_GPA, 16, W, 0);
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 16, I, 0);
	expect_error(&d, 0, -EINVAL, "desc 0 (GPA 0x80000+0x10): INDIRECT, not negotiated");
	teardown(&d);
}

struct roundtrip {
	struct gmem *gm;
	uint64_t gpa;
	int ret;
};

static void *roundtrip(void *arg)
{
	struct roundtrip *r = arg;
	struct gmem_conv_result res;

	r->ret = gmem_roundtrip(r->gm, r->gpa, PAGE, &res);
	return NULL;
}

/* A table under conversion: vq_pop returns at once, nothing consumed; the same chain pops after. */
static void test_indirect_under_conversion(void)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = GMEM_MODEL_HOST, .drain_timeout_ns = 3000 * 1000000ULL,
	};
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct roundtrip rt;
	struct gmem_pin hold, probe;
	struct gmem *gm = NULL;
	struct drv d;
	pthread_t t;
	int ret = 0;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &gm), 0);
	setup_on(&d, gm, 8, INDIRECT);
	put_desc(&d, TBL_GPA, 0, BUF_GPA, 16, W, 0);
	put_desc(&d, DESC_GPA, 0, TBL_GPA, 16, I, 0);
	publish(&d, 0);
	/* Someone else's pin holds the conversion of the table's page open. */
	CHECK_EQ(gmem_pin(gm, TBL_GPA, 16, "holder", 1, &hold), 0);
	rt = (struct roundtrip){ gm, TBL_GPA, 0 };
	CHECK_EQ(pthread_create(&t, NULL, roundtrip, &rt), 0);
	for (unsigned int i = 0; i < 5000; i++) {
		ret = gmem_pin_try(gm, TBL_GPA, 1, "probe", 0, &probe);
		if (ret == -EAGAIN)
			break;
		gmem_unpin(&probe);
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	CHECK_EQ(ret, -EAGAIN);
	CHECK_EQ(vq_pop(&d.vq, d.req), -EAGAIN);
	CHECK_STR_CONTAINS(d.vq.error, "indirect table at GPA 0x80000+0x10: being converted");
	CHECK_EQ(d.vq.last_avail, 0);
	CHECK_EQ(d.req->nr_pins, 0);
	gmem_unpin(&hold);
	pthread_join(t, NULL);
	CHECK_EQ(rt.ret, 0);
	CHECK_EQ(vq_pop(&d.vq, d.req), 1);
	CHECK_EQ(d.req->seg[0].gpa, BUF_GPA);
	CHECK_EQ(vq_push(&d.vq, d.req, 0), 0);
	teardown(&d);
}

/* ---- negotiation over the transports ---- */

struct t {
	struct gmem *gm;
	struct virtio_rng rng;
	struct virtio_mmio mmio;
	struct virtio_pci vp;
};

VIRTIO_TEST_DRIVER(struct t)

static int no_fill(void *opaque, void *buf, size_t len)
{
	(void)opaque;
	memset(buf, 0, len);
	return 0;
}

/* Features over virtio-mmio, then queue 0 enabled: the queue runs with what was accepted. */
static void mmio_up(struct t *t, uint64_t feat)
{
	const uint32_t ad = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr(t, 0x070, 0);
	wr(t, 0x070, ad);
	feat |= 1ULL << VIRTIO_F_VERSION_1;
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr(t, 0x024, sel);
		wr(t, 0x020, (uint32_t)(feat >> (32 * sel)));
	}
	wr(t, 0x070, ad | VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(t, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	wr(t, 0x030, 0);
	wr(t, 0x038, 8);
	wr(t, 0x080, DESC_GPA);
	wr(t, 0x090, AVAIL_GPA);
	wr(t, 0x0a0, USED_GPA);
	wr(t, 0x044, 1);
	CHECK_EQ(rd(t, 0x044), 1);
}

static uint32_t pci_rd(struct t *t, uint64_t off, unsigned int len)
{
	uint32_t v = 0;

	CHECK_EQ(t->vp.pci.bar_ops[0]->read(t->vp.pci.bar_opaque[0], off, &v, len), 0);
	return v;
}

static void pci_wr(struct t *t, uint64_t off, uint32_t v, unsigned int len)
{
	CHECK_EQ(t->vp.pci.bar_ops[0]->write(t->vp.pci.bar_opaque[0], off, &v, len), 0);
}

/* The same over virtio-pci's common configuration. */
static void pci_up(struct t *t, uint64_t feat)
{
	const uint32_t ad = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	pci_wr(t, VPCI_COMMON + 0x14, 0, 1);
	pci_wr(t, VPCI_COMMON + 0x14, ad, 1);
	feat |= 1ULL << VIRTIO_F_VERSION_1;
	for (uint32_t sel = 0; sel < 2; sel++) {
		pci_wr(t, VPCI_COMMON + 0x08, sel, 4);
		pci_wr(t, VPCI_COMMON + 0x0c, (uint32_t)(feat >> (32 * sel)), 4);
	}
	pci_wr(t, VPCI_COMMON + 0x14, ad | VIRTIO_STATUS_FEATURES_OK, 1);
	CHECK(pci_rd(t, VPCI_COMMON + 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	pci_wr(t, VPCI_COMMON + 0x16, 0, 2);
	pci_wr(t, VPCI_COMMON + 0x18, 8, 2);
	pci_wr(t, VPCI_COMMON + 0x20, DESC_GPA, 4);
	pci_wr(t, VPCI_COMMON + 0x28, AVAIL_GPA, 4);
	pci_wr(t, VPCI_COMMON + 0x30, USED_GPA, 4);
	pci_wr(t, VPCI_COMMON + 0x1c, 1, 2);
	CHECK_EQ(pci_rd(t, VPCI_COMMON + 0x1c, 2), 1);
}

static void test_transports(void)
{
	static const uint64_t choices[] = { 0, EVENT_IDX, INDIRECT, EVENT_IDX | INDIRECT };
	struct t *t = calloc(1, sizeof(*t));
	struct virtqueue *vq = &t->rng.vdev.vq[0];

	t->gm = test_gmem(MEM, 20);
	CHECK_EQ(virtio_rng_init(&t->rng, t->gm, "rng-feat"), 0);
	t->rng.fill = no_fill;
	/* Offered by the core, on both transports. */
	virtio_mmio_init(&t->mmio, &t->rng.vdev);
	wr(t, 0x014, 0);
	CHECK_EQ(rd(t, 0x010) & (uint32_t)(EVENT_IDX | INDIRECT), (uint32_t)(EVENT_IDX | INDIRECT));
	for (unsigned int k = 0; k < 4; k++) {
		mmio_up(t, choices[k]);
		CHECK_EQ(vq->event_idx, !!(choices[k] & EVENT_IDX));
		CHECK_EQ(vq->indirect, !!(choices[k] & INDIRECT));
	}
	wr(t, 0x070, 0); /* a reset forgets them */
	CHECK(!vq->event_idx && !vq->indirect);

	virtio_pci_init(&t->vp, &t->rng.vdev, 0xff0000);
	pci_wr(t, VPCI_COMMON + 0x00, 0, 4);
	CHECK_EQ(pci_rd(t, VPCI_COMMON + 0x04, 4) & (uint32_t)(EVENT_IDX | INDIRECT),
		 (uint32_t)(EVENT_IDX | INDIRECT));
	for (unsigned int k = 0; k < 4; k++) {
		pci_up(t, choices[3 - k]);
		CHECK_EQ(vq->event_idx, !!(choices[3 - k] & EVENT_IDX));
		CHECK_EQ(vq->indirect, !!(choices[3 - k] & INDIRECT));
	}
	pci_wr(t, VPCI_COMMON + 0x14, 0, 1);
	CHECK(!vq->event_idx && !vq->indirect);
	virtio_rng_destroy(&t->rng);
	gmem_destroy(t->gm);
	free(t);
}

int main(void)
{
	test_need_event_wrap();
	test_used_event();
	test_no_event_idx();
	test_avail_event();
	test_no_lost_kick();
	test_indirect_good();
	test_indirect_errors();
	test_indirect_under_conversion();
	test_transports();
	return test_done("test_vq_features");
}
