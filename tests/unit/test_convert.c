/*
 * unit: gmem's pin registry and conversions on detached (memfd) memory:
 * draining, bounded waits with a named culprit, disjoint ranges, the §2b
 * backend against a fault-injection seam (not a kernel test), long-term
 * pins, and a threaded race of pins against conversions (run under TSan too).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exit.h"
#include "gmem.h"
#include "kvm_uapi.h"
#include "test.h"
#include "vm.h"

#define MEM (4ULL << 20)
#define PAGE 4096ULL

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

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_private_refused_and_preserved(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 200);
	struct gmem_conv_result res;
	struct gmem_stats st;
	struct gmem_pin pin;
	uint64_t v = 0x1234, got = 0;

	CHECK_EQ(gmem_write(gm, 0x5000, &v, 8), 0);
	CHECK_EQ(gmem_convert(gm, 0x5000, PAGE, true, &res), 0);
	CHECK_EQ(gmem_read(gm, 0x5000, &got, 8), -EACCES);
	CHECK_EQ(gmem_pin(gm, 0x5ff0, 0x20, "dev", 1, &pin), -EACCES); /* straddles into it */
	CHECK_EQ(gmem_read(gm, 0x6000, &got, 8), 0);                    /* the neighbour is fine */
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.refused_private, 2);
	CHECK_EQ(st.conversions, 1);
	CHECK_EQ(gmem_convert(gm, 0x5000, PAGE, false, &res), 0);
	CHECK_EQ(gmem_read(gm, 0x5000, &got, 8), 0);
	CHECK_EQ(got, 0x1234); /* host-enforced, not destructive: contents kept */
	CHECK_EQ(gmem_convert(gm, 0x5001, PAGE, true, &res), -EINVAL);
	CHECK_EQ(gmem_convert(gm, MEM, PAGE, true, &res), -EINVAL);
	gmem_destroy(gm);
}

static void test_destructive_zeroes(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, true, 200);
	struct gmem_conv_result res;
	uint64_t v = 0x5678, got = 1;

	CHECK_EQ(gmem_write(gm, 0x8000, &v, 8), 0);
	CHECK_EQ(gmem_convert(gm, 0x8000, PAGE, true, &res), 0);
	CHECK_EQ(gmem_convert(gm, 0x8000, PAGE, false, &res), 0);
	CHECK_EQ(gmem_read(gm, 0x8000, &got, 8), 0);
	CHECK_EQ(got, 0);
	gmem_destroy(gm);
}

struct bg {
	struct gmem *gm;
	uint64_t gpa, len;
	bool to_private, discard;
	int ret;
	struct gmem_conv_result res;
	uint64_t ms;
};

static void *bg_convert(void *arg)
{
	struct bg *b = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	b->ret = b->discard ? gmem_discard(b->gm, b->gpa, b->len, &b->res)
			    : gmem_convert(b->gm, b->gpa, b->len, b->to_private, &b->res);
	b->ms = ms_since(&t0);
	return NULL;
}

static void test_drain_waits_for_pin(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 2000);
	struct bg b = { .gm = gm, .gpa = 0x10000, .len = 4 * PAGE, .discard = true };
	struct gmem_stats st;
	struct gmem_pin pin;
	uint64_t v = 0xabcd;
	pthread_t t;

	CHECK_EQ(gmem_write(gm, 0x12000, &v, 8), 0);
	CHECK_EQ(gmem_pin(gm, 0x12000, 8, "disk", 3, &pin), 0);
	pthread_create(&t, NULL, bg_convert, &b);
	/* Once the punch is waiting (polled: a loaded machine may start the thread late)... */
	for (int i = 0; i < 1000; i++) {
		gmem_get_stats(gm, &st);
		if (st.drain_waits)
			break;
		sleep_ms(10);
	}
	sleep_ms(100);
	/* ...it keeps waiting: the pinned data is intact. */
	CHECK_EQ(*(volatile uint64_t *)pin.hva, 0xabcd);
	gmem_unpin(&pin);
	pthread_join(t, NULL);
	CHECK_EQ(b.ret, 0);
	CHECK(b.ms >= 90);
	CHECK(b.res.wait_ns >= 90000000ULL);
	CHECK_EQ(gmem_read(gm, 0x12000, &v, 8), 0);
	CHECK_EQ(v, 0); /* punched after the pin drained */
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.drain_waits, 1);
	CHECK_EQ(st.punches, 1);
	gmem_destroy(gm);
}

