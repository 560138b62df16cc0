/*
 * unit: virtio-rng and virtio-console behind the virtio-mmio transport,
 * driven the way a guest driver drives them (register writes through the
 * bus ops, rings in a detached gmem).  Covers, for rng: the register file,
 * entropy from the owner's source landing in the guest's buffers, the
 * per-request cap, malformed chains and a failing source answered with 0
 * bytes, getrandom as the default, a broken ring and a reset.  For the
 * console: the register file and config space, emergency writes (before
 * the driver is up too), transmit chains reaching the output in order,
 * input spread over the posted receive buffers with the right used lengths,
 * no buffers or no driver meaning nothing taken, wrong-direction chains,
 * and the interrupt line and its ack.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gmem.h"
#include "mmio.h"
#include "rng.h"
#include "test.h"
#include "virtio_drv.h"
#include "virtio/console.h" /* not "console.h": vmm/ has one, earlier on the include path */

#define MiB (1ULL << 20)
#define KiB (1ULL << 10)
#define MEM (8 * MiB)
#define QSIZE 32
#define RING(q) (0x10000ULL + (uint64_t)(q) * 0x3000) /* desc; avail +0x1000; used +0x2000 */
#define DESC(q) RING(q)
#define AVAIL(q) (RING(q) + 0x1000)
#define USED(q) (RING(q) + 0x2000)
#define DATA 0x100000ULL /* buffers */
#define POISON 0xee

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

/* The guest side: memory, the transport, and the driver's view of each queue. */
struct t {
	struct gmem *gm;
	struct virtio_dev *vd;
	struct virtio_mmio mmio;
	struct irq irq;
	unsigned int kicks;
	struct {
		uint16_t avail_idx;
		uint16_t used_seen;
	} q[2];
};

static void kick(void *opaque)
{
	struct t *t = opaque;

	t->kicks++;
}

VIRTIO_TEST_DRIVER(struct t)

static void get(struct t *t, uint64_t gpa, void *p, uint64_t len)
{
	CHECK_EQ(gmem_read(t->gm, gpa, p, len), 0);
}

static void poison(struct t *t, uint64_t gpa, uint64_t len)
{
	uint8_t *p = malloc(len);

	if (!p)
		exit(1);
	memset(p, POISON, len);
	put(t, gpa, p, len);
	free(p);
}

static void create_gmem(struct t *t)
{
	memset(t, 0, sizeof(*t));
	t->gm = test_gmem(MEM, 20);
}

static void attach(struct t *t, struct virtio_dev *vd)
{
	t->vd = vd;
	vd->set_irq = set_irq;
	vd->irq_opaque = &t->irq;
	virtio_mmio_init(&t->mmio, vd);
}

