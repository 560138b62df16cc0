/*
 * unit: the split virtqueue against rings a test driver builds in a detached
 * gmem: a good chain and its completion, many requests across the 16-bit
 * index wrap, every broken-ring and malformed-chain error (and that a bad
 * chain goes back through the used ring with nothing left pinned), pins held
 * while a request is out, rings under conversion (pop and push return at
 * once, completions deferred and published after), stale completions after
 * a reset, ring layout checks, NO_INTERRUPT, and copies.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmem.h"
#include "test.h"
#include "virtqueue.h"

#define PAGE GMEM_PAGE_SIZE
#define MiB (1ULL << 20)
#define MEM (4 * MiB)
#define DESC_GPA 0x10000ULL  /* room for VQ_MAX_SIZE descriptors */
#define AVAIL_GPA 0x20000ULL
#define USED_GPA 0x30000ULL
#define BUF_GPA 0x100000ULL  /* data buffers, one page each where pins are checked */
#define OWNER "vq-test q0"

static const struct gmem_arch_map x86_map = {
	.ram_base = 0, .hole_start = 0xc0000000ULL, .hole_end = 0x100000000ULL,
};

/* A short drain timeout: a conversion of a pinned page is how a test sees the pin. */
static struct gmem *make_gmem(void)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = GMEM_MODEL_HOST, .drain_timeout_ns = 20 * 1000000ULL,
	};
	struct gmem_layout l;
	struct gmem *gm = NULL;

	if (gmem_layout_compute(&x86_map, MEM, &l) || gmem_create_cfg(&cfg, &l, &gm)) {
		fprintf(stderr, "cannot create a detached gmem\n");
		exit(1);
	}
	return gm;
}

static struct vq_req *new_req(void)
{
	struct vq_req *req = calloc(1, sizeof(*req));

	if (!req) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return req;
}

/* The driver's side of one queue, at DESC_GPA, AVAIL_GPA and USED_GPA. */
struct drv {
	struct gmem *gm;
	uint16_t size;
	uint16_t avail_idx; /* the next avail idx to publish */
};

static void put(struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len)
{
	CHECK_EQ(gmem_write(gm, gpa, buf, len), 0);
}

static void drv_init(struct drv *d, struct gmem *gm, uint16_t size)
{
	static const uint8_t zero[0x10000];

	*d = (struct drv){ .gm = gm, .size = size };
	/* Zeroed rings, as a driver sets them up; a previous test may have used them. */
	put(gm, DESC_GPA, zero, sizeof(zero));
	put(gm, AVAIL_GPA, zero, sizeof(zero));
	put(gm, USED_GPA, zero, sizeof(zero));
}

static void put_desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
	} desc = { addr, len, flags, next };

	put(d->gm, DESC_GPA + 16ULL * i, &desc, sizeof(desc));
}

static void set_avail_idx(struct drv *d, uint16_t idx)
{
	d->avail_idx = idx;
	put(d->gm, AVAIL_GPA + 2, &idx, sizeof(idx));
}

static void set_avail_flags(struct drv *d, uint16_t flags)
{
	put(d->gm, AVAIL_GPA, &flags, sizeof(flags));
}

/* Writes the ring entry, then the idx, as a driver does. */
static void publish(struct drv *d, uint16_t head)
{
	uint16_t slot = d->avail_idx & (d->size - 1);

	put(d->gm, AVAIL_GPA + 4 + 2ULL * slot, &head, sizeof(head));
	set_avail_idx(d, (uint16_t)(d->avail_idx + 1));
}

static uint16_t used_idx(struct drv *d)
{
	uint16_t idx = 0xdead;

	CHECK_EQ(gmem_read(d->gm, USED_GPA + 2, &idx, sizeof(idx)), 0);
	return idx;
}

/* Checks the used element at used ring position pos, and that the used idx is past it. */
static void check_used(struct drv *d, uint16_t pos, uint32_t id, uint32_t len)
{
	uint32_t elem[2] = { 0xdead, 0xdead };
	uint16_t slot = pos & (d->size - 1);

	CHECK_EQ(gmem_read(d->gm, USED_GPA + 4 + 8ULL * slot, elem, sizeof(elem)), 0);
	CHECK_EQ(elem[0], id);
	CHECK_EQ(elem[1], len);
	CHECK_EQ(used_idx(d), (uint16_t)(pos + 1));
}