static void test_drain_timeout_names_culprit(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 100);
	struct gmem_conv_result res;
	struct gmem_pin pin, pin2;
	struct timespec t0;
	bool private = true;

	CHECK_EQ(gmem_pin(gm, 0x20000, PAGE, "virtio-blk", 7, &pin), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(gmem_convert(gm, 0x20000, PAGE, true, &res), -ETIMEDOUT);
	CHECK(ms_since(&t0) >= 90 && ms_since(&t0) < 1000);
	CHECK_STR_CONTAINS(res.culprit, "virtio-blk request 7 pins GPA 0x20000");
	/* All or nothing: still shared, and pinnable. */
	CHECK_EQ(gmem_attr_is_private(gm, 0x20000, &private), 0);
	CHECK(!private);
	CHECK_EQ(gmem_pin(gm, 0x20000, PAGE, "virtio-blk", 8, &pin2), 0);
	gmem_unpin(&pin2);
	gmem_unpin(&pin);
	gmem_destroy(gm);
}

static void test_disjoint_never_wait(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 2000);
	struct gmem_conv_result res;
	struct gmem_pin pin;
	struct timespec t0;

	CHECK_EQ(gmem_pin(gm, 0x30000, PAGE, "dev", 1, &pin), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(gmem_convert(gm, 0x31000, PAGE, true, &res), 0);
	CHECK_EQ(gmem_discard(gm, 0x2f000, PAGE, &res), 0);
	/* A wait would last the whole 2 s drain timeout; anything well under it did not wait. */
	CHECK(ms_since(&t0) < 1000);
	CHECK_EQ(res.wait_ns < 50000000ULL, 1);
	gmem_unpin(&pin);
	gmem_destroy(gm);
}

/* The §2b seam: EAGAIN at a given error_offset a number of times, then success. */
struct fake_kernel {
	unsigned int eagain_left;
	uint64_t error_offset;
	bool *longterm_held; /* if set, EAGAIN at error_offset while *longterm_held */
	unsigned int calls;
	unsigned int delay_ms;
	unsigned int slow_call; /* if set, only this call (1-based) is delayed, by delay_ms */
};

static int fake_attrs2(int fd, uint64_t off, uint64_t size, uint64_t attrs, uint64_t *eoff,
		       void *opaque)
{
	struct fake_kernel *k = opaque;

	unsigned int call = __atomic_add_fetch(&k->calls, 1, __ATOMIC_RELAXED);

	(void)fd, (void)attrs;
	if (k->delay_ms && (!k->slow_call || k->slow_call == call))
		sleep_ms(k->delay_ms);
	if (k->error_offset < off || k->error_offset >= off + size || !attrs)
		return 0; /* to-shared is never refcount-checked */
	if ((k->longterm_held && __atomic_load_n(k->longterm_held, __ATOMIC_ACQUIRE)) ||
	    k->eagain_left) {
		if (k->eagain_left)
			k->eagain_left--;
		*eoff = k->error_offset;
		return -EAGAIN;
	}
	return 0;
}

/* Until the conversion thread is in the kernel step, so the range is marked converting. */
static void wait_for_call(struct fake_kernel *k)
{
	for (int i = 0; i < 1000 && !__atomic_load_n(&k->calls, __ATOMIC_RELAXED); i++)
		sleep_ms(10);
}

