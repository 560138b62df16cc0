/* Internal to gmem/: the host mapping of private pages, within the VMA budget (revoke.c). */
#ifndef VEIL_GMEM_REVOKE_H
#define VEIL_GMEM_REVOKE_H

#include "gmem_internal.h"

int gmem_revoke_init(struct gmem *gm, struct gmem_region *r) __must_check;
/* Revokes pages that became private, where the budget allows; never fails. */
void gmem_revoke_private(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n);
/* Restores access to pages becoming shared; on failure nothing else changed. */
int gmem_revoke_shared(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		       struct gmem_conv_result *res) __must_check;
/* Before a host access to [first, first+n), all shared: its lazily kept PROT_NONE pages back. */
int gmem_revoke_fault_in(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n)
	__must_check;

#endif
