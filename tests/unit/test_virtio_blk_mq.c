/*
 * unit: a multiqueue virtio-blk (VIRTIO_BLK_F_MQ, three queues) behind
 * virtio-pci, driven as Linux drives it: one MSI-X vector per queue.
 * Covers: MQ offered and negotiated with num_queues in the configuration;
 * a request on queue k kicks queue k, completes in queue k's used ring and
 * signals queue k's vector only; a batch of requests on several queues
 * signals each queue's vector once; a device reset and a NEEDS_RESET with
 * reads in flight on every queue leave no pin behind (gmem's pin counters).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blk.h"
#include "bus.h"
#include "gmem.h"
#include "pci.h"
#include "test.h"
#include "virtio_drv.h"
#include "vpci.h"

#define WIN 0xe0000000ULL
#define WIN_SIZE 0x100000ULL
#define NQ 3
#define QSIZE 16
#define RING(q) (0x10000ULL + (q) * 0x4000ULL) /* desc; avail +0x1000, used +0x2000 */
#define HDR(q, s) (0x40000ULL + (q) * 0x1000ULL + (s) * 16)
#define STATUS(q, s) (0x48000ULL + (q) * 0x100ULL + (s))
#define DATA(q, s) (0x100000ULL + (q) * 0x40000ULL + (s) * 0x1000ULL)
#define CFG_VECTOR NQ

struct t {
	struct bus *bus;
	struct pci_host host;
	struct gmem *gm;
	struct virtio_blk blk;
	struct virtio_pci vp;
	unsigned int slot;
	uint64_t bar;
	struct blk_io *pending[64];
	unsigned int nr_pending;
	unsigned int kicks[NQ], batch_calls, msis[VPCI_VECTORS];
	uint16_t avail[NQ];
};

static int be_submit(void *opaque, struct blk_io *io)
{
	struct t *t = opaque;

	CHECK(t->nr_pending < 64);
	t->pending[t->nr_pending++] = io;
	return 0;
}

static const struct blk_backend_ops be_ops = { .submit = be_submit };

static void kick_queue(void *opaque, unsigned int q)
{
	struct t *t = opaque;

	CHECK(q < NQ);
	if (q < NQ)
		t->kicks[q]++;
}

static void batch(void *opaque)
{
	((struct t *)opaque)->batch_calls++;
}

static void signal_msi(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	struct t *t = opaque;

	CHECK_EQ(addr, 0xfee00000u);
	CHECK_EQ(data, 0x40 + vector); /* the table entry of that vector */
	if (vector < VPCI_VECTORS)
		t->msis[vector]++;
}

static uint32_t bar_rd(struct t *t, uint64_t off, unsigned int len)
{
	uint32_t v = 0;

	CHECK_EQ(bus_dispatch(t->bus, BUS_MMIO, t->bar + off, &v, len, false), 0);
	return v;
}

static void bar_wr(struct t *t, uint64_t off, uint32_t v, unsigned int len)
{
	CHECK_EQ(bus_dispatch(t->bus, BUS_MMIO, t->bar + off, &v, len, true), 0);
}

static void cfg_wr(struct t *t, uint32_t off, uint32_t v, unsigned int len)
{
	uint32_t a = 0x80000000u | t->slot << 11 | (off & 0xfc);

	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_ADDR, &a, 4, true), 0);
	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_DATA + (off & 3), &v, len, true), 0);
}