static void setup(struct virtqueue *vq, struct drv *d, struct gmem *gm, uint16_t size)
{
	drv_init(d, gm, size);
	vq_init(vq, gm, OWNER);
	CHECK_EQ(vq_configure(vq, size, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK(vq->ready);
}

/*
 * Whether gpa's page is pinned, seen the way it matters: a conversion of a
 * pinned page times out and names the queue's owner; of an unpinned one it
 * succeeds (and is undone; the host model keeps contents).
 */
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
	CHECK_STR_CONTAINS(res.culprit, OWNER " request");
	return true;
}

static void test_good_chain(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	const uint64_t hdr = BUF_GPA, data = BUF_GPA + PAGE, status = BUF_GPA + 2 * PAGE + 100;
	uint8_t hdr_bytes[16], back[512];
	struct virtqueue vq;
	struct drv d;
	unsigned int i;

	setup(&vq, &d, gm, 8);
	for (i = 0; i < sizeof(hdr_bytes); i++)
		hdr_bytes[i] = (uint8_t)(0x40 + i);
	put(gm, hdr, hdr_bytes, sizeof(hdr_bytes));
	/* Out of order in the table: the walk must follow next, not the index. */
	put_desc(&d, 3, hdr, sizeof(hdr_bytes), VIRTQ_DESC_F_NEXT, 5);
	put_desc(&d, 5, data, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(&d, 1, status, 1, VIRTQ_DESC_F_WRITE, 7); /* next without NEXT: ignored */
	publish(&d, 3);

	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 3);
	CHECK_EQ(req->nr_segs, 3);
	CHECK_EQ(req->nr_out, 1);
	CHECK_EQ(req->out_len, 16);
	CHECK_EQ(req->in_len, 513);
	CHECK_EQ(req->nr_pins, 3);
	CHECK_EQ(req->seg[0].gpa, hdr);
	CHECK_EQ(req->seg[0].len, 16);
	CHECK(!req->seg[0].write);
	CHECK(memcmp(req->seg[0].hva, hdr_bytes, sizeof(hdr_bytes)) == 0);
	CHECK_EQ(req->seg[1].gpa, data);
	CHECK_EQ(req->seg[1].len, 512);
	CHECK(req->seg[1].write);
	CHECK_EQ(req->seg[2].gpa, status);
	CHECK_EQ(req->seg[2].len, 1);
	CHECK(req->seg[2].write);
	CHECK_EQ(vq.last_avail, 1);
	CHECK_EQ(used_idx(&d), 0);

	/* Nothing more: the idx has not moved. */
	{
		struct vq_req *other = new_req();

		CHECK_EQ(vq_pop(&vq, other), 0);
		free(other);
	}

	/* Every page of the chain is held while the request is out. */
	CHECK(pinned(gm, hdr));
	CHECK(pinned(gm, data));
	CHECK(pinned(gm, status));

	memset(req->seg[1].hva, 0xab, 512);
	*(uint8_t *)req->seg[2].hva = 0; /* VIRTIO_BLK_S_OK */
	CHECK_EQ(vq_push(&vq, req, 513), 0);
	check_used(&d, 0, 3, 513);
	CHECK_EQ(vq.used_idx, 1);
	CHECK_EQ(req->nr_pins, 0);
	CHECK(!pinned(gm, hdr));
	CHECK(!pinned(gm, data));
	CHECK(!pinned(gm, status));
	CHECK_EQ(gmem_read(gm, data, back, sizeof(back)), 0);
	for (i = 0; i < sizeof(back); i++)
		if (back[i] != 0xab)
			break;
	CHECK_EQ(i, sizeof(back));
	CHECK(vq_should_interrupt(&vq));
	free(req);
	gmem_destroy(gm);
}

/*
 * 65550 requests through a queue of 4, three at a time, completed out of
 * order: the 16-bit avail and used indices wrap, one batch straddling 65535.
 */
static void test_wrap(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req[3] = { new_req(), new_req(), new_req() }, *spare = new_req();
	static const unsigned int order[3] = { 2, 0, 1 };
	uint16_t used = 0;
	unsigned int batch, i, bad = 0;
	struct virtqueue vq;
	struct drv d;

	setup(&vq, &d, gm, 4);
	for (i = 0; i < 3; i++)
		put_desc(&d, (uint16_t)i, BUF_GPA + 64 * i, 64, VIRTQ_DESC_F_WRITE, 0);
	for (batch = 0; batch < 65550 / 3; batch++) {
		for (i = 0; i < 3; i++)
			publish(&d, (uint16_t)i);
		for (i = 0; i < 3; i++) {
			bad += vq_pop(&vq, req[i]) != 1;
			bad += req[i]->head != i || req[i]->in_len != 64;
		}
		bad += vq_pop(&vq, spare) != 0;
		for (i = 0; i < 3; i++) {
			unsigned int k = order[i];
			uint32_t elem[2] = { 0, 0 };

			bad += vq_push(&vq, req[k], 10 + k) != 0;
			CHECK_EQ(gmem_read(gm, USED_GPA + 4 + 8ULL * (used & 3), elem, 8), 0);
			bad += elem[0] != k || elem[1] != 10 + k;
			used++;
			bad += used_idx(&d) != used;
		}
		if (bad) {
			fprintf(stderr, "wrap: batch %u (last_avail %u) went wrong\n", batch,
				vq.last_avail);
			break;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(vq.last_avail, (uint16_t)65550);
	CHECK_EQ(vq.used_idx, (uint16_t)65550);
	CHECK_EQ(used, (uint16_t)65550);
	CHECK(!pinned(gm, BUF_GPA));
	for (i = 0; i < 3; i++)
		free(req[i]);
	free(spare);
	gmem_destroy(gm);
}

static void test_empty_and_not_ready(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;

	drv_init(&d, gm, 8);
	put_desc(&d, 0, BUF_GPA, 16, 0, 0);
	publish(&d, 0);
	/* Ring-like garbage at GPA 0, where an unconfigured queue's addresses point. */
	put(gm, 0, (uint16_t[4]){ 0, 5, 0, 0 }, 8);
	vq_init(&vq, gm, OWNER);
	CHECK(!vq.ready);
	CHECK_EQ(vq_pop(&vq, req), 0);    /* never configured */
	CHECK(!vq_should_interrupt(&vq));

	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	vq_reset(&vq);
	CHECK(!vq.ready);
	CHECK_EQ(vq.size, 0);
	CHECK_EQ(vq_pop(&vq, req), 0);    /* reset */

	drv_init(&d, gm, 8);
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq_pop(&vq, req), 0);    /* ready, nothing published */
	CHECK_EQ(vq.last_avail, 0);

	/* Reconfiguring starts the indices over. */
	put_desc(&d, 0, BUF_GPA, 16, 0, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(vq_push(&vq, req, 0), 0);
	CHECK_EQ(vq.last_avail, 1);
	CHECK_EQ(vq.used_idx, 1);
	drv_init(&d, gm, 8);
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq.last_avail, 0);
	CHECK_EQ(vq.used_idx, 0);
	CHECK_EQ(vq_pop(&vq, req), 0);

	/* A request still out when the queue resets: the push releases it and reports. */
	put_desc(&d, 0, BUF_GPA, 16, 0, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK(pinned(gm, BUF_GPA));
	vq_reset(&vq);
	CHECK_EQ(vq_push(&vq, req, 0), -ESTALE);
	CHECK_EQ(vq.stale, 1);
	CHECK(!pinned(gm, BUF_GPA));
	CHECK_EQ(used_idx(&d), 0);

	/* Popped before a reset and pushed after the queue came back: still stale, nothing written. */
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq_push(&vq, req, 0), -ESTALE);
	CHECK(!pinned(gm, BUF_GPA));
	CHECK_EQ(used_idx(&d), 0);
	CHECK_EQ(vq.used_idx, 0);

	/* vq_release lets go without completing. */
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK(pinned(gm, BUF_GPA));
	vq_release(req);
	CHECK_EQ(req->nr_pins, 0);
	CHECK_EQ(req->nr_segs, 0);
	CHECK(!pinned(gm, BUF_GPA));
	CHECK_EQ(used_idx(&d), 0);
	free(req);
	gmem_destroy(gm);
}

/* A broken ring: -EPROTO, nothing consumed or pinned, nothing in the used ring. */
static void expect_proto(struct virtqueue *vq, struct drv *d, struct vq_req *req,
			 const char *why)
{
	uint16_t last = vq->last_avail;

	CHECK_EQ(vq_pop(vq, req), -EPROTO);
	CHECK_EQ(vq->last_avail, last);
	CHECK_EQ(req->nr_pins, 0);
	CHECK_EQ(req->nr_segs, 0);
	CHECK_EQ(used_idx(d), vq->used_idx);
	CHECK_STR_CONTAINS(vq->error, why);
}

static void test_avail_idx_jump(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;
	unsigned int i;

	setup(&vq, &d, gm, 4);
	for (i = 0; i < 4; i++) {
		put_desc(&d, (uint16_t)i, BUF_GPA + 16 * i, 16, 0, 0);
		publish(&d, (uint16_t)i);
	}
	set_avail_idx(&d, 5);
	expect_proto(&vq, &d, req, "avail idx 5 is 5 ahead");
	expect_proto(&vq, &d, req, "avail idx 5"); /* and stays broken */
	set_avail_idx(&d, 0xffff);                 /* "behind" is a huge jump ahead */
	expect_proto(&vq, &d, req, "avail idx 65535");
	/* Exactly size ahead is a full ring, not an error. */
	set_avail_idx(&d, 4);
	for (i = 0; i < 4; i++) {
		CHECK_EQ(vq_pop(&vq, req), 1);
		CHECK_EQ(req->head, i);
		CHECK_EQ(vq_push(&vq, req, 0), 0);
	}
	CHECK_EQ(vq_pop(&vq, req), 0);
	CHECK_EQ(used_idx(&d), 4);
	free(req);
	gmem_destroy(gm);
}

static void test_head_out_of_range(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;

	setup(&vq, &d, gm, 8);
	put_desc(&d, 0, BUF_GPA, 16, 0, 0);
	publish(&d, 8);
	expect_proto(&vq, &d, req, "head 8, size 8");
	/* Not consumed: the same entry is read again, and once fixed it pops. */
	put(gm, AVAIL_GPA + 4, &(uint16_t){ 0xffff }, 2);
	expect_proto(&vq, &d, req, "head 65535");
	put(gm, AVAIL_GPA + 4, &(uint16_t){ 0 }, 2);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 0);
	CHECK_EQ(vq_push(&vq, req, 0), 0);
	check_used(&d, 0, 0, 0);
	free(req);
	gmem_destroy(gm);
}

/*
 * A malformed chain: err, with req->head set and nothing pinned (the page
 * at held_gpa, pinned by an earlier good descriptor of the chain, is free
 * again), consumed, and returned through the used ring with length 0.
 */
static void expect_chain_error(struct virtqueue *vq, struct drv *d, struct vq_req *req,
			       uint16_t head, int err, const char *why, uint64_t held_gpa)
{
	uint16_t last = vq->last_avail, used = vq->used_idx;

	publish(d, head);
	CHECK_EQ(vq_pop(vq, req), err);
	CHECK_EQ(req->head, head);
	CHECK_EQ(req->nr_pins, 0);
	/* A private buffer's chain is described, unpinned, for vq_fail_status(); others are not. */
	for (unsigned int k = 0; err == -EACCES && k < req->nr_segs; k++)
		CHECK(req->seg[k].hva == NULL);
	if (err != -EACCES) {
		CHECK_EQ(req->nr_segs, 0);
		CHECK_EQ(req->in_len, 0);
	}
	CHECK_EQ(vq->last_avail, (uint16_t)(last + 1));
	CHECK_STR_CONTAINS(vq->error, why);
	if (held_gpa)
		CHECK(!pinned(d->gm, held_gpa));
	CHECK_EQ(vq_push(vq, req, 0), 0);
	check_used(d, used, head, 0);
	CHECK_EQ(vq_pop(vq, req), 0);
}

static void test_chain_errors(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	const uint64_t good = BUF_GPA, priv = BUF_GPA + 8 * PAGE;
	const uint16_t R = 0, W = VIRTQ_DESC_F_WRITE, N = VIRTQ_DESC_F_NEXT;
	struct virtqueue vq;
	struct drv d;

	setup(&vq, &d, gm, 16);

	/* next out of range, after a good descriptor that was pinned. */
	put_desc(&d, 0, good, 64, R | N, 1);
	put_desc(&d, 1, good + 64, 64, R | N, 16);
	expect_chain_error(&vq, &d, req, 0, -EINVAL, "desc 1 (GPA 0x100040+0x40): next 16", good);

	/* Loops: 0 -> 1 -> 0, and a descriptor that points at itself. */
	put_desc(&d, 0, good, 64, R | N, 1);
	put_desc(&d, 1, good + 64, 64, R | N, 0);
	expect_chain_error(&vq, &d, req, 0, -ELOOP, "desc 0 (GPA 0x100000+0x40): seen twice", good);
	put_desc(&d, 5, good, 64, W | N, 5);
	expect_chain_error(&vq, &d, req, 5, -ELOOP, "loops", good);

	/* Direction order: device-readable after device-writable. */
	put_desc(&d, 2, good, 64, W | N, 3);
	put_desc(&d, 3, good + 64, 64, R, 0);
	expect_chain_error(&vq, &d, req, 2, -EINVAL, "desc 3 (GPA 0x100040+0x40): device-readable",
			   good);

	/* Flags: INDIRECT (not offered) and bits nobody defined. */
	put_desc(&d, 4, good, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_chain_error(&vq, &d, req, 4, -EINVAL, "desc 4 (GPA 0x100000+0x10): INDIRECT", 0);
	put_desc(&d, 0, good, 64, R | N, 4);
	put_desc(&d, 4, good + 64, 16, N | VIRTQ_DESC_F_INDIRECT, 1);
	expect_chain_error(&vq, &d, req, 0, -EINVAL, "INDIRECT", good);
	put_desc(&d, 4, good, 16, R | 0x8, 0);
	expect_chain_error(&vq, &d, req, 4, -EINVAL, "unknown flags 0x8", 0);
	put_desc(&d, 4, good, 16, W | 0x8000, 0);
	expect_chain_error(&vq, &d, req, 4, -EINVAL, "unknown flags 0x8000", 0);

	/* Lengths: zero, and one byte over the limit (the limit itself is fine). */
	put_desc(&d, 0, good, 64, R | N, 6);
	put_desc(&d, 6, good + 64, 0, W, 0);
	expect_chain_error(&vq, &d, req, 0, -EINVAL, "desc 6 (GPA 0x100040+0x0): zero length",
			   good);
	put_desc(&d, 6, MiB, VQ_MAX_SEG_LEN + 1, W, 0);
	expect_chain_error(&vq, &d, req, 6, -E2BIG, "desc 6 (GPA 0x100000+0x100001): longer", 0);
	put_desc(&d, 6, MiB, VQ_MAX_SEG_LEN, W, 0);
	publish(&d, 6);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->in_len, VQ_MAX_SEG_LEN);
	CHECK_EQ(vq_push(&vq, req, VQ_MAX_SEG_LEN), 0);
	check_used(&d, (uint16_t)(vq.used_idx - 1), 6, VQ_MAX_SEG_LEN);

	/* Addresses: outside RAM, at its very end, across its end, and wrapping. */
	put_desc(&d, 7, 1ULL << 40, 16, R, 0);
	expect_chain_error(&vq, &d, req, 7, -EFAULT,
			   "desc 7 (GPA 0x10000000000+0x10): buffer outside RAM", 0);
	put_desc(&d, 7, MEM, 1, R, 0);
	expect_chain_error(&vq, &d, req, 7, -EFAULT, "outside RAM", 0);
	put_desc(&d, 0, good, 64, R | N, 7);
	put_desc(&d, 7, MEM - 16, 32, W, 0);
	expect_chain_error(&vq, &d, req, 0, -EFAULT, "desc 7 (GPA 0x3ffff0+0x20): buffer outside",
			   good);
	put_desc(&d, 7, MEM - 32, 32, W, 0); /* up to the last byte is fine */
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(vq_push(&vq, req, 32), 0);
	check_used(&d, (uint16_t)(vq.used_idx - 1), 0, 32);
	put_desc(&d, 7, UINT64_MAX - 7, 16, R, 0);
	expect_chain_error(&vq, &d, req, 7, -EFAULT, "desc 7 (GPA 0xfffffffffffffff8+0x10): wraps",
			   0);
	put_desc(&d, 7, 0xc0000000ULL - 8, 16, R, 0); /* far above RAM, up to the MMIO hole */
	expect_chain_error(&vq, &d, req, 7, -EFAULT, "outside RAM", 0);

	/* Private memory: -EACCES, the earlier pin released. */
	CHECK_EQ(gmem_attr_set_private(gm, priv, PAGE, true), 0);
	put_desc(&d, 8, priv + 100, 8, R, 0);
	expect_chain_error(&vq, &d, req, 8, -EACCES, "desc 8 (GPA 0x108064+0x8): buffer in private",
			   0);
	put_desc(&d, 0, good, 64, R | N, 8);
	put_desc(&d, 8, priv - 8, 16, R, 0); /* straddles into the private page */
	expect_chain_error(&vq, &d, req, 0, -EACCES, "private memory", good);
	CHECK_EQ(gmem_attr_set_private(gm, priv, PAGE, false), 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->out_len, 80);
	CHECK_EQ(vq_push(&vq, req, 0), 0);

	CHECK(!pinned(gm, good));
	free(req);
	gmem_destroy(gm);
}

/* Chain length: VQ_MAX_SEGS descriptors are fine, 200 are too many; a loop is a loop. */
static void test_long_chains(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;
	uint16_t i;

	setup(&vq, &d, gm, 256);
	for (i = 0; i < 200; i++)
		put_desc(&d, i, BUF_GPA + 16ULL * i, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	put_desc(&d, 199, BUF_GPA + 16ULL * 199, 16, 0, 0);
	expect_chain_error(&vq, &d, req, 0, -E2BIG, "desc 130 (GPA 0x100820+0x10)", BUF_GPA);
	CHECK_STR_CONTAINS(vq.error, "over 130");

	/* Exactly VQ_MAX_SEGS, ending at 199. */
	publish(&d, 200 - VQ_MAX_SEGS);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 200 - VQ_MAX_SEGS);
	CHECK_EQ(req->nr_segs, VQ_MAX_SEGS);
	CHECK_EQ(req->nr_pins, VQ_MAX_SEGS);
	CHECK_EQ(req->nr_out, VQ_MAX_SEGS);
	CHECK_EQ(req->out_len, 16 * VQ_MAX_SEGS);
	CHECK_EQ(req->seg[VQ_MAX_SEGS - 1].gpa, BUF_GPA + 16ULL * 199);
	CHECK(pinned(gm, BUF_GPA + 16ULL * 199));
	CHECK_EQ(vq_push(&vq, req, 0), 0);
	CHECK(!pinned(gm, BUF_GPA + 16ULL * 199));

	/* A loop in a queue larger than VQ_MAX_SEGS is still reported as one. */
	put_desc(&d, 1, BUF_GPA + 16, 16, VIRTQ_DESC_F_NEXT, 0);
	expect_chain_error(&vq, &d, req, 0, -ELOOP, "desc 0 (GPA 0x100000+0x10): seen twice",
			   BUF_GPA);
	/* A loop through every descriptor of a small queue: -ELOOP, not -E2BIG. */
	vq_reset(&vq);
	drv_init(&d, gm, 128);
	CHECK_EQ(vq_configure(&vq, 128, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	for (i = 0; i < 128; i++)
		put_desc(&d, i, BUF_GPA + 16ULL * i, 16, VIRTQ_DESC_F_NEXT,
			 (uint16_t)((i + 1) % 128));
	expect_chain_error(&vq, &d, req, 0, -ELOOP, "desc 0", BUF_GPA);
	free(req);
	gmem_destroy(gm);
}

/* Two requests out at once: each holds its own pages until it is completed. */
static void test_pins_per_request(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *a = new_req(), *b = new_req();
	const uint64_t pa = BUF_GPA, pb = BUF_GPA + 4 * PAGE;
	struct virtqueue vq;
	struct drv d;

	setup(&vq, &d, gm, 8);
	/* Two pages for a's buffer: a pin covers every page the buffer touches. */
	put_desc(&d, 0, pa + PAGE - 8, 16, 0, 0);
	put_desc(&d, 1, pb, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 0);
	publish(&d, 1);
	CHECK_EQ(vq_pop(&vq, a), 1);
	CHECK_EQ(vq_pop(&vq, b), 1);
	CHECK_EQ(a->pin[0].req + 1, b->pin[0].req); /* one request id per pop */
	CHECK(pinned(gm, pa));
	CHECK(pinned(gm, pa + PAGE));
	CHECK(pinned(gm, pb));
	CHECK_EQ(vq_push(&vq, b, 16), 0);
	check_used(&d, 0, 1, 16);
	CHECK(!pinned(gm, pb));
	CHECK(pinned(gm, pa + PAGE));
	/* More than the writable bytes is never reported: a has none. */
	CHECK_EQ(vq_push(&vq, a, 100), 0);
	check_used(&d, 1, 0, 0);
	CHECK(!pinned(gm, pa));
	CHECK(!pinned(gm, pa + PAGE));
	free(a);
	free(b);
	gmem_destroy(gm);
}

struct slow_convert {
	struct gmem *gm;
	uint64_t gpa;
	int ret;
};

static void *convert_page(void *arg)
{
	struct slow_convert *s = arg;
	struct gmem_conv_result res;

	s->ret = gmem_convert(s->gm, s->gpa, PAGE, true, &res);
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/*
 * A buffer under conversion: vq_pop does not wait for it (the device runs on
 * the thread that completes the I/O a conversion may wait for), consumes
 * nothing, and the same chain pops once the conversion is over.
 */
static void test_buffer_under_conversion(void)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = GMEM_MODEL_HOST, .drain_timeout_ns = 2000 * 1000000ULL,
	};
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct slow_convert s = { .gpa = BUF_GPA };
	struct vq_req *req = new_req();
	struct timespec ms10 = { 0, 10000000 };
	struct gmem_conv_result res;
	struct gmem_pin hold;
	struct virtqueue vq;
	struct drv d;
	pthread_t t;
	uint64_t t0;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &s.gm), 0);
	setup(&vq, &d, s.gm, 8);
	put_desc(&d, 0, BUF_GPA + 64, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 0);
	/* A pin elsewhere on the page keeps the conversion draining, the page marked converting. */
	CHECK_EQ(gmem_pin(s.gm, BUF_GPA, 8, "other", 1, &hold), 0);
	pthread_create(&t, NULL, convert_page, &s);
	/* Until the conversion is draining (polled: a loaded machine may start the thread late). */
	for (int i = 0; i < 1000; i++) {
		struct gmem_stats st;

		gmem_get_stats(s.gm, &st);
		if (st.drain_waits)
			break;
		nanosleep(&ms10, NULL);
	}
	t0 = now_ms();
	CHECK_EQ(vq_pop(&vq, req), -EAGAIN);
	CHECK(now_ms() - t0 < 1000); /* not the 2 s a wait for the drain would take */
	CHECK_EQ(vq.last_avail, 0);
	CHECK_EQ(req->nr_pins, 0);
	gmem_unpin(&hold);
	pthread_join(t, NULL);
	CHECK_EQ(s.ret, 0);
	/* Shared again, the same chain pops. */
	CHECK_EQ(gmem_convert(s.gm, BUF_GPA, PAGE, false, &res), 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 0);
	CHECK_EQ(vq_push(&vq, req, 16), 0);
	free(req);
	gmem_destroy(s.gm);
}

