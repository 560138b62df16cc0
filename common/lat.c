/* Latency samples: a slot claimed by one atomic increment, percentiles by sorting a copy. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lat.h"

int lat_init(struct lat *l, uint64_t cap)
{
	l->samples = calloc(cap, sizeof(*l->samples));
	l->cap = l->samples ? cap : 0;
	l->n = 0;
	return l->samples ? 0 : -ENOMEM;
}

void lat_free(struct lat *l)
{
	free(l->samples);
	l->samples = NULL;
	l->cap = 0;
}

void lat_add(struct lat *l, uint64_t ns)
{
	uint64_t i = __atomic_fetch_add(&l->n, 1, __ATOMIC_RELAXED);

	if (i < l->cap)
		__atomic_store_n(&l->samples[i], ns, __ATOMIC_RELAXED);
}

uint64_t lat_count(const struct lat *l)
{
	return __atomic_load_n(&l->n, __ATOMIC_RELAXED);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t lat_percentile(const struct lat *l, double p)
{
	uint64_t n = lat_count(l), i, v;
	uint64_t *copy;

	if (n > l->cap)
		n = l->cap;
	if (!n)
		return 0;
	copy = malloc(n * sizeof(*copy));
	if (!copy)
		return 0;
	for (i = 0; i < n; i++)
		copy[i] = __atomic_load_n(&l->samples[i], __ATOMIC_RELAXED);
	qsort(copy, n, sizeof(*copy), cmp_u64);
	i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
	v = copy[i < n ? i : n - 1];
	free(copy);
	return v;
}
