/* Internal to gmem/: marking a range as converting and waiting for its pins to drain (pin.c). */
#ifndef VEIL_GMEM_PINS_H
#define VEIL_GMEM_PINS_H

#include "gmem_internal.h"

int gmem_range_begin(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     struct gmem_conv_result *res) __must_check;
/* As gmem_range_begin, with its own bound (0: do not wait at all). */
int gmem_range_begin_within(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			    uint64_t timeout_ns, struct gmem_conv_result *res) __must_check;
void gmem_range_end(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n, bool bump);
/* Names whoever pins a page of [gpa, gpa+len): a pin of ours, in res->culprit. */
bool gmem_pins_culprit(struct gmem *gm, uint64_t gpa, uint64_t len, char *buf, size_t size);
/* The pins page p of r holds now (a snapshot). */
uint64_t gmem_page_pins(const struct gmem_region *r, uint64_t p);
/* The pins registered now (gmem_pin() to gmem_unpin()). */
uint64_t gmem_pins_held(struct gmem *gm);

#endif
