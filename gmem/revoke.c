/*
 * Revocation of the VMM's mapping of private pages (DESIGN.md §2c), within a
 * budget of VMAs.  Every revoked extent splits the shared mapping, so a guest
 * that made every other page private would exhaust vm.max_map_count, and with
 * it the VMM's address space.  Past the budget a private range stays mapped
 * and veil's attribute map alone refuses access to it (map-only).
 * Invariant: a revoked bit is only ever set on a private page, or with lazy restore on a
 * shared page no host access has touched since it was private (never the other way: a
 * private page's bit may be clear only where it is map-only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "gmem_revoke.h"
#include "log.h"

#define BITS 64

static int default_mprotect(void *addr, size_t len, int prot, void *opaque)
{
	(void)opaque;
	return mprotect(addr, len, prot) < 0 ? -errno : 0;
}

void gmem_set_mprotect_fn(struct gmem *gm, gmem_mprotect_fn fn, void *opaque)
{
	pthread_mutex_lock(&gm->revoke_lock);
	gm->mprotect = fn ? fn : default_mprotect;
	gm->mprotect_opaque = opaque;
	pthread_mutex_unlock(&gm->revoke_lock);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Every change of veil's mapping goes through here: counted and timed (gmem_stats). */
static int protect(struct gmem *gm, void *addr, size_t len, int prot)
{
	uint64_t t0 = now_ns();
	int ret = gm->mprotect(addr, len, prot, gm->mprotect_opaque);

	gmem_stat_add(&gm->stats.protect_ns, now_ns() - t0);
	gmem_stat_add(&gm->stats.protect_calls, 1);
	return ret;
}

int gmem_revoke_init(struct gmem *gm, struct gmem_region *r)
{
	uint64_t pages = r->size / GMEM_PAGE_SIZE;

	if (!gm->cfg.revoke_host_mapping)
		return 0;
	r->revoked = calloc((pages + BITS - 1) / BITS, sizeof(*r->revoked));
	return r->revoked ? 0 : -ENOMEM;
}

static bool bit(const struct gmem_region *r, uint64_t p)
{
	return (__atomic_load_n(&r->revoked[p / BITS], __ATOMIC_ACQUIRE) >> (p % BITS)) & 1;
}

static void set_bits(struct gmem_region *r, uint64_t first, uint64_t n, bool v)
{
	uint64_t p;

	for (p = first; p < first + n; p++) {
		/* Atomic only for gmem_revoke_fault_in()'s unlocked look; writers hold the lock. */
		if (v)
			__atomic_fetch_or(&r->revoked[p / BITS], 1ULL << (p % BITS), __ATOMIC_RELEASE);
		else
			__atomic_fetch_and(&r->revoked[p / BITS], ~(1ULL << (p % BITS)),
					   __ATOMIC_RELEASE);
	}
}

static bool range_all(const struct gmem_region *r, uint64_t first, uint64_t n, bool v)
{
	uint64_t p;

	for (p = first; p < first + n; p++)
		if (bit(r, p) != v)
			return false;
	return true;
}

/* Page p's bit as it would be with [first, first+n) set to v (v < 0: as it is). */
static bool bit_as(const struct gmem_region *r, uint64_t p, uint64_t first, uint64_t n, int v)
{
	if (v >= 0 && p >= first && p < first + n)
		return v;
	return bit(r, p);
}

static int starts_extent(const struct gmem_region *r, uint64_t p, uint64_t first, uint64_t n, int v)
{
	return bit_as(r, p, first, n, v) && (p == 0 || !bit_as(r, p - 1, first, n, v));
}

/*
 * The extents (maximal revoked runs) that setting [first, first+n) to v
 * adds, negative if it removes some.  Only the starts of extents in
 * [first, first+n] can change.
 */
