/*
 * arm64: the answers to pKVM's guest memory-sharing calls, as a pure function of the call.  With
 * pKVM a guest's memory is private unless it shares it; veil gives an ordinary VM the same ABI,
 * so a guest that speaks it (Linux's pkvm-guest driver, veil's arm64 firmware) converts through
 * the same engine as x86's KVM_HC_MAP_GPA_RANGE.  Semantics follow pKVM's hypervisor: MEMINFO
 * takes no arguments; SHARE and UNSHARE take one granule's IPA in x1 and nothing in x2/x3.
 */
#include <stddef.h>

#include "smccc.h"

static int64_t smccc_meminfo(const uint64_t x[3], const char **fault)
{
	if (x[0] || x[1] || x[2]) {
		*fault = "HYP_MEMINFO with non-zero arguments";
		return ARM64_SMCCC_RET_INVALID_PARAMETER;
	}
	return (int64_t)ARM64_SMCCC_GRANULE;
}

static int64_t smccc_convert(const struct arch_hypercall_ops *ops, bool to_private,
			     const uint64_t x[3], const char **fault)
{
	uint64_t ipa = x[0];

	if (x[1] || x[2])
		*fault = "non-zero x2 or x3";
	else if (ipa & (ARM64_SMCCC_GRANULE - 1))
		*fault = "an IPA not aligned to the 4 KiB granule";
	else if (!ops->ram || !gmem_region_contains(ops->ram, ipa, ARM64_SMCCC_GRANULE))
		*fault = "an IPA outside guest RAM";
	else if (ops->convert(ops->opaque, ipa, ARM64_SMCCC_GRANULE, to_private))
		return ARM64_SMCCC_RET_INVALID_PARAMETER; /* the converter said why */
	else
		return ARM64_SMCCC_RET_SUCCESS;
	return ARM64_SMCCC_RET_INVALID_PARAMETER;
}

int64_t arm64_smccc_call(const struct arch_hypercall_ops *ops, uint32_t fn, const uint64_t x[3],
			 const char **fault)
{
	*fault = NULL;
	switch (fn) {
	case ARM64_SMCCC_HYP_MEMINFO:
		return smccc_meminfo(x, fault);
	case ARM64_SMCCC_MEM_SHARE:
		return smccc_convert(ops, false, x, fault);
	case ARM64_SMCCC_MEM_UNSHARE:
		return smccc_convert(ops, true, x, fault);
	default:
		*fault = "a function id veil does not implement";
		return ARM64_SMCCC_RET_NOT_SUPPORTED;
	}
}
