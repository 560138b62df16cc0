/*
 * unit: virtio-balloon behind virtio-mmio, driven as a guest driver would,
 * over a detached gmem.  A free page report of 2 MiB and more is punched
 * (the range reads zeros, its neighbours keep their data); a reported page
 * that a device still pins is not punched (I1), without waiting (the device
 * runs on the I/O thread that would release that pin); inflated PFNs are punched; reports outside
 * RAM or not page-aligned are refused; the report's own buffers are never
 * pinned (or the punch would wait on itself).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon.h"
#include "gmem.h"
#include "mmio.h"
#include "test.h"
#include "virtio_drv.h"

#define MiB (1ULL << 20)
#define MEM (16 * MiB)
#define QSIZE 16
#define DESC(q) (0x10000ULL + (q) * 0x1000ULL)
#define AVAIL(q) (0x20000ULL + (q) * 0x1000ULL)
#define USED(q) (0x30000ULL + (q) * 0x1000ULL)
#define PFNS 0x40000ULL
#define FREE (2 * MiB) /* where the reported ranges start */

struct t {
	struct gmem *gm;
	struct virtio_balloon b;
	struct virtio_mmio mmio;
	uint16_t avail[3];
	uint16_t used_seen[3];
	bool irq;
};

static void set_irq(void *opaque, bool level)
{
	*(bool *)opaque = level;
}

VIRTIO_TEST_DRIVER(struct t)

static uint64_t get64(struct t *t, uint64_t gpa)
{
	uint64_t v = 0xdead;

	CHECK_EQ(gmem_read(t->gm, gpa, &v, 8), 0);
	return v;
}

static void setup(struct t *t)
{
	static const uint8_t zero[0x30000];
	unsigned int q;

	memset(t, 0, sizeof(*t));
	t->gm = test_gmem(MEM, 20);
	CHECK_EQ(virtio_balloon_init(&t->b, t->gm, "virtio-balloon-test"), 0);
	t->b.vdev.set_irq = set_irq;
	t->b.vdev.irq_opaque = &t->irq;
	virtio_mmio_init(&t->mmio, &t->b.vdev);
	put(t, DESC(0), zero, sizeof(zero));
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(t, 0x024, 0);
	wr(t, 0x020, 1u << VIRTIO_BALLOON_F_REPORTING);
	wr(t, 0x024, 1);
	wr(t, 0x020, 1); /* VERSION_1 */
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(t, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	for (q = 0; q < 3; q++) {
		wr(t, 0x030, q);
		wr(t, 0x038, QSIZE);
		wr(t, 0x080, (uint32_t)DESC(q));
		wr(t, 0x090, (uint32_t)AVAIL(q));
		wr(t, 0x0a0, (uint32_t)USED(q));
		wr(t, 0x044, 1);
	}
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			     VIRTIO_STATUS_DRIVER_OK);
	CHECK(rd(t, 0x070) & VIRTIO_STATUS_DRIVER_OK);
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Queues one chain of n ranges on queue q and lets the device serve it. */
static void send(struct t *t, unsigned int q, const uint64_t *gpa, const uint32_t *len,
		 unsigned int n, bool writable)
{
	uint16_t head = 0, slot;
	uint32_t e[2];
	uint16_t used;
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct desc d = { gpa[i], len[i], writable ? VIRTQ_DESC_F_WRITE : 0, 0 };

		if (i + 1 < n) {
			d.flags |= VIRTQ_DESC_F_NEXT;
			d.next = (uint16_t)(i + 1);
		}
		put(t, DESC(q) + i * 16ULL, &d, 16);
	}
	slot = t->avail[q] % QSIZE;
	put(t, AVAIL(q) + 4 + slot * 2, &head, 2);
	t->avail[q]++;
	put(t, AVAIL(q) + 2, &t->avail[q], 2);
	wr(t, 0x050, q);
	balloon_process(&t->b);
	CHECK_EQ(gmem_read(t->gm, USED(q) + 2, &used, 2), 0);
	CHECK_EQ(used, (uint16_t)(t->used_seen[q] + 1));
	CHECK_EQ(gmem_read(t->gm, USED(q) + 4 + (t->used_seen[q] % QSIZE) * 8ULL, e, 8), 0);
	CHECK_EQ(e[0], head);
	t->used_seen[q]++;
}