struct roundtrip {
	struct gmem *gm;
	uint64_t gpa, len;
	int ret;
};

static void *roundtrip_range(void *arg)
{
	struct roundtrip *r = arg;
	struct gmem_conv_result res;

	r->ret = gmem_roundtrip(r->gm, r->gpa, r->len, &res);
	return NULL;
}

/* Waits until a conversion marks gpa's page converting: a pin that never waits is refused. */
static void wait_converting(struct gmem *gm, uint64_t gpa)
{
	struct timespec ms1 = { 0, 1000000 };
	struct gmem_pin p;
	unsigned int i;

	for (i = 0; i < 5000; i++) {
		int ret = gmem_pin_try(gm, gpa, 1, "probe", 0, &p);

		if (ret == -EAGAIN)
			return;
		CHECK_EQ(ret, 0);
		gmem_unpin(&p);
		nanosleep(&ms1, NULL);
	}
	CHECK(!"the conversion never began");
}

/*
 * A conversion held open until the test lets it go, with a drain bound far
 * above the test's: anything that waits for it shows as a slow call, and
 * would deadlock the I/O thread for real.
 */
static struct gmem *slow_gmem(void)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = GMEM_MODEL_HOST, .drain_timeout_ns = 3000 * 1000000ULL,
	};
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct gmem *gm = NULL;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &gm), 0);
	return gm;
}

