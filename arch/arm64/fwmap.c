/* The arm64 firmware's identity map: one level-1 table of 1 GiB blocks. */
#include <errno.h>
#include <string.h>

#include "fwmap.h"

#define PTE_DEVICE (ARM64_PTE_BLOCK | ARM64_PTE_ATTR(0) | ARM64_PTE_AF | ARM64_PTE_PXN | \
		    ARM64_PTE_UXN)
#define PTE_NORMAL (ARM64_PTE_BLOCK | ARM64_PTE_ATTR(1) | ARM64_PTE_SH_INNER | ARM64_PTE_AF)

int arm64_fwmap_build(const struct gmem_layout *l, uint64_t table[ARM64_FWMAP_ENTRIES],
		      uint64_t *mapped_top)
{
	uint64_t ram, top;
	unsigned int i;

	if (!l->nr || l->r[0].gpa % SZ_1G)
		return -EINVAL;
	ram = l->r[0].gpa;
	top = ALIGN_UP(l->r[l->nr - 1].gpa + l->r[l->nr - 1].size, SZ_1G);
	if (top / SZ_1G > ARM64_FWMAP_ENTRIES)
		return -E2BIG;
	memset(table, 0, ARM64_FWMAP_ENTRIES * sizeof(table[0]));
	for (i = 0; i < ram / SZ_1G; i++)
		table[i] = (uint64_t)i * SZ_1G | PTE_DEVICE;
	for (; i < top / SZ_1G; i++)
		table[i] = (uint64_t)i * SZ_1G | PTE_NORMAL;
	*mapped_top = top;
	return 0;
}
