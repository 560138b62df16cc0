/* The I/O bus: sorted, non-overlapping ranges per address space, found by binary search. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

struct bus_range {
	uint64_t base;
	uint64_t last; /* inclusive, so a range may end at UINT64_MAX */
	const struct bus_device_ops *ops;
	void *opaque;
	const char *name;
};

struct bus_space_map {
	struct bus_range *ranges;
	size_t nr;
	size_t cap;
};

struct bus {
	struct bus_space_map spaces[BUS_NR_SPACES];
};

int bus_create(struct bus **out)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return -ENOMEM;
	*out = bus;
	return 0;
}

void bus_destroy(struct bus *bus)
{
	unsigned int i;

	if (!bus)
		return;
	for (i = 0; i < BUS_NR_SPACES; i++)
		free(bus->spaces[i].ranges);
	free(bus);
}

/* Index of the first range whose last address is >= addr. */
static size_t map_lower_bound(const struct bus_space_map *m, uint64_t addr)
{
	size_t lo = 0, hi = m->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ranges[mid].last < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, enum bus_space space, uint64_t base, uint64_t len,
		 const struct bus_device_ops *ops, void *opaque, const char *name)
{
	struct bus_space_map *m;
	uint64_t last;
	size_t i;

	if ((unsigned int)space >= BUS_NR_SPACES || !len || !ops ||
	    __builtin_add_overflow(base, len - 1, &last))
		return -EINVAL;
	m = &bus->spaces[space];
	i = map_lower_bound(m, base);
	if (i < m->nr && m->ranges[i].base <= last)
		return -EEXIST;
	if (m->nr == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct bus_range *n = realloc(m->ranges, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		m->ranges = n;
		m->cap = cap;
	}
	memmove(&m->ranges[i + 1], &m->ranges[i], (m->nr - i) * sizeof(*m->ranges));
	m->ranges[i] = (struct bus_range){ base, last, ops, opaque, name };
	m->nr++;
	return 0;
}

int bus_unregister(struct bus *bus, enum bus_space space, uint64_t base)
{
	struct bus_space_map *m;
	size_t i;

	if ((unsigned int)space >= BUS_NR_SPACES)
		return -ENOENT;
	m = &bus->spaces[space];
	i = map_lower_bound(m, base);
	if (i == m->nr || m->ranges[i].base != base)
		return -ENOENT;
	memmove(&m->ranges[i], &m->ranges[i + 1], (m->nr - i - 1) * sizeof(*m->ranges));
	m->nr--;
	return 0;
}

static const struct bus_range *bus_find(struct bus *bus, enum bus_space space, uint64_t addr)
{
	const struct bus_space_map *m;
	size_t i;

	if ((unsigned int)space >= BUS_NR_SPACES)
		return NULL;
	m = &bus->spaces[space];
	i = map_lower_bound(m, addr);
	if (i < m->nr && m->ranges[i].base <= addr)
		return &m->ranges[i];
	return NULL;
}

int bus_dispatch_vcpu(struct bus *bus, enum bus_space space, uint64_t addr, void *data,
		      unsigned int len, bool is_write, unsigned int vcpu)
{
	const struct bus_range *r = bus_find(bus, space, addr);
	uint64_t last;

	if (!r || !len || __builtin_add_overflow(addr, (uint64_t)len - 1, &last) || last > r->last)
		return -ENOENT;
	if (is_write && r->ops->write_vcpu)
		return r->ops->write_vcpu(r->opaque, vcpu, addr - r->base, data, len);
	if (is_write)
		return r->ops->write ? r->ops->write(r->opaque, addr - r->base, data, len) : 0;
	if (!r->ops->read) {
		memset(data, 0xff, len);
		return 0;
	}
	return r->ops->read(r->opaque, addr - r->base, data, len);
}

int bus_dispatch(struct bus *bus, enum bus_space space, uint64_t addr, void *data,
		 unsigned int len, bool is_write)
{
	return bus_dispatch_vcpu(bus, space, addr, data, len, is_write, BUS_NO_VCPU);
}

const char *bus_device_name(struct bus *bus, enum bus_space space, uint64_t addr)
{
	const struct bus_range *r = bus_find(bus, space, addr);

	return r ? r->name : NULL;
}