static void test_inplace_seam_retries(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false, 200);
	struct fake_kernel k = { .eagain_left = 2, .error_offset = 0x3000 };
	struct gmem_conv_result res;
	struct gmem_stats st;
	bool private = false;

	gmem_set_attrs2_fn(gm, fake_attrs2, &k);
	CHECK_EQ(gmem_convert(gm, 0x0, 0x10000, true, &res), 0);
	CHECK_EQ(res.eagain, 2);
	CHECK_EQ(res.retries, 2);
	CHECK_EQ(k.calls, 3);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.eagain, 2);
	CHECK_EQ(st.retries, 2);
	/* A reference that never goes: bounded, all or nothing, offset named. */
	CHECK_EQ(gmem_convert(gm, 0x0, 0x10000, false, &res), 0);
	k.eagain_left = 1000;
	k.calls = 0;
	CHECK_EQ(gmem_convert(gm, 0x0, 0x10000, true, &res), -EAGAIN);
	CHECK_EQ(k.calls, 5); /* 1 + max_retries (4) */
	CHECK_STR_CONTAINS(res.culprit, "guest_memfd offset 0x3000");
	CHECK_EQ(gmem_attr_is_private(gm, 0x3000, &private), 0);
	CHECK(!private);
	gmem_destroy(gm);
}

struct lt_buf {
	bool held;
	unsigned int releases, restores;
};

/* Counted atomically: conversions run on other threads than the checks. */
static int lt_release(void *opaque)
{
	struct lt_buf *b = opaque;

	__atomic_store_n(&b->held, false, __ATOMIC_RELEASE);
	__atomic_add_fetch(&b->releases, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static int lt_restore(void *opaque)
{
	struct lt_buf *b = opaque;

	__atomic_store_n(&b->held, true, __ATOMIC_RELEASE);
	__atomic_add_fetch(&b->restores, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static unsigned int lt_count(const unsigned int *c)
{
	return __atomic_load_n(c, __ATOMIC_ACQUIRE);
}

static const struct gmem_longterm_ops lt_ops = {
	.release = lt_release, .restore = lt_restore, .name = "test-ring",
};

static void test_longterm_pin_released_and_restored(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false, 200);
	struct lt_buf buf = { .held = true };
	struct fake_kernel k = { .error_offset = 0x3000, .longterm_held = &buf.held };
	struct gmem_conv_result res;
	struct gmem_stats st;

	gmem_set_attrs2_fn(gm, fake_attrs2, &k);
	CHECK_EQ(gmem_longterm_register(gm, 0x2000, 0x4000, &lt_ops, &buf), 0);
	/* A conversion elsewhere leaves it alone. */
	CHECK_EQ(gmem_convert(gm, 0x10000, PAGE, true, &res), 0);
	CHECK_EQ(buf.releases, 0);
	CHECK_EQ(gmem_convert(gm, 0x0, 0x8000, true, &res), 0);
	CHECK_EQ(res.eagain, 1);
	CHECK_EQ(buf.releases, 1);
	CHECK_EQ(buf.restores, 0); /* its pages are private now */
	CHECK_EQ(gmem_convert(gm, 0x0, 0x8000, false, &res), 0);
	CHECK_EQ(buf.restores, 1);
	CHECK(buf.held);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.longterm_releases, 1);
	gmem_longterm_unregister(gm, &buf);
	gmem_destroy(gm);
}

/*
 * Found by veil stress: a conversion elsewhere must not restore a long-term
 * pin while another conversion is still working on the pin's pages, or the
 * restored registration would pin pages that are about to change.
 */
static void test_longterm_not_restored_mid_conversion(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false, 2000);
	struct lt_buf buf = { .held = true };
	struct fake_kernel k = {
		.eagain_left = 1, .error_offset = 0x3000, .delay_ms = 1000, .slow_call = 2,
	};
	struct bg a = { .gm = gm, .gpa = 0x0, .len = 0x8000, .to_private = true };
	struct gmem_conv_result res;
	pthread_t t;

	gmem_set_attrs2_fn(gm, fake_attrs2, &k);
	CHECK_EQ(gmem_longterm_register(gm, 0x2000, 0x4000, &lt_ops, &buf), 0);
	pthread_create(&t, NULL, bg_convert, &a); /* EAGAIN, release, then a slow retry */
	for (int i = 0; i < 1000 && !lt_count(&buf.releases); i++) /* polled: a loaded machine */
		sleep_ms(10);
	CHECK_EQ(lt_count(&buf.releases), 1);
	CHECK_EQ(gmem_convert(gm, 0x20000, PAGE, false, &res), 0); /* elsewhere, meanwhile */
	CHECK_EQ(lt_count(&buf.restores), 0);
	pthread_join(t, NULL);
	CHECK_EQ(a.ret, 0);
	CHECK_EQ(buf.restores, 0); /* the pages are private now: still released */
	gmem_longterm_unregister(gm, &buf);
	gmem_destroy(gm);
}

struct pin_during {
	struct gmem *gm;
	int ret;
	uint64_t ms;
};

static void *bg_pin(void *arg)
{
	struct pin_during *p = arg;
	struct gmem_pin pin;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	p->ret = gmem_pin(p->gm, 0x40000, 8, "dma", 1, &pin);
	p->ms = ms_since(&t0);
	if (!p->ret)
		gmem_unpin(&pin);
	return NULL;
}

static void test_pin_waits_for_conversion(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false, 2000);
	struct fake_kernel k = { .error_offset = UINT64_MAX, .delay_ms = 300 };
	struct bg b = { .gm = gm, .gpa = 0x40000, .len = PAGE, .to_private = true };
	struct pin_during p = { .gm = gm };
	struct gmem_stats st;
	pthread_t tc, tp;

	gmem_set_attrs2_fn(gm, fake_attrs2, &k);
	pthread_create(&tc, NULL, bg_convert, &b);
	wait_for_call(&k);
	pthread_create(&tp, NULL, bg_pin, &p);
	pthread_join(tc, NULL);
	pthread_join(tp, NULL);
	CHECK_EQ(b.ret, 0);
	CHECK_EQ(p.ret, -EACCES); /* it waited, then found the page private */
	CHECK(p.ms >= 60);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.pin_waits, 1);
	gmem_destroy(gm);
}

