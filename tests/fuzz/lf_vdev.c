/*
 * libFuzzer: a virtio driver for one device (LF_VDEV_BLK, _BALLOON, _CONSOLE
 * or _RNG at build time) over virtio-mmio or virtio-pci (the input's first
 * choice), which always completes negotiation (reset, ACKNOWLEDGE, DRIVER,
 * features, FEATURES_OK, every queue, DRIVER_OK) and then does what the
 * input says: chains posted and kicked, ring bytes damaged, configuration
 * and register accesses, I/O completions, console input, resets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon.h"
#include "blk.h"
#include "bus.h"
#include "fuzz.h"
#include "fuzz_vdev.h"
#include "log.h"
#include "mmio.h"
#include "pci.h"
#include "rng.h"
#include "virtio/console.h"
#include "vpci.h"

#define MMIO0 0xd0000000ULL
#define WIN 0xe0000000ULL
#define WIN_SIZE 0x100000ULL
#define QRING(q) (0x10000ULL * (1 + (q))) /* desc; avail at +0x8000, used at +0xc000 */
#define LF_TBL(q) (0x60000ULL + 0x1000ULL * (q)) /* indirect tables: 64 of 64 bytes per queue */
#define SECTORS 64
#define MAX_OPS 256

struct lf {
	struct fuzz f;
	struct gmem *gm;
	uint8_t *ram;
	struct bus *bus;
	struct pci_host host;
	struct virtio_pci vp;
	struct virtio_mmio mmio;
	bool pci;
	uint64_t bar;
	struct virtio_dev *vd;
#if defined(LF_VDEV_BLK)
	struct virtio_blk dev;
	uint8_t disk[SECTORS * 512];
	struct blk_io *pending[BLK_MAX_INFLIGHT];
	unsigned int npending;
	uint32_t kicked_queues; /* kick_queue's: the queues to process */
	bool batch_due;         /* the device asked for its batch end */
#elif defined(LF_VDEV_BALLOON)
	struct virtio_balloon dev;
#elif defined(LF_VDEV_CONSOLE)
	struct virtio_console dev;
#else
	struct virtio_rng dev;
#endif
	bool kicked;
	uint32_t gen;
	uint64_t feat; /* what the driver accepted */
	struct {
		uint16_t size, avail_idx, next_desc, published, next_tbl;
		bool jumped; /* the driver moved avail idx itself: no bound on what the device uses */
	} q[VIRTIO_MAX_QUEUES];
};

/* ---- the transports ---- */

static int reg_access(struct lf *t, uint64_t off, void *data, unsigned int len, bool write)
{
	return bus_dispatch(t->bus, BUS_MMIO, (t->pci ? t->bar : MMIO0) + off, data, len, write);
}

static uint32_t reg_rd(struct lf *t, uint64_t off, unsigned int len)
{
	uint32_t v = 0;

	CHECK_EQ(reg_access(t, off, &v, len, false), 0);
	return v;
}

static void reg_wr(struct lf *t, uint64_t off, uint32_t v, unsigned int len)
{
	int ret = reg_access(t, off, &v, len, true);

	if (ret)
		fprintf(stderr, "register write at 0x%llx (%u bytes) of 0x%x: %d; bar 0x%llx\n",
			(unsigned long long)off, len, v, ret,
			t->pci ? (unsigned long long)pci_bar_addr(&t->vp.pci, 0) : 0ULL);
	CHECK_EQ(ret, 0);
}

static void cfg_wr(struct lf *t, uint32_t reg, uint32_t v, unsigned int len)
{
	uint32_t a = 0x80000800u | (reg & 0xfc);

	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_ADDR, &a, 4, true), 0);
	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_DATA + (reg & 3), &v, len, true), 0);
}

/* The registers both transports have, at their offsets and widths in each. */
enum reg { R_STATUS, R_DFSEL, R_DF, R_GFSEL, R_GF, R_QSEL, R_QMAX, R_QSIZE, R_QREADY, R_QDESC,
	   R_QAVAIL, R_QUSED, R_NREGS };
