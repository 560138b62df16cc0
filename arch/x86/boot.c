/* x86 entry state: identity page tables, GDT and 64-bit registers for firmware; the real-mode memory probe. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"
#include "kvm.h"
#include "x86.h"

#define X86_GDT_GPA 0x1000ULL
#define X86_PML4_GPA 0x10000ULL
#define X86_PDPT_GPA 0x11000ULL
#define X86_PD_GPA 0x12000ULL
#define X86_MAX_MAPPED_GIB 64ULL /* PDs at 0x12000..0x52000, below the 1 MiB firmware */

#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define CR4_OSFXSR 0x200ULL
#define CR4_OSXMMEXCPT 0x400ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

static uint64_t ram_top(struct gmem *gm)
{
	const struct gmem_layout *l = gmem_get_layout(gm);

	return l->r[l->nr - 1].gpa + l->r[l->nr - 1].size;
}

/* Identity-maps [0, mapped_top) with 2 MiB pages. */
static int x86_page_tables(struct gmem *gm, uint64_t mapped_top)
{
	uint64_t nr_pd = mapped_top / SZ_1G, e, i;
	int ret;

	e = X86_PDPT_GPA | PTE_P | PTE_RW;
	ret = gmem_write(gm, X86_PML4_GPA, &e, sizeof(e));
	for (i = 0; i < nr_pd && !ret; i++) {
		e = (X86_PD_GPA + i * SZ_4K) | PTE_P | PTE_RW;
		ret = gmem_write(gm, X86_PDPT_GPA + i * 8, &e, sizeof(e));
	}
	for (i = 0; i < nr_pd * 512 && !ret; i++) {
		e = (i * SZ_2M) | PTE_P | PTE_RW | PTE_PS;
		ret = gmem_write(gm, X86_PD_GPA + i * 8, &e, sizeof(e));
	}
	return ret;
}

int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot)
{
	/* The selectors Linux's 64-bit boot protocol wants: __BOOT_CS 0x10, __BOOT_DS 0x18. */
	static const uint64_t gdt[] = {
		0,
		0,
		0x00af9b000000ffffULL, /* 0x10: 64-bit code */
		0x00cf93000000ffffULL, /* 0x18: data */
	};
	uint64_t top = ALIGN_UP(ram_top(gm), SZ_1G);
	int ret;

	if (top > X86_MAX_MAPPED_GIB * SZ_1G)
		top = X86_MAX_MAPPED_GIB * SZ_1G;
	ret = gmem_write(gm, X86_GDT_GPA, gdt, sizeof(gdt));
	if (ret)
		return ret;
	boot->mapped_top = top;
	return x86_page_tables(gm, top);
}

static void x86_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code64)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0, .g = 1,
	};
}

static int x86_long_mode_sregs(int vcpu_fd)
{
	struct kvm_sregs s;
	int ret;

	ret = kvm_ioctl(vcpu_fd, KVM_GET_SREGS, &s);
	if (ret)
		return ret;
	x86_seg(&s.cs, 0x10, 11, 1);
	x86_seg(&s.ds, 0x18, 3, 0);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = X86_GDT_GPA;
	s.gdt.limit = 4 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	s.cr3 = X86_PML4_GPA;
	s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	s.efer = EFER_LME | EFER_LMA;
	return kvm_ioctl(vcpu_fd, KVM_SET_SREGS, &s);
}

/* Long mode at rip with rsi and rdi as given: the shared tail of firmware and Linux entry. */
int x86_enter_long_mode(int vcpu_fd, uint64_t rip, uint64_t rsp, uint64_t rdi, uint64_t rsi)
{
	struct kvm_regs r = { .rip = rip, .rsp = rsp, .rdi = rdi, .rsi = rsi, .rflags = 0x2 };
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	int ret;

	/* With the in-kernel LAPIC, APs would otherwise wait for INIT/SIPI. */
	ret = kvm_ioctl(vcpu_fd, KVM_SET_MP_STATE, &mp);
	if (!ret)
		ret = x86_long_mode_sregs(vcpu_fd);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_FPU, &fpu);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_REGS, &r);
	return ret;
}

