/* Latency histograms: one atomic increment per sample into a fixed log-linear bucket array. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "lat.h"

_Static_assert(LAT_BUCKETS == 7424, "58 powers of two of 128 buckets, the first exact");

int lat_init(struct lat *l)
{
	l->buckets = calloc(LAT_BUCKETS, sizeof(*l->buckets));
	l->n = l->sum = l->max = 0;
	l->min = UINT64_MAX;
	return l->buckets ? 0 : -ENOMEM;
}

void lat_free(struct lat *l)
{
	free(l->buckets);
	l->buckets = NULL;
}

/* Below LAT_SUB, the value itself; above, LAT_SUB buckets per power of two. */
static unsigned int lat_bucket(uint64_t v)
{
	unsigned int shift;

	if (v < LAT_SUB)
		return (unsigned int)v;
	shift = 63 - (unsigned int)__builtin_clzll(v) - LAT_SUB_BITS;
	return (shift + 1) * LAT_SUB + (unsigned int)((v >> shift) - LAT_SUB);
}

/* The middle of bucket i: within half a bucket, 1/256, of anything counted in it. */
static uint64_t lat_bucket_mid(unsigned int i)
{
	unsigned int shift;

	if (i < LAT_SUB)
		return i;
	shift = i / LAT_SUB - 1;
	return ((uint64_t)(LAT_SUB + i % LAT_SUB) << shift) + ((1ULL << shift) >> 1);
}

uint64_t lat_bucket_value(unsigned int i)
{
	return i < LAT_BUCKETS ? lat_bucket_mid(i) : 0;
}

uint64_t lat_bucket_count(const struct lat *l, unsigned int i)
{
	return l->buckets && i < LAT_BUCKETS ? __atomic_load_n(&l->buckets[i], __ATOMIC_RELAXED) : 0;
}

void lat_add(struct lat *l, uint64_t ns)
{
	uint64_t cur;

	if (!l->buckets)
		return;
	__atomic_fetch_add(&l->buckets[lat_bucket(ns)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&l->sum, ns, __ATOMIC_RELAXED);
	cur = __atomic_load_n(&l->min, __ATOMIC_RELAXED);
	while (ns < cur && !__atomic_compare_exchange_n(&l->min, &cur, ns, true, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
	cur = __atomic_load_n(&l->max, __ATOMIC_RELAXED);
	while (ns > cur && !__atomic_compare_exchange_n(&l->max, &cur, ns, true, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
	/* Last, so that a count never promises a sample the buckets do not hold yet. */
	__atomic_fetch_add(&l->n, 1, __ATOMIC_RELEASE);
}

uint64_t lat_count(const struct lat *l)
{
	return __atomic_load_n(&l->n, __ATOMIC_ACQUIRE);
}

uint64_t lat_min(const struct lat *l)
{
	return lat_count(l) ? __atomic_load_n(&l->min, __ATOMIC_RELAXED) : 0;
}

uint64_t lat_max(const struct lat *l)
{
	return __atomic_load_n(&l->max, __ATOMIC_RELAXED);
}

uint64_t lat_mean(const struct lat *l)
{
	uint64_t n = lat_count(l);

	return n ? __atomic_load_n(&l->sum, __ATOMIC_RELAXED) / n : 0;
}

uint64_t lat_percentile(const struct lat *l, double p)
{
	uint64_t n = lat_count(l), rank, seen = 0, v;
	double r = p / 100.0 * (double)n;
	unsigned int i;

	if (!n || !l->buckets)
		return 0;
	if (p >= 100)
		return lat_max(l);
	/* Nearest rank: the smallest sample with at least p% of them at or below it. */
	rank = r < 1 ? 1 : (uint64_t)r;
	if ((double)rank < r)
		rank++;
	for (i = 0; i < LAT_BUCKETS; i++) {
		seen += __atomic_load_n(&l->buckets[i], __ATOMIC_RELAXED);
		if (seen >= rank)
			break;
	}
	if (i == LAT_BUCKETS)
		return lat_max(l); /* recording went on while we summed */
	v = lat_bucket_mid(i);
	if (v < lat_min(l))
		v = lat_min(l);
	return v > lat_max(l) ? lat_max(l) : v;
}
