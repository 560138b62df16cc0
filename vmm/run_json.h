/*
 * `veil run --json`: the end-of-run summary as one JSON object on one line
 * (docs/formats.md, "veil run --json").  The same facts as the words on
 * stderr, from libveil's public calls; built with json-c, which the CLI
 * links for the control API already.
 */
#ifndef VEIL_RUN_JSON_H
#define VEIL_RUN_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct veil_vm;
struct veil_exit;
struct convstress;

/* Bump on any change a reader could trip on (a field renamed, removed or retyped). */
#define RUN_JSON_SCHEMA 1

struct run_json_facts {
	const struct veil_exit *ex;   /* how the VM stopped */
	int code;                     /* veil's own exit code (a failed host check makes 0 a 1) */
	const char *kernel;           /* one of kernel and firmware */
	const char *firmware;
	uint64_t mem_size;            /* as asked with --mem */
	const char *verdict;          /* the firmware's host check in words; NULL: none */
	bool verdict_failed;
	const struct convstress *cs;  /* --convert-stress; NULL: not asked */
	uint64_t t0_ns;               /* veil's start, for the first-run/first-output times */
};

/*
 * Before the main thread's seccomp filter: json-c seeds its hash tables
 * with getrandom(2) on the first key it hashes, which the filter forbids.
 */
void run_json_prepare(void);

/*
 * Writes the object and a newline to out, then flushes it; 0 or -errno.
 * Starts a new line first if the guest wrote to the console (its last byte
 * is not known here).
 */
int run_json_print(FILE *out, struct veil_vm *vm, const struct run_json_facts *f);

#endif
