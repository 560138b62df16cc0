/*
 * arm64: the tiny guests `veil caps` runs to learn what KVM really does: one reads a word of
 * guest memory and reports it by an MMIO write, one makes a single SMCCC call by HVC.  Both
 * run at EL1 with the MMU off from KVM's reset state, on a probe VM with no vGIC.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "arch.h"
#include "smccc.h"

#define PROBE_CODE 0x1000ULL   /* offsets in the probe VM's RAM */
#define PROBE_DATA 0x2000ULL
#define PROBE_MMIO 0x09000000ULL /* no memslot: a store here is an MMIO exit */

#define A64_B_SELF 0x14000000U
#define A64_HVC_0 0xd4000002U

const struct arch_share_call arch_share_call = {
	.nr = ARM64_SMCCC_MEM_SHARE, .name = "MEM_SHARE",
};

static uint32_t a64_movz(unsigned int rd, uint16_t imm, unsigned int shift)
{
	return 0xd2800000U | (shift / 16) << 21 | (uint32_t)imm << 5 | rd;
}

static uint32_t a64_movk(unsigned int rd, uint16_t imm, unsigned int shift)
{
	return 0xf2800000U | (shift / 16) << 21 | (uint32_t)imm << 5 | rd;
}

/*
 * KVM_ARM_VCPU_INIT with the generic target, which KVM accepts without asking the VM
 * (KVM_ARM_PREFERRED_TARGET needs the VM fd, which the probe hooks are not given).
 */
static int probe_vcpu_enter(int vcpu_fd, uint64_t pc)
{
	struct kvm_vcpu_init init = {
		.target = KVM_ARM_TARGET_GENERIC_V8, .features = { 1U << KVM_ARM_VCPU_PSCI_0_2 },
	};
	struct kvm_one_reg r = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
		      (offsetof(struct kvm_regs, regs.pc) / sizeof(uint32_t)),
		.addr = (uintptr_t)&pc,
	};

	if (ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init) || ioctl(vcpu_fd, KVM_SET_ONE_REG, &r))
		return -errno;
	return 0;
}

/* adr x5, data; ldrh w1, [x5]; mov x0, #PROBE_MMIO; strh w1, [x0]; b . */
int arch_mem_probe_prepare(struct gmem *gm, int vcpu_fd, struct arch_mem_probe *p)
{
	const uint32_t code[] = {
		0x10000005U | (uint32_t)((PROBE_DATA - PROBE_CODE) >> 2) << 5, /* adr x5, . + 0x1000 */
		0x794000a1U,                                                    /* ldrh w1, [x5] */
		a64_movz(0, (uint16_t)(PROBE_MMIO >> 16), 16),
		0x79000001U,                                                    /* strh w1, [x0] */
		A64_B_SELF,
	};
	uint64_t ram = arch_mem_map()->ram_base;
	int ret;

	p->code_gpa = ram + PROBE_CODE;
	p->data_gpa = ram + PROBE_DATA;
	p->port = 0;
	p->mmio = PROBE_MMIO;
	ret = gmem_write(gm, p->code_gpa, code, sizeof(code));
	return ret ? ret : probe_vcpu_enter(vcpu_fd, p->code_gpa);
}

/* x0 = nr, x1-x3 = a0-a2; hvc #0; b . */
int arch_hypercall_probe_prepare(struct gmem *gm, int vcpu_fd, uint32_t nr, uint32_t a0,
				 uint32_t a1, uint32_t a2)
{
	const uint32_t v[4] = { nr, a0, a1, a2 };
	uint32_t code[4 * 2 + 2];
	uint64_t gpa = arch_mem_map()->ram_base + PROBE_CODE;
	unsigned int i;
	int ret;

	for (i = 0; i < 4; i++) {
		code[2 * i] = a64_movz(i, (uint16_t)v[i], 0);
		code[2 * i + 1] = a64_movk(i, (uint16_t)(v[i] >> 16), 16);
	}
	code[8] = A64_HVC_0;
	code[9] = A64_B_SELF;
	ret = gmem_write(gm, gpa, code, sizeof(code));
	return ret ? ret : probe_vcpu_enter(vcpu_fd, gpa);
}