static int64_t extent_delta(const struct gmem_region *r, uint64_t first, uint64_t n, bool v)
{
	uint64_t pages = r->size / GMEM_PAGE_SIZE, last = first + n < pages ? first + n : pages - 1;
	uint64_t p;
	int64_t d = 0;

	for (p = first; p <= last; p++)
		d += starts_extent(r, p, first, n, v) - starts_extent(r, p, first, n, -1);
	return d;
}

static bool within_budget(const struct gmem *gm, int64_t d)
{
	uint64_t budget = gm->cfg.max_revoked_extents ? gm->cfg.max_revoked_extents
						      : GMEM_REVOKE_MAX_EXTENTS;

	return (int64_t)gm->revoked_extents + d <= (int64_t)budget;
}

static void add_extents(struct gmem *gm, int64_t d)
{
	gm->revoked_extents = (uint64_t)((int64_t)gm->revoked_extents + d);
	__atomic_store_n(&gm->stats.revoked_extents, gm->revoked_extents, __ATOMIC_RELAXED);
}

/* A private range left mapped: counted, and said once per gmem. */
static void map_only(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     const char *why)
{
	gmem_stat_add(&gm->stats.revoke_skipped, 1);
	if (gm->budget_warned)
		return;
	gm->budget_warned = true;
	pr_warn("private GPA 0x%llx+0x%llx stays mapped: %s; such ranges are refused by veil's "
		"map alone (counted as revoke_skipped)", (unsigned long long)(r->gpa + first * GMEM_PAGE_SIZE),
		(unsigned long long)(n * GMEM_PAGE_SIZE), why);
}

static void *page_hva(const struct gmem_region *r, uint64_t p)
{
	return r->hva + p * GMEM_PAGE_SIZE;
}

/* After a failed revoke: gives access back to the pages of the range that had it. */
static int undo_revoke(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t p = first, q;
	int ret;

	while (p < first + n) {
		if (bit(r, p)) {
			p++;
			continue;
		}
		for (q = p; q < first + n && !bit(r, q); q++)
			;
		ret = protect(gm, page_hva(r, p), (q - p) * GMEM_PAGE_SIZE, PROT_READ | PROT_WRITE);
		if (ret)
			return ret;
		p = q;
	}
	return 0;
}

void gmem_revoke_private(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n)
{
	int64_t d;
	int ret;

	if (!r->revoked)
		return;
	pthread_mutex_lock(&gm->revoke_lock);
	if (range_all(r, first, n, true))
		goto out;
	d = extent_delta(r, first, n, true);
	if (!within_budget(gm, d)) {
		map_only(gm, r, first, n, "the VMA budget of revoked extents is spent");
		goto out;
	}
	ret = protect(gm, page_hva(r, first), n * GMEM_PAGE_SIZE, PROT_NONE);
	if (ret && undo_revoke(gm, r, first, n) == 0) {
		map_only(gm, r, first, n, strerror(-ret));
		goto out;
	}
	/* Revoked, or in part and the rest could not be undone: record what may be PROT_NONE. */
	if (ret)
		pr_warn("revoking GPA 0x%llx+0x%llx failed half way: %s",
			(unsigned long long)(r->gpa + first * GMEM_PAGE_SIZE),
			(unsigned long long)(n * GMEM_PAGE_SIZE), strerror(-ret));
	set_bits(r, first, n, true);
	add_extents(gm, d);
out:
	pthread_mutex_unlock(&gm->revoke_lock);
}

/* Widens [*lo, *hi) to the whole extents it touches: restoring those splits no VMA. */
static void widen(const struct gmem_region *r, uint64_t *lo, uint64_t *hi)
{
	uint64_t pages = r->size / GMEM_PAGE_SIZE;

	while (*lo > 0 && bit(r, *lo - 1))
		(*lo)--;
	while (*hi < pages && bit(r, *hi))
		(*hi)++;
}