struct bg_rt {
	struct gmem *gm;
	int ret;
	struct gmem_conv_result res;
};

static void *bg_roundtrip(void *arg)
{
	struct bg_rt *b = arg;

	b->ret = gmem_roundtrip(b->gm, 0x40000, PAGE, &b->res);
	return NULL;
}

/*
 * A round trip keeps the range converting from the first step to the last:
 * a pin arriving in between waits and then succeeds on a shared page, where
 * two separate conversions would have let it find the page private.
 */
static void test_roundtrip(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false, 2000);
	struct fake_kernel k = { .error_offset = UINT64_MAX, .delay_ms = 100 };
	struct bg_rt b = { .gm = gm };
	struct pin_during p = { .gm = gm };
	struct gmem_conv_result res;
	uint64_t v = 0x1234, r = 0;
	struct gmem_stats st;
	pthread_t tc, tp;
	bool private = true;

	gmem_set_attrs2_fn(gm, fake_attrs2, &k);
	CHECK_EQ(gmem_write(gm, 0x40000, &v, 8), 0);
	pthread_create(&tc, NULL, bg_roundtrip, &b);
	wait_for_call(&k);
	pthread_create(&tp, NULL, bg_pin, &p);
	pthread_join(tc, NULL);
	pthread_join(tp, NULL);
	CHECK_EQ(b.ret, 0);
	CHECK_EQ(k.calls, 2); /* to private, then to shared */
	CHECK_EQ(p.ret, 0);   /* it waited through both steps and found the page shared */
	CHECK(p.ms >= 100);
	CHECK_EQ(gmem_read(gm, 0x40000, &r, 8), 0);
	CHECK_EQ(r, v);
	CHECK_EQ(gmem_attr_is_private(gm, 0x40000, &private), 0);
	CHECK(!private);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.conversions, 2);
	/* A private page is the guest's: refused.  A pin that stays: bounded, culprit named. */
	CHECK_EQ(gmem_convert(gm, 0x40000, PAGE, true, &res), 0);
	CHECK_EQ(gmem_roundtrip(gm, 0x40000, PAGE, &res), -EBUSY);
	CHECK_EQ(gmem_convert(gm, 0x40000, PAGE, false, &res), 0);
	gmem_destroy(gm);

	gm = make(GMEM_MODEL_HOST, false, 50);
	{
		struct gmem_pin pin;

		CHECK_EQ(gmem_pin(gm, 0x41000, 8, "dma", 9, &pin), 0);
		CHECK_EQ(gmem_roundtrip(gm, 0x40000, 2 * PAGE, &res), -ETIMEDOUT);
		CHECK_STR_CONTAINS(res.culprit, "dma");
		gmem_unpin(&pin);
		CHECK_EQ(gmem_roundtrip(gm, 0x40000, 2 * PAGE, &res), 0);
	}
	gmem_destroy(gm);
	/* The non-waiting forms: busy now is -EAGAIN at once, whoever holds the range. */
	gm = make(GMEM_MODEL_IN_PLACE, false, 2000);
	{
		struct fake_kernel k2 = { .error_offset = UINT64_MAX, .delay_ms = 500 };
		struct bg_rt b2 = { .gm = gm };
		struct gmem_pin pin;
		struct timespec t0;

		gmem_set_attrs2_fn(gm, fake_attrs2, &k2);
		pthread_create(&tc, NULL, bg_roundtrip, &b2);
		wait_for_call(&k2);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CHECK_EQ(gmem_pin_try(gm, 0x40000, 8, "dma", 1, &pin), -EAGAIN);
		CHECK_EQ(gmem_discard_try(gm, 0x40000, PAGE, &res), -EAGAIN);
		CHECK(ms_since(&t0) < 250); /* waiting would have lasted over 500 ms */
		pthread_join(tc, NULL);
		CHECK_EQ(b2.ret, 0);
		CHECK_EQ(gmem_pin_try(gm, 0x40000, 8, "dma", 2, &pin), 0);
		CHECK_EQ(gmem_discard_try(gm, 0x40000, PAGE, &res), -EAGAIN); /* pinned */
		gmem_unpin(&pin);
		CHECK_EQ(gmem_discard_try(gm, 0x40000, PAGE, &res), 0);
	}
	gmem_destroy(gm);
	/* Contents would not survive a destructive round trip: refused. */
	gm = make(GMEM_MODEL_HOST, true, 50);
	CHECK_EQ(gmem_roundtrip(gm, 0x40000, PAGE, &res), -EOPNOTSUPP);
	gmem_destroy(gm);
}

