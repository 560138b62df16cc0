/*
 * unit: virtio-blk behind the virtio-mmio transport, driven the way a guest
 * driver drives it (register writes through the bus ops, rings in a
 * detached gmem), with a test backend that holds I/O until the test
 * completes it.  Covers: the register file and feature negotiation, every
 * request type and its failures (read-only, beyond the end, short header,
 * unknown type, no status byte), the interrupt line and its ack, a broken
 * ring putting the device into NEEDS_RESET, a reset, and the I1 contract: a
 * conversion of a buffer under in-flight I/O waits, names the device, and
 * succeeds once the request completed; a queue or device reset with I/O in
 * flight (the late completion writes nothing and lets its pins go); and a
 * completion whose used ring is under conversion (deferred, not waited for).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "blk.h"
#include "gmem.h"
#include "mmio.h"
#include "test.h"
#include "virtio_drv.h"

#define MiB (1ULL << 20)
#define MEM (8 * MiB)
#define QSIZE 32 /* room for 10 slots of 3 descriptors */
#define DESC 0x10000ULL
#define AVAIL 0x11000ULL
#define USED 0x12000ULL
#define HDR 0x20000ULL    /* request headers, 16 bytes each, one page per slot */
#define DATA 0x100000ULL  /* data buffers, 64 KiB per slot */
#define STATUS 0x80000ULL /* status bytes, one per slot */
#define DISK_SECTORS 2048 /* 1 MiB */

/* The test backend: a RAM disk; I/O waits in a list until complete_all(). */
struct backend {
	uint8_t disk[DISK_SECTORS * 512];
	struct blk_io *pending[BLK_MAX_INFLIGHT];
	unsigned int nr_pending;
	bool fail;
};

static int be_submit(void *opaque, struct blk_io *io)
{
	struct backend *be = opaque;

	if (be->fail)
		return -EIO;
	be->pending[be->nr_pending++] = io;
	return 0;
}

static const struct blk_backend_ops be_ops = { .submit = be_submit };

static void complete_all(struct backend *be)
{
	while (be->nr_pending) {
		struct blk_io *io = be->pending[--be->nr_pending];
		uint64_t off = io->offset, done = 0;
		unsigned int i;

		for (i = 0; i < io->niov; i++) {
			if (io->op == BLK_OP_READ)
				memcpy(io->iov[i].iov_base, be->disk + off, io->iov[i].iov_len);
			else if (io->op == BLK_OP_WRITE)
				memcpy(be->disk + off, io->iov[i].iov_base, io->iov[i].iov_len);
			off += io->iov[i].iov_len;
			done += io->iov[i].iov_len;
		}
		if (io->op == BLK_OP_DISCARD || io->op == BLK_OP_WRITE_ZEROES)
			memset(be->disk + io->offset, 0, io->len);
		io->result = (int)done;
		blk_io_done(io);
	}
}

struct irq {
	bool level;
	unsigned int raised;
};

static void set_irq(void *opaque, bool level)
{
	struct irq *irq = opaque;

	if (level && !irq->level)
		irq->raised++;
	irq->level = level;
}

struct t {
	struct gmem *gm;
	struct virtio_blk blk;
	struct virtio_mmio mmio;
	struct backend *be;
	struct irq irq;
	unsigned int kicks;
	uint16_t avail_idx;
	uint16_t used_seen;
};

static void kick(void *opaque)
{
	struct t *t = opaque;

	t->kicks++;
}

VIRTIO_TEST_DRIVER(struct t)

static uint8_t get8(struct t *t, uint64_t gpa)
{
	uint8_t v = 0xee;

	CHECK_EQ(gmem_read(t->gm, gpa, &v, 1), 0);
	return v;
}

/* Zeroed rings and queue 0 set up and enabled (QueueReady=1), as a driver does. */
static void queue_up(struct t *t)
{
	static const uint8_t zero[0x3000];

	put(t, DESC, zero, sizeof(zero));
	t->avail_idx = t->used_seen = 0;
	wr(t, 0x030, 0);
	CHECK_EQ(rd(t, 0x034), BLK_QUEUE_SIZE);
	wr(t, 0x038, QSIZE);
	wr(t, 0x080, (uint32_t)DESC);
	wr(t, 0x084, 0);
	wr(t, 0x090, (uint32_t)AVAIL);
	wr(t, 0x094, 0);
	wr(t, 0x0a0, (uint32_t)USED);
	wr(t, 0x0a4, 0);
	wr(t, 0x044, 1);
	CHECK_EQ(rd(t, 0x044), 1);
}