/*
 * A conversion over a ring page: vq_pop returns at once (-EAGAIN, nothing
 * consumed or pinned) instead of waiting for it, so does the interrupt
 * check; the conversion completes once its other pin goes, and the same
 * chain pops after.  Avail ring and descriptor table both.
 */
static void test_pop_ring_under_conversion(void)
{
	static const uint64_t rings[] = { AVAIL_GPA, DESC_GPA };
	struct gmem *gm = slow_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;
	unsigned int i;

	setup(&vq, &d, gm, 8);
	put_desc(&d, 0, BUF_GPA + 64, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 0);
	for (i = 0; i < 2; i++) {
		struct roundtrip r = { .gm = gm, .gpa = rings[i], .len = PAGE };
		struct gmem_pin hold;
		pthread_t t;
		uint64_t t0;

		/* The test's own pin keeps the conversion draining, the ring page converting. */
		CHECK_EQ(gmem_pin(gm, rings[i] + PAGE - 8, 8, "holder", 1, &hold), 0);
		CHECK_EQ(pthread_create(&t, NULL, roundtrip_range, &r), 0);
		wait_converting(gm, rings[i]);
		t0 = now_ms();
		CHECK_EQ(vq_pop(&vq, req), -EAGAIN);
		CHECK(vq_should_interrupt(&vq)); /* flags unreadable for now: interrupt */
		CHECK(now_ms() - t0 < 1000);
		CHECK_STR_CONTAINS(vq.error, "being converted");
		CHECK_EQ(vq.last_avail, 0);
		CHECK_EQ(req->nr_pins, 0);
		gmem_unpin(&hold);
		pthread_join(t, NULL);
		CHECK_EQ(r.ret, 0);
	}
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 0);
	CHECK_EQ(vq_push(&vq, req, 16), 0);
	check_used(&d, 0, 0, 16);
	free(req);
	gmem_destroy(gm);
}

