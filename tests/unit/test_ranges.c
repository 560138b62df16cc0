/*
 * unit: gmem's range-at-a-time state (64-page chunks of converting and
 * private bits with a generation each, 16-bit pin counts four to a word):
 * ranges that cross chunk and pin-word boundaries, partial overlaps that
 * serialize while neighbours in the same word do not wait (I4), the pin
 * limit, and threads pinning and writing against destructive conversions
 * of overlapping ranges (run under TSan too).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmem.h"
#include "test.h"

#define MEM (4ULL << 20)
#define PAGE 4096ULL
#define PG(i) ((uint64_t)(i) * PAGE)

static struct gmem *make(enum gmem_model model, bool destructive, uint64_t drain_ms)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = model, .destructive = destructive,
		.drain_timeout_ns = drain_ms * 1000000ULL, .max_retries = 4,
	};
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct gmem *gm = NULL;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &gm), 0);
	return gm;
}

static bool is_private(struct gmem *gm, uint64_t page)
{
	bool p = false;

	CHECK_EQ(gmem_attr_is_private(gm, PG(page), &p), 0);
	return p;
}

static uint64_t gen(struct gmem *gm, uint64_t page)
{
	uint64_t g = 0;

	CHECK_EQ(gmem_generation(gm, PG(page), &g), 0);
	return g;
}

static int pin_try(struct gmem *gm, uint64_t page, uint64_t pages, struct gmem_pin *pin)
{
	int ret = gmem_pin_try(gm, PG(page), PG(pages), "test", page, pin);

	if (!ret)
		gmem_unpin(pin);
	return ret;
}

/* Pages 60..69 straddle the first chunk boundary (64): exactly they change. */
static void test_cross_chunk_convert(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 200);
	uint64_t g0 = gen(gm, 0), g1 = gen(gm, 64), g2 = gen(gm, 128), p;
	struct gmem_conv_result res;
	struct gmem_pin pin;

	CHECK_EQ(gmem_convert(gm, PG(60), PG(10), true, &res), 0);
	for (p = 56; p < 74; p++)
		CHECK_EQ(is_private(gm, p), p >= 60 && p < 70);
	CHECK_EQ(gmem_attr_extents(gm, NULL, NULL), 3);
	/* Each chunk the range touched moved once; the one beyond did not. */
	CHECK_EQ(gen(gm, 0), g0 + 1);
	CHECK_EQ(gen(gm, 69), g1 + 1);
	CHECK_EQ(gen(gm, 128), g2);
	CHECK_EQ(pin_try(gm, 59, 1, &pin), 0);
	CHECK_EQ(pin_try(gm, 70, 1, &pin), 0);
	CHECK_EQ(pin_try(gm, 58, 2, &pin), 0);
	CHECK_EQ(pin_try(gm, 58, 3, &pin), -EACCES);
	CHECK_EQ(pin_try(gm, 63, 2, &pin), -EACCES);
	CHECK_EQ(pin_try(gm, 69, 2, &pin), -EACCES);
	CHECK_EQ(gmem_read(gm, PG(64), &p, sizeof(p)), -EACCES);

	/* Back to shared for the inner part only: two private islands remain. */
	CHECK_EQ(gmem_convert(gm, PG(62), PG(5), false, &res), 0);
	for (p = 56; p < 74; p++)
		CHECK_EQ(is_private(gm, p), (p >= 60 && p < 62) || (p >= 67 && p < 70));
	CHECK_EQ(gmem_attr_extents(gm, NULL, NULL), 5);
	CHECK_EQ(pin_try(gm, 62, 5, &pin), 0);
	CHECK_EQ(gen(gm, 0), g0 + 2);
	CHECK_EQ(gen(gm, 64), g1 + 2);

	/* A whole-region range: every chunk word at once, both ways. */
	CHECK_EQ(gmem_convert(gm, 0, MEM, true, &res), 0);
	CHECK(is_private(gm, 0) && is_private(gm, MEM / PAGE - 1));
	CHECK_EQ(gmem_attr_extents(gm, NULL, NULL), 1);
	CHECK_EQ(gmem_convert(gm, 0, MEM, false, &res), 0);
	CHECK_EQ(gmem_attr_extents(gm, NULL, NULL), 1);
	CHECK_EQ(gen(gm, 128), g2 + 2);
	gmem_destroy(gm);
}

