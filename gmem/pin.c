/*
 * Pins and the converting state.  A pin is one compare-and-swap per pin word
 * (four pages' 16-bit counts), so the common path takes no lock across I/O.
 * A conversion sets "converting" on its pages, a chunk word at a time, which
 * stops new pins, and waits (bounded) for the existing ones to drain.  A
 * leaf: it depends on nothing of gmem's but the shared structures.
 *
 * Memory ordering.  The pin counts and the converting bits live in different
 * words, so a pin and a conversion meet as in Dekker's algorithm:
 *
 *   pinner:    add the pin (CAS, seq_cst);   then load converting (seq_cst)
 *   converter: set converting (CAS, seq_cst); then load the pins  (seq_cst)
 *
 * All four are in the single total order of seq_cst operations, so at least
 * one side sees the other: if the pinner's load misses the converting bit,
 * that load precedes the converter's CAS, which precedes the converter's
 * load of the pins, which therefore sees the pin, and the converter waits
 * for it to drain.  A conversion that set its bits before a pin's load is
 * always seen by that pin, which backs out and waits.  Both may see each
 * other; the pinner backs out, and its unpin wakes the converter.
 *
 * The private bits change only while their pages are converting, after the
 * drain (gmem_attr_set_private(), for setup and tests, is the exception), and
 * the conversion clears converting (a release) only after its private update
 * and generation bump: a pin whose seq_cst (so acquire) load found a page not
 * converting after adding itself sees the page's final attribute, and the
 * page stays so until it unpins.
 *
 * Sleeping uses the same pattern on gm->waiters: a waiter counts itself in
 * (seq_cst) under wait_lock before it re-checks its condition; a waker
 * changes the state (seq_cst) and then loads waiters (or, after release
 * stores, reads it with a read-modify-write), and takes the lock to
 * broadcast only if someone is there.  Either the waiter's check sees the
 * change or the waker sees the waiter, and the waiter holds wait_lock from
 * its check to pthread_cond_timedwait(), so the broadcast cannot fall between.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gmem_pins.h"
#include "gmem_revoke.h"

#define PIN_ONES 0x0001000100010001ULL

/* cond waits use CLOCK_REALTIME; deadlines are kept in CLOCK_MONOTONIC. */
static int wait_until(struct gmem *gm, uint64_t deadline)
{
	uint64_t now = gmem_now_ns(), left;
	struct timespec ts;

	if (now >= deadline)
		return -ETIMEDOUT;
	left = deadline - now;
	if (left > 10000000ULL)
		left = 10000000ULL; /* re-check every 10 ms at most */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)left;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&gm->wait_cond, &gm->wait_lock, &ts);
	return 0;
}

static void broadcast(struct gmem *gm)
{
	pthread_mutex_lock(&gm->wait_lock);
	pthread_cond_broadcast(&gm->wait_cond);
	pthread_mutex_unlock(&gm->wait_lock);
}

/* The waker's side, after a seq_cst change of the state. */
static void wake_waiters(struct gmem *gm)
{
	if (__atomic_load_n(&gm->waiters, __ATOMIC_SEQ_CST))
		broadcast(gm);
}

/*
 * The waker's side after plain release stores: a seq_cst read-modify-write
 * of waiters (not a fence, which TSan cannot follow) reads its latest value,
 * and a waiter that counts itself in later reads from it, so the stores
 * happen before that waiter's check.
 */
static void wake_waiters_after_stores(struct gmem *gm)
{
	if (__atomic_fetch_add(&gm->waiters, 0, __ATOMIC_SEQ_CST))
		broadcast(gm);
}

/*
 * A wait's bound: the deadline is taken from the clock when a wait first
 * needs it, so a pin or conversion that never waits never reads the clock.
 */
struct bound {
	uint64_t timeout_ns;
	uint64_t deadline; /* 0: no wait yet */
};

static uint64_t bound_deadline(struct bound *b)
{
	if (!b->deadline)
		b->deadline = gmem_now_ns() + b->timeout_ns;
	return b->deadline;
}

