/*
 * Unit test: a detached (memfd-backed) gmem — bounds, accessors, the attribute map (I3), punching,
 * and the queries behind veil_vm_memory (attribute extents, pin summary).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "gmem.h"
#include "test.h"

#define PAGE GMEM_PAGE_SIZE
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define HOLE_START 0xc0000000ULL
#define HOLE_END 0x100000000ULL

static const struct gmem_arch_map x86_map = {
	.ram_base = 0, .hole_start = HOLE_START, .hole_end = HOLE_END,
};

static struct gmem *make_gmem(uint64_t size)
{
	struct gmem_layout l;
	struct gmem *gm = NULL;

	if (gmem_layout_compute(&x86_map, size, &l) || gmem_create(-1, &l, 0, &gm)) {
		fprintf(stderr, "cannot create a detached gmem of %" PRIu64 " MiB\n", size / MiB);
		exit(1);
	}
	return gm;
}

static int translate(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	void *hva;

	return gmem_translate(gm, gpa, len, &hva);
}

static struct gmem_stats stats(struct gmem *gm)
{
	struct gmem_stats s;

	gmem_get_stats(gm, &s);
	return s;
}

static void test_bounds_small(void)
{
	struct gmem *gm = make_gmem(4 * MiB);
	void *a = NULL, *b = NULL;

	CHECK_EQ(gmem_total_size(gm), 4 * MiB);
	CHECK_EQ(gmem_get_layout(gm)->nr, 1);
	CHECK_EQ(gmem_translate(gm, 0, 4 * MiB, &a), 0);
	CHECK_EQ(gmem_translate(gm, 0x1234, 16, &b), 0);
	CHECK(a != NULL && (uint8_t *)b == (uint8_t *)a + 0x1234);
	CHECK_EQ(gmem_translate(gm, 4 * MiB - 1, 1, &b), 0);
	CHECK((uint8_t *)b == (uint8_t *)a + 4 * MiB - 1);
	CHECK_EQ(translate(gm, 4 * MiB, 1), -EFAULT);
	CHECK_EQ(translate(gm, 4 * MiB - 4, 8), -EFAULT);
	CHECK_EQ(translate(gm, 0, 4 * MiB + 1), -EFAULT);
	CHECK_EQ(translate(gm, 1ULL << 40, 1), -EFAULT);
	/* gpa + len wraps: must not look like a small range at the bottom. */
	CHECK_EQ(translate(gm, UINT64_MAX - 1, 4), -EFAULT);
	CHECK_EQ(translate(gm, 16, UINT64_MAX), -EFAULT);
	CHECK_EQ(translate(gm, UINT64_MAX, UINT64_MAX), -EFAULT);
	CHECK_EQ(stats(gm).out_of_range, 7);
	CHECK_EQ(stats(gm).refused_private, 0);
	gmem_destroy(gm);
}

/* 5 GiB: 3 GiB below the hole, 2 GiB at 4 GiB.  Memfds are sparse, so this costs nothing. */
static void test_bounds_hole(void)
{
	struct gmem *gm = make_gmem(5 * GiB);
	const struct gmem_layout *l = gmem_get_layout(gm);
	uint64_t v = 0x1122334455667788ULL, r = 0;

	CHECK_EQ(l->nr, 2);
	CHECK_EQ(gmem_total_size(gm), 5 * GiB);
	CHECK_EQ(translate(gm, HOLE_START - 8, 8), 0);
	CHECK_EQ(translate(gm, HOLE_START - 4, 8), -EFAULT);
	CHECK_EQ(translate(gm, HOLE_START, 1), -EFAULT);
	CHECK_EQ(translate(gm, 0xfee00000ULL, 4), -EFAULT);
	CHECK_EQ(translate(gm, HOLE_END - 1, 1), -EFAULT);
	CHECK_EQ(translate(gm, HOLE_END - 4, 8), -EFAULT);
	/* Two ranges that happen to be adjacent in neither GPA nor HVA: no access spans them. */
	CHECK_EQ(translate(gm, HOLE_START - 4096, HOLE_END - HOLE_START + 8192), -EFAULT);
	CHECK_EQ(translate(gm, HOLE_END, 8), 0);
	CHECK_EQ(translate(gm, 6 * GiB - 8, 8), 0);
	CHECK_EQ(translate(gm, 6 * GiB - 4, 8), -EFAULT);
	CHECK_EQ(translate(gm, 6 * GiB, 1), -EFAULT);
	CHECK_EQ(gmem_write(gm, HOLE_END + 0x1000, &v, sizeof(v)), 0);
	CHECK_EQ(gmem_read(gm, HOLE_END + 0x1000, &r, sizeof(r)), 0);
	CHECK(r == v);
	CHECK_EQ(gmem_read(gm, 0x1000, &r, sizeof(r)), 0);
	CHECK(r == 0);
	CHECK_EQ(gmem_write(gm, HOLE_START, &v, sizeof(v)), -EFAULT);
	CHECK_EQ(stats(gm).out_of_range, 9);
	gmem_destroy(gm);
}

