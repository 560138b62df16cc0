/*
 * Pins and the converting state: a pin is one compare-and-swap per page on
 * the page's state word, so the common path takes no lock across I/O.  A
 * conversion sets "converting" on its pages, which stops new pins, and waits
 * (bounded) for the existing ones to drain.  A leaf: it depends on nothing
 * of gmem's but the shared structures.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gmem_pins.h"

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

static void wake_all(struct gmem *gm)
{
	pthread_mutex_lock(&gm->wait_lock);
	pthread_cond_broadcast(&gm->wait_cond);
	pthread_mutex_unlock(&gm->wait_lock);
}

/* Waits, bounded, until the page is no longer converting. */
static int wait_page_settled(struct gmem *gm, const uint64_t *ps, uint64_t deadline)
{
	int ret = 0;

	pthread_mutex_lock(&gm->wait_lock);
	while (!ret && (gmem_ps_load(ps) & PS_CONVERTING))
		ret = wait_until(gm, deadline);
	pthread_mutex_unlock(&gm->wait_lock);
	return ret;
}

static void unpin_pages(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n)
{
	bool wake = false;
	uint64_t p;

	for (p = first; p < first + n; p++) {
		uint64_t old = __atomic_fetch_sub(&r->page_state[p], 1, __ATOMIC_RELEASE);

		wake |= (old & PS_CONVERTING) != 0;
	}
	if (wake)
		wake_all(gm); /* a converter is waiting for these pins to drain */
}

/*
 * Takes one pin on each page, or none.  Meeting a converting page, it drops
 * what it took (so it never blocks a converter while waiting for it), waits,
 * and starts over.
 */
static int pin_pages(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     bool wait)
{
	uint64_t deadline = gmem_now_ns() + gm->cfg.drain_timeout_ns, p, s, gen;
	int ret;

restart:
	for (p = first; p < first + n; p++) {
		s = gmem_ps_load(&r->page_state[p]);
		gen = s >> 32;
		for (;;) {
			if (s & (PS_CONVERTING | PS_PRIVATE))
				break;
			if (__atomic_compare_exchange_n(&r->page_state[p], &s, s + 1, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				break;
			/* The word moved under us: a conversion began or completed in between. */
			if ((s & PS_CONVERTING) || (s >> 32) != gen) {
				gmem_stat_add(&gm->stats.spec_retries, 1);
				gen = s >> 32;
			}
		}
		if (!(s & (PS_CONVERTING | PS_PRIVATE)))
			continue;
		unpin_pages(gm, r, first, p - first);
		if (s & PS_PRIVATE && !(s & PS_CONVERTING)) {
			gmem_stat_add(&gm->stats.refused_private, 1);
			return -EACCES;
		}
		if (!wait)
			return -EAGAIN;
		gmem_stat_add(&gm->stats.pin_waits, 1);
		ret = wait_page_settled(gm, &r->page_state[p], deadline);
		if (ret)
			return ret;
		goto restart;
	}
	return 0;
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

static void clear_converting(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			     bool bump)
{
	uint64_t p;

	for (p = first; p < first + n; p++) {
		uint64_t s = gmem_ps_load(&r->page_state[p]), want;

		do {
			want = (s & ~PS_CONVERTING) + (bump ? PS_GEN_ONE : 0);
		} while (!__atomic_compare_exchange_n(&r->page_state[p], &s, want, false,
						      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	}
	wake_all(gm);
}

/* Sets "converting" on each page in order (so two converters cannot deadlock). */
static int mark_converting(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			   uint64_t deadline, uint64_t *done)
{
	uint64_t p, s;
	int ret;

	for (p = first; p < first + n; p++) {
		s = gmem_ps_load(&r->page_state[p]);
		for (;;) {
			if (s & PS_CONVERTING) {
				/* Another conversion of this page: overlapping ranges serialize. */
				ret = wait_page_settled(gm, &r->page_state[p], deadline);
				if (ret) {
					*done = p - first;
					return ret;
				}
				s = gmem_ps_load(&r->page_state[p]);
				continue;
			}
			if (__atomic_compare_exchange_n(&r->page_state[p], &s, s | PS_CONVERTING, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				break;
		}
	}
	*done = n;
	return 0;
}

static bool range_pinned(const struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t p;

	for (p = first; p < first + n; p++)
		if (gmem_ps_load(&r->page_state[p]) & PS_PINS_MASK)
			return true;
	return false;
}

static int drain_pins(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		      uint64_t deadline, struct gmem_conv_result *res)
{
	int ret = 0;

	pthread_mutex_lock(&gm->wait_lock);
	if (range_pinned(r, first, n)) {
		gmem_stat_add(&gm->stats.drain_waits, 1);
		res->retries++;
	}
	while (!ret && range_pinned(r, first, n))
		ret = wait_until(gm, deadline);
	pthread_mutex_unlock(&gm->wait_lock);
	return ret;
}

int gmem_range_begin(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     struct gmem_conv_result *res)
{
	return gmem_range_begin_within(gm, r, first, n, gm->cfg.drain_timeout_ns, res);
}

int gmem_range_begin_within(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			    uint64_t timeout_ns, struct gmem_conv_result *res)
{
	uint64_t start = gmem_now_ns(), deadline = start + timeout_ns, done;
	uint64_t gpa = r->gpa + first * GMEM_PAGE_SIZE, len = n * GMEM_PAGE_SIZE;
	int ret;

	ret = mark_converting(gm, r, first, n, deadline, &done);
	if (ret) {
		clear_converting(gm, r, first, done, false);
		snprintf(res->culprit, sizeof(res->culprit),
			 "another conversion of GPA 0x%llx did not finish in time",
			 (unsigned long long)(gpa + done * GMEM_PAGE_SIZE));
		return ret;
	}
	ret = drain_pins(gm, r, first, n, deadline, res);
	res->wait_ns += gmem_now_ns() - start;
	if (ret) {
		if (!gmem_pins_culprit(gm, gpa, len, res->culprit, sizeof(res->culprit)))
			snprintf(res->culprit, sizeof(res->culprit), "an unregistered pin in GPA 0x%llx+0x%llx",
				 (unsigned long long)gpa, (unsigned long long)len);
		clear_converting(gm, r, first, n, false);
	}
	return ret;
}

void gmem_range_end(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n, bool bump)
{
	clear_converting(gm, r, first, n, bump);
}
