/* Internal to gmem/: the attribute map (attr.c), the private bit of each page's state word. */
#ifndef VEIL_GMEM_ATTR_H
#define VEIL_GMEM_ATTR_H

#include "gmem_internal.h"

static inline bool gmem_page_private(const struct gmem_region *r, uint64_t page)
{
	return gmem_ps_load(&r->page_state[page]) & PS_PRIVATE;
}

/* True if a page that [gpa, gpa+len) touches is private; the range lies in r. */
bool gmem_range_has_private(const struct gmem_region *r, uint64_t gpa, uint64_t len);
/* Sets or clears the private bit of pages [first, first+n): only their converter may. */
void gmem_attr_update(struct gmem_region *r, uint64_t first, uint64_t n, bool private);

#endif
