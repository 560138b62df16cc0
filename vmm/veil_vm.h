/*
 * libveil's handle, for veil's own uninstalled code only (the CLI's
 * --convert-stress and summary, the harness): struct veil_vm and the
 * accessors that reach past veil.h.  Embedders get veil.h alone.
 */
#ifndef VEIL_VEIL_VM_H
#define VEIL_VEIL_VM_H

#include <pthread.h>
#include <stdio.h>

#include "build.h"
#include "log.h"
#include "veil.h"

struct veil_vm {
	struct build b;
	struct vm *vm;            /* b.vm */
	struct log_sink sink;     /* the VM's messages: cfg.log, or stderr at cfg.log_level */
	veil_log_fn log;
	void *log_opaque;
	pthread_mutex_t lock;     /* serializes start, pause, resume, wait */
};

/* The VM core behind a handle (harness hooks: --convert-stress). */
struct vm *veil_vm_core(struct veil_vm *vm);
/*
 * The CLI's summary lines that veil.h has no counter for (memory-fault
 * retries, revocation budget, per-device lines, console), to f.
 */
void veil_vm_summary_extra(struct veil_vm *vm, FILE *f);
/* CLOCK_MONOTONIC ns of the first KVM_RUN and the first console byte; 0 if none yet. */
void veil_vm_first_times(struct veil_vm *vm, uint64_t *first_run_ns, uint64_t *first_byte_ns);
/* Test hook: the build step veil_vm_create() fails at (enum build_step); 0: none.  Per thread. */
void veil_build_fail_at(int step);

#endif