static const struct { uint16_t mmio, pci; uint8_t pci_len; } regs[R_NREGS] = {
	[R_STATUS] = { 0x070, 0x14, 1 }, [R_DFSEL] = { 0x014, 0x00, 4 }, [R_DF] = { 0x010, 0x04, 4 },
	[R_GFSEL] = { 0x024, 0x08, 4 }, [R_GF] = { 0x020, 0x0c, 4 }, [R_QSEL] = { 0x030, 0x16, 2 },
	[R_QMAX] = { 0x034, 0x18, 2 }, [R_QSIZE] = { 0x038, 0x18, 2 }, [R_QREADY] = { 0x044, 0x1c, 2 },
	[R_QDESC] = { 0x080, 0x20, 4 }, [R_QAVAIL] = { 0x090, 0x28, 4 }, [R_QUSED] = { 0x0a0, 0x30, 4 },
};

static uint32_t rd(struct lf *t, enum reg r)
{
	return t->pci ? reg_rd(t, regs[r].pci, regs[r].pci_len) : reg_rd(t, regs[r].mmio, 4);
}

static void wr(struct lf *t, enum reg r, uint32_t v)
{
	if (t->pci)
		reg_wr(t, regs[r].pci, v, regs[r].pci_len);
	else
		reg_wr(t, regs[r].mmio, v, 4);
}

static void wr64(struct lf *t, enum reg r, uint64_t v)
{
	wr(t, r, (uint32_t)v);
	if (t->pci)
		reg_wr(t, regs[r].pci + 4u, (uint32_t)(v >> 32), 4);
	else
		reg_wr(t, regs[r].mmio + 4u, (uint32_t)(v >> 32), 4);
}

static void notify(struct lf *t, unsigned int q)
{
	if (t->pci)
		reg_wr(t, VPCI_NOTIFY + VPCI_NOTIFY_MULT * q, q, 2);
	else
		reg_wr(t, 0x050, q, 4);
}

static void ack_irq(struct lf *t)
{
	if (t->pci)
		(void)reg_rd(t, VPCI_ISR, 1); /* reading the ISR acknowledges it */
	else
		reg_wr(t, 0x064, reg_rd(t, 0x060, 4), 4);
}

/* ---- the device's side: what the owner (vmm/) would provide ---- */

static void kick(void *opaque)
{
	((struct lf *)opaque)->kicked = true;
}

static void set_irq(void *opaque, bool level)
{
	(void)opaque, (void)level;
}

static void signal_msi(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	(void)opaque, (void)addr, (void)data;
	CHECK(vector < VPCI_VECTORS);
}

/* Host memory the device hands out must be guest RAM outside private pages. */
static __attribute__((unused)) void check_hva(struct lf *t, const void *p, size_t n)
{
	const uint8_t *b = p;

	CHECK(n == 0 || (b >= t->ram && b + n <= t->ram + MEM && b + n >= b &&
			 !hits_guard((uint64_t)(b - t->ram), n)));
}

#if defined(LF_VDEV_BLK)
static int be_submit(void *opaque, struct blk_io *io)
{
	struct lf *t = opaque;
	struct fuzz *f = &t->f;

	CHECK(!t->dev.read_only || io->op == BLK_OP_READ || io->op == BLK_OP_FLUSH);
	if (io->op != BLK_OP_FLUSH)
		CHECK(io->len && !(io->offset % 512) && !(io->len % 512) &&
		      io->offset <= sizeof(t->disk) && io->len <= sizeof(t->disk) - io->offset);
	for (unsigned int i = 0; i < io->niov; i++)
		check_hva(t, io->iov[i].iov_base, io->iov[i].iov_len);
	if (fuzz_one_in(f, 16))
		return -EIO;
	CHECK(t->npending < BLK_MAX_INFLIGHT);
	if (t->npending < BLK_MAX_INFLIGHT)
		t->pending[t->npending++] = io;
	return 0;
}

static const struct blk_backend_ops be_ops = { .submit = be_submit };

static void complete_one(struct lf *t)
{
	struct fuzz *f = &t->f;
	unsigned int k = (unsigned int)fuzz_below(f, t->npending);
	struct blk_io *io = t->pending[k];
	uint64_t off = io->offset;

	t->pending[k] = t->pending[--t->npending];
	for (unsigned int i = 0; i < io->niov && off < sizeof(t->disk); off += io->iov[i].iov_len, i++) {
		size_t n = io->iov[i].iov_len;

		if (n > sizeof(t->disk) - off)
			n = sizeof(t->disk) - off;
		if (io->op == BLK_OP_READ)
			memcpy(io->iov[i].iov_base, t->disk + off, n);
		else if (io->op == BLK_OP_WRITE)
			memcpy(t->disk + off, io->iov[i].iov_base, n);
	}
	io->result = fuzz_one_in(f, 16) ? -EIO : (int)(io->len >> fuzz_one_in(f, 16));
	blk_io_done(io);
}

