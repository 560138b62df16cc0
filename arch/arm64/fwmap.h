/* The arm64 firmware's identity map (veil_boot.h), as a pure function any host can test. */
#ifndef VEIL_ARM64_FWMAP_H
#define VEIL_ARM64_FWMAP_H

#include <stdint.h>

#include "compiler.h"
#include "gmem.h"

#define ARM64_FWMAP_ENTRIES 512 /* one level-1 table: 39-bit VA, 1 GiB each */

/* Level-1 block descriptors: AttrIndx selects VEIL_FW_MAIR's attribute (0 Device, 1 Normal). */
#define ARM64_PTE_BLOCK 0x1ULL
#define ARM64_PTE_ATTR(i) ((uint64_t)(i) << 2)
#define ARM64_PTE_SH_INNER (3ULL << 8)
#define ARM64_PTE_AF (1ULL << 10)
#define ARM64_PTE_PXN (1ULL << 53)
#define ARM64_PTE_UXN (1ULL << 54)

/*
 * Fills table: Device-nGnRnE, never executable, below the first RAM range (MMIO); Normal
 * write-back, inner shareable, from there up to the end of RAM rounded up to 1 GiB, which goes
 * in *mapped_top; nothing above.  -EINVAL if RAM does not start on a 1 GiB boundary, -E2BIG if
 * it ends beyond 512 GiB.
 */
int arm64_fwmap_build(const struct gmem_layout *l, uint64_t table[ARM64_FWMAP_ENTRIES],
		      uint64_t *mapped_top) __must_check;

#endif
