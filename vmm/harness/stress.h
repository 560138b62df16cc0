/* `veil stress`: the convert-stress firmware on every vCPU, with host conversions, punches and DMA. */
#ifndef VEIL_STRESS_H
#define VEIL_STRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "veil.h"

struct stress_opts {
	unsigned int nr_cpus;
	uint64_t mem_size;
	unsigned int seconds;
	unsigned long vm_type;
	bool json;
	bool destructive;
	bool no_dma;
	bool foreign_pin; /* check I6 with a GUP_TEST pin veil does not hold */
	uint64_t seed;
	uint64_t t0_ns;
	FILE *report;            /* --report: the SVG goes here (the caller opens and closes it) */
	const char *report_path; /* its name, in messages */
};

/*
 * Runs the stress and prints its report (and writes the SVG to o->report);
 * returns veil's exit code (0: every invariant held; 2 if the SVG could not be
 * written), or -1 if the VM could not be built, with err saying why
 * (config_fault: the options are at fault) for the caller to print.
 */
int stress_run(const struct stress_opts *o, struct veil_error *err);

#endif
