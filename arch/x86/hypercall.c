/* x86: no architecture-specific guest calls; KVM_HC_MAP_GPA_RANGE is vmm/'s (exit.c). */
#include <errno.h>

#include "arch.h"

const struct arch_share_call arch_share_call = { .nr = 0, .name = "MAP_GPA_RANGE" };

int arch_vm_hypercalls_enable(int vm_fd)
{
	(void)vm_fd;
	return 0;
}

int arch_vcpu_hypercall(int vcpu_fd, uint64_t nr, const struct arch_hypercall_ops *ops,
			const char **fault)
{
	(void)vcpu_fd, (void)nr, (void)ops;
	*fault = NULL;
	return -ENOSYS;
}
