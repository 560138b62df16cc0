/* Internal to gmem/: long-term pins (io_uring registered buffers), released for conversions (longterm.c). */
#ifndef VEIL_GMEM_LONGTERM_H
#define VEIL_GMEM_LONGTERM_H

#include "gmem_internal.h"

/*
 * Releases our long-term pins that overlap [gpa, gpa+len); *any (if given)
 * if one was.  -EBUSY if one would not release, named in res->culprit.
 */
int gmem_longterm_release(struct gmem *gm, uint64_t gpa, uint64_t len,
			  struct gmem_conv_result *res, bool *any) __must_check;
/* Restores released long-term pins whose pages are all shared and settled. */
void gmem_longterm_restore(struct gmem *gm);
/* Long-term pins held now (registered and not released); the caller holds longterm_lock. */
uint64_t gmem_longterm_held_locked(struct gmem *gm);
/* True if page p of r lies in a long-term pin held now; the caller holds longterm_lock. */
bool gmem_longterm_covers_locked(struct gmem *gm, const struct gmem_region *r, uint64_t p);
void gmem_longterm_free_all(struct gmem *gm);

#endif