/*
 * The range above the hole is its own memfd: what gmem_write puts at a GPA
 * there must be what a punch of that GPA (an fd offset) takes away.
 */
static void test_above_hole_backing(void)
{
	struct gmem *gm = make_gmem(5 * GiB);
	uint64_t v = 0x0102030405060708ULL, r = 0;
	uint8_t *hva = NULL;

	CHECK_EQ(gmem_write(gm, HOLE_END + 0x3000, &v, sizeof(v)), 0);
	CHECK_EQ(gmem_write(gm, 0x3000, &v, sizeof(v)), 0);
	CHECK_EQ(gmem_punch_hole(gm, HOLE_END + 0x3000, PAGE), 0);
	CHECK_EQ(gmem_read(gm, HOLE_END + 0x3000, &r, sizeof(r)), 0);
	CHECK(r == 0);
	/* The same offset in the range below the hole is another page. */
	CHECK_EQ(gmem_read(gm, 0x3000, &r, sizeof(r)), 0);
	CHECK(r == v);
	CHECK_EQ(gmem_translate(gm, 6 * GiB - PAGE, PAGE, (void **)&hva), 0);
	if (hva) {
		hva[PAGE - 1] = 0x77;
		CHECK_EQ(gmem_read(gm, 6 * GiB - 1, &r, 1), 0);
		CHECK_EQ(r & 0xff, 0x77);
	}
	gmem_destroy(gm);
}

static void test_read_write(void)
{
	struct gmem *gm = make_gmem(4 * MiB);
	uint8_t buf[300], back[300];
	uint8_t *hva = NULL;
	unsigned int i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	/* Across a page boundary, so both pages are involved. */
	CHECK_EQ(gmem_write(gm, 2 * PAGE - 100, buf, sizeof(buf)), 0);
	memset(back, 0, sizeof(back));
	CHECK_EQ(gmem_read(gm, 2 * PAGE - 100, back, sizeof(back)), 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	CHECK_EQ(gmem_translate(gm, 2 * PAGE - 100, sizeof(buf), (void **)&hva), 0);
	CHECK(hva && memcmp(hva, buf, sizeof(buf)) == 0);
	/* And the other way: a store through the HVA is what gmem_read returns. */
	hva[5] = 0xa5;
	CHECK_EQ(gmem_read(gm, 2 * PAGE - 95, back, 1), 0);
	CHECK_EQ(back[0], 0xa5);
	CHECK_EQ(gmem_read(gm, 4 * MiB - 8, back, 9), -EFAULT);
	CHECK_EQ(gmem_write(gm, 4 * MiB - 8, buf, 9), -EFAULT);
	CHECK_EQ(gmem_write(gm, 4 * MiB - 9, buf, 9), 0);
	gmem_destroy(gm);
}

static void test_private_refused(struct gmem *gm, uint64_t priv)
{
	uint8_t buf[16] = { 0x5a };
	uint64_t before = stats(gm).refused_private;

	CHECK_EQ(translate(gm, priv, 1), -EACCES);
	CHECK_EQ(translate(gm, priv + PAGE - 1, 1), -EACCES);
	CHECK_EQ(translate(gm, priv - 8, 16), -EACCES);
	CHECK_EQ(translate(gm, priv + PAGE - 8, 16), -EACCES);
	CHECK_EQ(translate(gm, priv - PAGE, 3 * PAGE), -EACCES);
	CHECK_EQ(gmem_read(gm, priv + 100, buf, sizeof(buf)), -EACCES);
	CHECK_EQ(gmem_write(gm, priv + 100, buf, sizeof(buf)), -EACCES);
	CHECK_EQ(stats(gm).refused_private, before + 7);
}

static void test_private_neighbours(struct gmem *gm, uint64_t priv)
{
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8];
	uint64_t before = stats(gm).refused_private;

	CHECK_EQ(translate(gm, priv - PAGE, PAGE), 0);
	CHECK_EQ(translate(gm, priv + PAGE, PAGE), 0);
	CHECK_EQ(gmem_write(gm, priv - 8, buf, sizeof(buf)), 0);
	CHECK_EQ(gmem_read(gm, priv + PAGE, back, sizeof(back)), 0);
	CHECK_EQ(stats(gm).refused_private, before);
}

