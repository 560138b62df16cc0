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

/* veil_vm_create() with veil_internal.h's build hooks (NULL: none). */
int veil_vm_build(const struct veil_config *cfg, const struct veil_hooks *hooks,
		  struct veil_vm **out, struct veil_error *err) __must_check;
/* The VM core behind a handle (harness hooks: --convert-stress). */
struct vm *veil_vm_core(struct veil_vm *vm);
/* Test hook: the build step veil_vm_create() fails at (enum build_step); 0: none.  Per thread. */
void veil_build_fail_at(int step);

#endif