static void complete_all(struct lf *t)
{
	while (t->npending)
		complete_one(t);
	if (t->batch_due) {
		t->batch_due = false;
		blk_batch_end(&t->dev);
	}
}

static void kick_queue(void *opaque, unsigned int q)
{
	struct lf *t = opaque;

	CHECK(q < t->vd->nr_queues);
	t->kicked = true;
	t->kicked_queues |= 1U << q;
}

static void batch(void *opaque)
{
	((struct lf *)opaque)->batch_due = true;
}

/* As the I/O thread: the kicked queues (or all), then the batch end the device asked for. */
static void process(struct lf *t)
{
	uint32_t kq = t->kicked_queues;

	t->kicked_queues = 0;
	if (!kq || fuzz_one_in(&t->f, 4))
		blk_process(&t->dev);
	for (unsigned int q = 0; kq; q++, kq >>= 1)
		if (kq & 1)
			blk_process_queue(&t->dev, q);
	if (t->batch_due) {
		t->batch_due = false;
		blk_batch_end(&t->dev);
	}
}

static int dev_init(struct lf *t)
{
	/* One to VIRTIO_MAX_QUEUES queues (MQ offered above one); completions batched or not. */
	unsigned int nq = 1 + (unsigned int)fuzz_below(&t->f, VIRTIO_MAX_QUEUES);
	int ret = virtio_blk_init_mq(&t->dev, t->gm, "lf-blk", sizeof(t->disk),
				     fuzz_one_in(&t->f, 4), "lf", nq);

	t->dev.backend = &be_ops;
	t->dev.backend_opaque = t;
	t->dev.kick = kick;
	t->dev.kick_queue = fuzz_one_in(&t->f, 4) ? NULL : kick_queue;
	t->dev.batch = fuzz_one_in(&t->f, 4) ? NULL : batch;
	t->dev.batch_opaque = t;
	t->kicked_queues = 0;
	t->batch_due = false;
	t->dev.kick_opaque = t;
	memset(t->disk, 0, sizeof(t->disk));
	t->npending = 0;
	return ret;
}

static void dev_destroy(struct lf *t)
{
	complete_all(t);
	virtio_blk_destroy(&t->dev);
}
#elif defined(LF_VDEV_BALLOON)
static void complete_all(struct lf *t) { (void)t; }

static void process(struct lf *t)
{
	balloon_process(&t->dev);
}

static int dev_init(struct lf *t)
{
	int ret = virtio_balloon_init(&t->dev, t->gm, "lf-balloon");

	t->dev.kick = kick;
	t->dev.kick_opaque = t;
	return ret;
}

static void dev_destroy(struct lf *t)
{
	virtio_balloon_destroy(&t->dev);
}
#elif defined(LF_VDEV_CONSOLE)
static void con_output(void *opaque, const void *buf, size_t len)
{
	CHECK(len > 0);
	check_hva(opaque, buf, 0); /* emerg_wr passes a byte on the stack: only the length is checked */
	(void)buf;
}

static void complete_all(struct lf *t) { (void)t; }

static void process(struct lf *t)
{
	console_process_tx(&t->dev);
}

static int dev_init(struct lf *t)
{
	int ret = virtio_console_init(&t->dev, t->gm, "lf-console");

	t->dev.kick = kick;
	t->dev.kick_opaque = t;
	t->dev.output = con_output;
	t->dev.output_opaque = t;
	return ret;
}

static void dev_destroy(struct lf *t)
{
	virtio_console_destroy(&t->dev);
}
#else
static int rng_fill(void *opaque, void *buf, size_t len)
{
	struct lf *t = opaque;

	check_hva(t, buf, 0);
	if (fuzz_one_in(&t->f, 16))
		return -EAGAIN;
	memset(buf, 0x5a, len);
	return 0;
}

static void complete_all(struct lf *t) { (void)t; }

static void process(struct lf *t)
{
	rng_process(&t->dev);
}

static int dev_init(struct lf *t)
{
	int ret = virtio_rng_init(&t->dev, t->gm, "lf-rng");

	t->dev.kick = kick;
	t->dev.kick_opaque = t;
	t->dev.fill = rng_fill;
	t->dev.fill_opaque = t;
	return ret;
}