static void test_attr_map(void)
{
	struct gmem *gm = make_gmem(4 * MiB);
	const uint64_t priv = 0x5000;
	uint8_t buf[4] = { 9, 8, 7, 6 }, back[4] = { 0 };
	bool p = true;

	CHECK_EQ(gmem_attr_is_private(gm, priv, &p), 0);
	CHECK(!p);
	CHECK_EQ(gmem_write(gm, priv + 12, buf, sizeof(buf)), 0);
	CHECK_EQ(gmem_attr_set_private(gm, priv, PAGE, true), 0);
	CHECK_EQ(gmem_attr_is_private(gm, priv + PAGE - 1, &p), 0);
	CHECK(p);
	CHECK_EQ(gmem_attr_is_private(gm, priv + PAGE, &p), 0);
	CHECK(!p);
	test_private_refused(gm, priv);
	test_private_neighbours(gm, priv);
	CHECK_EQ(gmem_attr_set_private(gm, priv, PAGE, false), 0);
	CHECK_EQ(translate(gm, priv - 8, 16), 0);
	CHECK_EQ(gmem_read(gm, priv + 12, back, sizeof(back)), 0);
	CHECK(memcmp(back, buf, sizeof(buf)) == 0);
	CHECK_EQ(gmem_attr_is_private(gm, 4 * MiB, &p), -EFAULT);
	gmem_destroy(gm);
}

/* Several pages at once, including the last page of RAM, and a partial revert. */
static void test_attr_ranges(void)
{
	struct gmem *gm = make_gmem(4 * MiB);
	const uint64_t last = 4 * MiB - PAGE;

	CHECK_EQ(gmem_attr_set_private(gm, 0x10000, 8 * PAGE, true), 0);
	CHECK_EQ(translate(gm, 0x10000 + 7 * PAGE, 1), -EACCES);
	CHECK_EQ(translate(gm, 0x10000 + 8 * PAGE, 1), 0);
	CHECK_EQ(translate(gm, 0x10000 - 1, 1), 0);
	CHECK_EQ(gmem_attr_set_private(gm, 0x10000 + 2 * PAGE, 2 * PAGE, false), 0);
	CHECK_EQ(translate(gm, 0x10000 + 2 * PAGE, 2 * PAGE), 0);
	CHECK_EQ(translate(gm, 0x10000 + PAGE, 1), -EACCES);
	CHECK_EQ(translate(gm, 0x10000 + 4 * PAGE, 1), -EACCES);
	CHECK_EQ(gmem_attr_set_private(gm, last, PAGE, true), 0);
	CHECK_EQ(translate(gm, last + PAGE - 1, 1), -EACCES);
	CHECK_EQ(translate(gm, last - 1, 1), 0);
	gmem_destroy(gm);
}

