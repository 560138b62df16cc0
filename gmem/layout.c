/* gmem layout: how --mem bytes of RAM are placed around the architecture's MMIO hole. */
#include <errno.h>
#include <string.h>

#include "gmem.h"

static void layout_add(struct gmem_layout *l, uint64_t gpa, uint64_t size)
{
	l->r[l->nr].gpa = gpa;
	l->r[l->nr].size = size;
	l->nr++;
}

bool gmem_region_contains(const struct gmem_layout *l, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < l->nr; i++)
		if (gpa >= l->r[i].gpa && len <= l->r[i].size && gpa - l->r[i].gpa <= l->r[i].size - len)
			return true;
	return false;
}

int gmem_layout_compute(const struct gmem_arch_map *map, uint64_t mem_size,
			struct gmem_layout *out)
{
	uint64_t below, end;

	memset(out, 0, sizeof(*out));
	if (mem_size < GMEM_MIN_SIZE || !IS_ALIGNED(mem_size, GMEM_PAGE_SIZE))
		return -EINVAL;
	if (__builtin_add_overflow(map->ram_base, mem_size, &end))
		return -ERANGE;
	if (map->ram_base >= map->hole_start && map->ram_base < map->hole_end) {
		/* RAM that would start inside the hole starts after it. */
		if (__builtin_add_overflow(map->hole_end, mem_size, &end))
			return -ERANGE;
		layout_add(out, map->hole_end, mem_size);
		return 0;
	}
	if (map->hole_end <= map->hole_start || end <= map->hole_start ||
	    map->ram_base >= map->hole_end) {
		layout_add(out, map->ram_base, mem_size);
		return 0;
	}
	/* RAM would overlap the hole: what does not fit below goes above it. */
	below = map->hole_start - map->ram_base;
	if (__builtin_add_overflow(map->hole_end, mem_size - below, &end))
		return -ERANGE;
	if (below)
		layout_add(out, map->ram_base, below);
	layout_add(out, map->hole_end, mem_size - below);
	return 0;
}