/* What a waiter waits for: pages [first, first+n) of r in some state. */
struct wait_arg {
	const struct gmem_region *r;
	uint64_t first, n;
	bool (*done)(const struct gmem_region *r, uint64_t first, uint64_t n);
};

/* Waits, bounded, until arg->done() holds (see the header comment for the waker's side). */
static int wait_for(struct gmem *gm, const struct wait_arg *arg, struct bound *b)
{
	uint64_t deadline = bound_deadline(b);
	int ret = 0;

	pthread_mutex_lock(&gm->wait_lock);
	__atomic_add_fetch(&gm->waiters, 1, __ATOMIC_SEQ_CST);
	while (!ret && !arg->done(arg->r, arg->first, arg->n))
		ret = wait_until(gm, deadline);
	__atomic_sub_fetch(&gm->waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&gm->wait_lock);
	return ret;
}

/* The 16-bit fields of pin word w that pages [first, first+n) cover, all ones. */
static uint64_t pin_fields(uint64_t w, uint64_t first, uint64_t n)
{
	uint64_t lo = w * GMEM_PINS_PER_WORD;
	uint64_t a = first > lo ? first : lo;
	uint64_t b = first + n < lo + GMEM_PINS_PER_WORD ? first + n : lo + GMEM_PINS_PER_WORD;
	uint64_t below_b = b - lo == GMEM_PINS_PER_WORD ? ~0ULL : (1ULL << (GMEM_PIN_BITS * (b - lo))) - 1;

	return below_b & ~((1ULL << (GMEM_PIN_BITS * (a - lo))) - 1);
}

/* True if a field of f is at GMEM_PIN_MAX in old. */
static bool pins_full(uint64_t old, uint64_t f)
{
	uint64_t full = ~old & f; /* a covered field is 0 here iff it is full */
	unsigned int i;

	for (i = 0; i < GMEM_PINS_PER_WORD; i++)
		if (((f >> (GMEM_PIN_BITS * i)) & GMEM_PIN_MAX) &&
		    !((full >> (GMEM_PIN_BITS * i)) & GMEM_PIN_MAX))
			return true;
	return false;
}

static void sub_pins(struct gmem_region *r, uint64_t first, uint64_t n, uint64_t upto_word)
{
	uint64_t w;

	for (w = first / GMEM_PINS_PER_WORD; w < upto_word; w++)
		__atomic_fetch_sub(&r->pins[w], pin_fields(w, first, n) & PIN_ONES, __ATOMIC_SEQ_CST);
}

static void unpin_pages(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n)
{
	sub_pins(r, first, n, (first + n - 1) / GMEM_PINS_PER_WORD + 1);
	wake_waiters(gm); /* a converter may be waiting for these pins to drain */
}

