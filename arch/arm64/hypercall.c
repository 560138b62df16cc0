/*
 * arm64: the KVM side of the guest's memory-sharing calls: the SMCCC filter that forwards them
 * to veil, and the registers a forwarded call reads and answers through (smccc.c decides).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "arch.h"
#include "kvm_uapi.h"
#include "smccc.h"

/*
 * Only these three: PSCI, KVM's own services and the FEATURES call stay KVM's, so a guest is
 * never told it runs under pKVM (the confidential mode advertises them, not this).
 */
int arch_vm_hypercalls_enable(int vm_fd)
{
	struct kvm_smccc_filter f = {
		.base = ARM64_SMCCC_FIRST,
		.nr_functions = ARM64_SMCCC_COUNT,
		.action = KVM_SMCCC_FILTER_FWD_TO_USER,
	};
	struct kvm_device_attr a = {
		.group = KVM_ARM_VM_SMCCC_CTRL, .attr = KVM_ARM_VM_SMCCC_FILTER, .addr = (uintptr_t)&f,
	};

	return ioctl(vm_fd, KVM_SET_DEVICE_ATTR, &a) ? -errno : 1;
}

static uint64_t xreg(unsigned int n)
{
	return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
	       ((offsetof(struct kvm_regs, regs.regs) + n * sizeof(uint64_t)) / sizeof(uint32_t));
}

/* KVM has already moved the PC past the HVC or SMC (api.rst, KVM_EXIT_HYPERCALL). */
int arch_vcpu_hypercall(int vcpu_fd, uint64_t nr, const struct arch_hypercall_ops *ops,
			const char **fault)
{
	uint64_t x[3], x0;
	struct kvm_one_reg r0 = { .id = xreg(0), .addr = (uintptr_t)&x0 };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		struct kvm_one_reg r = { .id = xreg(i + 1), .addr = (uintptr_t)&x[i] };

		if (ioctl(vcpu_fd, KVM_GET_ONE_REG, &r))
			return -errno;
	}
	/* A function id is 32 bits; anything wider is no call veil knows. */
	x0 = (uint64_t)arm64_smccc_call(ops, nr <= UINT32_MAX ? (uint32_t)nr : 0, x, fault);
	return ioctl(vcpu_fd, KVM_SET_ONE_REG, &r0) ? -errno : 0;
}