static void dev_destroy(struct lf *t)
{
	virtio_rng_destroy(&t->dev);
}
#endif

/* ---- the driver ---- */

static void put(struct lf *t, uint64_t gpa, const void *p, uint64_t len)
{
	if (len && gpa < MEM && len <= MEM - gpa && !hits_guard(gpa, len))
		if (gmem_write(t->gm, gpa, p, len)) {
			fprintf(stderr, "gmem_write 0x%llx %llu\n", (unsigned long long)gpa, (unsigned long long)len);
			CHECK(0);
		}
}


/*
 * Negotiation (virtio 1.2 §3.1.1), every queue at its own rings; the
 * features and queue sizes from the input, mostly what a driver would pick.
 */
static void negotiate(struct lf *t)
{
	struct fuzz *f = &t->f;
	const uint32_t ad = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint64_t feat = 0;

	complete_all(t);
	wr(t, R_STATUS, 0);
	CHECK_EQ(rd(t, R_STATUS), 0);
	wr(t, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(t, R_STATUS, ad);
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr(t, R_DFSEL, sel);
		feat |= (uint64_t)rd(t, R_DF) << (32 * sel);
	}
	CHECK(feat == t->vd->features);
	feat &= fuzz_one_in(f, 4) ? fuzz_next(f) : ~0ULL;
	feat |= 1ULL << VIRTIO_F_VERSION_1;
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr(t, R_GFSEL, sel);
		wr(t, R_GF, (uint32_t)(feat >> (32 * sel)));
	}
	wr(t, R_STATUS, ad | VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(t, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	t->feat = feat;
	for (unsigned int q = 0; q < t->vd->nr_queues; q++) {
		static const uint8_t zeros[0x10000];
		uint16_t max, size;

		put(t, QRING(q), zeros, sizeof(zeros)); /* a driver's rings start zeroed */

		wr(t, R_QSEL, q);
		max = (uint16_t)rd(t, R_QMAX);
		CHECK_EQ(max, t->vd->queue_max);
		size = fuzz_one_in(f, 2) ? max : (uint16_t)(max >> fuzz_below(f, 8));
		if (!size)
			size = 1;
		wr(t, R_QSIZE, size);
		wr64(t, R_QDESC, QRING(q));
		wr64(t, R_QAVAIL, QRING(q) + 0x8000);
		wr64(t, R_QUSED, QRING(q) + 0xc000);
		if (t->pci && fuzz_one_in(f, 2))
			reg_wr(t, 0x1a, (uint32_t)fuzz_below(f, VPCI_VECTORS + 1), 2);
		wr(t, R_QREADY, 1);
		CHECK_EQ(rd(t, R_QREADY), 1);
		t->q[q].size = size;
		t->q[q].avail_idx = t->q[q].next_desc = t->q[q].published = t->q[q].next_tbl = 0;
		t->q[q].jumped = false;
	}
	wr(t, R_STATUS, ad | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_running(t->vd));
}

/* A buffer address: mostly in the buffer area, sometimes on rings, in private memory or past RAM. */
static uint64_t pick_addr(struct fuzz *f)
{
	switch (fuzz_below(f, 16)) {
	case 0: return fuzz_interesting(f);
	case 1: return GUARD - 0x800 + fuzz_below(f, 0x1000);
	case 2: return MEM - fuzz_below(f, 0x1000);
	case 3: return QRING(fuzz_below(f, VIRTIO_MAX_QUEUES)) + fuzz_below(f, 0x10000);
	case 4: return fuzz_below(f, MEM >> 12) << 12; /* a page: what the balloon reports */
	default: return BUF + fuzz_below(f, BUF_LEN);
	}
}

static uint32_t pick_len(struct fuzz *f)
{
	switch (fuzz_below(f, 8)) {
	case 0: return (uint32_t)fuzz_interesting(f);
	case 1: return 512u * (uint32_t)fuzz_below(f, 9);
	case 2: return 4096u << fuzz_below(f, 4);
	case 3: return 16;
	case 4: return 1;
	default: return 1 + (uint32_t)fuzz_below(f, 0x800);
	}
}

/* What the device expects at a chain's first readable buffer, mostly. */
static void fill_buffer(struct lf *t, uint64_t gpa, uint32_t len)
{
	struct fuzz *f = &t->f;
	uint8_t b[64];
	size_t n = len < sizeof(b) ? len : sizeof(b);

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)fuzz_next(f);
#if defined(LF_VDEV_BLK)
	if (n >= 16 && !fuzz_one_in(f, 8)) { /* struct virtio_blk_outhdr: type, ioprio, sector */
		static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
						  VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
						  VIRTIO_BLK_T_WRITE_ZEROES };

		fuzz_put(b, 4, types[fuzz_below(f, ARRAY_SIZE(types))]);
		fuzz_put(b + 8, 8, fuzz_one_in(f, 8) ? fuzz_interesting(f) : fuzz_below(f, SECTORS + 2));
		if (n >= 32) /* a discard or write-zeroes segment: sector, num_sectors, flags */
			fuzz_put(b + 16, 8, fuzz_below(f, SECTORS + 2)), fuzz_put(b + 24, 4, fuzz_below(f, 9));
	}