/* One pin on each page, or none: -EBUSY if a page already has GMEM_PIN_MAX. */
static int add_pins(struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t w, last = (first + n - 1) / GMEM_PINS_PER_WORD, f, old;

	for (w = first / GMEM_PINS_PER_WORD; w <= last; w++) {
		f = pin_fields(w, first, n);
		old = __atomic_load_n(&r->pins[w], __ATOMIC_RELAXED);
		do {
			if (pins_full(old, f)) {
				sub_pins(r, first, n, w);
				return -EBUSY;
			}
		} while (!__atomic_compare_exchange_n(&r->pins[w], &old, old + (f & PIN_ONES), false,
						      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	}
	return 0;
}

enum unsettled { SETTLED, CONVERTING, PRIVATE };

/* The state of the lowest page of the range that is converting or private. */
static enum unsettled range_unsettled(const struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t c, last = (first + n - 1) / GMEM_CHUNK_PAGES, m, conv, priv, low;

	for (c = first / GMEM_CHUNK_PAGES; c <= last; c++) {
		m = gmem_chunk_mask(c, first, n);
		conv = gmem_load(&r->chunks[c].converting) & m;
		priv = gmem_load(&r->chunks[c].private) & m;
		if (!(conv | priv))
			continue;
		low = (conv | priv) & -(conv | priv);
		return conv & low ? CONVERTING : PRIVATE;
	}
	return SETTLED;
}

static bool range_not_converting(const struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t c, last = (first + n - 1) / GMEM_CHUNK_PAGES;

	for (c = first / GMEM_CHUNK_PAGES; c <= last; c++)
		if (gmem_load(&r->chunks[c].converting) & gmem_chunk_mask(c, first, n))
			return false;
	return true;
}

/*
 * Takes one pin on each page, or none: checks the range, adds the pins,
 * checks again (the second check is the one the ordering above relies on;
 * the first keeps a pin from disturbing a conversion it would only back out
 * of).  Meeting a converting page, it drops what it took (so it never blocks
 * a converter while waiting for it), waits, and starts over.
 */
static int pin_pages(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     bool wait)
{
	struct wait_arg arg = { r, first, n, range_not_converting };
	struct bound b = { gm->cfg.drain_timeout_ns, 0 };
	enum unsettled state;
	bool pinned = false;
	int ret;

	for (;;) {
		state = range_unsettled(r, first, n);
		if (state == SETTLED && pinned)
			return 0;
		if (state == SETTLED) {
			ret = add_pins(r, first, n);
			if (ret)
				return ret;
			pinned = true;
			continue;
		}
		if (pinned) {
			/* A conversion began or completed between the check and the pin. */
			unpin_pages(gm, r, first, n);
			pinned = false;
			gmem_stat_add(&gm->stats.spec_retries, 1);
		}
		if (state == PRIVATE) {
			gmem_stat_add(&gm->stats.refused_private, 1);
			return -EACCES;
		}
		if (!wait)
			return -EAGAIN;
		gmem_stat_add(&gm->stats.pin_waits, 1);
		ret = wait_for(gm, &arg, &b);
		if (ret)
			return ret;
	}
}

static void registry_add(struct gmem *gm, struct gmem_pin *pin)
{
	struct gmem_shard *sh;

	pin->shard = (unsigned int)((pin->gpa >> 21) % GMEM_PIN_SHARDS);
	sh = &gm->shards[pin->shard];
	pthread_mutex_lock(&sh->lock);
	pin->next = sh->head;
	pin->pprev = &sh->head;
	if (sh->head)
		sh->head->pprev = &pin->next;
	sh->head = pin;
	pthread_mutex_unlock(&sh->lock);
}

static void registry_del(struct gmem *gm, struct gmem_pin *pin)
{
	struct gmem_shard *sh = &gm->shards[pin->shard];

	pthread_mutex_lock(&sh->lock);
	*pin->pprev = pin->next;
	if (pin->next)
		pin->next->pprev = pin->pprev;
	pthread_mutex_unlock(&sh->lock);
}

static int pin(struct gmem *gm, uint64_t gpa, uint64_t len, const char *owner, uint64_t req,
	       struct gmem_pin *pin, bool wait)
{
	struct gmem_region *r = gmem_region_find(gm, gpa, len);
	uint64_t first, last;
	int ret;

	if (!r || !len) {
		gmem_stat_add(&gm->stats.out_of_range, 1);
		return -EFAULT;
	}
	first = (gpa - r->gpa) / GMEM_PAGE_SIZE;
	last = (gpa - r->gpa + len - 1) / GMEM_PAGE_SIZE;
	ret = pin_pages(gm, r, first, last - first + 1, wait);
	if (ret)
		return ret;
	ret = gmem_revoke_fault_in(gm, r, first, last - first + 1);
	if (ret) {
		unpin_pages(gm, r, first, last - first + 1);
		return ret;
	}
	*pin = (struct gmem_pin){
		.hva = r->hva + (gpa - r->gpa), .gpa = gpa, .len = len, .owner = owner, .req = req,
		.since_ns = gmem_now_ns(), .gm = gm, .region = r,
	};
	registry_add(gm, pin);
	return 0;
}

int gmem_pin(struct gmem *gm, uint64_t gpa, uint64_t len, const char *owner, uint64_t req,
	     struct gmem_pin *p)
{
	return pin(gm, gpa, len, owner, req, p, true);
}

int gmem_pin_try(struct gmem *gm, uint64_t gpa, uint64_t len, const char *owner, uint64_t req,
		 struct gmem_pin *p)
{
	return pin(gm, gpa, len, owner, req, p, false);
}

void gmem_unpin(struct gmem_pin *pin)
{
	struct gmem *gm = pin->gm;
	struct gmem_region *r = pin->region;
	uint64_t first = (pin->gpa - r->gpa) / GMEM_PAGE_SIZE;
	uint64_t last = (pin->gpa - r->gpa + pin->len - 1) / GMEM_PAGE_SIZE;

	registry_del(gm, pin);
	unpin_pages(gm, r, first, last - first + 1);
	pin->gm = NULL;
}

bool gmem_pins_culprit(struct gmem *gm, uint64_t gpa, uint64_t len, char *buf, size_t size)
{
	uint64_t now = gmem_now_ns();
	bool found = false;
	unsigned int i;

	for (i = 0; i < GMEM_PIN_SHARDS && !found; i++) {
		struct gmem_shard *sh = &gm->shards[i];
		struct gmem_pin *p;

		pthread_mutex_lock(&sh->lock);
		for (p = sh->head; p && !found; p = p->next) {
			if (p->gpa < gpa + len && gpa < p->gpa + p->len) {
				snprintf(buf, size, "%s request %llu pins GPA 0x%llx+0x%llx, held for %llu ms",
					 p->owner, (unsigned long long)p->req, (unsigned long long)p->gpa,
					 (unsigned long long)p->len,
					 (unsigned long long)((now - p->since_ns) / 1000000));
				found = true;
			}
		}
		pthread_mutex_unlock(&sh->lock);
	}
	return found;
}

uint64_t gmem_pins_held(struct gmem *gm)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < GMEM_PIN_SHARDS; i++) {
		struct gmem_shard *sh = &gm->shards[i];
		struct gmem_pin *p;

		pthread_mutex_lock(&sh->lock);
		for (p = sh->head; p; p = p->next)
			n++;
		pthread_mutex_unlock(&sh->lock);
	}
	return n;
}