static void test_attr_invalid(void)
{
	struct gmem *gm = make_gmem(4 * MiB);

	CHECK_EQ(gmem_attr_set_private(gm, 0x5001, PAGE, true), -EINVAL);
	CHECK_EQ(gmem_attr_set_private(gm, 0x5000, PAGE - 1, true), -EINVAL);
	CHECK_EQ(gmem_attr_set_private(gm, 0x5000, PAGE + 1, true), -EINVAL);
	CHECK_EQ(gmem_attr_set_private(gm, 0x5000, 0, true), -EINVAL);
	CHECK_EQ(gmem_attr_set_private(gm, 4 * MiB, PAGE, true), -EINVAL);
	CHECK_EQ(gmem_attr_set_private(gm, 4 * MiB - PAGE, 2 * PAGE, true), -EINVAL);
	CHECK_EQ(gmem_attr_set_private(gm, UINT64_MAX & ~(PAGE - 1), PAGE, true), -EINVAL);
	/* Nothing became private along the way. */
	CHECK_EQ(translate(gm, 0, 4 * MiB), 0);
	CHECK_EQ(stats(gm).refused_private, 0);
	gmem_destroy(gm);
}

static void fill_page(struct gmem *gm, uint64_t gpa, uint8_t v)
{
	uint8_t page[PAGE];

	memset(page, v, sizeof(page));
	CHECK_EQ(gmem_write(gm, gpa, page, sizeof(page)), 0);
}

/* Returns the number of bytes in the page that differ from v. */
static unsigned int page_differs(struct gmem *gm, uint64_t gpa, uint8_t v)
{
	uint8_t page[PAGE];
	unsigned int i, n = 0;

	memset(page, (uint8_t)~v, sizeof(page));
	CHECK_EQ(gmem_read(gm, gpa, page, sizeof(page)), 0);
	for (i = 0; i < PAGE; i++)
		n += page[i] != v;
	return n;
}

static void test_punch_hole(void)
{
	struct gmem *gm = make_gmem(4 * MiB);
	uint8_t *hva = NULL;

	fill_page(gm, 0x20000, 0xaa);
	fill_page(gm, 0x21000, 0xbb);
	fill_page(gm, 0x22000, 0xcc);
	CHECK_EQ(stats(gm).punches, 0);
	CHECK_EQ(gmem_punch_hole(gm, 0x21000, PAGE), 0);
	CHECK_EQ(stats(gm).punches, 1);
	CHECK_EQ(page_differs(gm, 0x21000, 0), 0);
	CHECK_EQ(page_differs(gm, 0x20000, 0xaa), 0);
	CHECK_EQ(page_differs(gm, 0x22000, 0xcc), 0);
	CHECK_EQ(gmem_translate(gm, 0x21000, PAGE, (void **)&hva), 0);
	CHECK(hva && hva[0] == 0 && hva[PAGE - 1] == 0);
	/* The punched page is usable again. */
	fill_page(gm, 0x21000, 0xdd);
	CHECK_EQ(page_differs(gm, 0x21000, 0xdd), 0);
	CHECK_EQ(gmem_punch_hole(gm, 0x21800, PAGE), -EINVAL);
	CHECK_EQ(gmem_punch_hole(gm, 0x21000, 100), -EINVAL);
	CHECK_EQ(gmem_punch_hole(gm, 0x21000, 0), -EINVAL);
	CHECK_EQ(gmem_punch_hole(gm, 4 * MiB, PAGE), -EINVAL);
	CHECK_EQ(stats(gm).punches, 1);
	CHECK_EQ(page_differs(gm, 0x21000, 0xdd), 0);
	gmem_destroy(gm);
}

static void test_create_invalid(void)
{
	struct gmem_layout empty = { .nr = 0 };
	struct gmem_layout many = { .nr = GMEM_MAX_REGIONS + 1 };
	struct gmem *gm = NULL;

	CHECK_EQ(gmem_create(-1, &empty, 0, &gm), -EINVAL);
	CHECK_EQ(gmem_create(-1, &many, 0, &gm), -EINVAL);
	CHECK(gm == NULL);
	gmem_destroy(NULL);
}

/* What gmem_attr_extents reported, in the order it reported it. */
struct extents {
	unsigned int n;
	struct { uint64_t gpa, len; bool priv; } e[16];
};

static void extent_cb(void *opaque, uint64_t gpa, uint64_t len, bool priv)
{
	struct extents *x = opaque;

	if (x->n < 16)
		x->e[x->n] = (__typeof__(x->e[0])){ gpa, len, priv };
	x->n++;
}

#define CHECK_EXTENT(x, i, g, l, p)                                       \
	do {                                                              \
		CHECK_EQ((x).e[i].gpa, (g));                              \
		CHECK_EQ((x).e[i].len, (l));                              \
		CHECK_EQ((x).e[i].priv, (p));                             \
	} while (0)