#elif defined(LF_VDEV_BALLOON)
	for (size_t i = 0; i + 4 <= n && !fuzz_one_in(f, 8); i += 4) /* page frame numbers */
		fuzz_put(b + i, 4, fuzz_one_in(f, 8) ? fuzz_next(f) : fuzz_below(f, MEM >> 12));
#endif
	put(t, gpa, b, n);
}

/*
 * A chain of 1 to 4 buffers from the queue's next free descriptor,
 * published and perhaps kicked.  With INDIRECT_DESC accepted, now and then
 * the last of them go in an indirect table (0 to 3 direct ones first).
 */
static void post_chain(struct lf *t, unsigned int q)
{
	struct fuzz *f = &t->f;
	uint16_t size = t->q[q].size, head = t->q[q].next_desc, i = head;
	unsigned int n = 1 + (unsigned int)fuzz_below(f, 4), ndirect = n;
	uint64_t tbl = LF_TBL(q) + 64ULL * (t->q[q].next_tbl++ % 64);
	bool write = false;

	if ((t->feat >> VIRTIO_RING_F_INDIRECT_DESC & 1) && fuzz_one_in(f, 3))
		ndirect = (unsigned int)fuzz_below(f, n);
	for (unsigned int k = 0; k < n; k++) {
		struct desc d = { pick_addr(f), pick_len(f), 0, 0 };
		bool direct = k < ndirect;
		uint16_t next = direct ? (uint16_t)((i + 1) & (size - 1)) : (uint16_t)(k - ndirect + 1);

		/* Readable then writable, as the spec orders them, unless the input says otherwise. */
		write |= fuzz_one_in(f, 3) || (k == n - 1 && fuzz_one_in(f, 2));
		d.flags = write ? VIRTQ_DESC_F_WRITE : 0;
		if (k + 1 < n)
			d.flags |= VIRTQ_DESC_F_NEXT, d.next = next;
		if (fuzz_one_in(f, 16))
			d.flags = (uint16_t)fuzz_value(f, d.flags, 2);
		if (fuzz_one_in(f, 32))
			d.next = (uint16_t)fuzz_value(f, d.next, 2);
		if (k == 0 && !write)
			fill_buffer(t, d.addr, d.len);
		if (direct) {
			put(t, QRING(q) + 16ULL * i, &d, sizeof(d));
			i = next;
		} else {
			put(t, tbl + 16ULL * (k - ndirect), &d, sizeof(d));
		}
	}
	if (ndirect < n) { /* the table's descriptor, its WRITE flag meaningless */
		struct desc d = { tbl, 16 * (n - ndirect),
				  (uint16_t)(VIRTQ_DESC_F_INDIRECT | (fuzz_one_in(f, 4) ? VIRTQ_DESC_F_WRITE : 0)), 0 };

		if (fuzz_one_in(f, 16))
			d.len = (uint32_t)fuzz_value(f, d.len, 4);
		if (fuzz_one_in(f, 16))
			d.addr = pick_addr(f);
		put(t, QRING(q) + 16ULL * i, &d, sizeof(d));
		i = (uint16_t)((i + 1) & (size - 1));
	}
	t->q[q].next_desc = i;
	put(t, QRING(q) + 0x8000 + 4 + 2ULL * (t->q[q].avail_idx & (size - 1)), &head, 2);
	t->q[q].avail_idx++;
	t->q[q].published++;
	put(t, QRING(q) + 0x8000 + 2, &t->q[q].avail_idx, 2);
}