/* A pin over pages 3 and 4 spans two pin words: it holds exactly those pages. */
static void test_pin_across_words(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, true, 200);
	struct gmem_conv_result res;
	uint64_t pins, bytes, conv;
	struct gmem_pin pin;

	CHECK_EQ(gmem_pin(gm, PG(3) + 100, PAGE, "dev", 1, &pin), 0); /* pages 3 and 4 */
	gmem_pin_summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 1);
	CHECK_EQ(bytes, 2 * PAGE);
	CHECK_EQ(gmem_discard_try(gm, PG(3), PAGE, &res), -EAGAIN);
	CHECK_EQ(gmem_discard_try(gm, PG(4), PAGE, &res), -EAGAIN);
	CHECK_EQ(gmem_discard_try(gm, PG(0), PG(3), &res), 0); /* same word, other pages */
	CHECK_EQ(gmem_discard_try(gm, PG(5), PG(3), &res), 0);
	CHECK_EQ(gmem_convert(gm, PG(2), PAGE, true, &res), 0);
	CHECK_EQ(gmem_convert(gm, PG(2), PAGE, false, &res), 0);
	CHECK_EQ(gmem_convert(gm, PG(0), PG(8), true, &res), -ETIMEDOUT);
	CHECK_STR_CONTAINS(res.culprit, "dev request 1 pins GPA 0x3064");
	CHECK(!is_private(gm, 0) && !is_private(gm, 7)); /* all or nothing */
	gmem_unpin(&pin);
	gmem_pin_summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins + bytes + conv, 0);
	CHECK_EQ(gmem_discard_try(gm, PG(3), PG(2), &res), 0);
	gmem_destroy(gm);
}

/* The 16-bit count of a page: its last pin is refused, nothing else changes. */
static void test_pin_limit(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 200);
	struct gmem_pin *pins = calloc(0xffff, sizeof(*pins)), extra;
	struct gmem_conv_result res;
	uint64_t i;

	CHECK(pins != NULL);
	for (i = 0; i < 0xffff; i++)
		if (gmem_pin_try(gm, PG(6), 8, "dev", i, &pins[i]))
			break;
	CHECK_EQ(i, 0xffff);
	CHECK_EQ(gmem_pin_try(gm, PG(6), 8, "dev", i, &extra), -EBUSY);
	/* Pages 3..6 span two pin words: page 3's pin, taken first, is undone. */
	CHECK_EQ(gmem_pin_try(gm, PG(3), PG(4), "dev", i, &extra), -EBUSY);
	CHECK_EQ(gmem_discard_try(gm, PG(3), PG(3), &res), 0);
	CHECK_EQ(gmem_pin_try(gm, PG(7), PAGE, "dev", i, &extra), 0);
	gmem_unpin(&extra);
	CHECK_EQ(gmem_discard_try(gm, PG(6), PAGE, &res), -EAGAIN);
	for (i = 0; i < 0xffff; i++)
		gmem_unpin(&pins[i]);
	CHECK_EQ(gmem_discard_try(gm, PG(4), PG(4), &res), 0);
	free(pins);
	gmem_destroy(gm);
}

/* The §2b seam, held until released: a conversion stays under way as long as a test needs. */
struct gate {
	int open;
	int inside;
};

static int gate_attrs2(int fd, uint64_t off, uint64_t size, uint64_t attrs, uint64_t *eoff,
		       void *opaque)
{
	struct gate *g = opaque;

	(void)fd, (void)off, (void)size, (void)attrs, (void)eoff;
	__atomic_add_fetch(&g->inside, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&g->open, __ATOMIC_ACQUIRE))
		sched_yield();
	return 0;
}

struct bg {
	struct gmem *gm;
	uint64_t first, n;
	int ret;
};

static void *bg_convert(void *arg)
{
	struct bg *b = arg;
	struct gmem_conv_result res;

	b->ret = gmem_convert(b->gm, PG(b->first), PG(b->n), true, &res);
	return NULL;
}

static void wait_inside(struct gate *g, int n)
{
	while (__atomic_load_n(&g->inside, __ATOMIC_ACQUIRE) < n)
		sched_yield();
}

/*
 * One conversion holds pages 60..69.  Pages next to it in the same chunk word
 * convert, punch and pin without waiting; a range that overlaps it partly
 * waits for it, then goes ahead.
 */