int arch_fw_vcpu_entry(int vcpu_fd, const struct arch_fw_boot *boot, unsigned int index,
		       uint64_t stack_top)
{
	return x86_enter_long_mode(vcpu_fd, boot->entry, stack_top, index, boot->boot_info_gpa);
}

static int x86_real_mode_entry(int vcpu_fd, uint64_t rip)
{
	struct kvm_regs r = { .rip = rip, .rflags = 0x2 };
	struct kvm_sregs s;
	int ret;

	ret = kvm_ioctl(vcpu_fd, KVM_GET_SREGS, &s);
	if (ret)
		return ret;
	s.cs.base = 0;
	s.cs.selector = 0;
	s.ds.base = 0;
	s.ds.selector = 0;
	ret = kvm_ioctl(vcpu_fd, KVM_SET_SREGS, &s);
	return ret ? ret : kvm_ioctl(vcpu_fd, KVM_SET_REGS, &r);
}

/* The host's vendor decides the instruction: VMMCALL on AMD and Hygon, VMCALL on Intel. */
static bool x86_host_is_amd(void)
{
	uint32_t a = 0, b, c, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	return b == 0x68747541 || b == 0x6f677948;
}

int arch_hypercall_probe_prepare(struct gmem *gm, int vcpu_fd, uint32_t nr, uint32_t a0,
				 uint32_t a1, uint32_t a2)
{
	/* Real mode: mov eax, nr; mov ebx, a0; mov ecx, a1; mov edx, a2; vmcall; hlt */
	uint8_t code[] = {
		0x66, 0xb8, 0, 0, 0, 0, 0x66, 0xbb, 0, 0, 0, 0, 0x66, 0xb9, 0, 0, 0, 0,
		0x66, 0xba, 0, 0, 0, 0, 0x0f, 0x01, 0xc1, 0xf4,
	};
	int ret;

	memcpy(code + 2, &nr, 4);
	memcpy(code + 8, &a0, 4);
	memcpy(code + 14, &a1, 4);
	memcpy(code + 20, &a2, 4);
	if (x86_host_is_amd())
		code[26] = 0xd9;
	ret = gmem_write(gm, 0x1000, code, sizeof(code));
	return ret ? ret : x86_real_mode_entry(vcpu_fd, 0x1000);
}

int arch_mem_probe_prepare(struct gmem *gm, int vcpu_fd, struct arch_mem_probe *p)
{
	/* Real mode: mov ax, [0x2000]; out 0x10, ax; hlt */
	static const uint8_t code[] = { 0xa1, 0x00, 0x20, 0xe7, 0x10, 0xf4 };
	int ret;

	p->code_gpa = 0x1000;
	p->data_gpa = 0x2000;
	p->port = 0x10;
	ret = gmem_write(gm, p->code_gpa, code, sizeof(code));
	return ret ? ret : x86_real_mode_entry(vcpu_fd, p->code_gpa);
}

void arch_vcpu_dump(int vcpu_fd, char *buf, size_t len)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (__kvm_ioctl(vcpu_fd, KVM_GET_REGS, &r) || __kvm_ioctl(vcpu_fd, KVM_GET_SREGS, &s)) {
		snprintf(buf, len, "(registers unavailable: %s)", strerror(errno));
		return;
	}
	snprintf(buf, len,
		 "rip=%016llx rsp=%016llx rflags=%08llx\n"
		 "rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
		 "rsi=%016llx rdi=%016llx rbp=%016llx\n"
		 "cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%llx\n"
		 "cs=%04x(base %llx, l=%u) ds=%04x ss=%04x",
		 r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
		 s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base, s.cs.l,
		 s.ds.selector, s.ss.selector);
}