/*
 * The reported freeze: a conversion over the used ring's page and a
 * buffer of a request still out.  vq_push returns at once: the buffer is
 * released (the conversion's drain can finish) and the used element is
 * deferred, not dropped and not waited for; completions keep their order.
 * The conversion completes once the request did, and vq_flush then
 * publishes both.
 */
static void test_push_ring_under_conversion(void)
{
	const uint64_t buf = USED_GPA + PAGE; /* next to the used ring: one conversion covers both */
	struct roundtrip r = { .gpa = USED_GPA, .len = 2 * PAGE };
	struct vq_req *a = new_req(), *b = new_req();
	struct gmem_pin hold;
	struct virtqueue vq;
	uint32_t elem[4];
	struct drv d;
	pthread_t t;
	uint64_t t0;

	r.gm = slow_gmem();
	setup(&vq, &d, r.gm, 8);
	put_desc(&d, 0, buf, 16, VIRTQ_DESC_F_WRITE, 0);
	put_desc(&d, 1, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, a), 1);
	CHECK_EQ(gmem_pin(r.gm, USED_GPA + PAGE - 8, 8, "holder", 1, &hold), 0);
	CHECK_EQ(pthread_create(&t, NULL, roundtrip_range, &r), 0);
	wait_converting(r.gm, USED_GPA);
	t0 = now_ms();
	CHECK_EQ(vq_push(&vq, a, 16), -EAGAIN);
	CHECK(now_ms() - t0 < 1000);
	CHECK_EQ(a->nr_pins, 0);
	CHECK_EQ(vq.nr_pending, 1);
	CHECK_EQ(vq.deferred, 1);
	CHECK_EQ(vq.used_idx, 0);
	CHECK_EQ(vq_flush(&vq), -EAGAIN); /* still converting: still waiting, still no wait */
	/* Rings outside the conversion still serve: the next request pops, and queues behind. */
	publish(&d, 1);
	CHECK_EQ(vq_pop(&vq, b), 1);
	CHECK_EQ(vq_push(&vq, b, 8), -EAGAIN);
	CHECK_EQ(vq.nr_pending, 2);
	CHECK(now_ms() - t0 < 1000);
	gmem_unpin(&hold);
	pthread_join(t, NULL);
	CHECK_EQ(r.ret, 0); /* the conversion completed: the request's pin went with the push */
	CHECK_EQ(used_idx(&d), 0); /* nothing published until the deferred work runs */
	CHECK_EQ(vq_flush(&vq), 1);
	CHECK_EQ(gmem_read(r.gm, USED_GPA + 4, elem, sizeof(elem)), 0);
	CHECK_EQ(elem[0], 0);
	CHECK_EQ(elem[1], 16);
	CHECK_EQ(elem[2], 1);
	CHECK_EQ(elem[3], 8);
	CHECK_EQ(used_idx(&d), 2);
	CHECK_EQ(vq.nr_pending, 0);
	CHECK_EQ(vq_flush(&vq), 0);
	free(a);
	free(b);
	gmem_destroy(r.gm);
}

