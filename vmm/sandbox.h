/*
 * veil's seccomp filters: one per kind of thread, loaded by the thread itself
 * just before it handles anything a guest controls (Firecracker's model).
 */
#ifndef VEIL_SANDBOX_H
#define VEIL_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>

#include "compiler.h"

enum vmm_thread_kind {
	VMM_THREAD_MAIN,   /* the event loop, the stop protocol and teardown */
	VMM_THREAD_VCPU,   /* KVM_RUN and the exit handler, with the devices it calls */
	VMM_THREAD_WORKER, /* the I/O thread and the host conversion stress */
};

const char *vmm_thread_kind_name(enum vmm_thread_kind kind);

/*
 * Loads kind's filter on the calling thread.  A forbidden call then raises
 * SIGSYS, whose handler (installed here, process-wide) names the thread and
 * the call and ends veil with exit 1.  label is a string that outlives the
 * thread.  Irreversible.
 */
int vmm_seccomp_load(enum vmm_thread_kind kind, const char *label) __must_check;

/*
 * pthread_create() with every signal blocked, whose new thread loads kind's
 * filter (when filter is true) before it runs fn(arg).  Returns 0 only once
 * the filter is in place; if it could not be loaded, fn never runs.
 */
int vmm_thread_start(pthread_t *thread, enum vmm_thread_kind kind, bool filter,
		     const char *label, void *(*fn)(void *), void *arg) __must_check;

#endif
