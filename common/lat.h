/* Latency samples: recorded from any thread without locks, summarized as percentiles. */
#ifndef VEIL_LAT_H
#define VEIL_LAT_H

#include <stdint.h>

#include "compiler.h"

struct lat {
	uint64_t *samples; /* nanoseconds */
	uint64_t cap;
	uint64_t n;        /* may exceed cap: only the first cap samples are kept */
};

int lat_init(struct lat *l, uint64_t cap) __must_check;
void lat_free(struct lat *l);
void lat_add(struct lat *l, uint64_t ns);
/* The p-th percentile (0..100) in nanoseconds of the kept samples; 0 if none. */
uint64_t lat_percentile(const struct lat *l, double p);
uint64_t lat_count(const struct lat *l);

#endif
