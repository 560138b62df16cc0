/* `veil stress --report`: the run as one self-contained SVG, written without any plotting library. */
#ifndef VEIL_REPORT_SVG_H
#define VEIL_REPORT_SVG_H

#include <stdint.h>
#include <stdio.h>

#include "compiler.h"
#include "lat.h"

/* One operation kind's latencies: a step histogram on a log axis, one <g data-kind=KIND>. */
struct report_svg_series {
	const char *kind;  /* the data-kind attribute: guest_convert, host_convert, punch, dma */
	const char *label; /* in words, for the legend */
	const struct lat *lat;
};

/* A count per second of the run: a line on a log axis, one <g data-rate=KIND>. */
struct report_svg_rate {
	const char *kind;
	const char *label;
	const uint64_t *per_sec; /* nr_secs counts, second 1 first */
};

struct report_svg {
	const char *title;    /* any text: it is escaped */
	const char *subtitle;
	const char *detail;   /* a third line, in red when set: why a run failed */
	const struct report_svg_series *series;
	unsigned int nr_series;
	const struct report_svg_rate *rates;
	unsigned int nr_rates;
	unsigned int nr_secs;
};

/* Writes the whole SVG document to f and flushes it; 0, or -errno (-EIO) on a write error. */
int report_svg_print(FILE *f, const struct report_svg *r) __must_check;

#endif
