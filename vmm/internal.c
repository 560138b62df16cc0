/* The test hooks of veil_internal.h: the one harness-facing file that sees struct vm. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "caps.h"
#include "exit.h"
#include "log.h"
#include "sandbox.h"
#include "veil_boot.h"
#include "veil_internal.h"
#include "virtio_devs.h"
#include "veil_vm.h"
#include "vm.h"

int veil_vm_create_hooked(const struct veil_config *cfg, const struct veil_hooks *hooks,
			  struct veil_vm **out, struct veil_error *err)
{
	return veil_vm_build(cfg, hooks, out, err);
}

struct vm *veil_internal_vm(struct veil_vm *vm)
{
	return veil_vm_core(vm);
}

struct gmem *veil_internal_gmem(struct vm *vm)
{
	return vm->gmem;
}

unsigned int veil_internal_nr_vcpus(const struct vm *vm)
{
	return vm->nr_vcpus;
}

/* To be gmem_keeps_contents(vm->gmem) once h/gmem's predicate lands. */
bool veil_internal_keeps_contents(struct vm *vm)
{
	return gmem_keeps_contents(vm->gmem);
}

int veil_internal_add_port(struct vm *vm, uint64_t port, unsigned int len,
			   const struct bus_device_ops *ops, void *opaque, const char *name)
{
	/* The firmware's registers: I/O ports on x86, MMIO on arm64 (veil_boot.h). */
	return bus_register(vm->bus, VEIL_FW_REGS_MMIO ? BUS_MMIO : BUS_PIO, port, len, ops, opaque,
			    name);
}

int veil_internal_map_gpa_range_exits(struct vm *vm, char *why, size_t len)
{
	if (!vm->map_gpa_range_exits) {
		snprintf(why, len, "KVM does not offer MAP_GPA_RANGE exits");
		return 0;
	}
	/* The behaviour probe, answered from the per-boot cache when it can be. */
	return caps_hypercall_exit(vm->kvm_fd, why, len) == 1;
}

uint64_t veil_internal_map_gpa_range(struct vm *vm, unsigned int cpu, uint64_t gpa,
				     uint64_t npages, uint64_t attrs)
{
	return vcpu_map_gpa_range(&vm->vcpus[cpu], gpa, npages, attrs);
}

void veil_internal_set_guest_conv_lat(struct vm *vm, struct lat *lat)
{
	vm->guest_conv_lat = lat;
}

bool veil_internal_last_disk_buffer(struct vm *vm, uint64_t x, uint64_t *gpa, uint64_t *pages)
{
	return vm_disk_last_buffer(vm, x, gpa, pages);
}

int veil_internal_worker_start(struct vm *vm, pthread_t *thread, const char *label,
			       void *(*fn)(void *), void *arg)
{
	struct vmm_sandbox_fds fds;
	int ret = vmm_sandbox_fds_of(vm, NULL, &fds);

	if (ret)
		return ret;
	return vmm_thread_start(thread, VMM_THREAD_WORKER, vm->cfg.seccomp ? &fds : NULL, label,
				fn, arg);
}

int veil_internal_vcpu_stats(struct vm *vm, unsigned int cpu, struct veil_vcpu_stats *out)
{
	const struct vcpu_stats *st;

	if (cpu >= vm->nr_vcpus)
		return -EINVAL;
	st = &vm->vcpus[cpu].stats;
	/* Relaxed: the vCPU may be running and counting. */
	*out = (struct veil_vcpu_stats){
		.exits = __atomic_load_n(&st->exits, __ATOMIC_RELAXED),
		.io = __atomic_load_n(&st->io, __ATOMIC_RELAXED),
		.mmio = __atomic_load_n(&st->mmio, __ATOMIC_RELAXED),
		.conversions = __atomic_load_n(&st->conversions, __ATOMIC_RELAXED),
		.conversion_fails = __atomic_load_n(&st->conversion_fails, __ATOMIC_RELAXED),
		.fault_retries = __atomic_load_n(&st->fault_retries, __ATOMIC_RELAXED),
		.fault_resyncs = __atomic_load_n(&st->fault_resyncs, __ATOMIC_RELAXED),
	};
	return 0;
}
