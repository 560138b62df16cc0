/*
 * veil's test hooks: what the stress harness (vmm/harness/) needs beyond
 * include/veil.h.  Not installed and not part of the public API.  struct vm
 * is opaque here: vmm/internal.c is the only file behind these hooks that
 * sees its fields, so the harness never includes vm.h.
 */
#ifndef VEIL_INTERNAL_H
#define VEIL_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "fw.h"
#include "veil.h"

struct vm;
struct gmem;
struct lat;
struct bus_device_ops;

/*
 * Build-time hooks.  The builder (vmm/build.c) calls veil_hooks_run() once,
 * after the devices attach and before the guest is loaded.
 */
struct veil_hooks {
	/*
	 * May add port devices (veil_internal_add_port) and set the firmware's
	 * boot options: fw->reserve, fw->fill, fw->opaque (fw->seed is already
	 * the configuration's).  fw is NULL for a kernel boot.  An error fails
	 * the build, which unwinds as after any other step.
	 */
	int (*build)(void *opaque, struct vm *vm, struct fw_boot_opts *fw);
	void *opaque;
	/* Loaded instead of cfg->boot.firmware (e.g. the stress firmware); NULL: that one. */
	const struct fw_image *firmware;
};

/*
 * veil_vm_create() with hooks (NULL: none).  What the core's side does (a
 * few lines; h/core's vmm/build.c and vmm/veil.c):
 * - veil.c: veil_vm_create()'s body as veil_vm_build(cfg, hooks, out, err),
 *   which sets b.hooks = hooks before build_vm(); veil_vm_create() passes
 *   NULL.  veil_vm_create_hooked() (internal.c) calls veil_vm_build().
 * - build.c, build_boot(): with img and opts the image and boot options it
 *   is about to pass to fw_boot() (both NULL for a kernel), after the
 *   devices attach and before the guest is loaded:
 *	ret = veil_hooks_run(b->hooks, vm, &b->img, &opts);
 *   failing the build if ret != 0.  veil_hooks_run() replaces *img
 *   (closing it) if the hooks bring their own firmware.
 * - The conversions firmware's service port (fwsvc) is such a hook, so the
 *   builder does not call fwsvc_prepare(): `veil run --firmware
 *   conversions` creates its VM with fwsvc_vm_create() (harness/fwsvc.h),
 *   and a plain veil_vm_create() refuses that firmware (config fault).
 */
int veil_vm_create_hooked(const struct veil_config *cfg, const struct veil_hooks *hooks,
			  struct veil_vm **out, struct veil_error *err) __must_check;
/* Inline: the core library calls it and links nothing of the harness's. */
static inline int __must_check veil_hooks_run(const struct veil_hooks *hooks, struct vm *vm,
					      struct fw_image *img, struct fw_boot_opts *fw)
{
	if (!hooks)
		return 0;
	if (hooks->firmware) {
		if (!img)
			return -EINVAL; /* a kernel boot has no firmware to replace */
		fw_image_close(img);
		*img = *hooks->firmware;
	}
	return hooks->build ? hooks->build(hooks->opaque, vm, fw) : 0;
}

/* The core VM behind a handle, for the hooks below. */
struct vm *veil_internal_vm(struct veil_vm *vm);

/* Its guest memory: host conversions, punches, checked accesses and DMA pins go through gmem.h. */
struct gmem *veil_internal_gmem(struct vm *vm);
unsigned int veil_internal_nr_vcpus(const struct vm *vm);
/* Whether a conversion keeps the page's contents under this VM's model: the one predicate. */
bool veil_internal_keeps_contents(struct vm *vm);

/* Adds a port device (bus.h's ops, write_vcpu for per-vCPU ports); only from hooks->build. */
int veil_internal_add_port(struct vm *vm, uint16_t port, unsigned int len,
			   const struct bus_device_ops *ops, void *opaque, const char *name)
	__must_check;

/*
 * 1 if a guest's KVM_HC_MAP_GPA_RANGE reaches veil on this VM (enabled, and
 * the behaviour probe agrees), 0 if not, with why in why.
 */
int veil_internal_map_gpa_range_exits(struct vm *vm, char *why, size_t len);
/* The guest's MAP_GPA_RANGE path, as vCPU cpu; returns the guest's return value. */
uint64_t veil_internal_map_gpa_range(struct vm *vm, unsigned int cpu, uint64_t gpa,
				     uint64_t npages, uint64_t attrs);
/* Times every guest conversion into lat from now on (NULL: none); set before the VM starts. */
void veil_internal_set_guest_conv_lat(struct vm *vm, struct lat *lat);

/* The buffer of the request disk (x mod the number of disks) started last; false before any. */
bool veil_internal_last_disk_buffer(struct vm *vm, uint64_t x, uint64_t *gpa, uint64_t *pages);

/* Starts a host thread, confined as the VM's worker threads are when it runs with seccomp. */
int veil_internal_worker_start(struct vm *vm, pthread_t *thread, const char *label,
			       void *(*fn)(void *), void *arg) __must_check;

struct veil_vcpu_stats {
	uint64_t exits;
	uint64_t io;
	uint64_t mmio;
	uint64_t conversions;      /* guest-requested, by hypercall or memory fault */
	uint64_t conversion_fails;
	uint64_t fault_retries;
	uint64_t fault_resyncs;
};

/* -EINVAL if cpu is not one of the VM's vCPUs. */
int veil_internal_vcpu_stats(struct vm *vm, unsigned int cpu, struct veil_vcpu_stats *out)
	__must_check;

/*
 * Until libveil's veil_vm_create/start/wait land (h/core): the same on
 * today's core, for the harness alone.  Removed at the merge.
 */
int veil_internal_legacy_create(const struct veil_config *cfg, const struct veil_hooks *hooks,
				struct vm **out) __must_check;
/* Runs until a stop; INT, TERM, HUP and QUIT stop it with 128 + N.  Returns the exit code. */
int veil_internal_legacy_run(struct vm *vm);
void veil_internal_legacy_stop(struct vm *vm, int code, const char *why);
/* Waits up to ms for a stop request; whether there was one. */
bool veil_internal_legacy_wait_stop(struct vm *vm, unsigned int ms);
const char *veil_internal_legacy_stop_reason(struct vm *vm);
void veil_internal_legacy_destroy(struct vm *vm);

#endif
