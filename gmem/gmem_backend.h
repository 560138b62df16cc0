/*
 * Internal to gmem/: the conversion backends (DESIGN.md §2a/b/c) behind one
 * ops table.  A gmem picks its table once, at creation, from its model and
 * its destructive flag; everything that depends on the model asks the table.
 */
#ifndef VEIL_GMEM_BACKEND_H
#define VEIL_GMEM_BACKEND_H

#include <errno.h>
#include <fcntl.h>
#include <time.h>

#include "gmem_internal.h"

#define GMEM_BACKOFF_MAX_US 2000

struct gmem_backend {
	const char *name;      /* as `veil caps` and the run summary say it */
	const char *semantics; /* what a conversion does to contents, in words */
	/* A conversion keeps the pages' contents: the one answer gmem_keeps_contents() gives. */
	bool keeps_contents;
	/*
	 * The kernel refuses to convert a page it holds an extra reference to
	 * (§2b: EAGAIN and the page's offset), so long-term pins need releasing
	 * only when it names one; elsewhere they are released before every
	 * conversion, since nothing would stop a write through them.
	 */
	bool kernel_sees_pins;
	/* The shared side is a memfd of its own; guest_memfd (the private side) is never mapped. */
	bool separate_shared;
	/*
	 * The kernel's part of a conversion of r's [off, off+len), the range
	 * marked converting and drained.  0, or -errno with res->culprit set and
	 * nothing changed (I5).
	 */
	int (*convert)(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
		       bool to_private, struct gmem_conv_result *res);
};

extern const struct gmem_backend gmem_backend_host;             /* backend_host.c */
extern const struct gmem_backend gmem_backend_host_destructive; /* backend_host.c */
extern const struct gmem_backend gmem_backend_oop;              /* backend_oop.c */
extern const struct gmem_backend gmem_backend_inplace;          /* backend_inplace.c */

/* backend.c: the table for a model; destructive applies to the host-enforced model only. */
const struct gmem_backend *gmem_backend_for(enum gmem_model m, bool destructive);

/* The steps the backends share, inline so that no backend depends on another file. */

/* PUNCH_HOLE with KEEP_SIZE: 0 or -errno. */
static inline int gmem_backend_punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

/* Sleeps before the attempt-th retry of a kernel EAGAIN: 50 us doubling, at most 2 ms. */
static inline void gmem_backend_backoff(unsigned int attempt)
{
	unsigned int us = 50u << (attempt < 6 ? attempt : 6);
	struct timespec ts = { 0, (long)(us > GMEM_BACKOFF_MAX_US ? GMEM_BACKOFF_MAX_US : us) * 1000 };

	nanosleep(&ts, NULL);
}

#endif
