/*
 * arm64 firmware boot (veil_boot.h): the identity map the firmware loads into TTBR0_EL1, and
 * vCPU 0's entry registers.  The other vCPUs stay powered off until the firmware starts them
 * with PSCI CPU_ON, which resets them: registers set here would not survive.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch.h"
#include "compiler.h"
#include "veil_boot.h"

/* Level-1 block descriptors (1 GiB): AttrIndx selects VEIL_FW_MAIR's attribute. */
#define PTE_BLOCK 0x1ULL
#define PTE_ATTR(i) ((uint64_t)(i) << 2)
#define PTE_SH_INNER (3ULL << 8)
#define PTE_AF (1ULL << 10)
#define PTE_PXN (1ULL << 53)
#define PTE_UXN (1ULL << 54)
#define PTE_DEVICE (PTE_BLOCK | PTE_ATTR(0) | PTE_AF | PTE_PXN | PTE_UXN)
#define PTE_NORMAL (PTE_BLOCK | PTE_ATTR(1) | PTE_SH_INNER | PTE_AF)
#define L1_ENTRIES 512 /* 39-bit VA: 512 GiB */

int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot)
{
	const struct gmem_layout *l = gmem_get_layout(gm);
	uint64_t table[L1_ENTRIES] = { 0 }, ram = l->r[0].gpa, top;
	unsigned int i;

	if (!l->nr || ram % SZ_1G || VEIL_FW_PGTABLE_GPA < ram ||
	    VEIL_FW_PGTABLE_GPA + sizeof(table) > VEIL_BOOT_INFO_GPA)
		return -EINVAL;
	top = ALIGN_UP(l->r[l->nr - 1].gpa + l->r[l->nr - 1].size, SZ_1G);
	if (top / SZ_1G > L1_ENTRIES)
		return -E2BIG;
	/* Below RAM: the GIC, the UART, virtio-mmio and the firmware's registers. */
	for (i = 0; i < ram / SZ_1G; i++)
		table[i] = (uint64_t)i * SZ_1G | PTE_DEVICE;
	for (; i < top / SZ_1G; i++)
		table[i] = (uint64_t)i * SZ_1G | PTE_NORMAL;
	boot->mapped_top = top;
	return gmem_write(gm, VEIL_FW_PGTABLE_GPA, table, sizeof(table));
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
