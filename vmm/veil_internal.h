/*
 * veil's test hooks: what the stress harness (vmm/harness/) needs beyond
 * include/veil.h.  Not installed and not part of the public API.  struct vm
 * is opaque here: vmm/internal.c is the only file behind these hooks that
 * sees its fields, so the harness never includes vm.h.
 */
#ifndef VEIL_INTERNAL_H
#define VEIL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "veil.h"

struct vm;
struct gmem;
struct lat;
struct fw_boot_opts;
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
};

/*
 * veil_vm_create() with hooks (NULL: none).  The core's side, a few lines:
 * - veil.c: veil_vm_create()'s body is veil_vm_build(cfg, hooks, out, err)
 *   (veil_vm.h), which sets build.hooks; veil_vm_create() passes NULL.
 * - build.c, build_boot(): after the devices attach and before the guest
 *   is loaded, with opts the boot options it then passes to fw_boot() (NULL
 *   for a kernel), ret = veil_hooks_run(b->hooks, vm, &opts), failing the
 *   build if ret != 0.
 * - The conversions firmware's service port (fwsvc) is such a hook, so the
 *   builder does not call fwsvc_prepare(): `veil run --firmware
 *   conversions` creates its VM with fwsvc_vm_create() (harness/fwsvc.h),
 *   and a plain veil_vm_create() refuses that firmware (config fault).
 * A harness's own firmware comes as cfg->boot.firmware_data.
 */
int veil_vm_create_hooked(const struct veil_config *cfg, const struct veil_hooks *hooks,
			  struct veil_vm **out, struct veil_error *err) __must_check;
/* Inline: the core library calls it and links nothing of the harness's. */
static inline int __must_check veil_hooks_run(const struct veil_hooks *hooks, struct vm *vm,
					      struct fw_boot_opts *fw)
{
	return hooks && hooks->build ? hooks->build(hooks->opaque, vm, fw) : 0;
}

/* The core VM behind a handle, for the hooks below. */
struct vm *veil_internal_vm(struct veil_vm *vm);

/* Its guest memory: host conversions, punches, checked accesses and DMA pins go through gmem.h. */
struct gmem *veil_internal_gmem(struct vm *vm);
unsigned int veil_internal_nr_vcpus(const struct vm *vm);
/* Whether a conversion keeps the page's contents under this VM's model: the one predicate. */
bool veil_internal_keeps_contents(struct vm *vm);

/*
 * Adds a firmware register device (bus.h's ops, write_vcpu for per-vCPU
 * registers) at port: an I/O port on x86, an MMIO address on arm64
 * (VEIL_FW_REGS_MMIO in veil_boot.h); only from hooks->build.
 */
int veil_internal_add_port(struct vm *vm, uint64_t port, unsigned int len,
			   const struct bus_device_ops *ops, void *opaque, const char *name)
	__must_check;

/*
 * 1 if a guest's conversion hypercalls (x86: KVM_HC_MAP_GPA_RANGE; arm64:
 * MEM_SHARE/MEM_UNSHARE) reach veil on this VM (enabled, and the behaviour
 * probe agrees), 0 if not, with why in why; then the firmware converts
 * through its register (veil_boot_info.conv_port).
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

#endif