/* A hostile driver's write to its own rings. */
static void damage(struct lf *t, unsigned int q)
{
	struct fuzz *f = &t->f;
	unsigned int w = 1u << fuzz_below(f, 4);
	uint64_t at, v;

	switch (fuzz_below(f, 4)) {
	case 0: at = QRING(q) + fuzz_below(f, 16ULL * t->q[q].size); break;
	case 1: at = QRING(q) + 0x8000 + fuzz_below(f, 6 + 2ULL * t->q[q].size); break;
	case 2: at = QRING(q) + 0xc000 + fuzz_below(f, 6 + 8ULL * t->q[q].size); break;
	default: /* the avail idx jumps */
		at = QRING(q) + 0x8000 + 2, w = 2;
		t->q[q].jumped = true;
		break;
	}
	v = fuzz_value(f, 0, w);
	if (at < QRING(q) + 0x8000 + 4 && at + w > QRING(q) + 0x8000 + 2) { /* on the avail idx */
		t->q[q].jumped = true;
		if (at == QRING(q) + 0x8000 + 2 && w == 2)
			t->q[q].avail_idx = (uint16_t)v;
	}
	put(t, at, &v, w);
}

/* An access anywhere in the transport's registers, of any width. */
static void poke(struct lf *t)
{
	struct fuzz *f = &t->f;
	static const unsigned int lens[] = { 1, 2, 4, 8, 3 };
	uint64_t off = fuzz_below(f, t->pci ? VPCI_BAR_SIZE + 16 : VIRTIO_MMIO_SIZE + 16);
	unsigned int len = lens[fuzz_below(f, ARRAY_SIZE(lens))];
	uint64_t v = fuzz_value(f, 0, 8);
	int ret;

	if (fuzz_one_in(f, 2))
		off = t->pci ? VPCI_DEVICE_CFG + fuzz_below(f, 0x40) : 0x100 + fuzz_below(f, 0x40);
	ret = reg_access(t, off, &v, len, fuzz_one_in(f, 2));
	CHECK(ret == 0 || ret == -EINVAL || ret == -ENOENT);
}

/* The guest's PCI configuration space, through mechanism #1. */
static void pci_cfg(struct lf *t)
{
	struct fuzz *f = &t->f;
	unsigned int len = 1u << fuzz_below(f, 3);
	uint32_t reg = (uint32_t)fuzz_below(f, PCI_CFG_SIZE) & ~(len - 1), v = (uint32_t)fuzz_value(f, 0, 4);

	/* Moving the BAR or turning decoding off is fuzz_pci's; here the device must stay reachable. */
	if ((reg < PCI_COMMAND + 2 && reg + len > PCI_COMMAND) ||
	    (reg < PCI_BAR0 + 4 * PCI_BARS && reg + len > PCI_BAR0))
		return;
	cfg_wr(t, reg, v, len);
}

static void check(struct lf *t)
{
	drv_check_vdev(t->vd, &t->gen);
	for (unsigned int q = 0; q < t->vd->nr_queues; q++) {
		uint16_t idx;

		/*
		 * The device never returns more chains than were made available:
		 * while the avail idx in RAM is the one the driver wrote (no buffer
		 * or discard landed on it, no jump), its own used idx stays within
		 * the chains published since the queue was set up.
		 */
		memcpy(&idx, t->ram + QRING(q) + 0x8000 + 2, 2);
		if (!t->vd->vq[q].ready || t->q[q].jumped || idx != t->q[q].avail_idx)
			continue;
		if (t->vd->vq[q].used_idx > t->q[q].published)
			fprintf(stderr, "queue %u: used %u chains of %u published (last_avail %u, avail idx %u)\n",
				q, t->vd->vq[q].used_idx, t->q[q].published, t->vd->vq[q].last_avail, idx);
		CHECK(t->vd->vq[q].used_idx <= t->q[q].published);
	}
}