/* Maximal runs in GPA order: split at the hole, at every change, merged when adjacent. */
static void test_attr_extents(void)
{
	struct gmem *gm = make_gmem(5 * GiB);
	struct extents x = { 0 };

	CHECK_EQ(gmem_attr_extents(gm, extent_cb, &x), 2); /* all shared, one run per side of the hole */
	CHECK_EQ(x.n, 2);
	CHECK_EXTENT(x, 0, 0, HOLE_START, false);
	CHECK_EXTENT(x, 1, HOLE_END, 2 * GiB, false);
	CHECK_EQ(gmem_attr_set_private(gm, 0x10000, 3 * PAGE, true), 0);
	CHECK_EQ(gmem_attr_set_private(gm, HOLE_START - PAGE, PAGE, true), 0);
	CHECK_EQ(gmem_attr_set_private(gm, HOLE_END, PAGE, true), 0);
	CHECK_EQ(gmem_attr_set_private(gm, 6 * GiB - PAGE, PAGE, true), 0);
	x.n = 0;
	CHECK_EQ(gmem_attr_extents(gm, extent_cb, &x), 7);
	CHECK_EQ(x.n, 7);
	CHECK_EXTENT(x, 0, 0, 0x10000, false);
	CHECK_EXTENT(x, 1, 0x10000, 3 * PAGE, true);
	CHECK_EXTENT(x, 2, 0x13000, HOLE_START - PAGE - 0x13000, false);
	/* Private on both sides of the hole: two runs, since the hole is not RAM. */
	CHECK_EXTENT(x, 3, HOLE_START - PAGE, PAGE, true);
	CHECK_EXTENT(x, 4, HOLE_END, PAGE, true);
	CHECK_EXTENT(x, 5, HOLE_END + PAGE, 2 * GiB - 2 * PAGE, false);
	CHECK_EXTENT(x, 6, 6 * GiB - PAGE, PAGE, true);
	/* A neighbour joins its run; clearing the middle splits one. */
	CHECK_EQ(gmem_attr_set_private(gm, 0x13000, PAGE, true), 0);
	CHECK_EQ(gmem_attr_set_private(gm, 0x11000, PAGE, false), 0);
	x.n = 0;
	CHECK_EQ(gmem_attr_extents(gm, NULL, NULL), 9);
	CHECK_EQ(gmem_attr_extents(gm, extent_cb, &x), 9);
	CHECK_EXTENT(x, 1, 0x10000, PAGE, true);
	CHECK_EXTENT(x, 2, 0x11000, PAGE, false);
	CHECK_EXTENT(x, 3, 0x12000, 2 * PAGE, true);
	CHECK_EXTENT(x, 4, 0x14000, HOLE_START - PAGE - 0x14000, false);
	gmem_destroy(gm);
}

/* Ranges given out of GPA order, adjacent: reported in GPA order, one run across them. */
static void test_attr_extents_order(void)
{
	struct gmem_layout l = { .nr = 2, .r = { { 0x100000, 0x100000 }, { 0, 0x100000 } } };
	struct extents x = { 0 };
	struct gmem *gm = NULL;

	CHECK_EQ(gmem_create(-1, &l, 0, &gm), 0);
	if (!gm)
		return;
	CHECK_EQ(gmem_attr_extents(gm, extent_cb, &x), 1);
	CHECK_EXTENT(x, 0, 0, 0x200000, false);
	CHECK_EQ(gmem_attr_set_private(gm, 0xff000, PAGE, true), 0);  /* the last of one range */
	CHECK_EQ(gmem_attr_set_private(gm, 0x100000, PAGE, true), 0); /* the first of the other */
	x.n = 0;
	CHECK_EQ(gmem_attr_extents(gm, extent_cb, &x), 3);
	CHECK_EXTENT(x, 0, 0, 0xff000, false);
	CHECK_EXTENT(x, 1, 0xff000, 2 * PAGE, true);
	CHECK_EXTENT(x, 2, 0x101000, 0xff000, false);
	gmem_destroy(gm);
}