static void test_partial_overlap(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false, 5000);
	struct bg a = { gm, 60, 10, -1 }, b = { gm, 50, 12, -1 };
	struct gate g = { 0 };
	struct gmem_conv_result res;
	uint64_t pins, bytes, conv, p;
	struct gmem_pin pin;
	pthread_t ta, tb;

	gmem_set_attrs2_fn(gm, gate_attrs2, &g);
	pthread_create(&ta, NULL, bg_convert, &a);
	wait_inside(&g, 1);
	gmem_pin_summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(conv, PG(10));
	CHECK_EQ(pin_try(gm, 59, 1, &pin), 0);
	CHECK_EQ(pin_try(gm, 70, 1, &pin), 0);
	CHECK_EQ(pin_try(gm, 64, 1, &pin), -EAGAIN);
	CHECK_EQ(pin_try(gm, 58, 3, &pin), -EAGAIN);
	CHECK_EQ(gmem_discard_try(gm, PG(69), PAGE, &res), -EAGAIN);
	CHECK_EQ(gmem_discard_try(gm, PG(55), PG(6), &res), -EAGAIN);
	CHECK_EQ(gmem_discard_try(gm, PG(59), PAGE, &res), 0);
	CHECK_EQ(gmem_discard_try(gm, PG(70), PAGE, &res), 0);
	CHECK_EQ(gmem_generation(gm, PG(60), &p), 0);

	/* Pages 50..61 overlap at 60 and 61: this one waits, holding nothing of a's. */
	pthread_create(&tb, NULL, bg_convert, &b);
	nanosleep(&(struct timespec){ 0, 30000000L }, NULL);
	CHECK_EQ(__atomic_load_n(&g.inside, __ATOMIC_ACQUIRE), 1);
	CHECK(!is_private(gm, 50));
	__atomic_store_n(&g.open, 1, __ATOMIC_RELEASE);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ(a.ret, 0);
	CHECK_EQ(b.ret, 0);
	CHECK_EQ(__atomic_load_n(&g.inside, __ATOMIC_ACQUIRE), 2);
	for (p = 48; p < 72; p++)
		CHECK_EQ(is_private(gm, p), p >= 50 && p < 70);
	gmem_pin_summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(conv, 0);
	gmem_destroy(gm);
}

/*
 * Threads pin small ranges that cross pin-word and chunk boundaries, write
 * a pattern while they hold the pin, and check it before they unpin; the
 * main thread converts overlapping ranges to private and back under the
 * destructive model, which punches: a conversion that overlooked a pin
 * would zero the pattern (a lost write, I1) or let the pin see a private
 * page (I3).
 */
struct stress {
	struct gmem *gm;
	int stop;
	uint64_t pins, bad;
	unsigned int seed;
};

static void *stress_pinner(void *arg)
{
	struct stress *s = arg;
	unsigned int seed = __atomic_add_fetch(&s->seed, 7919, __ATOMIC_RELAXED);
	struct gmem_pin pin;
	uint64_t first, n, p;
	bool private;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		first = 56 + (uint64_t)(rand_r(&seed) % 16);
		n = 1 + (uint64_t)(rand_r(&seed) % 6);
		if (gmem_pin(s->gm, PG(first), PG(n), "stress", first, &pin))
			continue;
		__atomic_add_fetch(&s->pins, 1, __ATOMIC_RELAXED);
		for (p = 0; p < n; p++) {
			if (gmem_attr_is_private(s->gm, PG(first + p), &private) || private)
				__atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
			memset((uint8_t *)pin.hva + PG(p), (int)(first + p), PAGE);
		}
		sched_yield();
		for (p = 0; p < n; p++) {
			const uint8_t *b = (const uint8_t *)pin.hva + PG(p);

			if (b[0] != (uint8_t)(first + p) || b[PAGE - 1] != (uint8_t)(first + p))
				__atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
		}
		gmem_unpin(&pin);
	}
	return NULL;
}

static void test_stress_pins_against_ranges(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, true, 5000);
	struct stress s = { .gm = gm };
	struct gmem_conv_result res;
	unsigned int i, rounds, ok = 0, seed = 1;
	pthread_t t[3];
	uint64_t first, n;

	for (i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, stress_pinner, &s);
	for (i = 0; i < 3000 || (__atomic_load_n(&s.pins, __ATOMIC_RELAXED) < 300 && i < 200000); i++) {
		first = 54 + (uint64_t)(rand_r(&seed) % 20);
		n = 1 + (uint64_t)(rand_r(&seed) % 8);
		ok += gmem_convert(gm, PG(first), PG(n), true, &res) == 0;
		ok += gmem_convert(gm, PG(first), PG(n), false, &res) == 0;
		if (i % 32 == 0)
			sched_yield();
	}
	rounds = i;
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(ok, 2 * rounds);
	CHECK_EQ(s.bad, 0);
	CHECK(s.pins > 0);
	CHECK_EQ(gmem_attr_extents(gm, NULL, NULL), 1);
	gmem_destroy(gm);
}

int main(void)
{
	test_cross_chunk_convert();
	test_pin_across_words();
	test_pin_limit();
	test_partial_overlap();
	test_stress_pins_against_ranges();
	return test_done("ranges");
}
