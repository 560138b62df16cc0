/* Latency histograms: recorded from any thread without locks, summarized as percentiles. */
#ifndef VEIL_LAT_H
#define VEIL_LAT_H

#include <stdint.h>

#include "compiler.h"

/*
 * Log-linear buckets, HdrHistogram-style: values below 2^LAT_SUB_BITS
 * nanoseconds are exact; above, each power of two is split into
 * 2^LAT_SUB_BITS equal buckets.  A bucket is at most 1/128 of its lower
 * bound wide and a percentile is reported as its bucket's midpoint, so a
 * percentile is within 1/256 (0.4%) of the sample it stands for.  Every
 * sample of the run is counted, in fixed memory (about 58 KiB).
 */
#define LAT_SUB_BITS 7
#define LAT_SUB (1u << LAT_SUB_BITS)
#define LAT_BUCKETS ((64 - LAT_SUB_BITS + 1) * LAT_SUB)

struct lat {
	uint64_t *buckets; /* LAT_BUCKETS counters */
	uint64_t n;
	uint64_t sum;      /* nanoseconds; wraps only after 584 years of samples */
	uint64_t min;
	uint64_t max;
};

int lat_init(struct lat *l) __must_check;
void lat_free(struct lat *l);
void lat_add(struct lat *l, uint64_t ns);
/*
 * The p-th percentile (0..100) in nanoseconds by nearest rank over every
 * sample, within 1/256 of the exact value; 0 if none.  100 is the exact
 * maximum.  Call it once the recording threads are done.
 */
uint64_t lat_percentile(const struct lat *l, double p);
uint64_t lat_count(const struct lat *l);
uint64_t lat_min(const struct lat *l);
uint64_t lat_max(const struct lat *l);
uint64_t lat_mean(const struct lat *l);
/*
 * The buckets themselves, for a plot: bucket i (0..LAT_BUCKETS-1) holds
 * lat_bucket_count() samples, each within 1/256 of lat_bucket_value(i) ns.
 */
uint64_t lat_bucket_value(unsigned int i);
uint64_t lat_bucket_count(const struct lat *l, unsigned int i);

#endif
