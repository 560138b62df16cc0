/*
 * arm64 firmware boot (veil_boot.h): the identity map the firmware loads into TTBR0_EL1, and
 * vCPU 0's entry registers.  The other vCPUs stay powered off until the firmware starts them
 * with PSCI CPU_ON, which resets them: registers set here would not survive.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <sys/ioctl.h>

#include "arch.h"
#include "compiler.h"
#include "fwmap.h"
#include "veil_boot.h"

/* The identity map goes in the page before the boot info (veil_boot.h). */
_Static_assert(VEIL_FW_PGTABLE_GPA + ARM64_FWMAP_ENTRIES * 8 <= VEIL_BOOT_INFO_GPA,
	       "the identity map fits below the boot info");

int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot)
{
	const struct gmem_layout *l = gmem_get_layout(gm);
	uint64_t table[ARM64_FWMAP_ENTRIES];
	int ret;

	if (!l->nr || VEIL_FW_PGTABLE_GPA < l->r[0].gpa)
		return -EINVAL;
	ret = arm64_fwmap_build(l, table, &boot->mapped_top);
	boot->pgtable_gpa = VEIL_FW_PGTABLE_GPA;
	boot->pgtable_size = sizeof(table);
	return ret ? ret : gmem_write(gm, VEIL_FW_PGTABLE_GPA, table, sizeof(table));
}

static int set_core(int vcpu_fd, size_t off, uint64_t val)
{
	struct kvm_one_reg r = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (off / sizeof(uint32_t)),
		.addr = (uintptr_t)&val,
	};

	return ioctl(vcpu_fd, KVM_SET_ONE_REG, &r) ? -errno : 0;
}

/* vCPU 0: x0 = 0, x1 = boot info, x2 = its stack top, at the entry (EL1h, MMU off, DAIF masked:
 * KVM's reset state). */
int arch_fw_vcpu_entry(int vcpu_fd, const struct arch_fw_boot *boot, unsigned int index,
		       uint64_t stack_top)
{
	int ret;

	if (index)
		return 0;
	ret = set_core(vcpu_fd, offsetof(struct kvm_regs, regs.regs[0]), 0);
	if (!ret)
		ret = set_core(vcpu_fd, offsetof(struct kvm_regs, regs.regs[1]), boot->boot_info_gpa);
	if (!ret)
		ret = set_core(vcpu_fd, offsetof(struct kvm_regs, regs.regs[2]), stack_top);
	if (!ret)
		ret = set_core(vcpu_fd, offsetof(struct kvm_regs, regs.pc), boot->entry);
	return ret;
}
