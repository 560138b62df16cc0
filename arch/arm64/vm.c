/* arm64: the arch interface, not yet implemented; it compiles so the generic/arch split stays honest. */
#include <errno.h>
#include <stdio.h>

#include "arch.h"

const char arch_name[] = "arm64";

/* RAM at 1 GiB, as on QEMU's virt machine; no hole above it. */
static const struct gmem_arch_map arm64_mem_map = {
	.ram_base = 0x40000000ULL,
	.hole_start = 0,
	.hole_end = 0,
};

const struct gmem_arch_map *arch_mem_map(void)
{
	return &arm64_mem_map;
}

int arch_vm_create(int kvm_fd, int vm_fd, unsigned int nr_cpus, struct arch_vm **out)
{
	(void)kvm_fd, (void)vm_fd, (void)nr_cpus, (void)out;
	return -EOPNOTSUPP;
}

void arch_vm_destroy(struct arch_vm *avm)
{
	(void)avm;
}

int arch_vm_irq_line(struct arch_vm *avm, unsigned int irq, int level)
{
	(void)avm, (void)irq, (void)level;
	return -EOPNOTSUPP;
}

int arch_vcpu_init(struct arch_vm *avm, int vcpu_fd, unsigned int index)
{
	(void)avm, (void)vcpu_fd, (void)index;
	return -EOPNOTSUPP;
}

int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot)
{
	(void)gm, (void)boot;
	return -EOPNOTSUPP;
}

int arch_fw_vcpu_entry(int vcpu_fd, const struct arch_fw_boot *boot, unsigned int index,
		       uint64_t stack_top)
{
	(void)vcpu_fd, (void)boot, (void)index, (void)stack_top;
	return -EOPNOTSUPP;
}

int arch_mem_probe_prepare(struct gmem *gm, int vcpu_fd, struct arch_mem_probe *p)
{
	(void)gm, (void)vcpu_fd, (void)p;
	return -EOPNOTSUPP;
}

void arch_vcpu_dump(int vcpu_fd, char *buf, size_t len)
{
	(void)vcpu_fd;
	snprintf(buf, len, "(arm64 register dump not implemented)");
}
