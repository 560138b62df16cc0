/* x86: no architecture-specific guest calls (KVM_HC_MAP_GPA_RANGE is vmm/'s, exit.c). */
#include <errno.h>
#include <linux/kvm.h>

#include "arch.h"

const struct arch_share_call arch_share_call = { .nr = 0, .name = "MAP_GPA_RANGE" };

int arch_vm_hypercalls_enable(int vm_fd)
{
	(void)vm_fd;
	return 0;
}

/* No stock x86 guest of a default or SW_PROTECTED VM can keep its RAM private (docs/confidential.md). */
int arch_vm_confidential_enable(int vm_fd)
{
	(void)vm_fd;
	return -EOPNOTSUPP;
}

int arch_vcpu_hypercall(int vcpu_fd, uint64_t nr, const struct arch_hypercall_ops *ops,
			const char **fault)
{
	(void)vcpu_fd, (void)nr, (void)ops;
	*fault = NULL;
	return -ENOSYS;
}

/* The register dump (arch_vcpu_dump()); exits need no registers here. */
unsigned int arch_vcpu_ioctls(unsigned long *req, unsigned int max)
{
	static const unsigned long r[] = { KVM_GET_REGS, KVM_GET_SREGS };
	unsigned int n = 0;

	for (; n < max && n < sizeof(r) / sizeof(r[0]); n++)
		req[n] = r[n];
	return n;
}