/* Pins racing conversions of the same pages: a pin must never see a private page. */
struct race {
	struct gmem *gm;
	volatile int stop;
	uint64_t pins, bad;
};

static void *race_pinner(void *arg)
{
	struct race *r = arg;
	struct gmem_pin pin;
	uint64_t req = 0;
	bool private;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (gmem_pin(r->gm, 0x50000, 2 * PAGE, "racer", ++req, &pin))
			continue;
		__atomic_add_fetch(&r->pins, 1, __ATOMIC_RELAXED);
		if (gmem_attr_is_private(r->gm, 0x50000, &private) || private)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		if (gmem_attr_is_private(r->gm, 0x51000, &private) || private)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		gmem_unpin(&pin);
	}
	return NULL;
}

static void test_race_pins_conversions(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false, 2000);
	struct race r = { .gm = gm };
	struct gmem_conv_result res;
	unsigned int i, ok = 0;
	struct timespec t0;
	pthread_t t[2];

	pthread_create(&t[0], NULL, race_pinner, &r);
	pthread_create(&t[1], NULL, race_pinner, &r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* At least 2000 rounds, and until the pinners got in often enough (bounded). */
	for (i = 0; i < 2000 || (__atomic_load_n(&r.pins, __ATOMIC_RELAXED) < 200 &&
				 ms_since(&t0) < 10000); i++) {
		ok += gmem_convert(gm, 0x51000, PAGE, i % 2 == 0, &res) == 0;
		ok += gmem_convert(gm, 0x50000, 2 * PAGE, false, &res) == 0;
		if (i % 64 == 0)
			sched_yield();
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	CHECK_EQ(ok, 2 * i);
	CHECK_EQ(r.bad, 0);
	CHECK(r.pins > 0);
	gmem_destroy(gm);
}

static void test_map_gpa_range_args(void)
{
	uint64_t len = 0;

	CHECK_EQ(vcpu_check_map_gpa_range(0x1000, 1, KVM_MAP_GPA_RANGE_ENCRYPTED, &len), 0);
	CHECK_EQ(len, 0x1000);
	CHECK_EQ(vcpu_check_map_gpa_range(0x200000, 512, 1 | KVM_MAP_GPA_RANGE_ENCRYPTED, &len), 0);
	CHECK_EQ(len, 0x200000);
	CHECK_EQ(vcpu_check_map_gpa_range(0x1000, 512, 1, &len), -EINVAL); /* 2M, misaligned */
	CHECK_EQ(vcpu_check_map_gpa_range(0x200000, 1, 1, &len), -EINVAL); /* 2M, short */
	CHECK_EQ(vcpu_check_map_gpa_range(0x1000, 0, 0, &len), -EINVAL);
	CHECK_EQ(vcpu_check_map_gpa_range(0x1001, 1, 0, &len), -EINVAL);
	CHECK_EQ(vcpu_check_map_gpa_range(0x1000, 1, 1 << 5, &len), -EINVAL); /* reserved bit */
	CHECK_EQ(vcpu_check_map_gpa_range(0x1000, 1, 3, &len), -EINVAL);      /* page size 3 */
	CHECK_EQ(vcpu_check_map_gpa_range(0xfffffffffffff000ULL, 2, 0, &len), -EINVAL);
	CHECK_EQ(vcpu_check_map_gpa_range(0, UINT64_MAX, 0, &len), -EINVAL);
}

/* Contents after a conversion to private and back, under gm's model: kept or not. */
static bool contents_survive(struct gmem *gm, uint64_t gpa)
{
	uint64_t v = 0x5eed5eed5eed5eedULL, got = 0;
	struct gmem_conv_result res;

	CHECK_EQ(gmem_write(gm, gpa, &v, sizeof(v)), 0);
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, true, &res), 0);
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, false, &res), 0);
	CHECK_EQ(gmem_read(gm, gpa, &got, sizeof(got)), 0);
	return got == v;
}