static void summary(struct gmem *gm, uint64_t *pins, uint64_t *bytes, uint64_t *conv)
{
	*pins = *bytes = *conv = UINT64_MAX;
	gmem_pin_summary(gm, pins, bytes, conv);
}

static int lt_noop(void *opaque)
{
	(void)opaque;
	return 0;
}

static const struct gmem_longterm_ops lt_ops = {
	.release = lt_noop, .restore = lt_noop, .name = "test-ring",
};

/* Pins counted one by one, their pages once each, long-term pins included. */
static void test_pin_summary(void)
{
	struct gmem *gm = make_gmem(4 * MiB);
	struct gmem_pin a, b, c;
	uint64_t pins, bytes, conv;
	int lt;

	summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 0);
	CHECK_EQ(bytes, 0);
	CHECK_EQ(conv, 0);
	CHECK_EQ(gmem_pin(gm, 0x1800, 16, "dev", 1, &a), 0);       /* page 1 */
	CHECK_EQ(gmem_pin(gm, 0x1000, 2 * PAGE, "dev", 2, &b), 0); /* pages 1-2 */
	CHECK_EQ(gmem_pin(gm, 0x2fff, 2, "dev", 3, &c), 0);        /* pages 2-3 */
	summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 3);
	CHECK_EQ(bytes, 3 * PAGE);
	CHECK_EQ(conv, 0);
	CHECK_EQ(gmem_longterm_register(gm, 0x3000, 4 * PAGE, &lt_ops, &lt), 0); /* pages 3-6 */
	summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 4);
	CHECK_EQ(bytes, 6 * PAGE);
	gmem_unpin(&b);
	gmem_unpin(&c);
	summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 2);
	CHECK_EQ(bytes, 5 * PAGE);
	gmem_longterm_unregister(gm, &lt);
	gmem_unpin(&a);
	summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 0);
	CHECK_EQ(bytes, 0);
	CHECK_EQ(conv, 0);
	gmem_destroy(gm);
}

struct bg_convert {
	struct gmem *gm;
	uint64_t gpa, len;
	int ret;
};

static void *bg_convert(void *arg)
{
	struct bg_convert *b = arg;
	struct gmem_conv_result res;

	b->ret = gmem_convert(b->gm, b->gpa, b->len, true, &res);
	return NULL;
}

/* A conversion waiting for a pin to drain is in flight: its bytes show as converting. */
static void test_pin_summary_converting(void)
{
	struct gmem_config cfg = { .vm_fd = -1, .model = GMEM_MODEL_HOST,
				   .drain_timeout_ns = 5000000000ULL };
	struct gmem_layout l = { .nr = 1, .r = { { 0, 4 * MiB } } };
	struct bg_convert b = { .gpa = 0x20000, .len = 4 * PAGE };
	uint64_t pins = 0, bytes = 0, conv = 0;
	struct gmem *gm = NULL;
	struct gmem_pin pin;
	pthread_t t;
	int i;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &gm), 0);
	if (!gm)
		return;
	b.gm = gm;
	CHECK_EQ(gmem_pin(gm, 0x21000, 8, "dev", 1, &pin), 0);
	CHECK_EQ(pthread_create(&t, NULL, bg_convert, &b), 0);
	for (i = 0; i < 2000 && conv == 0; i++) {
		usleep(1000);
		gmem_pin_summary(gm, &pins, &bytes, &conv);
	}
	CHECK_EQ(conv, 4 * PAGE);
	CHECK_EQ(pins, 1);
	CHECK_EQ(bytes, PAGE);
	gmem_unpin(&pin);
	pthread_join(t, NULL);
	CHECK_EQ(b.ret, 0);
	summary(gm, &pins, &bytes, &conv);
	CHECK_EQ(pins, 0);
	CHECK_EQ(bytes, 0);
	CHECK_EQ(conv, 0);
	gmem_destroy(gm);
}

int main(void)
{
	test_create_invalid();
	test_bounds_small();
	test_bounds_hole();
	test_above_hole_backing();
	test_read_write();
	test_attr_map();
	test_attr_ranges();
	test_attr_invalid();
	test_punch_hole();
	test_attr_extents();
	test_attr_extents_order();
	test_pin_summary();
	test_pin_summary_converting();
	return test_done("test_gmem");
}
