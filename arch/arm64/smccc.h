/* arm64: the guest's memory-sharing calls (pKVM's guest ABI), decoded and answered without KVM. */
#ifndef VEIL_ARM64_SMCCC_H
#define VEIL_ARM64_SMCCC_H

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"

/*
 * The vendor-hypervisor calls Linux's pkvm-guest driver makes
 * (Documentation/virt/kvm/arm/hypercalls.rst): fast, SMC64, owner 6.
 */
#define ARM64_SMCCC_HYP_MEMINFO 0xc6000002U /* -> x0 = the sharing granule, in bytes */
#define ARM64_SMCCC_MEM_SHARE 0xc6000003U   /* x1 = IPA of a granule to share with the host */
#define ARM64_SMCCC_MEM_UNSHARE 0xc6000004U /* x1 = IPA of a granule to take back */
#define ARM64_SMCCC_FIRST ARM64_SMCCC_HYP_MEMINFO
#define ARM64_SMCCC_COUNT 3

/* SMCCC return codes (ARM DEN0028), as x0 holds them. */
#define ARM64_SMCCC_RET_SUCCESS 0
#define ARM64_SMCCC_RET_NOT_SUPPORTED (-1)
#define ARM64_SMCCC_RET_INVALID_PARAMETER (-3)

#define ARM64_SMCCC_GRANULE 4096ULL

/*
 * One forwarded call: fn is its function id, x[0..2] the guest's x1-x3; an
 * IPA must fall in ops->ram, and ops->convert converts its granule.
 * Returns the guest's x0.  *fault is NULL, or says in words what the guest
 * got wrong (a conversion that failed is the converter's to report).
 */
int64_t arm64_smccc_call(const struct arch_hypercall_ops *ops, uint32_t fn, const uint64_t x[3],
			 const char **fault);

#endif