/*
 * One answer to "does this model keep contents": gmem_keeps_contents(), the
 * words of gmem_content_semantics(), gmem_roundtrip()'s refusal and the
 * contents themselves agree for every model, destructive or not.
 */
static void test_keeps_contents_agrees(void)
{
	static const enum gmem_model models[] = {
		GMEM_MODEL_HOST, GMEM_MODEL_OUT_OF_PLACE, GMEM_MODEL_IN_PLACE,
	};
	struct fake_kernel k = { .error_offset = UINT64_MAX };
	struct gmem_conv_result res;
	unsigned int i, d;

	for (i = 0; i < 3; i++) {
		for (d = 0; d < 2; d++) {
			struct gmem *gm = make(models[i], d, 200);
			bool want = models[i] == GMEM_MODEL_IN_PLACE ||
				    (models[i] == GMEM_MODEL_HOST && !d);
			bool keeps = gmem_keeps_contents(gm);

			CHECK_EQ(keeps, want);
			CHECK_EQ(strncmp(gmem_content_semantics(gm), "preserved", 9) == 0, keeps);
			CHECK_EQ(gmem_kernel_sees_pins(gm), models[i] == GMEM_MODEL_IN_PLACE);
			CHECK_STR_CONTAINS(gmem_model_name(models[i]), "-");
			gmem_set_attrs2_fn(gm, fake_attrs2, &k);
			CHECK_EQ(gmem_roundtrip(gm, 0x60000, PAGE, &res), keeps ? 0 : -EOPNOTSUPP);
			/* Out-of-place needs a VM for its ioctl; the others convert detached. */
			if (models[i] != GMEM_MODEL_OUT_OF_PLACE)
				CHECK_EQ(contents_survive(gm, 0x61000), keeps);
			gmem_destroy(gm);
		}
	}
}

int main(void)
{
	test_private_refused_and_preserved();
	test_destructive_zeroes();
	test_drain_waits_for_pin();
	test_drain_timeout_names_culprit();
	test_disjoint_never_wait();
	test_inplace_seam_retries();
	test_longterm_pin_released_and_restored();
	test_pin_waits_for_conversion();
	test_longterm_not_restored_mid_conversion();
	test_race_pins_conversions();
	test_roundtrip();
	test_map_gpa_range_args();
	test_keeps_contents_agrees();
	return test_done("convert");
}