static void setup(struct t *t, unsigned int nq)
{
	memset(t, 0, sizeof(*t));
	t->gm = test_gmem(4 << 20, 20);
	if (bus_create(&t->bus) || pci_host_init(&t->host, t->bus, WIN, WIN_SIZE, NULL, NULL))
		exit(1);
	CHECK_EQ(virtio_blk_init_mq(&t->blk, t->gm, "virtio-blk-mq-test", 1 << 20, false, "id", nq),
		 0);
	t->blk.backend = &be_ops;
	t->blk.backend_opaque = t;
	t->blk.kick_queue = kick_queue;
	t->blk.kick_opaque = t;
	t->blk.batch = batch;
	t->blk.batch_opaque = t;
	virtio_pci_init(&t->vp, &t->blk.vdev, 0x010000);
	t->vp.signal_msi = signal_msi;
	t->vp.msi_opaque = t;
	CHECK_EQ(pci_host_add(&t->host, &t->vp.pci, &t->slot), 0);
	t->bar = pci_bar_addr(&t->vp.pci, 0);
	cfg_wr(t, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

static void teardown(struct t *t)
{
	virtio_blk_destroy(&t->blk);
	pci_host_destroy(&t->host);
	bus_destroy(t->bus);
	gmem_destroy(t->gm);
}

static uint64_t pins(struct t *t)
{
	uint64_t n, bytes, conv;

	gmem_pin_summary(t->gm, &n, &bytes, &conv);
	return n;
}

/* Linux's bring-up: features (MQ if mq), MSI-X vector q for queue q, NQ for the configuration. */
static bool bring_up(struct t *t, bool mq)
{
	static const uint8_t zero[NQ * 0x4000];
	unsigned int q, nq = (unsigned int)bar_rd(t, 0x12, 2);

	CHECK_EQ(gmem_write(t->gm, RING(0), zero, sizeof(zero)), 0);
	memset(t->avail, 0, sizeof(t->avail));
	bar_wr(t, 0x14, 0, 1);
	bar_wr(t, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	bar_wr(t, 0x08, 0, 4);
	bar_wr(t, 0x0c, mq ? 1U << VIRTIO_BLK_F_MQ : 0, 4);
	bar_wr(t, 0x08, 1, 4);
	bar_wr(t, 0x0c, 1, 4); /* VERSION_1 */
	bar_wr(t, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK, 1);
	if (!(bar_rd(t, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	cfg_wr(t, t->vp.msix_cap + 2, 0x8000, 2);
	for (q = 0; q <= NQ; q++) {
		bar_wr(t, VPCI_MSIX_TABLE + q * 16, 0xfee00000u, 4);
		bar_wr(t, VPCI_MSIX_TABLE + q * 16 + 8, 0x40 + q, 4);
		bar_wr(t, VPCI_MSIX_TABLE + q * 16 + 12, 0, 4);
	}
	bar_wr(t, 0x10, CFG_VECTOR, 2);
	for (q = 0; q < (mq ? nq : 1); q++) {
		bar_wr(t, 0x16, q, 2);
		bar_wr(t, 0x18, QSIZE, 2);
		bar_wr(t, 0x1a, q, 2);
		CHECK_EQ(bar_rd(t, 0x1a, 2), q);
		bar_wr(t, 0x20, (uint32_t)RING(q), 4);
		bar_wr(t, 0x24, 0, 4);
		bar_wr(t, 0x28, (uint32_t)(RING(q) + 0x1000), 4);
		bar_wr(t, 0x2c, 0, 4);
		bar_wr(t, 0x30, (uint32_t)(RING(q) + 0x2000), 4);
		bar_wr(t, 0x34, 0, 4);
		bar_wr(t, 0x1c, 1, 2);
	}
	bar_wr(t, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	return bar_rd(t, 0x14, 1) & VIRTIO_STATUS_DRIVER_OK;
}

/* Queues a 4 KiB read of sector 8*s in slot s of queue q (descriptors 3s..3s+2) and kicks q. */
static void read_req(struct t *t, unsigned int q, unsigned int s)
{
	struct { uint32_t type, reserved; uint64_t sector; } hdr = { VIRTIO_BLK_T_IN, 0, 8 * s };
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d[3] = {
		{ HDR(q, s), 16, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * s + 1) },
		{ DATA(q, s), 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(3 * s + 2) },
		{ STATUS(q, s), 1, VIRTQ_DESC_F_WRITE, 0 },
	};
	uint16_t head = (uint16_t)(3 * s), idx = (uint16_t)(t->avail[q] + 1);
	uint8_t poison = 0xee;

	CHECK_EQ(gmem_write(t->gm, HDR(q, s), &hdr, sizeof(hdr)), 0);
	CHECK_EQ(gmem_write(t->gm, STATUS(q, s), &poison, 1), 0);
	CHECK_EQ(gmem_write(t->gm, RING(q) + 16ULL * head, d, sizeof(d)), 0);
	CHECK_EQ(gmem_write(t->gm, RING(q) + 0x1000 + 4 + 2 * (t->avail[q] % QSIZE), &head, 2), 0);
	CHECK_EQ(gmem_write(t->gm, RING(q) + 0x1000 + 2, &idx, 2), 0);
	t->avail[q] = idx;
	bar_wr(t, VPCI_NOTIFY + q * VPCI_NOTIFY_MULT, q, 2);
}

static uint16_t used_idx(struct t *t, unsigned int q)
{
	uint16_t v = 0xffff;

	CHECK_EQ(gmem_read(t->gm, RING(q) + 0x2000 + 2, &v, 2), 0);
	return v;
}

static uint8_t status(struct t *t, unsigned int q, unsigned int s)
{
	uint8_t v = 0;

	CHECK_EQ(gmem_read(t->gm, STATUS(q, s), &v, 1), 0);
	return v;
}

/* The backend finishes everything pending, as the I/O thread's completions would. */
static void complete_all(struct t *t)
{
	while (t->nr_pending) {
		struct blk_io *io = t->pending[--t->nr_pending];

		io->result = (int)io->len;
		blk_io_done(io);
	}
}

static void test_negotiates_mq(void)
{
	struct t t;

	setup(&t, NQ);
	bar_wr(&t, 0x00, 0, 4);
	CHECK(bar_rd(&t, 0x04, 4) & 1U << VIRTIO_BLK_F_MQ);
	CHECK_EQ(bar_rd(&t, 0x12, 2), NQ);                    /* common cfg: num_queues */
	CHECK_EQ(bar_rd(&t, VPCI_DEVICE_CFG + 34, 2), NQ);    /* virtio_blk_config.num_queues */
	CHECK(bring_up(&t, true));
	bar_wr(&t, 0x08, 0, 4);
	CHECK(bar_rd(&t, 0x0c, 4) & 1U << VIRTIO_BLK_F_MQ);   /* the driver's, accepted */
	for (unsigned int q = 0; q < NQ; q++) {
		bar_wr(&t, 0x16, q, 2);
		CHECK_EQ(bar_rd(&t, 0x1c, 2), 1);
		CHECK_EQ(bar_rd(&t, 0x1e, 2), q);             /* queue_notify_off */
	}
	teardown(&t);
	/* One queue: no MQ offered, num_queues 1. */
	setup(&t, 1);
	bar_wr(&t, 0x00, 0, 4);
	CHECK(!(bar_rd(&t, 0x04, 4) & 1U << VIRTIO_BLK_F_MQ));
	CHECK_EQ(bar_rd(&t, VPCI_DEVICE_CFG + 34, 2), 1);
	teardown(&t);
	CHECK_EQ(virtio_blk_init_mq(&t.blk, NULL, "x", 1 << 20, false, "id", VIRTIO_MAX_QUEUES + 1),
		 -EINVAL);
	CHECK_EQ(virtio_blk_init_mq(&t.blk, NULL, "x", 1 << 20, false, "id", 0), -EINVAL);
}

/* A request on queue k: kick k, used ring k, vector k; nothing on the other queues. */
static void test_queue_k_completes_on_k(void)
{
	struct t t;

	setup(&t, NQ);
	CHECK(bring_up(&t, true));
	for (unsigned int k = 0; k < NQ; k++) {
		memset(t.msis, 0, sizeof(t.msis));
		read_req(&t, k, 0);
		CHECK_EQ(t.kicks[k], 1);
		blk_process_queue(&t.blk, k);
		CHECK_EQ(t.nr_pending, 1);
		CHECK_EQ(t.pending[0]->q, k);
		CHECK_EQ(t.blk.stats.queue_reqs[k], 1);
		complete_all(&t);
		CHECK_EQ(used_idx(&t, k), 1);
		CHECK_EQ(t.msis[k], 0); /* the message waits for the batch end */
		blk_batch_end(&t.blk);
		for (unsigned int q = 0; q < NQ; q++) {
			CHECK_EQ(used_idx(&t, q), q <= k ? 1 : 0);
			CHECK_EQ(t.msis[q], q == k ? 1U : 0U);
		}
		CHECK_EQ(t.msis[CFG_VECTOR], 0);
		CHECK_EQ(status(&t, k, 0), VIRTIO_BLK_S_OK);
	}
	CHECK_EQ(pins(&t), 0);
	teardown(&t);
}

/* Requests on every queue, completed together: one message per queue, all answered. */
static void test_batch_on_several_queues(void)
{
	static const unsigned int n[NQ] = { 4, 5, 2 };
	unsigned int q, s, total = 0;
	struct t t;

	setup(&t, NQ);
	CHECK(bring_up(&t, true));
	for (q = 0; q < NQ; q++) {
		for (s = 0; s < n[q]; s++)
			read_req(&t, q, s);
		CHECK_EQ(t.kicks[q], n[q]);
		blk_process_queue(&t.blk, q);
		total += n[q];
	}
	CHECK_EQ(t.nr_pending, total);
	CHECK_EQ(t.blk.inflight, total);
	CHECK(pins(&t) >= total);
	complete_all(&t);
	CHECK(t.batch_calls > 0);
	CHECK_EQ(pins(&t), 0);
	blk_batch_end(&t.blk);
	for (q = 0; q < NQ; q++) {
		CHECK_EQ(used_idx(&t, q), n[q]);
		CHECK_EQ(t.msis[q], 1);
		for (s = 0; s < n[q]; s++)
			CHECK_EQ(status(&t, q, s), VIRTIO_BLK_S_OK);
	}
	CHECK_EQ(t.blk.stats.signals, NQ);
	CHECK_EQ(t.blk.stats.batches, 1);
	CHECK_EQ(t.blk.stats.reads, total);
	/* A batch end with nothing new signals nothing. */
	blk_batch_end(&t.blk);
	CHECK_EQ(t.blk.stats.signals, NQ);
	teardown(&t);
}

static void *complete_later(void *arg)
{
	struct timespec ts = { 0, 50 * 1000000L };

	nanosleep(&ts, NULL);
	complete_all(arg);
	return NULL;
}

/* Reads in flight on every queue, then reset from the driver: no pin is left, nothing is published. */
static void test_reset_unpins_every_queue(void)
{
	unsigned int q;
	pthread_t th;
	struct t t;

	setup(&t, NQ);
	CHECK(bring_up(&t, true));
	for (q = 0; q < NQ; q++) {
		read_req(&t, q, 0);
		read_req(&t, q, 1);
		blk_process_queue(&t.blk, q);
	}
	CHECK_EQ(t.blk.inflight, 2 * NQ);
	CHECK(pins(&t) >= 2 * NQ);
	CHECK_EQ(pthread_create(&th, NULL, complete_later, &t), 0);
	bar_wr(&t, 0x14, 0, 1); /* waits for the completions, which are dropped */
	pthread_join(th, NULL);
	blk_batch_end(&t.blk);
	CHECK_EQ(t.blk.inflight, 0);
	CHECK_EQ(pins(&t), 0);
	for (q = 0; q < NQ; q++) {
		CHECK_EQ(used_idx(&t, q), 0);
		CHECK_EQ(status(&t, q, 0), 0xee);
		CHECK_EQ(t.msis[q], 0);
	}
	/* It comes back with every queue. */
	CHECK(bring_up(&t, true));
	read_req(&t, 2, 0);
	blk_process_queue(&t.blk, 2);
	complete_all(&t);
	blk_batch_end(&t.blk);
	CHECK_EQ(used_idx(&t, 2), 1);
	CHECK_EQ(t.msis[2], 1);
	teardown(&t);
}

/*
 * A broken ring on queue 1 with reads in flight on queues 0 and 2: NEEDS_RESET
 * on the configuration vector; the reads complete without touching the rings,
 * and every pin goes.
 */
static void test_needs_reset_unpins_every_queue(void)
{
	uint16_t bad = 500;
	struct t t;

	setup(&t, NQ);
	CHECK(bring_up(&t, true));
	read_req(&t, 0, 0);
	read_req(&t, 2, 0);
	blk_process_queue(&t.blk, 0);
	blk_process_queue(&t.blk, 2);
	CHECK_EQ(t.blk.inflight, 2);
	CHECK_EQ(gmem_write(t.gm, RING(1) + 0x1000 + 2, &bad, 2), 0);
	bar_wr(&t, VPCI_NOTIFY + 1 * VPCI_NOTIFY_MULT, 1, 2);
	blk_process_queue(&t.blk, 1);
	CHECK(bar_rd(&t, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(t.msis[CFG_VECTOR], 1);
	complete_all(&t);
	blk_batch_end(&t.blk);
	CHECK_EQ(t.blk.inflight, 0);
	CHECK_EQ(pins(&t), 0);
	CHECK_EQ(used_idx(&t, 0), 0);
	CHECK_EQ(used_idx(&t, 2), 0);
	CHECK_EQ(t.msis[0] + t.msis[2], 0);
	bar_wr(&t, 0x14, 0, 1);
	CHECK(bring_up(&t, true));
	CHECK_EQ(pins(&t), 0);
	teardown(&t);
}

/* A driver that refuses MQ gets queue 0 only, which works. */
static void test_driver_without_mq(void)
{
	struct t t;

	setup(&t, NQ);
	CHECK(bring_up(&t, false));
	read_req(&t, 0, 0);
	blk_process(&t.blk);
	complete_all(&t);
	blk_batch_end(&t.blk);
	CHECK_EQ(used_idx(&t, 0), 1);
	CHECK_EQ(t.msis[0], 1);
	teardown(&t);
}

int main(void)
{
	test_negotiates_mq();
	test_queue_k_completes_on_k();
	test_batch_on_several_queues();
	test_reset_unpins_every_queue();
	test_needs_reset_unpins_every_queue();
	test_driver_without_mq();
	return test_done("virtio_blk_mq");
}