/*
 * A completion deferred by a used ring under conversion, then the queue is
 * reset and set up again: the completion belonged to the old rings, so
 * nothing is written into the new ones; it held no pin meanwhile (the
 * conversion completed), and the new queue works.
 */
static void test_deferred_then_reset(void)
{
	struct roundtrip r = { .gpa = USED_GPA, .len = PAGE };
	struct vq_req *req = new_req();
	struct gmem_pin hold;
	struct virtqueue vq;
	struct drv d;
	pthread_t t;

	r.gm = slow_gmem();
	setup(&vq, &d, r.gm, 8);
	put_desc(&d, 0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(gmem_pin(r.gm, USED_GPA + 0x800, 8, "holder", 1, &hold), 0);
	CHECK_EQ(pthread_create(&t, NULL, roundtrip_range, &r), 0);
	wait_converting(r.gm, USED_GPA);
	CHECK_EQ(vq_push(&vq, req, 16), -EAGAIN);
	CHECK_EQ(vq.nr_pending, 1);
	vq_reset(&vq);
	CHECK_EQ(vq.nr_pending, 0);
	gmem_unpin(&hold);
	pthread_join(t, NULL);
	CHECK_EQ(r.ret, 0);
	drv_init(&d, r.gm, 8);
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq_flush(&vq), 0);
	CHECK_EQ(used_idx(&d), 0);
	put_desc(&d, 3, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 3);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(vq_push(&vq, req, 4), 0);
	check_used(&d, 0, 3, 4);
	free(req);
	gmem_destroy(r.gm);
}

/*
 * Completions that cannot be published hold their used ring slots: once
 * size of them are out or waiting, vq_pop takes no more (a driver that
 * reuses heads still out cannot grow the queue).
 */
