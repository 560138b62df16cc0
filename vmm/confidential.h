/*
 * The confidential mode (docs/confidential.md): a launch digest of what veil loaded, all RAM
 * private before the first vCPU runs, and the account of what the guest shared.
 */
#ifndef VEIL_CONFIDENTIAL_H
#define VEIL_CONFIDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "compiler.h"
#include "lat.h"

struct gmem;

struct vm_coco {
	bool on;
	struct lat share_lat;   /* guest MEM_SHARE calls that converted, timed */
	struct lat unshare_lat; /* guest MEM_UNSHARE calls that converted, timed */
	uint64_t private_at_launch; /* bytes private when the first vCPU was let run */
	char digest[65];        /* the launch digest, hex; "" before the launch */
	uint64_t swiotlb_bytes; /* the bounce pool the command line asks for; 0: none */
	uint64_t measured_bytes; /* what the launch digest covers */
	uint64_t digest_ns;     /* measuring it (reads from guest memory and SHA-256) */
	uint64_t private_ns;    /* converting all RAM to private at launch */
};


/* Allocates the histograms; nothing else happens until coco_launch(). */
int coco_init(struct vm_coco *c) __must_check;
void coco_free(struct vm_coco *c);

/*
 * The header line that precedes each blob in the measured stream (docs/confidential.md):
 * "veil-launch-v1 NAME gpa=0x%016llx size=0x%016llx\n".  Returns its length.
 */
int coco_blob_header(char *buf, size_t len, const char *name, uint64_t gpa, uint64_t size);

/*
 * Measures the blobs st names, in order, then the vCPU entry, from guest memory into the
 * digest (and into manifest_path if not NULL), then converts all RAM to private.  Before any
 * vCPU runs.  0, or -errno with err set.
 */
int coco_launch(struct vm_coco *c, struct gmem *gm, const struct arch_boot_state *st, unsigned int nr_cpus,
		const char *manifest_path, char *err, size_t errlen) __must_check;

/* A guest conversion that completed, for the counters. */
void coco_record(struct vm_coco *c, bool to_private, uint64_t ns);

/* Bytes of RAM private now. */
uint64_t coco_private_bytes(struct gmem *gm);

#endif
