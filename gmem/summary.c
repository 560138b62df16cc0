/* A read-only walk of the page-state words: attribute extents, pins, conversions in flight. */
#include <stdbool.h>

#include "gmem_internal.h"

void gmem_summary(struct gmem *gm, struct gmem_summary *s, gmem_extent_fn fn, void *opaque)
{
	unsigned int i;

	*s = (struct gmem_summary){ 0 };
	for (i = 0; i < gm->nr; i++) {
		const struct gmem_region *r = &gm->regions[i];
		uint64_t n = r->size / GMEM_PAGE_SIZE, p, start = 0, st;
		bool cur = false, priv;

		for (p = 0; p < n; p++) {
			st = __atomic_load_n(&r->page_state[p], __ATOMIC_ACQUIRE);
			priv = st & PS_PRIVATE;
			s->private_bytes += priv ? GMEM_PAGE_SIZE : 0;
			s->pins += st & PS_PINS_MASK;
			s->pinned_bytes += (st & PS_PINS_MASK) ? GMEM_PAGE_SIZE : 0;
			s->converting_bytes += (st & PS_CONVERTING) ? GMEM_PAGE_SIZE : 0;
			if (p && priv != cur) {
				if (fn)
					fn(opaque, r->gpa + start * GMEM_PAGE_SIZE,
					   (p - start) * GMEM_PAGE_SIZE, cur);
				start = p;
			}
			cur = priv;
		}
		if (n && fn)
			fn(opaque, r->gpa + start * GMEM_PAGE_SIZE, (n - start) * GMEM_PAGE_SIZE, cur);
	}
}