static void test_used_ring_room(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req[3] = { new_req(), new_req(), new_req() };
	struct virtqueue vq;
	struct drv d;
	unsigned int i;

	setup(&vq, &d, gm, 2);
	put_desc(&d, 0, BUF_GPA, 16, 0, 0);
	publish(&d, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req[0]), 1);
	CHECK_EQ(vq_pop(&vq, req[1]), 1);
	publish(&d, 0); /* the same head a third time, while both are out */
	CHECK_EQ(vq_pop(&vq, req[2]), -EAGAIN);
	CHECK_EQ(vq.last_avail, 2);
	CHECK_STR_CONTAINS(vq.error, "no room in the used ring");
	CHECK_EQ(vq_push(&vq, req[0], 0), 0);
	CHECK_EQ(vq_pop(&vq, req[2]), 1);
	CHECK_EQ(vq_push(&vq, req[1], 0), 0);
	CHECK_EQ(vq_push(&vq, req[2], 0), 0);
	CHECK_EQ(used_idx(&d), 3);
	for (i = 0; i < 3; i++)
		free(req[i]);
	gmem_destroy(gm);
}

/* Rings that became unreadable after configuration (converted to private). */
static void test_broken_rings(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;

	setup(&vq, &d, gm, 8);
	put_desc(&d, 0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&d, 0);

	CHECK_EQ(gmem_attr_set_private(gm, AVAIL_GPA, PAGE, true), 0);
	expect_proto(&vq, &d, req, "avail idx at GPA 0x20002 is in private memory");
	CHECK_EQ(gmem_attr_set_private(gm, AVAIL_GPA, PAGE, false), 0);

	CHECK_EQ(gmem_attr_set_private(gm, DESC_GPA, PAGE, true), 0);
	expect_proto(&vq, &d, req, "descriptor table at GPA 0x10000 is in private memory");
	CHECK_EQ(gmem_attr_set_private(gm, DESC_GPA, PAGE, false), 0);

	/* The used ring: the push fails, but the buffers are released and nothing published. */
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK(pinned(gm, BUF_GPA));
	CHECK_EQ(gmem_attr_set_private(gm, USED_GPA, PAGE, true), 0);
	CHECK_EQ(vq_push(&vq, req, 16), -EFAULT);
	CHECK_STR_CONTAINS(vq.error, "used ring entry at GPA 0x30004 is in private memory");
	CHECK_EQ(vq.used_idx, 0);
	CHECK(!pinned(gm, BUF_GPA));
	CHECK_EQ(gmem_attr_set_private(gm, USED_GPA, PAGE, false), 0);
	CHECK_EQ(used_idx(&d), 0);
	CHECK(vq_should_interrupt(&vq));
	CHECK_EQ(gmem_attr_set_private(gm, AVAIL_GPA, PAGE, true), 0);
	CHECK(vq_should_interrupt(&vq)); /* flags unreadable: interrupt rather than hang */
	CHECK_EQ(gmem_attr_set_private(gm, AVAIL_GPA, PAGE, false), 0);
	free(req);
	gmem_destroy(gm);
}

static void expect_bad_config(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t avail,
			      uint64_t used, const char *why)
{
	bool ready = vq->ready;
	uint16_t old_size = vq->size;

	vq->error[0] = '\0';
	CHECK_EQ(vq_configure(vq, size, desc, avail, used), -EINVAL);
	CHECK_STR_CONTAINS(vq->error, why);
	/* All or nothing. */
	CHECK_EQ(vq->ready, ready);
	CHECK_EQ(vq->size, old_size);
}