static void op(struct lf *t)
{
	struct fuzz *f = &t->f;
	unsigned int q = (unsigned int)fuzz_below(f, t->vd->nr_queues);

	switch (fuzz_below(f, 16)) {
	case 0: case 1: case 2: case 3:
		post_chain(t, q);
		if (fuzz_one_in(f, 2))
			break;
		/* fall through */
	case 4: case 5:
		notify(t, q);
		if (t->kicked) {
			t->kicked = false;
			process(t);
		}
		break;
	case 6:
#if defined(LF_VDEV_BLK)
		if (t->npending)
			complete_one(t);
#elif defined(LF_VDEV_CONSOLE)
		{
			uint8_t in[64];
			size_t n = 1 + fuzz_below(f, sizeof(in));

			memset(in, 'x', n);
			CHECK(console_input(&t->dev, in, n) <= n);
		}
#endif
		break;
	case 7:
		damage(t, q);
		break;
	case 8: case 9:
		poke(t);
		break;
	case 10:
		if (t->pci)
			pci_cfg(t);
		else
			poke(t);
		break;
	case 11:
		ack_irq(t);
		break;
	case 12: /* the avail ring's flags or used_event */
		put(t, QRING(q) + 0x8000 + (fuzz_one_in(f, 2) ? 0 : 4 + 2ULL * t->q[q].size),
		    &(uint16_t){ (uint16_t)fuzz_next(f) }, 2);
		break;
	case 13:
		if (fuzz_one_in(f, 4))
			negotiate(t);
		break;
	default:
		if (t->kicked) { /* the I/O thread runs late */
			t->kicked = false;
			process(t);
		}
		complete_all(t);
		break;
	}
	check(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lf *t;
	struct fuzz *f;

	if (!t) {
		void *hva;

		log_set_level(LOG_ERR); /* guest mistakes are logged as warnings, by the thousand */
		t = calloc(1, sizeof(*t));
		t->gm = test_gmem(MEM, 20);
		if (gmem_translate(t->gm, 0, MEM, &hva))
			abort();
		t->ram = hva;
		memset(t->ram + GUARD, 0xa5, GUARD_LEN);
		if (gmem_attr_set_private(t->gm, GUARD, GUARD_LEN, true))
			abort();
	}
	f = &t->f;
	fuzz_lf_begin(f, "lf_vdev", data, size);
	memset(t->ram, 0, GUARD);
	memset(t->ram + GUARD, 0xa5, GUARD_LEN);
	memset(t->ram + GUARD + GUARD_LEN, 0, MEM - GUARD - GUARD_LEN);
	t->pci = fuzz_one_in(f, 2);
	t->kicked = false;
	t->gen = 0;
	if (bus_create(&t->bus) || dev_init(t))
		abort();
	t->vd = &t->dev.vdev;
	t->vd->set_irq = set_irq;
	t->vd->irq_opaque = t;
	if (t->pci) {
		unsigned int slot;

		if (pci_host_init(&t->host, t->bus, WIN, WIN_SIZE, NULL, NULL))
			abort();
		virtio_pci_init(&t->vp, t->vd, 0xff0000);
		t->vp.signal_msi = signal_msi;
		t->vp.msi_opaque = t;
		if (pci_host_add(&t->host, &t->vp.pci, &slot))
			abort();
		t->bar = WIN + VPCI_BAR_SIZE * fuzz_below(f, 4);
		cfg_wr(t, PCI_BAR0, (uint32_t)t->bar, 4);
		cfg_wr(t, PCI_BAR0 + 4, 0, 4);
		cfg_wr(t, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
		CHECK_EQ(pci_bar_addr(&t->vp.pci, 0), t->bar);
		if (fuzz_one_in(f, 2)) { /* MSI-X on, the vectors unmasked or not */
			cfg_wr(t, t->vp.msix_cap + 2, 0x8000, 2);
			for (unsigned int v = 0; v < VPCI_VECTORS; v++)
				reg_wr(t, VPCI_MSIX_TABLE + 16 * v + 12, (uint32_t)fuzz_one_in(f, 4), 4);
			reg_wr(t, 0x10, (uint32_t)fuzz_below(f, VPCI_VECTORS + 1), 2);
		}
	} else {
		virtio_mmio_init(&t->mmio, t->vd);
		if (bus_register(t->bus, BUS_MMIO, MMIO0, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, &t->mmio,
				 "lf-mmio"))
			abort();
	}
	negotiate(t);
	for (unsigned int n = 0; n < MAX_OPS && !test_failures && fuzz_lf_more(f); n++)
		op(t);
#ifndef LF_VDEV_BALLOON /* a guest may report its private pages free: the balloon punches them */
	/* Nothing written to private memory, ever. */
	for (uint64_t i = GUARD; i < GUARD + GUARD_LEN; i++)
		if (t->ram[i] != 0xa5) {
			CHECK(!"the device wrote to private memory");
			break;
		}
#endif
	complete_all(t);
	dev_destroy(t);
	if (t->pci)
		pci_host_destroy(&t->host);
	bus_destroy(t->bus);
	fuzz_lf_end(f);
	return 0;
}