uint64_t gmem_page_pins(const struct gmem_region *r, uint64_t p)
{
	uint64_t w = gmem_load(&r->pins[p / GMEM_PINS_PER_WORD]);

	return (w >> (GMEM_PIN_BITS * (p % GMEM_PINS_PER_WORD))) & GMEM_PIN_MAX;
}

/*
 * Clears converting on pages [first, first+n) of chunks before upto, a word
 * at a time; bump: the conversion completed, so their chunks' generations
 * move first (the clear is the release that publishes it).  A chunk the
 * range covers whole has no other writer while it is marked, so plain
 * release stores do; one read-modify-write of waiters then publishes all
 * the clears to any waiter (see wake_waiters_after_stores).
 */
static void clear_converting(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			     uint64_t upto, bool bump)
{
	struct gmem_chunk *ch;
	uint64_t c, m;

	for (c = first / GMEM_CHUNK_PAGES; c < upto; c++) {
		ch = &r->chunks[c];
		m = gmem_chunk_mask(c, first, n);
		if (m == ~0ULL) {
			if (bump)
				__atomic_store_n(&ch->gen, __atomic_load_n(&ch->gen, __ATOMIC_RELAXED) + 1,
						 __ATOMIC_RELEASE);
			__atomic_store_n(&ch->converting, 0, __ATOMIC_RELEASE);
			continue;
		}
		if (bump)
			__atomic_add_fetch(&ch->gen, 1, __ATOMIC_RELEASE);
		__atomic_fetch_and(&ch->converting, ~m, __ATOMIC_RELEASE);
	}
	wake_waiters_after_stores(gm);
}

/*
 * Sets "converting" on the range a chunk word at a time, all of a word's bits
 * at once and the words in order, so two converters cannot deadlock: one
 * that waits for a word holds only words below it, and whoever holds that
 * word already holds everything of its own range below it.  On failure
 * *busy is the first page another conversion held and *upto the first chunk
 * not marked.
 */