static void test_configure(void)
{
	struct gmem *gm = make_gmem();
	struct virtqueue vq;

	vq_init(&vq, gm, OWNER);
	CHECK(!vq.ready);
	expect_bad_config(&vq, 0, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 0");
	expect_bad_config(&vq, 3, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 3");
	expect_bad_config(&vq, 2048, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 2048");
	expect_bad_config(&vq, 1536, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 1536");
	expect_bad_config(&vq, 0x8000, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 32768");
	expect_bad_config(&vq, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA,
			  "descriptor ring at GPA 0x10008 is not 16-byte aligned");
	expect_bad_config(&vq, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA,
			  "avail ring at GPA 0x20001 is not 2-byte aligned");
	expect_bad_config(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2,
			  "used ring at GPA 0x30002 is not 4-byte aligned");
	/* Each ring wholly inside RAM: its last byte too. */
	expect_bad_config(&vq, 8, MEM - 16 * 8 + 16, AVAIL_GPA, USED_GPA,
			  "descriptor ring at GPA 0x3fff90+0x80 is outside RAM");
	expect_bad_config(&vq, 8, DESC_GPA, MEM - 22 + 2, USED_GPA,
			  "avail ring at GPA 0x3fffec+0x16 is outside RAM");
	expect_bad_config(&vq, 8, DESC_GPA, AVAIL_GPA, MEM - 68, "used ring at GPA 0x3fffbc+0x46");
	expect_bad_config(&vq, 8, 1ULL << 40, AVAIL_GPA, USED_GPA, "outside RAM");
	expect_bad_config(&vq, 8, DESC_GPA, AVAIL_GPA, 0xc0000000ULL, "outside RAM");
	expect_bad_config(&vq, 8, UINT64_MAX & ~15ULL, AVAIL_GPA, USED_GPA, "outside RAM");
	expect_bad_config(&vq, 1024, MEM - 16 * 512, AVAIL_GPA, USED_GPA, "outside RAM");
	CHECK_EQ(gmem_attr_set_private(gm, USED_GPA, PAGE, true), 0);
	expect_bad_config(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA,
			  "used ring at GPA 0x30000+0x46 is in private memory");
	CHECK_EQ(gmem_attr_set_private(gm, USED_GPA, PAGE, false), 0);

	/* The edges that are fine: sizes 1 and VQ_MAX_SIZE, each ring at the end of RAM. */
	CHECK_EQ(vq_configure(&vq, 1, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK(vq.ready);
	CHECK_EQ(vq.size, 1);
	CHECK_EQ(vq_configure(&vq, VQ_MAX_SIZE, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq.size, VQ_MAX_SIZE);
	CHECK_EQ(vq_configure(&vq, 8, MEM - 16 * 8, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, MEM - 22, USED_GPA), 0);
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, MEM - 72), 0); /* 4-aligned, 70 long */
	CHECK_EQ(vq_configure(&vq, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 4), 0);
	CHECK_EQ(vq.used_gpa, USED_GPA + 4);
	/* A rejected layout leaves the configured queue working. */
	expect_bad_config(&vq, 3, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 3");
	CHECK(vq.ready);
	CHECK_EQ(vq.used_gpa, USED_GPA + 4);
	gmem_destroy(gm);
}

static void test_no_interrupt(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	struct virtqueue vq;
	struct drv d;

	setup(&vq, &d, gm, 8);
	CHECK(vq_should_interrupt(&vq));
	set_avail_flags(&d, VIRTQ_AVAIL_F_NO_INTERRUPT);
	CHECK(!vq_should_interrupt(&vq));
	/* Read afresh each time: the driver may flip it at any moment. */
	put_desc(&d, 0, BUF_GPA, 16, 0, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(vq_push(&vq, req, 0), 0);
	CHECK(!vq_should_interrupt(&vq));
	set_avail_flags(&d, 0);
	CHECK(vq_should_interrupt(&vq));
	set_avail_flags(&d, 0xfffe); /* other bits mean nothing here */
	CHECK(vq_should_interrupt(&vq));
	vq_reset(&vq);
	CHECK(!vq_should_interrupt(&vq));
	free(req);
	gmem_destroy(gm);
}

static void test_copy(void)
{
	struct gmem *gm = make_gmem();
	struct vq_req *req = new_req();
	/* Readable 3 + 5 + 7 bytes, writable 4 + 6, each on its own page. */
	static const uint32_t lens[5] = { 3, 5, 7, 4, 6 };
	uint8_t stream[15], buf[32], back[8];
	struct virtqueue vq;
	struct drv d;
	unsigned int i, off = 0;

	setup(&vq, &d, gm, 8);
	for (i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < 5; i++) {
		uint64_t gpa = BUF_GPA + PAGE * i + 0x10;
		uint16_t flags = i < 4 ? VIRTQ_DESC_F_NEXT : 0;

		if (i >= 3)
			flags |= VIRTQ_DESC_F_WRITE;

		put_desc(&d, (uint16_t)i, gpa, lens[i], flags, (uint16_t)(i + 1));
		if (i < 3) {
			put(gm, gpa, stream + off, lens[i]);
			off += lens[i];
		} else {
			put(gm, gpa, (uint8_t[8]){ 0 }, 8);
		}
	}
	publish(&d, 0);
	CHECK_EQ(vq_pop(&vq, req), 1);
	CHECK_EQ(req->nr_out, 3);
	CHECK_EQ(req->out_len, 15);
	CHECK_EQ(req->in_len, 10);

	memset(buf, 0, sizeof(buf));
	CHECK_EQ(vq_copy_from(req, 0, buf, sizeof(buf)), 15); /* all of it, no writable bytes */
	CHECK(memcmp(buf, stream, 15) == 0);
	CHECK_EQ(buf[15], 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(vq_copy_from(req, 2, buf, 8), 8); /* across segs 0 -> 1 -> 2 */
	CHECK(memcmp(buf, stream + 2, 8) == 0);
	CHECK_EQ(buf[8], 0);
	CHECK_EQ(vq_copy_from(req, 3, buf, 5), 5); /* exactly seg 1 */
	CHECK(memcmp(buf, stream + 3, 5) == 0);
	CHECK_EQ(vq_copy_from(req, 14, buf, 10), 1);
	CHECK_EQ(buf[0], stream[14]);
	CHECK_EQ(vq_copy_from(req, 15, buf, 10), 0);
	CHECK_EQ(vq_copy_from(req, 1000, buf, 10), 0);
	CHECK_EQ(vq_copy_from(req, 0, buf, 0), 0);

	/* To the writable part: offset 3 of 4 + 6, across the boundary. */
	CHECK_EQ(vq_copy_to(req, 3, "abcdefg", 7), 7);
	CHECK_EQ(gmem_read(gm, BUF_GPA + 3 * PAGE + 0x10, back, 4), 0);
	CHECK(memcmp(back, "\0\0\0a", 4) == 0);
	CHECK_EQ(gmem_read(gm, BUF_GPA + 4 * PAGE + 0x10, back, 8), 0);
	CHECK(memcmp(back, "bcdefg\0\0", 8) == 0); /* nothing past the segment */
	CHECK_EQ(vq_copy_to(req, 8, "XYZ", 3), 2);
	CHECK_EQ(gmem_read(gm, BUF_GPA + 4 * PAGE + 0x10, back, 8), 0);
	CHECK(memcmp(back, "bcdeXY\0\0", 8) == 0);
	CHECK_EQ(vq_copy_to(req, 10, "Q", 1), 0);
	CHECK_EQ(vq_copy_to(req, 0, "0123456789ABCDEF", 16), 10);
	/* The readable part is untouched by vq_copy_to. */
	CHECK_EQ(vq_copy_from(req, 0, buf, 15), 15);
	CHECK(memcmp(buf, stream, 15) == 0);
	CHECK_EQ(vq_push(&vq, req, 10), 0);
	check_used(&d, 0, 0, 10);
	/* Released: nothing left to copy through. */
	CHECK_EQ(vq_copy_from(req, 0, buf, 15), 0);
	CHECK_EQ(vq_copy_to(req, 0, buf, 10), 0);
	CHECK_EQ(gmem_read(gm, BUF_GPA + 3 * PAGE + 0x10, back, 4), 0);
	CHECK(memcmp(back, "0123", 4) == 0);
	free(req);
	gmem_destroy(gm);
}

int main(void)
{
	test_good_chain();
	test_wrap();
	test_empty_and_not_ready();
	test_avail_idx_jump();
	test_head_out_of_range();
	test_chain_errors();
	test_long_chains();
	test_pins_per_request();
	test_buffer_under_conversion();
	test_pop_ring_under_conversion();
	test_push_ring_under_conversion();
	test_deferred_then_reset();
	test_used_ring_room();
	test_broken_rings();
	test_configure();
	test_no_interrupt();
	test_copy();
	return test_done("test_virtqueue");
}