/*
 * Restoring part of an extent splits it in two; past the budget, or if the
 * kernel cannot split (ENOMEM), the whole extents come back instead, and
 * their private pages beyond the range stay refused by the map alone.
 */
int gmem_revoke_shared(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		       struct gmem_conv_result *res)
{
	uint64_t lo = first, hi = first + n;
	bool widened;
	int64_t d;
	int ret = 0;

	if (!r->revoked)
		return 0;
	pthread_mutex_lock(&gm->revoke_lock);
	if (range_all(r, first, n, false) || gm->revoke_lazy)
		goto out; /* lazy: the bits stay until a host access (gmem_revoke_fault_in()) */
	widened = !within_budget(gm, extent_delta(r, first, n, false));
	for (;;) {
		if (widened)
			widen(r, &lo, &hi);
		ret = protect(gm, page_hva(r, lo), (hi - lo) * GMEM_PAGE_SIZE,
				   PROT_READ | PROT_WRITE);
		if (!ret || widened)
			break;
		widened = true;
	}
	if (ret) {
		/* The bits stay: pages they cover may be PROT_NONE, and are still private. */
		snprintf(res->culprit, sizeof(res->culprit), "mprotect(PROT_READ|PROT_WRITE) of "
			 "GPA 0x%llx+0x%llx: %s", (unsigned long long)(r->gpa + lo * GMEM_PAGE_SIZE),
			 (unsigned long long)((hi - lo) * GMEM_PAGE_SIZE), strerror(-ret));
		goto out;
	}
	if (lo < first || hi > first + n)
		map_only(gm, r, lo, hi - lo, "restoring part of a revoked extent would pass the "
			 "VMA budget");
	d = extent_delta(r, lo, hi - lo, false);
	set_bits(r, lo, hi - lo, false);
	add_extents(gm, d);
out:
	pthread_mutex_unlock(&gm->revoke_lock);
	return ret;
}

void gmem_set_lazy_restore(struct gmem *gm, bool on)
{
	pthread_mutex_lock(&gm->revoke_lock);
	gm->revoke_lazy = on;
	pthread_mutex_unlock(&gm->revoke_lock);
}

/* Page p is shared and no conversion has it (converting read first: it is cleared last). */
static bool settled_shared(const struct gmem_region *r, uint64_t p)
{
	const struct gmem_chunk *c = &r->chunks[p / GMEM_CHUNK_PAGES];
	uint64_t m = 1ULL << (p % GMEM_CHUNK_PAGES);

	if (gmem_load(&c->converting) & m)
		return false;
	return !(gmem_load(&c->private) & m);
}

/*
 * The caller holds [first, first+n) shared (a pin, or a checked translate).  Neighbours join
 * the restored run only while they are revoked, shared and not converting, under the lock a
 * conversion to private revokes under: no private page is ever made accessible.
 */
int gmem_revoke_fault_in(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n)
{
	uint64_t pages, lo = first, hi = first + n, p;
	int64_t d;
	int ret = 0;

	if (!r->revoked)
		return 0;
	for (p = first; p < first + n && !bit(r, p); p++)
		;
	if (p == first + n)
		return 0; /* the usual case, without the lock */
	pthread_mutex_lock(&gm->revoke_lock);
	pages = r->size / GMEM_PAGE_SIZE;
	while (lo > 0 && bit(r, lo - 1) && settled_shared(r, lo - 1))
		lo--;
	while (hi < pages && bit(r, hi) && settled_shared(r, hi))
		hi++;
	if (!range_all(r, lo, hi - lo, false)) {
		d = extent_delta(r, lo, hi - lo, false);
		ret = protect(gm, page_hva(r, lo), (hi - lo) * GMEM_PAGE_SIZE, PROT_READ | PROT_WRITE);
		if (!ret) {
			set_bits(r, lo, hi - lo, false);
			add_extents(gm, d);
		}
	}
	pthread_mutex_unlock(&gm->revoke_lock);
	return ret;
}