/* The driver's bring-up sequence (virtio 1.2 §3.1.1); false if the device refused. */
static bool bring_up(struct t *t, uint64_t features)
{
	wr(t, 0x070, 0);
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(t, 0x024, 0);
	wr(t, 0x020, (uint32_t)features);
	wr(t, 0x024, 1);
	wr(t, 0x020, (uint32_t)(features >> 32));
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (!(rd(t, 0x070) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	queue_up(t);
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			     VIRTIO_STATUS_DRIVER_OK);
	return rd(t, 0x070) & VIRTIO_STATUS_DRIVER_OK;
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/*
 * Queues request slot s: header (type, sector), then data (len bytes,
 * device-writable for IN and GET_ID) unless len is 0, then a 1-byte status
 * unless no_status.  Returns the head index.
 */
static uint16_t submit(struct t *t, unsigned int s, uint32_t type, uint64_t sector, uint32_t len,
		       bool no_status, uint32_t hdr_len)
{
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr = { type, 0, sector };
	uint16_t head = (uint16_t)(s * 3), i = head;
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct desc d[3];
	unsigned int n = 0;
	uint16_t slot;

	put(t, HDR + s * 0x1000, &hdr, sizeof(hdr));
	d[n++] = (struct desc){ HDR + s * 0x1000, hdr_len, 0, 0 };
	if (len)
		d[n++] = (struct desc){ DATA + s * 0x10000ULL, len,
					dev_writes ? VIRTQ_DESC_F_WRITE : 0, 0 };
	if (!no_status)
		d[n++] = (struct desc){ STATUS + s, 1, VIRTQ_DESC_F_WRITE, 0 };
	for (unsigned int k = 0; k < n; k++) {
		if (k + 1 < n) {
			d[k].flags |= VIRTQ_DESC_F_NEXT;
			d[k].next = (uint16_t)(i + 1);
		}
		put(t, DESC + (uint64_t)i * 16, &d[k], 16);
		i++;
	}
	put(t, STATUS + s, &(uint8_t){ 0xee }, 1);
	slot = t->avail_idx % QSIZE;
	put(t, AVAIL + 4 + slot * 2, &head, 2);
	t->avail_idx++;
	put(t, AVAIL + 2, &t->avail_idx, 2);
	return head;
}

/* The next used element: its id and len. */
static bool used(struct t *t, uint32_t *id, uint32_t *len)
{
	uint16_t idx;
	uint32_t e[2];

	CHECK_EQ(gmem_read(t->gm, USED + 2, &idx, 2), 0);
	if (idx == t->used_seen)
		return false;
	CHECK_EQ(gmem_read(t->gm, USED + 4 + (t->used_seen % QSIZE) * 8ULL, e, 8), 0);
	t->used_seen++;
	*id = e[0];
	*len = e[1];
	return true;
}

/* Kicks, runs the device, completes the backend's I/O; returns the slot's status byte. */
static uint8_t run(struct t *t, unsigned int s, uint16_t head, uint32_t want_len)
{
	uint32_t id = 0, len = 0;

	wr(t, 0x050, 0);
	blk_process(&t->blk);
	complete_all(t->be);
	CHECK(used(t, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, want_len);
	return get8(t, STATUS + s);
}

/* drain_ms bounds a conversion's wait for pins (and a waiting pin's for a conversion). */
static void setup_drain(struct t *t, bool ro, uint64_t drain_ms)
{
	memset(t, 0, sizeof(*t));
	t->gm = test_gmem(MEM, drain_ms);
	t->be = calloc(1, sizeof(*t->be));
	if (!t->be)
		exit(1);
	CHECK_EQ(virtio_blk_init(&t->blk, t->gm, "virtio-blk-test", DISK_SECTORS * 512ULL, ro,
				 "veil-test-disk"), 0);
	t->blk.backend = &be_ops;
	t->blk.backend_opaque = t->be;
	t->blk.kick = kick;
	t->blk.kick_opaque = t;
	t->blk.vdev.set_irq = set_irq;
	t->blk.vdev.irq_opaque = &t->irq;
	virtio_mmio_init(&t->mmio, &t->blk.vdev);
}

static void setup(struct t *t, bool ro)
{
	setup_drain(t, ro, 20);
}

static void teardown(struct t *t)
{
	virtio_blk_destroy(&t->blk);
	gmem_destroy(t->gm);
	free(t->be);
}

static void test_registers(void)
{
	struct t t;
	uint64_t cap = 0;
	uint32_t v;

	setup(&t, false);
	CHECK_EQ(rd(&t, 0x000), 0x74726976);
	CHECK_EQ(rd(&t, 0x004), 2);
	CHECK_EQ(rd(&t, 0x008), VIRTIO_ID_BLOCK);
	wr(&t, 0x014, 1);
	CHECK(rd(&t, 0x010) & 1); /* VERSION_1 is bit 32 */
	wr(&t, 0x014, 0);
	v = rd(&t, 0x010);
	CHECK(v & (1u << VIRTIO_BLK_F_FLUSH));
	CHECK(v & (1u << VIRTIO_BLK_F_DISCARD));
	CHECK(!(v & (1u << VIRTIO_BLK_F_RO)));
	/* Config space: capacity in sectors, read in two 4-byte halves. */
	CHECK_EQ(virtio_mmio_ops.read(&t.mmio, 0x100, &cap, 4), 0);
	CHECK_EQ(virtio_mmio_ops.read(&t.mmio, 0x104, (uint8_t *)&cap + 4, 4), 0);
	CHECK_EQ(cap, DISK_SECTORS);
	/* Refused: misaligned or odd-sized register accesses, config beyond its end. */
	CHECK_EQ(virtio_mmio_ops.read(&t.mmio, 0x002, &v, 4), -EINVAL);
	CHECK_EQ(virtio_mmio_ops.read(&t.mmio, 0x000, &v, 2), -EINVAL);
	CHECK_EQ(virtio_mmio_ops.read(&t.mmio, 0x100 + 60, &v, 4), -EINVAL);
	/* Features without VERSION_1 (legacy), or beyond what we offer: FEATURES_OK refused. */
	CHECK(!bring_up(&t, 1ULL << VIRTIO_BLK_F_FLUSH));
	CHECK(!bring_up(&t, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 40));
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH));
	teardown(&t);
}

static void test_requests(void)
{
	uint8_t buf[1024], id[BLK_ID_BYTES + 1] = "";
	struct t t;
	uint16_t h;

	setup(&t, false);
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	/* Write 2 sectors at sector 10, read them back. */
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	put(&t, DATA, buf, sizeof(buf));
	h = submit(&t, 0, VIRTIO_BLK_T_OUT, 10, 1024, false, 16);
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_OK);
	CHECK(memcmp(t.be->disk + 10 * 512, buf, sizeof(buf)) == 0);
	CHECK(t.irq.level);
	CHECK_EQ(rd(&t, 0x060), VIRTIO_ISR_QUEUE);
	wr(&t, 0x064, VIRTIO_ISR_QUEUE);
	CHECK(!t.irq.level);
	h = submit(&t, 1, VIRTIO_BLK_T_IN, 10, 1024, false, 16);
	CHECK_EQ(run(&t, 1, h, 1025), VIRTIO_BLK_S_OK);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(gmem_read(t.gm, DATA + 0x10000, buf, sizeof(buf)), 0);
	CHECK(memcmp(t.be->disk + 10 * 512, buf, sizeof(buf)) == 0);
	/* Flush, GET_ID, discard, write-zeroes. */
	h = submit(&t, 2, VIRTIO_BLK_T_FLUSH, 0, 0, false, 16);
	CHECK_EQ(run(&t, 2, h, 1), VIRTIO_BLK_S_OK);
	h = submit(&t, 3, VIRTIO_BLK_T_GET_ID, 0, BLK_ID_BYTES, false, 16);
	CHECK_EQ(run(&t, 3, h, BLK_ID_BYTES + 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(gmem_read(t.gm, DATA + 3 * 0x10000ULL, id, BLK_ID_BYTES), 0);
	CHECK(strcmp((char *)id, "veil-test-disk") == 0);
	{
		struct { uint64_t sector; uint32_t n, flags; } seg = { 10, 2, 0 };

		put(&t, DATA + 4 * 0x10000ULL, &seg, sizeof(seg));
		h = submit(&t, 4, VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), false, 16);
		CHECK_EQ(run(&t, 4, h, 1), VIRTIO_BLK_S_OK);
		CHECK(t.be->disk[10 * 512] == 0 && t.be->disk[12 * 512 - 1] == 0);
		seg.flags = 1; /* UNMAP: allowed for write-zeroes, not for discard */
		put(&t, DATA + 5 * 0x10000ULL, &seg, sizeof(seg));
		h = submit(&t, 5, VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), false, 16);
		CHECK_EQ(run(&t, 5, h, 1), VIRTIO_BLK_S_UNSUPP);
		h = submit(&t, 5, VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(seg), false, 16);
		CHECK_EQ(run(&t, 5, h, 1), VIRTIO_BLK_S_OK);
		seg = (typeof(seg)){ DISK_SECTORS - 1, 2, 0 };
		put(&t, DATA + 6 * 0x10000ULL, &seg, sizeof(seg));
		h = submit(&t, 6, VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(seg), false, 16);
		CHECK_EQ(run(&t, 6, h, 1), VIRTIO_BLK_S_IOERR);
	}
	/* Failures answered without I/O. */
	h = submit(&t, 0, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024, false, 16); /* past the end */
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_IOERR);
	h = submit(&t, 0, VIRTIO_BLK_T_IN, 0, 1000, false, 16); /* not whole sectors */
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_IOERR);
	h = submit(&t, 0, VIRTIO_BLK_T_IN, ~0ULL / 512, 512, false, 16); /* sector overflow */
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_IOERR);
	h = submit(&t, 0, 99, 0, 0, false, 16); /* unknown type */
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_UNSUPP);
	h = submit(&t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, false, 8); /* short header */
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_IOERR);
	h = submit(&t, 0, VIRTIO_BLK_T_OUT, 0, 512, true, 16); /* no status byte */
	CHECK_EQ(run(&t, 0, h, 0), 0xee);
	/* A backend that cannot start I/O: IOERR. */
	t.be->fail = true;
	h = submit(&t, 0, VIRTIO_BLK_T_IN, 0, 512, false, 16);
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_IOERR);
	t.be->fail = false;
	CHECK(t.blk.stats.errors >= 8);
	CHECK_EQ(t.blk.stats.malformed, 1);
	CHECK(t.kicks > 0); /* a QueueNotify write through the bus reaches the owner's kick */
	teardown(&t);
}

