/*
 * Host conversion stress for `veil run --convert-stress`: a thread that
 * round-trips (shared -> private -> shared, gmem_roundtrip) small ranges of
 * guest memory as fast as it can while the guest runs: half over the
 * buffer of the disk request started last (likely in flight), half over
 * reserved RAM the guest does not use.  It needs a disk to aim at.  Only for models
 * that keep contents, so a correct guest never notices; the run's own
 * checks (a disk's data, the guest's health) are the test.
 */
#ifndef VEIL_CONVSTRESS_H
#define VEIL_CONVSTRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "compiler.h"

struct veil_vm;
struct vm;

struct convstress {
	struct veil_vm *veil;
	struct vm *vm;        /* for veil_internal.h's hooks */
	pthread_t thread;
	bool started;
	bool stop;            /* convstress_stop() asks the thread to end */
	uint64_t seed;
	uint64_t roundtrips;  /* completed */
	uint64_t over_io;     /* of those, over the latest disk request's buffer */
	uint64_t waited;      /* round trips that waited for pins to drain */
	uint64_t eagain;      /* kernel EAGAIN answers, retried */
	uint64_t busy;        /* ranges the guest had made private: left alone */
	uint64_t failures;    /* anything else: an invariant at risk */
	char first_failure[200];
};

/* -EOPNOTSUPP if the VM's model does not keep contents across conversions. */
int convstress_start(struct convstress *cs, struct veil_vm *vm, uint64_t seed) __must_check;
/* Ends and joins the thread; call once the VM stopped. */
void convstress_stop(struct convstress *cs);
void convstress_summary(const struct convstress *cs, FILE *f);

#endif
