/*
 * Internal to gmem/: the region and gmem structures its files share, and the
 * leaf helpers every file may use.  This header depends on nothing of gmem's
 * but gmem.h; each module's own functions are declared in its own header
 * (attr.h, pin_int.h, ...), so that who-uses-whom is visible and one-way.
 */
#ifndef VEIL_GMEM_INTERNAL_H
#define VEIL_GMEM_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "gmem.h"

#define GMEM_PIN_SHARDS 16

/*
 * Range state, kept a chunk of 64 pages at a time so that the range steps of
 * a conversion (mark converting, attribute update, generation bump, clear)
 * cost one atomic per chunk, not one per page: 8 for a 2 MiB range.  Bit i
 * of a chunk's words is page 64 * chunk + i of the region.
 */
#define GMEM_CHUNK_PAGES 64

struct gmem_chunk {
	uint64_t converting; /* a conversion or punch holds the page */
	uint64_t private;    /* the attribute map; changes only under converting */
	uint64_t gen;        /* bumped once by each completed conversion or punch of any page here */
	uint64_t unused;     /* four chunks to a 128-byte pair of cache lines */
};

/*
 * Pins stay per page, 16-bit counts four to a 64-bit word, so that a pin is
 * one compare-and-swap per word it touches and the drain check of a 2 MiB
 * range reads 128 words.  A page takes at most GMEM_PIN_MAX pins at once.
 */
#define GMEM_PINS_PER_WORD 4
#define GMEM_PIN_BITS 16
#define GMEM_PIN_MAX 0xffffULL

struct gmem_backend;

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;          /* the VMM's mapping of the shared side */
	int fd;                /* guest_memfd (the only fd, or the private side) */
	int shared_fd;         /* out-of-place model: the memfd behind hva; else -1 */
	uint32_t slot;
	bool bound;
	uint64_t *pins;        /* see GMEM_PINS_PER_WORD */
	struct gmem_chunk *chunks; /* see GMEM_CHUNK_PAGES */
	/* Bitmap of pages whose mapping is (or, after a failed mprotect, may be) PROT_NONE. */
	uint64_t *revoked;     /* NULL unless cfg.revoke_host_mapping; under revoke_lock */
};

struct gmem_shard {
	pthread_mutex_t lock;
	struct gmem_pin *head;
};

struct gmem_longterm {
	uint64_t gpa;
	uint64_t len;
	const struct gmem_longterm_ops *ops;
	void *opaque;
	bool released;
	struct gmem_longterm *next;
};

struct gmem {
	struct gmem_config cfg;
	const struct gmem_backend *backend; /* chosen once from cfg.model and cfg.destructive */
	struct gmem_layout layout;
	unsigned int nr;
	struct gmem_region regions[GMEM_MAX_REGIONS];
	/* Converters wait here for pins to drain; pinners for conversions to finish. */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	unsigned int waiters;        /* threads in wait_cond's loop; wakers skip the lock if 0 */
	struct gmem_shard shards[GMEM_PIN_SHARDS];
	pthread_mutex_t longterm_lock;
	struct gmem_longterm *longterm;
	unsigned int longterm_nr;    /* registered; written under longterm_lock, read without */
	gmem_attrs2_fn attrs2;       /* the §2b ioctl, or a fault-injection seam */
	void *attrs2_opaque;
	/* Revocation: the bitmaps, the extent count and the mprotects themselves. */
	pthread_mutex_t revoke_lock;
	uint64_t revoked_extents;
	bool budget_warned;
	bool revoke_lazy;      /* gmem_set_lazy_restore(); under revoke_lock */
	gmem_mprotect_fn mprotect;   /* mprotect(2), or a fault-injection seam */
	void *mprotect_opaque;
	struct gmem_stats stats;
};

static inline void gmem_stat_add(uint64_t *counter, uint64_t n)
{
	if (n)
		__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t gmem_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t gmem_load(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}

/* The bits of chunk c that pages [first, first+n) cover; n > 0 and c in the range. */
static inline uint64_t gmem_chunk_mask(uint64_t c, uint64_t first, uint64_t n)
{
	uint64_t lo = c * GMEM_CHUNK_PAGES, a = first > lo ? first : lo;
	uint64_t b = first + n < lo + GMEM_CHUNK_PAGES ? first + n : lo + GMEM_CHUNK_PAGES;

	return (b - a == 64 ? ~0ULL : (1ULL << (b - a)) - 1) << (a - lo);
}

static inline uint64_t gmem_chunks(uint64_t pages)
{
	return (pages + GMEM_CHUNK_PAGES - 1) / GMEM_CHUNK_PAGES;
}

/* The region that holds all of [gpa, gpa+len), or NULL.  len may be 0. */
static inline struct gmem_region *gmem_region_find(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	unsigned int i;
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (i = 0; i < gm->nr; i++) {
		struct gmem_region *r = &gm->regions[i];

		if (gpa >= r->gpa && end <= r->gpa + r->size && gpa < r->gpa + r->size)
			return r;
	}
	return NULL;
}

/* As gmem_region_find, for a non-empty page-aligned range. */
static inline struct gmem_region *gmem_region_find_pages(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	if (!len || !IS_ALIGNED(gpa, GMEM_PAGE_SIZE) || !IS_ALIGNED(len, GMEM_PAGE_SIZE))
		return NULL;
	return gmem_region_find(gm, gpa, len);
}

#endif
