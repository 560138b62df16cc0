/* Internal to gmem/: the attribute map (attr.c), the private bits of each chunk (gmem_internal.h). */
#ifndef VEIL_GMEM_ATTR_H
#define VEIL_GMEM_ATTR_H

#include "gmem_internal.h"

static inline bool gmem_page_private(const struct gmem_region *r, uint64_t page)
{
	return (gmem_load(&r->chunks[page / GMEM_CHUNK_PAGES].private) >> (page % GMEM_CHUNK_PAGES)) & 1;
}

/* True if a page that [gpa, gpa+len) touches is private; the range lies in r. */
bool gmem_range_has_private(const struct gmem_region *r, uint64_t gpa, uint64_t len);
/*
 * Sets or clears the private bit of pages [first, first+n), a chunk word at a
 * time: only their converter may, while it holds them converting.
 */
void gmem_attr_update(struct gmem_region *r, uint64_t first, uint64_t n, bool private);

#endif