/* The driver's bring-up sequence (virtio 1.2 §3.1.1) for nq queues; false if refused. */
static bool bring_up(struct t *t, uint64_t features, unsigned int nq, uint32_t qmax)
{
	static const uint8_t zero[0x3000];
	const uint32_t base = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	unsigned int q;

	wr(t, 0x070, 0);
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(t, 0x070, base);
	wr(t, 0x024, 0);
	wr(t, 0x020, (uint32_t)features);
	wr(t, 0x024, 1);
	wr(t, 0x020, (uint32_t)(features >> 32));
	wr(t, 0x070, base | VIRTIO_STATUS_FEATURES_OK);
	if (!(rd(t, 0x070) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	for (q = 0; q < nq; q++) {
		put(t, RING(q), zero, sizeof(zero));
		t->q[q].avail_idx = t->q[q].used_seen = 0;
		wr(t, 0x030, q);
		CHECK_EQ(rd(t, 0x034), qmax);
		wr(t, 0x038, QSIZE);
		wr(t, 0x080, (uint32_t)DESC(q));
		wr(t, 0x084, 0);
		wr(t, 0x090, (uint32_t)AVAIL(q));
		wr(t, 0x094, 0);
		wr(t, 0x0a0, (uint32_t)USED(q));
		wr(t, 0x0a4, 0);
		wr(t, 0x044, 1);
		CHECK_EQ(rd(t, 0x044), 1);
	}
	wr(t, 0x030, nq); /* one past the last: no such queue */
	CHECK_EQ(rd(t, 0x034), 0);
	wr(t, 0x070, base | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return rd(t, 0x070) & VIRTIO_STATUS_DRIVER_OK;
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Makes bufs[0..n) a chain at descriptors head.. of queue q and makes it available. */
static void chain(struct t *t, unsigned int q, uint16_t head, const struct buf *bufs,
		  unsigned int n)
{
	uint16_t slot = t->q[q].avail_idx % QSIZE;
	unsigned int k;

	for (k = 0; k < n; k++) {
		struct desc d = {
			bufs[k].gpa, bufs[k].len, bufs[k].write ? VIRTQ_DESC_F_WRITE : 0, 0,
		};

		if (k + 1 < n) {
			d.flags |= VIRTQ_DESC_F_NEXT;
			d.next = (uint16_t)(head + k + 1);
		}
		put(t, DESC(q) + (head + k) * 16ULL, &d, 16);
	}
	put(t, AVAIL(q) + 4 + slot * 2, &head, 2);
	t->q[q].avail_idx++;
	put(t, AVAIL(q) + 2, &t->q[q].avail_idx, 2);
}

/* The next used element of queue q: false if there is none. */
static bool used(struct t *t, unsigned int q, uint32_t *id, uint32_t *len)
{
	uint16_t idx;
	uint32_t e[2];

	get(t, USED(q) + 2, &idx, 2);
	if (idx == t->q[q].used_seen)
		return false;
	get(t, USED(q) + 4 + (t->q[q].used_seen % QSIZE) * 8ULL, e, 8);
	t->q[q].used_seen++;
	*id = e[0];
	*len = e[1];
	return true;
}

/* Expects the next used element on q to be head, with len bytes written. */
static void expect_used(struct t *t, unsigned int q, uint16_t head, uint32_t len)
{
	uint32_t id = 0xffff, n = 0xffffffff;

	CHECK(used(t, q, &id, &n));
	CHECK_EQ(id, head);
	CHECK_EQ(n, len);
}

/* Expects no used element on q beyond those seen. */
static void expect_none(struct t *t, unsigned int q)
{
	uint32_t id, n;

	CHECK(!used(t, q, &id, &n));
}

static void ack_irq(struct t *t)
{
	CHECK(t->irq.level);
	CHECK_EQ(rd(t, 0x060), VIRTIO_ISR_QUEUE);
	wr(t, 0x064, VIRTIO_ISR_QUEUE);
	CHECK(!t->irq.level);
	CHECK_EQ(rd(t, 0x060), 0);
}

/* ---- virtio-rng ---- */

/* A fake entropy source: a byte sequence the test can replay, or a failure. */
struct source {
	uint32_t seq;
	unsigned int calls;
	uint64_t bytes;
	int fail;
};

static uint8_t source_byte(uint32_t i)
{
	return (uint8_t)(i * 131 + (i >> 8) * 7 + 1);
}

static int source_fill(void *opaque, void *buf, size_t len)
{
	struct source *s = opaque;
	uint8_t *p = buf;
	size_t i;

	s->calls++;
	if (s->fail)
		return s->fail;
	for (i = 0; i < len; i++)
		p[i] = source_byte(s->seq++);
	s->bytes += len;
	return 0;
}

/* True if guest bytes [gpa, +len) are the source's bytes from sequence number from. */
static bool is_source(struct t *t, uint64_t gpa, uint64_t len, uint32_t from)
{
	uint8_t *p = malloc(len);
	bool ok = true;
	uint64_t i;

	if (!p)
		exit(1);
	get(t, gpa, p, len);
	for (i = 0; i < len && ok; i++)
		ok = p[i] == source_byte(from + (uint32_t)i);
	free(p);
	return ok;
}

static bool is_poison(struct t *t, uint64_t gpa, uint64_t len)
{
	uint8_t *p = malloc(len);
	bool ok = true;
	uint64_t i;

	if (!p)
		exit(1);
	get(t, gpa, p, len);
	for (i = 0; i < len && ok; i++)
		ok = p[i] == POISON;
	free(p);
	return ok;
}

struct rng_t {
	struct t t;
	struct virtio_rng rng;
	struct source src;
};

static struct rng_t *rng_setup(void)
{
	struct rng_t *r = calloc(1, sizeof(*r));

	if (!r)
		exit(1);
	create_gmem(&r->t);
	CHECK_EQ(virtio_rng_init(&r->rng, r->t.gm, "virtio-rng-test"), 0);
	r->rng.fill = source_fill;
	r->rng.fill_opaque = &r->src;
	r->rng.kick = kick;
	r->rng.kick_opaque = &r->t;
	attach(&r->t, &r->rng.vdev);
	return r;
}

static void rng_teardown(struct rng_t *r)
{
	virtio_rng_destroy(&r->rng);
	gmem_destroy(r->t.gm);
	free(r);
}

/* The guest kicks, the owner's I/O thread runs the device. */
static void rng_run(struct rng_t *r)
{
	unsigned int kicks = r->t.kicks;

	wr(&r->t, 0x050, 0);
	CHECK_EQ(r->t.kicks, kicks + 1);
	rng_process(&r->rng);
}

static void test_rng_registers(void)
{
	struct rng_t *r = rng_setup();
	struct t *t = &r->t;
	uint32_t v;

	CHECK_EQ(rd(t, 0x000), 0x74726976);
	CHECK_EQ(rd(t, 0x004), 2);
	CHECK_EQ(rd(t, 0x008), VIRTIO_ID_RNG);
	wr(t, 0x014, 0);
	/* Nothing but VERSION_1 and the ring features the core offers for every device. */
	CHECK_EQ(rd(t, 0x010), 1U << VIRTIO_RING_F_INDIRECT_DESC | 1U << VIRTIO_RING_F_EVENT_IDX);
	wr(t, 0x014, 1);
	CHECK_EQ(rd(t, 0x010), 1);
	/* No configuration space at all. */
	CHECK_EQ(virtio_mmio_ops.read(&t->mmio, 0x100, &v, 4), -EINVAL);
	CHECK_EQ(virtio_mmio_ops.read(&t->mmio, 0x100, &v, 1), -EINVAL);
	CHECK(!bring_up(t, 0, 1, RNG_QUEUE_SIZE)); /* no VERSION_1 */
	CHECK(!bring_up(t, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 3, 1, RNG_QUEUE_SIZE));
	CHECK(bring_up(t, 1ULL << VIRTIO_F_VERSION_1, 1, RNG_QUEUE_SIZE));
	rng_teardown(r);
}

static void test_rng_requests(void)
{
	struct rng_t *r = rng_setup();
	struct t *t = &r->t;
	uint32_t seq;

	CHECK(bring_up(t, 1ULL << VIRTIO_F_VERSION_1, 1, RNG_QUEUE_SIZE));

	/* A 4 KiB buffer gets exactly the source's bytes; the guest is interrupted. */
	poison(t, DATA, 8 * KiB);
	chain(t, 0, 0, (struct buf[]){ { DATA, 4096, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 0, 4096);
	expect_none(t, 0);
	CHECK(is_source(t, DATA, 4096, 0));
	CHECK(is_poison(t, DATA + 4096, 4096));
	CHECK_EQ(r->rng.stats.requests, 1);
	CHECK_EQ(r->rng.stats.bytes, 4096);
	CHECK_EQ(t->irq.raised, 1);
	ack_irq(t);

	/* Two writable buffers, filled in order; then a second request in the same pass. */
	seq = r->src.seq;
	poison(t, DATA, 8 * KiB);
	chain(t, 0, 1, (struct buf[]){ { DATA, 100, true }, { DATA + 4096, 200, true } }, 2);
	chain(t, 0, 3, (struct buf[]){ { DATA + 1024, 16, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 1, 300);
	expect_used(t, 0, 3, 16);
	expect_none(t, 0);
	CHECK(is_source(t, DATA, 100, seq));
	CHECK(is_source(t, DATA + 4096, 200, seq + 100));
	CHECK(is_poison(t, DATA + 100, 16));
	CHECK(is_poison(t, DATA + 4096 + 200, 16));
	CHECK(is_source(t, DATA + 1024, 16, seq + 300));
	ack_irq(t);

	/* A device-readable buffer makes the request malformed: 0 bytes, nothing filled. */
	poison(t, DATA, 8 * KiB);
	chain(t, 0, 4, (struct buf[]){ { DATA, 64, false }, { DATA + 4096, 64, true } }, 2);
	rng_run(r);
	expect_used(t, 0, 4, 0);
	CHECK(is_poison(t, DATA, 8 * KiB));
	CHECK_EQ(r->rng.stats.malformed, 1);
	ack_irq(t);
	/* So is one only readable. */
	chain(t, 0, 6, (struct buf[]){ { DATA, 64, false } }, 1);
	rng_run(r);
	expect_used(t, 0, 6, 0);
	CHECK_EQ(r->rng.stats.malformed, 2);

	/* A failing source: 0 bytes, counted, and the device carries on. */
	r->src.fail = -EIO;
	chain(t, 0, 7, (struct buf[]){ { DATA, 4096, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 7, 0);
	CHECK_EQ(r->rng.stats.errors, 1);
	r->src.fail = 1; /* a positive return is a failure too, not a byte count */
	chain(t, 0, 7, (struct buf[]){ { DATA, 4096, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 7, 0);
	CHECK_EQ(r->rng.stats.errors, 2);
	r->src.fail = 0;
	chain(t, 0, 7, (struct buf[]){ { DATA, 32, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 7, 32);

	/* The cap: 96 KiB offered, 64 KiB filled, the rest untouched. */
	poison(t, DATA, 96 * KiB);
	seq = r->src.seq;
	chain(t, 0, 8,
	      (struct buf[]){ { DATA, 48 * KiB, true }, { DATA + 48 * KiB, 48 * KiB, true } }, 2);
	rng_run(r);
	expect_used(t, 0, 8, RNG_MAX_PER_REQ);
	CHECK(is_source(t, DATA, RNG_MAX_PER_REQ, seq));
	CHECK(is_poison(t, DATA + RNG_MAX_PER_REQ, 96 * KiB - RNG_MAX_PER_REQ));

	/* A chain the virtqueue refuses (outside RAM): 0 bytes, malformed. */
	chain(t, 0, 10, (struct buf[]){ { MEM + 0x1000, 64, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 10, 0);
	CHECK_EQ(r->rng.stats.malformed, 3);
	CHECK(!(rd(t, 0x070) & VIRTIO_STATUS_NEEDS_RESET));

	/* No source: getrandom(2). */
	r->rng.fill = NULL;
	poison(t, DATA, 4096);
	chain(t, 0, 11, (struct buf[]){ { DATA, 256, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 11, 256);
	CHECK(!is_poison(t, DATA, 256));
	CHECK(is_poison(t, DATA + 256, 256));
	rng_teardown(r);
}

static void test_rng_reset(void)
{
	struct rng_t *r = rng_setup();
	struct t *t = &r->t;
	uint16_t bad = 1000;
	uint32_t id, len;

	/* Before DRIVER_OK nothing is served. */
	CHECK(bring_up(t, 1ULL << VIRTIO_F_VERSION_1, 1, RNG_QUEUE_SIZE));
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	chain(t, 0, 0, (struct buf[]){ { DATA, 64, true } }, 1);
	rng_process(&r->rng);
	CHECK(!used(t, 0, &id, &len));
	CHECK_EQ(r->src.calls, 0);

	/* A broken ring: NEEDS_RESET and a configuration interrupt. */
	CHECK(bring_up(t, 1ULL << VIRTIO_F_VERSION_1, 1, RNG_QUEUE_SIZE));
	put(t, AVAIL(0) + 2, &bad, 2);
	rng_run(r);
	CHECK(rd(t, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(rd(t, 0x060) & VIRTIO_ISR_CONFIG);
	CHECK(t->irq.level);
	CHECK_EQ(r->rng.stats.malformed, 1);
	CHECK(!used(t, 0, &id, &len));

	/* A reset clears it all, and the device serves again. */
	wr(t, 0x070, 0);
	CHECK_EQ(rd(t, 0x070), 0);
	wr(t, 0x030, 0);
	CHECK_EQ(rd(t, 0x044), 0);
	CHECK(!t->irq.level);
	CHECK(bring_up(t, 1ULL << VIRTIO_F_VERSION_1, 1, RNG_QUEUE_SIZE));
	chain(t, 0, 0, (struct buf[]){ { DATA, 64, true } }, 1);
	rng_run(r);
	expect_used(t, 0, 0, 64);
	rng_teardown(r);
}

/* ---- virtio-console ---- */

struct sink {
	uint8_t buf[4096];
	size_t len;
	unsigned int calls;
	size_t room; /* what sink_room() offers */
};

static size_t sink_room(void *opaque)
{
	struct sink *s = opaque;

	return s->room;
}

static void sink_output(void *opaque, const void *buf, size_t len)
{
	struct sink *s = opaque;

	s->calls++;
	CHECK(s->len + len <= sizeof(s->buf));
	if (s->len + len > sizeof(s->buf))
		return;
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
}

static bool sink_is(struct sink *s, const char *want)
{
	return s->len == strlen(want) && memcmp(s->buf, want, s->len) == 0;
}

struct con_t {
	struct t t;
	struct virtio_console con;
	struct sink out;
};

static struct con_t *con_setup(void)
{
	struct con_t *c = calloc(1, sizeof(*c));

	if (!c)
		exit(1);
	create_gmem(&c->t);
	CHECK_EQ(virtio_console_init(&c->con, c->t.gm, "virtio-console-test"), 0);
	c->con.output = sink_output;
	c->con.output_opaque = &c->out;
	c->con.kick = kick;
	c->con.kick_opaque = &c->t;
	attach(&c->t, &c->con.vdev);
	return c;
}

static void con_teardown(struct con_t *c)
{
	virtio_console_destroy(&c->con);
	gmem_destroy(c->t.gm);
	free(c);
}

static void emerg(struct t *t, char ch, unsigned int width)
{
	uint32_t v = (uint8_t)ch | 0x12345600u; /* only the low byte is the character */

	CHECK_EQ(virtio_mmio_ops.write(&t->mmio, 0x108, &v, width), 0);
}

static const uint64_t con_features =
	1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;

static void test_console_registers(void)
{
	struct con_t *c = con_setup();
	struct t *t = &c->t;
	uint32_t v;
	uint16_t v16;

	CHECK_EQ(rd(t, 0x008), VIRTIO_ID_CONSOLE);
	wr(t, 0x014, 0);
	v = rd(t, 0x010);
	CHECK(v & (1u << VIRTIO_CONSOLE_F_EMERG_WRITE));
	CHECK(!(v & (1u << VIRTIO_CONSOLE_F_MULTIPORT)));
	CHECK(!(v & (1u << VIRTIO_CONSOLE_F_SIZE)));
	wr(t, 0x014, 1);
	CHECK_EQ(rd(t, 0x010), 1);
	/* Config: cols, rows 0; max_nr_ports 1; emerg_wr reads 0; 12 bytes and no more. */
	CHECK_EQ(rd(t, 0x100), 0);
	CHECK_EQ(rd(t, 0x104), 1);
	CHECK_EQ(virtio_mmio_ops.read(&t->mmio, 0x104, &v16, 2), 0);
	CHECK_EQ(v16, 1);
	CHECK_EQ(rd(t, 0x108), 0);
	CHECK_EQ(virtio_mmio_ops.read(&t->mmio, 0x10c, &v, 4), -EINVAL);
	CHECK_EQ(virtio_mmio_ops.read(&t->mmio, 0x10a, &v, 4), -EINVAL);
	/* MULTIPORT is not offered: FEATURES_OK refused with it. */
	CHECK(!bring_up(t, con_features | 1ULL << VIRTIO_CONSOLE_F_MULTIPORT, 2,
			CONSOLE_QUEUE_SIZE));
	CHECK(bring_up(t, 1ULL << VIRTIO_F_VERSION_1, 2, CONSOLE_QUEUE_SIZE));
	CHECK(bring_up(t, con_features, 2, CONSOLE_QUEUE_SIZE));
	con_teardown(c);
}

static void test_console_emerg(void)
{
	struct con_t *c = con_setup();
	struct t *t = &c->t;
	uint32_t v = 'x';

	/* Before the driver is up: early consoles write here first. */
	emerg(t, 'A', 4);
	CHECK(sink_is(&c->out, "A"));
	CHECK_EQ(c->out.calls, 1);
	CHECK(bring_up(t, con_features, 2, CONSOLE_QUEUE_SIZE));
	emerg(t, 'b', 4);
	emerg(t, '\n', 1);
	CHECK(sink_is(&c->out, "Ab\n"));
	CHECK_EQ(c->con.stats.tx_bytes, 3);
	/* The read-only fields ignore writes, emerg_wr's upper bytes are not characters. */
	CHECK_EQ(virtio_mmio_ops.write(&t->mmio, 0x100, &v, 4), 0);
	CHECK_EQ(virtio_mmio_ops.write(&t->mmio, 0x104, &v, 4), 0);
	CHECK_EQ(virtio_mmio_ops.write(&t->mmio, 0x109, &v, 1), 0);
	CHECK(sink_is(&c->out, "Ab\n"));
	CHECK_EQ(rd(t, 0x104), 1);
	CHECK(!t->irq.level); /* no interrupt for an emergency write */
	con_teardown(c);
}

static void test_console_tx(void)
{
	static const char *parts[] = { "Hello, ", "virtio", " console\n" };
	struct con_t *c = con_setup();
	struct t *t = &c->t;
	unsigned int i;

	CHECK(bring_up(t, con_features, 2, CONSOLE_QUEUE_SIZE));
	/* A three-descriptor chain, a buffer per page, reaches output whole and in order. */
	for (i = 0; i < 3; i++)
		put(t, DATA + i * 0x1000ULL, parts[i], strlen(parts[i]));
	put(t, DATA + 0x10000, "bye", 3);
	chain(t, CONSOLE_Q_TX, 0,
	      (struct buf[]){ { DATA, 7, false }, { DATA + 0x1000, 6, false },
			      { DATA + 0x2000, 9, false } }, 3);
	chain(t, CONSOLE_Q_TX, 5, (struct buf[]){ { DATA + 0x10000, 3, false } }, 1);
	wr(t, 0x050, CONSOLE_Q_TX);
	CHECK_EQ(t->kicks, 1);
	CHECK(!console_guest_attached(&c->con)); /* input waits for the guest's first output */
	console_process_tx(&c->con);
	CHECK(console_guest_attached(&c->con));
	CHECK(sink_is(&c->out, "Hello, virtio console\nbye"));
	CHECK_EQ(c->con.stats.tx_bytes, 25);
	expect_used(t, CONSOLE_Q_TX, 0, 0);
	expect_used(t, CONSOLE_Q_TX, 5, 0);
	expect_none(t, CONSOLE_Q_TX);
	CHECK_EQ(t->irq.raised, 1);
	ack_irq(t);

	/* A transmit chain with a device-writable buffer is malformed: no output, 0 bytes. */
	c->out.len = 0;
	chain(t, CONSOLE_Q_TX, 6, (struct buf[]){ { DATA, 7, false }, { DATA + 0x1000, 6, true } },
	      2);
	wr(t, 0x050, CONSOLE_Q_TX);
	console_process_tx(&c->con);
	expect_used(t, CONSOLE_Q_TX, 6, 0);
	CHECK_EQ(c->out.len, 0);
	CHECK_EQ(c->con.stats.malformed, 1);
	ack_irq(t);

	/* Nothing available: no output, no interrupt. */
	console_process_tx(&c->con);
	CHECK(!t->irq.level);
	CHECK_EQ(c->out.len, 0);
	con_teardown(c);
}

/*
 * Output without room (stdout's reader stalled): transmit buffers stay in
 * the queue, unconsumed, until the owner says there is room; the I/O thread
 * never waits and nothing is lost.
 */
static void test_console_tx_backpressure(void)
{
	struct con_t *c = con_setup();
	struct t *t = &c->t;

	c->con.output_room = sink_room;
	c->out.room = CONSOLE_TX_MIN_ROOM - 1;
	CHECK(bring_up(t, con_features, 2, CONSOLE_QUEUE_SIZE));
	put(t, DATA, "held", 4);
	put(t, DATA + 0x1000, " back", 5);
	chain(t, CONSOLE_Q_TX, 0, (struct buf[]){ { DATA, 4, false } }, 1);
	chain(t, CONSOLE_Q_TX, 1, (struct buf[]){ { DATA + 0x1000, 5, false } }, 1);
	wr(t, 0x050, CONSOLE_Q_TX);
	console_process_tx(&c->con);
	CHECK_EQ(c->out.calls, 0);
	expect_none(t, CONSOLE_Q_TX);
	CHECK(!t->irq.level);
	CHECK_EQ(c->con.stats.tx_waits, 1);
	CHECK(console_tx_take_waiting(&c->con));
	CHECK(!console_tx_take_waiting(&c->con)); /* once per stop */
	/* Still no room: still nothing consumed. */
	console_process_tx(&c->con);
	expect_none(t, CONSOLE_Q_TX);
	CHECK_EQ(c->con.stats.tx_waits, 2);
	/* Room: both chains go out in order and are returned. */
	c->out.room = 1 << 20;
	console_process_tx(&c->con);
	CHECK(sink_is(&c->out, "held back"));
	expect_used(t, CONSOLE_Q_TX, 0, 0);
	expect_used(t, CONSOLE_Q_TX, 1, 0);
	CHECK(!console_tx_take_waiting(&c->con));
	CHECK_EQ(t->irq.raised, 1);
	con_teardown(c);
}

static void test_console_rx(void)
{
	struct con_t *c = con_setup();
	struct t *t = &c->t;
	uint8_t got[16];
	unsigned int raised;

	/* Not running: nothing taken. */
	CHECK_EQ(console_input(&c->con, "abc", 3), 0);
	CHECK(bring_up(t, con_features, 2, CONSOLE_QUEUE_SIZE));
	/* No buffer posted: nothing taken, no interrupt. */
	CHECK_EQ(console_input(&c->con, "abc", 3), 0);
	CHECK(!t->irq.level);

	/* Two 8-byte buffers posted; 12 bytes of input fill the first and 4 of the second. */
	poison(t, DATA, 0x2000);
	chain(t, CONSOLE_Q_RX, 0, (struct buf[]){ { DATA, 8, true } }, 1);
	chain(t, CONSOLE_Q_RX, 1, (struct buf[]){ { DATA + 0x1000, 8, true } }, 1);
	wr(t, 0x050, CONSOLE_Q_RX);
	CHECK_EQ(t->kicks, 1); /* the receive queue's kick reaches the owner too */
	raised = t->irq.raised;
	CHECK_EQ(console_input(&c->con, "0123456789ab", 12), 12);
	CHECK_EQ(t->irq.raised, raised + 1);
	expect_used(t, CONSOLE_Q_RX, 0, 8);
	expect_used(t, CONSOLE_Q_RX, 1, 4);
	expect_none(t, CONSOLE_Q_RX);
	get(t, DATA, got, 9);
	CHECK(memcmp(got, "01234567\xee", 9) == 0);
	get(t, DATA + 0x1000, got, 5);
	CHECK(memcmp(got, "89ab\xee", 5) == 0);
	CHECK_EQ(c->con.stats.rx_bytes, 12);
	ack_irq(t);

	/* A multi-descriptor receive chain is filled across its buffers; input beyond it stays. */
	poison(t, DATA, 0x2000);
	chain(t, CONSOLE_Q_RX, 2, (struct buf[]){ { DATA, 3, true }, { DATA + 0x1000, 5, true } },
	      2);
	CHECK_EQ(console_input(&c->con, "ABCDEFGHIJ", 10), 8);
	expect_used(t, CONSOLE_Q_RX, 2, 8);
	get(t, DATA, got, 4);
	CHECK(memcmp(got, "ABC\xee", 4) == 0);
	get(t, DATA + 0x1000, got, 6);
	CHECK(memcmp(got, "DEFGH\xee", 6) == 0);
	CHECK_EQ(console_input(&c->con, "IJ", 2), 0); /* all buffers used up */
	CHECK_EQ(c->con.stats.rx_bytes, 20);
	CHECK_EQ(c->con.stats.rx_dropped, 0);
	ack_irq(t);

	/* A receive chain with a device-readable buffer is malformed and skipped. */
	poison(t, DATA, 0x2000);
	chain(t, CONSOLE_Q_RX, 4, (struct buf[]){ { DATA, 4, false }, { DATA + 0x1000, 4, true } },
	      2);
	chain(t, CONSOLE_Q_RX, 6, (struct buf[]){ { DATA + 0x1800, 4, true } }, 1);
	CHECK_EQ(console_input(&c->con, "IJ", 2), 2);
	expect_used(t, CONSOLE_Q_RX, 4, 0);
	expect_used(t, CONSOLE_Q_RX, 6, 2);
	expect_none(t, CONSOLE_Q_RX);
	get(t, DATA + 0x1000, got, 1);
	CHECK_EQ(got[0], POISON);
	get(t, DATA + 0x1800, got, 3);
	CHECK(memcmp(got, "IJ\xee", 3) == 0);
	CHECK_EQ(c->con.stats.malformed, 1);
	ack_irq(t);

	/* Queues ready but DRIVER_OK withdrawn: nothing taken; back once it is set again. */
	poison(t, DATA, 0x2000);
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	chain(t, CONSOLE_Q_RX, 8, (struct buf[]){ { DATA, 4, true } }, 1);
	CHECK_EQ(console_input(&c->con, "xy", 2), 0);
	expect_none(t, CONSOLE_Q_RX);
	wr(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			     VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(console_input(&c->con, "xy", 2), 2);
	expect_used(t, CONSOLE_Q_RX, 8, 2);
	ack_irq(t);

	/* After a reset, nothing is taken even with buffers in the old ring. */
	chain(t, CONSOLE_Q_RX, 7, (struct buf[]){ { DATA, 4, true } }, 1);
	wr(t, 0x070, 0);
	CHECK_EQ(console_input(&c->con, "zz", 2), 0);
	expect_none(t, CONSOLE_Q_RX);
	CHECK_EQ(c->con.stats.rx_bytes, 24);
	con_teardown(c);
}

int main(void)
{
	test_rng_registers();
	test_rng_requests();
	test_rng_reset();
	test_console_registers();
	test_console_emerg();
	test_console_tx();
	test_console_tx_backpressure();
	test_console_rx();
	return test_done("virtio_rng_console");
}