static void test_read_only(void)
{
	struct t t;
	uint16_t h;
	uint32_t v;

	setup(&t, true);
	wr(&t, 0x014, 0);
	v = rd(&t, 0x010);
	CHECK(v & (1u << VIRTIO_BLK_F_RO));
	CHECK(!(v & (1u << VIRTIO_BLK_F_DISCARD)));
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_RO));
	t.be->disk[0] = 0x5a;
	h = submit(&t, 0, VIRTIO_BLK_T_OUT, 0, 512, false, 16);
	CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(t.be->disk[0], 0x5a);
	h = submit(&t, 1, VIRTIO_BLK_T_IN, 0, 512, false, 16);
	CHECK_EQ(run(&t, 1, h, 513), VIRTIO_BLK_S_OK);
	CHECK_EQ(get8(&t, DATA + 0x10000), 0x5a);
	teardown(&t);
}

/* I1: a conversion of a buffer under in-flight I/O waits and names the device; then succeeds. */
static void test_pins(void)
{
	uint8_t pat[4096];
	struct gmem_conv_result res;
	struct t t;
	uint32_t id, len;
	uint16_t h;

	setup(&t, false);
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	h = submit(&t, 0, VIRTIO_BLK_T_IN, 0, 4096, false, 16);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK_EQ(t.be->nr_pending, 1);
	CHECK_EQ(gmem_convert(t.gm, DATA, 4096, true, &res), -ETIMEDOUT);
	CHECK_STR_CONTAINS(res.culprit, "virtio-blk-test");
	CHECK_EQ(gmem_discard(t.gm, DATA, 4096, &res), -ETIMEDOUT);
	complete_all(t.be);
	CHECK(used(&t, &id, &len));
	CHECK_EQ(id, h);
	memset(pat, 0x77, sizeof(pat));
	put(&t, DATA, pat, sizeof(pat));
	CHECK_EQ(gmem_convert(t.gm, DATA, 4096, true, &res), 0);
	/*
	 * A request into private memory is refused before any I/O: nothing pinned, no data
	 * written; it fails as an I/O error in its status byte, which the guest shared.
	 */
	h = submit(&t, 0, VIRTIO_BLK_T_IN, 0, 4096, false, 16);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK_EQ(t.be->nr_pending, 0);
	CHECK(used(&t, &id, &len));
	CHECK_EQ(id, h);
	CHECK_EQ(len, 1);
	CHECK_EQ(get8(&t, STATUS), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(t.blk.stats.malformed, 1);
	CHECK_EQ(t.blk.stats.errors, 1);
	CHECK_EQ(t.blk.vdev.vq[0].stats.refused_private, 1);
	CHECK_EQ(gmem_convert(t.gm, DATA, 4096, false, &res), 0);
	CHECK_EQ(get8(&t, DATA), 0x77);
	CHECK_EQ(get8(&t, DATA + 4095), 0x77);
	/* With its status byte private too, nothing at all is written: used, length 0. */
	CHECK_EQ(gmem_convert(t.gm, DATA, 4096, true, &res), 0);
	h = submit(&t, 0, VIRTIO_BLK_T_IN, 0, 4096, false, 16); /* status preset to 0xee */
	CHECK_EQ(gmem_convert(t.gm, STATUS, 4096, true, &res), 0);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK(used(&t, &id, &len));
	CHECK_EQ(id, h);
	CHECK_EQ(len, 0);
	CHECK_EQ(gmem_convert(t.gm, STATUS, 4096, false, &res), 0);
	CHECK_EQ(get8(&t, STATUS), 0xee);
	teardown(&t);
}

static void test_broken_ring_and_reset(void)
{
	struct t t;
	uint16_t bad = 1000;

	setup(&t, false);
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	/* The avail idx runs more than the queue size ahead: NEEDS_RESET, config interrupt. */
	put(&t, AVAIL + 2, &bad, 2);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK(rd(&t, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(rd(&t, 0x060) & VIRTIO_ISR_CONFIG);
	CHECK(t.irq.level);
	/* The driver cannot clear NEEDS_RESET but by a reset. */
	wr(&t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK(rd(&t, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	wr(&t, 0x070, 0);
	CHECK_EQ(rd(&t, 0x070), 0);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK(!t.irq.level);
	/* A queue whose rings leave RAM: NEEDS_RESET at QueueReady. */
	wr(&t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(&t, 0x030, 0);
	wr(&t, 0x038, QSIZE);
	wr(&t, 0x080, 0xfffff000);
	wr(&t, 0x044, 1);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK(rd(&t, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	/* A size above QueueNumMax, rings otherwise fine: NEEDS_RESET at QueueReady. */
	wr(&t, 0x070, 0);
	wr(&t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(&t, 0x030, 0);
	wr(&t, 0x038, 2 * BLK_QUEUE_SIZE);
	wr(&t, 0x080, (uint32_t)DESC);
	wr(&t, 0x090, (uint32_t)AVAIL);
	wr(&t, 0x0a0, (uint32_t)USED);
	wr(&t, 0x044, 1);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK(rd(&t, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	wr(&t, 0x070, 0);
	/* And it comes back after a reset. */
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	{
		uint16_t h = submit(&t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, false, 16);

		CHECK_EQ(run(&t, 0, h, 1), VIRTIO_BLK_S_OK);
	}
	teardown(&t);
}

static uint16_t used_idx(struct t *t)
{
	uint16_t idx = 0xdead;

	CHECK_EQ(gmem_read(t->gm, USED + 2, &idx, 2), 0);
	return idx;
}

/* Whether the page at gpa can be converted now, i.e. nothing pins it; undone after. */
static bool convertible(struct t *t, uint64_t gpa)
{
	struct gmem_conv_result res;

	if (gmem_convert(t->gm, gpa, 4096, true, &res))
		return false;
	CHECK_EQ(gmem_convert(t->gm, gpa, 4096, false, &res), 0);
	return true;
}

/*
 * QueueReady=0 with a read in flight, the queue set up again on zeroed
 * rings, then the read completes: it writes neither the new used ring nor
 * the status byte, its pins go (the buffer converts), the device stays
 * healthy and the next request completes normally.
 */
static void test_queue_reset_in_flight(void)
{
	struct t t;
	uint32_t id, len;
	uint16_t h;

	setup(&t, false);
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	submit(&t, 0, VIRTIO_BLK_T_IN, 0, 4096, false, 16);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK_EQ(t.be->nr_pending, 1);
	CHECK(!convertible(&t, DATA));
	wr(&t, 0x044, 0);
	CHECK_EQ(rd(&t, 0x044), 0);
	queue_up(&t);
	complete_all(t.be);
	CHECK_EQ(used_idx(&t), 0);
	CHECK_EQ(get8(&t, STATUS), 0xee);
	CHECK_EQ(t.blk.vdev.vq[0].stale, 1);
	CHECK_EQ(t.blk.inflight, 0);
	CHECK(!(rd(&t, 0x070) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK(convertible(&t, DATA));
	CHECK(convertible(&t, STATUS));
	h = submit(&t, 1, VIRTIO_BLK_T_FLUSH, 0, 0, false, 16);
	CHECK_EQ(run(&t, 1, h, 1), VIRTIO_BLK_S_OK);
	CHECK(!used(&t, &id, &len));
	teardown(&t);
}

struct late {
	struct backend *be;
	int delay_ms;
};

static void *complete_later(void *arg)
{
	struct late *l = arg;
	struct timespec ts = { 0, l->delay_ms * 1000000L };

	nanosleep(&ts, NULL);
	complete_all(l->be);
	return NULL;
}

/*
 * A device reset with a read in flight waits for it (bounded): the
 * completion, on another thread, is dropped; after the reset nothing is in
 * flight or pinned and the device comes back.
 */
static void test_device_reset_in_flight(void)
{
	struct late l = { .delay_ms = 50 };
	struct t t;
	pthread_t th;

	setup(&t, false);
	l.be = t.be;
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	submit(&t, 0, VIRTIO_BLK_T_IN, 0, 4096, false, 16);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK_EQ(t.be->nr_pending, 1);
	CHECK_EQ(pthread_create(&th, NULL, complete_later, &l), 0);
	wr(&t, 0x070, 0);
	pthread_join(th, NULL);
	CHECK_EQ(t.blk.inflight, 0);
	CHECK_EQ(used_idx(&t), 0);
	CHECK(convertible(&t, DATA));
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	{
		uint16_t h = submit(&t, 1, VIRTIO_BLK_T_FLUSH, 0, 0, false, 16);

		CHECK_EQ(run(&t, 1, h, 1), VIRTIO_BLK_S_OK);
	}
	teardown(&t);
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The reported freeze, on the device: a conversion over the used ring and
 * the buffers of a read in flight, held open by another pin until the
 * completion path has returned.  The completion returns at once and asks
 * to be run again; the conversion then completes, and the run publishes
 * the read with its status and interrupts.
 */
static void test_completion_ring_under_conversion(void)
{
	struct roundtrip r = { .gpa = USED, .len = DATA + 0x1000 - USED };
	struct timespec ms1 = { 0, 1000000 };
	struct gmem_pin hold, probe;
	uint32_t id = 0, len = 0;
	unsigned int i;
	struct t t;
	uint16_t h;
	uint64_t t0;
	pthread_t th;

	setup_drain(&t, false, 3000);
	r.gm = t.gm;
	CHECK(bring_up(&t, 1ULL << VIRTIO_F_VERSION_1));
	t.be->disk[0] = 0x77;
	h = submit(&t, 0, VIRTIO_BLK_T_IN, 0, 4096, false, 16);
	wr(&t, 0x050, 0);
	blk_process(&t.blk);
	CHECK_EQ(t.be->nr_pending, 1);
	CHECK_EQ(gmem_pin(t.gm, USED + 0x800, 8, "holder", 1, &hold), 0);
	CHECK_EQ(pthread_create(&th, NULL, roundtrip_range, &r), 0);
	for (i = 0; i < 5000 && gmem_pin_try(t.gm, USED, 1, "probe", 0, &probe) == 0; i++) {
		gmem_unpin(&probe);
		nanosleep(&ms1, NULL);
	}
	CHECK(i < 5000);
	t0 = now_ms();
	complete_all(t.be);
	CHECK(now_ms() - t0 < 1000);
	CHECK(virtio_dev_take_retry(&t.blk.vdev));
	CHECK_EQ(t.blk.vdev.vq[0].nr_pending, 1);
	CHECK(!(t.blk.vdev.status & VIRTIO_STATUS_NEEDS_RESET));
	gmem_unpin(&hold);
	pthread_join(th, NULL);
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(used_idx(&t), 0);
	CHECK(!t.irq.level);
	blk_process(&t.blk); /* the retry */
	CHECK(used(&t, &id, &len));
	CHECK_EQ(id, h);
	CHECK_EQ(len, 4097);
	CHECK_EQ(get8(&t, STATUS), VIRTIO_BLK_S_OK);
	CHECK_EQ(get8(&t, DATA), 0x77);
	CHECK(t.irq.level);
	teardown(&t);
}

int main(void)
{
	test_registers();
	test_requests();
	test_read_only();
	test_pins();
	test_broken_ring_and_reset();
	test_queue_reset_in_flight();
	test_device_reset_in_flight();
	test_completion_ring_under_conversion();
	return test_done("virtio_blk");
}