static int mark_converting(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			   struct bound *b, uint64_t *upto, uint64_t *busy)
{
	uint64_t c, last = (first + n - 1) / GMEM_CHUNK_PAGES, m, old;
	int ret;

	for (c = first / GMEM_CHUNK_PAGES; c <= last; c++) {
		m = gmem_chunk_mask(c, first, n);
		old = __atomic_load_n(&r->chunks[c].converting, __ATOMIC_RELAXED);
		for (;;) {
			if (old & m) {
				/* Another conversion of these pages: overlapping ranges serialize. */
				uint64_t lo = c * GMEM_CHUNK_PAGES, from = first > lo ? first : lo;
				uint64_t to = first + n < lo + GMEM_CHUNK_PAGES ? first + n : lo + GMEM_CHUNK_PAGES;
				struct wait_arg arg = { r, from, to - from, range_not_converting };

				ret = wait_for(gm, &arg, b);
				if (ret) {
					*upto = c;
					*busy = lo + (uint64_t)__builtin_ctzll(old & m);
					return ret;
				}
				old = __atomic_load_n(&r->chunks[c].converting, __ATOMIC_RELAXED);
				continue;
			}
			if (__atomic_compare_exchange_n(&r->chunks[c].converting, &old, old | m, false,
							__ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				break;
		}
	}
	return 0;
}

/* The drain check: the middle words of a range are covered whole, so only the ends need masks. */
static bool range_unpinned(const struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t w0 = first / GMEM_PINS_PER_WORD, w1 = (first + n - 1) / GMEM_PINS_PER_WORD, w;

	if (gmem_load(&r->pins[w0]) & pin_fields(w0, first, n))
		return false;
	for (w = w0 + 1; w < w1; w++)
		if (gmem_load(&r->pins[w]))
			return false;
	return w1 == w0 || !(gmem_load(&r->pins[w1]) & pin_fields(w1, first, n));
}

/* Waits (bounded) for the range's pins to drain; the check alone if there are none. */
static int drain_pins(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		      struct bound *b, struct gmem_conv_result *res)
{
	struct wait_arg arg = { r, first, n, range_unpinned };

	if (range_unpinned(r, first, n))
		return 0;
	gmem_stat_add(&gm->stats.drain_waits, 1);
	res->retries++;
	return wait_for(gm, &arg, b);
}

int gmem_range_begin(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     struct gmem_conv_result *res)
{
	return gmem_range_begin_within(gm, r, first, n, gm->cfg.drain_timeout_ns, res);
}

int gmem_range_begin_within(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			    uint64_t timeout_ns, struct gmem_conv_result *res)
{
	uint64_t gpa = r->gpa + first * GMEM_PAGE_SIZE, len = n * GMEM_PAGE_SIZE, upto, busy;
	struct bound b = { timeout_ns, 0 };
	int ret;

	ret = mark_converting(gm, r, first, n, &b, &upto, &busy);
	if (ret) {
		clear_converting(gm, r, first, n, upto, false);
		snprintf(res->culprit, sizeof(res->culprit),
			 "another conversion of GPA 0x%llx did not finish in time",
			 (unsigned long long)(r->gpa + busy * GMEM_PAGE_SIZE));
		return ret;
	}
	ret = drain_pins(gm, r, first, n, &b, res);
	if (b.deadline) /* it waited: from the first wait on */
		res->wait_ns += gmem_now_ns() - (b.deadline - timeout_ns);
	if (ret) {
		if (!gmem_pins_culprit(gm, gpa, len, res->culprit, sizeof(res->culprit)))
			snprintf(res->culprit, sizeof(res->culprit), "an unregistered pin in GPA 0x%llx+0x%llx",
				 (unsigned long long)gpa, (unsigned long long)len);
		gmem_range_end(gm, r, first, n, false);
	}
	return ret;
}

void gmem_range_end(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n, bool bump)
{
	clear_converting(gm, r, first, n, (first + n - 1) / GMEM_CHUNK_PAGES + 1, bump);
}