static void fill(struct t *t, uint64_t gpa, uint64_t len, uint64_t v)
{
	for (uint64_t off = 0; off < len; off += 4096)
		put(t, gpa + off, &v, 8);
}

int main(void)
{
	uint64_t gpa[2], before, after;
	uint32_t len[2], pfn[3];
	struct gmem_pin pin;
	struct t t;

	setup(&t);
	/* A report of 2 MiB + 4 MiB in one chain: both punched, the page after them kept. */
	fill(&t, FREE, 6 * MiB + 4096, 0x1111);
	CHECK_EQ(gmem_allocated_bytes(t.gm, &before), 0);
	gpa[0] = FREE, len[0] = 2 * MiB;
	gpa[1] = FREE + 2 * MiB, len[1] = 4 * MiB;
	send(&t, BALLOON_Q_REPORTING, gpa, len, 2, true);
	CHECK_EQ(get64(&t, FREE), 0);
	CHECK_EQ(get64(&t, FREE + 6 * MiB - 4096), 0);
	CHECK_EQ(get64(&t, FREE + 6 * MiB), 0x1111);
	CHECK_EQ(t.b.stats.reports, 1);
	CHECK_EQ(t.b.stats.reported_bytes, 6 * MiB);
	CHECK_EQ(t.b.stats.discarded_bytes, 6 * MiB);
	CHECK_EQ(gmem_allocated_bytes(t.gm, &after), 0);
	CHECK(after + 5 * MiB <= before); /* the memfd really gave the pages back */
	CHECK(t.irq);
	wr(&t, 0x064, rd(&t, 0x060));
	CHECK(!t.irq);

	/* A reported range a device still pins is not punched (I1), and the device does not wait. */
	fill(&t, FREE, 2 * MiB, 0x2222);
	CHECK_EQ(gmem_pin(t.gm, FREE + 4096, 4096, "dma", 7, &pin), 0);
	gpa[0] = FREE, len[0] = 2 * MiB;
	send(&t, BALLOON_Q_REPORTING, gpa, len, 1, true);
	CHECK_EQ(t.b.stats.discard_busy, 1);
	CHECK_EQ(t.b.stats.discard_errors, 0);
	CHECK_EQ(get64(&t, FREE + 4096), 0x2222);
	gmem_unpin(&pin);

	/* Outside RAM, or not whole pages: refused, nothing else touched. */
	gpa[0] = MEM, len[0] = 2 * MiB;
	gpa[1] = FREE + 100, len[1] = 4096;
	send(&t, BALLOON_Q_REPORTING, gpa, len, 2, true);
	CHECK_EQ(t.b.stats.discard_errors, 2);
	CHECK_EQ(get64(&t, FREE), 0x2222);

	/* Inflate: 32-bit PFNs in a readable buffer; those pages are punched. */
	fill(&t, 8 * MiB, 3 * 4096, 0x3333);
	pfn[0] = 8 * MiB / 4096, pfn[1] = pfn[0] + 2, pfn[2] = (uint32_t)(MEM / 4096); /* last: outside */
	put(&t, PFNS, pfn, sizeof(pfn));
	gpa[0] = PFNS, len[0] = sizeof(pfn);
	send(&t, BALLOON_Q_INFLATE, gpa, len, 1, false);
	CHECK_EQ(t.b.stats.inflated_pages, 3);
	CHECK_EQ(get64(&t, 8 * MiB), 0);
	CHECK_EQ(get64(&t, 8 * MiB + 4096), 0x3333);
	CHECK_EQ(get64(&t, 8 * MiB + 8192), 0);
	CHECK_EQ(t.b.stats.discard_errors, 3);
	CHECK_EQ(t.b.stats.malformed, 0);

	/*
	 * A 1 MiB inflate buffer holds 262144 PFNs: only the first 256 are
	 * served (as Linux sends), or one request holds the I/O thread for
	 * as many punches (found by vdev_balloon_lf: 38 s).
	 */
	{
		uint32_t *many = malloc(MiB);
		uint64_t big = 12 * MiB, pages = 10 * MiB;

		for (uint32_t i = 0; i < MiB / 4; i++)
			many[i] = i < 300 ? (uint32_t)(pages / 4096) + i : (uint32_t)(MEM / 4096);
		fill(&t, pages, 300 * 4096, 0x4444);
		put(&t, big, many, MiB);
		gpa[0] = big, len[0] = MiB;
		send(&t, BALLOON_Q_INFLATE, gpa, len, 1, false);
		CHECK_EQ(t.b.stats.inflated_pages, 3 + 256);
		CHECK_EQ(t.b.stats.malformed, 1);
		CHECK_EQ(get64(&t, pages + 255 * 4096), 0);
		CHECK_EQ(get64(&t, pages + 256 * 4096), 0x4444);
		free(many);
	}

	/*
	 * A target (vm.resize's desired_balloon): num_pages in the config
	 * space, a configuration interrupt (ISR bit 1, a new generation); the
	 * guest inflates towards it, and the pages it gives up read zeros; it
	 * reports actual; a deflate is counted and leaves the pages zeroed.
	 */
	{
		uint64_t discarded = t.b.stats.discarded_bytes, inflated = t.b.stats.inflated_pages;
		uint32_t gen = rd(&t, 0x0fc);
		uint64_t pages = 13 * MiB;

		wr(&t, 0x064, rd(&t, 0x060));
		CHECK(!t.irq);
		CHECK_EQ(rd(&t, 0x100), 0);
		virtio_balloon_set_target(&t.b, 3);
		CHECK(t.irq);
		CHECK_EQ(rd(&t, 0x060), VIRTIO_ISR_CONFIG);
		CHECK(rd(&t, 0x0fc) != gen);
		CHECK_EQ(rd(&t, 0x100), 3);
		wr(&t, 0x064, VIRTIO_ISR_CONFIG);
		CHECK(!t.irq);
		fill(&t, pages, 3 * 4096, 0x5555);
		pfn[0] = (uint32_t)(pages / 4096), pfn[1] = pfn[0] + 1, pfn[2] = pfn[0] + 2;
		put(&t, PFNS, pfn, sizeof(pfn));
		gpa[0] = PFNS, len[0] = sizeof(pfn);
		send(&t, BALLOON_Q_INFLATE, gpa, len, 1, false);
		wr(&t, 0x104, 3);
		CHECK_EQ(virtio_balloon_actual(&t.b), 3);
		CHECK_EQ(rd(&t, 0x104), 3);
		CHECK_EQ(get64(&t, pages), 0);
		CHECK_EQ(get64(&t, pages + 8192), 0);
		CHECK_EQ(t.b.stats.inflated_pages, inflated + 3);
		CHECK_EQ(t.b.stats.discarded_bytes, discarded + 3 * 4096);
		CHECK_EQ(t.b.stats.deflated_pages, 0);
		/* Back to 0: the guest deflates two, the device punches nothing more. */
		wr(&t, 0x064, rd(&t, 0x060));
		virtio_balloon_set_target(&t.b, 0);
		CHECK_EQ(rd(&t, 0x060), VIRTIO_ISR_CONFIG);
		CHECK_EQ(rd(&t, 0x100), 0);
		send(&t, BALLOON_Q_DEFLATE, gpa, len, 1, false);
		CHECK_EQ(t.b.stats.deflated_pages, 3);
		CHECK_EQ(t.b.stats.inflated_pages, inflated + 3);
		CHECK_EQ(t.b.stats.discarded_bytes, discarded + 3 * 4096);
		CHECK_EQ(t.b.stats.targets, 2);
		/* A device reset forgets actual, not the target. */
		virtio_balloon_set_target(&t.b, 5);
		wr(&t, 0x070, 0);
		CHECK_EQ(virtio_balloon_actual(&t.b), 0);
		CHECK_EQ(rd(&t, 0x100), 5);
	}

	virtio_balloon_destroy(&t.b);
	gmem_destroy(t.gm);
	return test_done("virtio_balloon");
}
