/*
 * The attribute map and generations: the private bits and the generation of
 * each 64-page chunk, one source of truth read without locks and written a
 * chunk word at a time.  A leaf: it depends on nothing of gmem's but the
 * shared structures.
 */
#include <errno.h>

#include "gmem_attr.h"

bool gmem_range_has_private(const struct gmem_region *r, uint64_t gpa, uint64_t len)
{
	uint64_t first = (gpa - r->gpa) / GMEM_PAGE_SIZE;
	uint64_t n = (gpa - r->gpa + (len ? len - 1 : 0)) / GMEM_PAGE_SIZE - first + 1;
	uint64_t c, last = (first + n - 1) / GMEM_CHUNK_PAGES;

	for (c = first / GMEM_CHUNK_PAGES; c <= last; c++)
		if (gmem_load(&r->chunks[c].private) & gmem_chunk_mask(c, first, n))
			return true;
	return false;
}

void gmem_attr_update(struct gmem_region *r, uint64_t first, uint64_t n, bool private)
{
	uint64_t c, last = (first + n - 1) / GMEM_CHUNK_PAGES, m;

	for (c = first / GMEM_CHUNK_PAGES; c <= last; c++) {
		m = gmem_chunk_mask(c, first, n);
		if (m == ~0ULL) /* the whole chunk is ours while converting: no other writer */
			__atomic_store_n(&r->chunks[c].private, private ? ~0ULL : 0, __ATOMIC_RELEASE);
		else if (private)
			__atomic_fetch_or(&r->chunks[c].private, m, __ATOMIC_RELEASE);
		else
			__atomic_fetch_and(&r->chunks[c].private, ~m, __ATOMIC_RELEASE);
	}
}

int gmem_attr_set_private(struct gmem *gm, uint64_t gpa, uint64_t len, bool private)
{
	struct gmem_region *r = gmem_region_find_pages(gm, gpa, len);

	if (!r)
		return -EINVAL;
	gmem_attr_update(r, (gpa - r->gpa) / GMEM_PAGE_SIZE, len / GMEM_PAGE_SIZE, private);
	return 0;
}

int gmem_attr_is_private(struct gmem *gm, uint64_t gpa, bool *private)
{
	struct gmem_region *r = gmem_region_find(gm, gpa, 1);

	if (!r)
		return -EFAULT;
	*private = gmem_page_private(r, (gpa - r->gpa) / GMEM_PAGE_SIZE);
	return 0;
}

int gmem_generation(struct gmem *gm, uint64_t gpa, uint64_t *gen)
{
	struct gmem_region *r = gmem_region_find(gm, gpa, 1);

	if (!r)
		return -EFAULT;
	*gen = gmem_load(&r->chunks[(gpa - r->gpa) / GMEM_PAGE_SIZE / GMEM_CHUNK_PAGES].gen);
	return 0;
}

/* A run being gathered: reported when the next page differs or is not adjacent. */
struct extent_run {
	gmem_extent_fn fn;
	void *opaque;
	uint64_t gpa, len;
	bool priv;
	int count;
};

static void run_flush(struct extent_run *run)
{
	if (!run->len)
		return;
	if (run->fn)
		run->fn(run->opaque, run->gpa, run->len, run->priv);
	run->count++;
	run->len = 0;
}

static void run_add(struct extent_run *run, uint64_t gpa, bool priv)
{
	if (run->len && (run->priv != priv || run->gpa + run->len != gpa))
		run_flush(run);
	if (!run->len) {
		run->gpa = gpa;
		run->priv = priv;
	}
	run->len += GMEM_PAGE_SIZE;
}

/* The region with the lowest GPA above after (or any, if first), or NULL. */
static const struct gmem_region *next_region(const struct gmem *gm, uint64_t after, bool first)
{
	const struct gmem_region *best = NULL;
	unsigned int i;

	for (i = 0; i < gm->nr; i++) {
		const struct gmem_region *r = &gm->regions[i];

		if ((first || r->gpa > after) && (!best || r->gpa < best->gpa))
			best = r;
	}
	return best;
}

/*
 * Each chunk's word is read once, atomically; a conversion that runs
 * meanwhile may show as done or not yet, chunk by chunk, never as a torn page.
 */
int gmem_attr_extents(struct gmem *gm, gmem_extent_fn fn, void *opaque)
{
	struct extent_run run = { .fn = fn, .opaque = opaque };
	const struct gmem_region *r;
	uint64_t p, word = 0;

	for (r = next_region(gm, 0, true); r; r = next_region(gm, r->gpa, false)) {
		for (p = 0; p < r->size / GMEM_PAGE_SIZE; p++) {
			if (p % GMEM_CHUNK_PAGES == 0)
				word = gmem_load(&r->chunks[p / GMEM_CHUNK_PAGES].private);
			run_add(&run, r->gpa + p * GMEM_PAGE_SIZE, (word >> (p % GMEM_CHUNK_PAGES)) & 1);
		}
	}
	run_flush(&run);
	return run.count;
}
