/* x86 VM and vCPU setup: memory map, in-kernel irqchip and PIT, CPUID topology, MSRs, LAPIC. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "kvm.h"
#include "log.h"

const char arch_name[] = "x86_64";

#define X86_TSS_ADDR 0xfffbd000ULL
#define X86_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define X86_MAX_CPUID 256

/* RAM skips [3 GiB, 4 GiB): the MMIO window, the TSS and the identity map live there. */
static const struct gmem_arch_map x86_mem_map = {
	.ram_base = 0,
	.hole_start = 0xc0000000ULL,
	.hole_end = 0x100000000ULL,
};

struct arch_vm {
	int kvm_fd;
	int vm_fd;
	unsigned int nr_cpus;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, patched per vCPU */
	bool map_gpa_range_exits;
};

const struct gmem_arch_map *arch_mem_map(void)
{
	return &x86_mem_map;
}

int arch_vm_type(int kvm_fd, bool sw_protected, uint64_t mem_size, unsigned long *type, char *err,
		 size_t errlen)
{
	int64_t types = kvm_check_extension(kvm_fd, KVM_CAP_VM_TYPES);

	(void)mem_size; /* KVM's x86 guest physical space is as wide as the host's */
	if (types <= 0)
		types = 1 << KVM_X86_DEFAULT_VM;
	*type = sw_protected ? KVM_X86_SW_PROTECTED_VM : KVM_X86_DEFAULT_VM;
	if (!(types & (1 << *type))) {
		snprintf(err, errlen, "this KVM offers only VM types 0x%x (KVM_CAP_VM_TYPES); it "
			 "needs CONFIG_KVM_SW_PROTECTED_VM", (unsigned int)types);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int x86_get_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out)
{
	struct kvm_cpuid2 *c;
	int ret;

	c = calloc(1, sizeof(*c) + X86_MAX_CPUID * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = X86_MAX_CPUID;
	ret = _kvm_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (ret) {
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* Guests ask for conversions with KVM_HC_MAP_GPA_RANGE; KVM passes it on only if asked to. */
static bool x86_enable_hypercall_exit(int kvm_fd, int vm_fd)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL, .args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
	};
	int64_t have = kvm_check_extension(kvm_fd, KVM_CAP_EXIT_HYPERCALL);

	if ((have & (1 << KVM_HC_MAP_GPA_RANGE)) && _kvm_ioctl(vm_fd, KVM_ENABLE_CAP, &cap) == 0)
		return true;
	pr_info("KVM_HC_MAP_GPA_RANGE does not exit to userspace here; guests cannot convert");
	return false;
}

int arch_vm_create(int kvm_fd, int vm_fd, unsigned int nr_cpus, bool legacy_timer,
		   struct arch_vm **out)
{
	/* Port 0x61 (speaker, PIT channel 2 gate) in the kernel too: Linux calibrates with it. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = X86_IDENTITY_MAP_ADDR;
	struct arch_vm *avm;
	int ret;

	avm = calloc(1, sizeof(*avm));
	if (!avm)
		return -ENOMEM;
	avm->kvm_fd = kvm_fd;
	avm->vm_fd = vm_fd;
	avm->nr_cpus = nr_cpus;
	avm->map_gpa_range_exits = x86_enable_hypercall_exit(kvm_fd, vm_fd);
	/* Intel needs these pages for real mode; they sit in the MMIO hole, outside RAM. */
	ret = kvm_ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	if (!ret)
		ret = kvm_ioctl_val(vm_fd, KVM_SET_TSS_ADDR, X86_TSS_ADDR);
	/* The in-kernel irqchip, and the PIT for the kernels that want one. */
	if (!ret)
		ret = kvm_ioctl_val(vm_fd, KVM_CREATE_IRQCHIP, 0);
	if (!ret && legacy_timer)
		ret = kvm_ioctl(vm_fd, KVM_CREATE_PIT2, &pit);
	if (ret)
		goto err;
	ret = x86_get_supported_cpuid(kvm_fd, &avm->cpuid);
	if (ret) {
		pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
		goto err;
	}
	*out = avm;
	return 0;
err:
	arch_vm_destroy(avm);
	return ret;
}

void arch_vm_destroy(struct arch_vm *avm)
{
	if (!avm)
		return;
	free(avm->cpuid);
	free(avm);
}

bool arch_vm_guest_conversions(const struct arch_vm *avm)
{
	return avm->map_gpa_range_exits;
}

int arch_vm_irq_line(struct arch_vm *avm, unsigned int irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = (uint32_t)level };

	return _kvm_ioctl(avm->vm_fd, KVM_IRQ_LINE, &l);
}

/* Device lines stay KVM_IRQ_LINE here. */
bool arch_irq_line_irqfd(unsigned int irq, uint32_t *gsi)
{
	(void)irq, (void)gsi;
	return false;
}

static unsigned int order_base_2(unsigned int n)
{
	unsigned int order = 0;

	while ((1u << order) < n)
		order++;
	return order;
}

/*
 * One core per vCPU, one package; the APIC ID is the vCPU index.  Every
 * leaf a kernel may derive topology from says the same, on Intel and AMD
 * alike, or the guest builds a topology that disagrees with the MADT.
 */
static void x86_cpuid_topology(struct kvm_cpuid_entry2 *e, unsigned int index, unsigned int nr)
{
	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) | ((nr & 0xff) << 16);
		if (nr > 1)
			e->edx |= 1u << 28; /* HTT: the logical count above is valid */
		break;
	case 0xb:
	case 0x1f:
		e->edx = index;
		if (e->index == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | 0; /* SMT level */
		} else if (e->index == 1) {
			e->eax = order_base_2(nr);
			e->ebx = nr;
			e->ecx = (2u << 8) | 1; /* core level */
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index;
		}
		break;
	case 4: /* Intel deterministic cache parameters: cores per package */
		if (e->eax & 0x1f)
			e->eax = (e->eax & 0x03ffffffu) | (((1u << order_base_2(nr)) - 1) << 26);
		break;
	case 0x80000008: /* AMD: NC (cores - 1) and the APIC ID bits they use */
		e->ecx = (e->ecx & ~0xf0ffu) | (order_base_2(nr) << 12) | ((nr - 1) & 0xff);
		break;
	case 0x8000001e: /* AMD: extended APIC ID, core ID, one thread per core, node 0 */
		e->eax = index;
		e->ebx = index & 0xff;
		e->ecx = 0;
		break;
	default:
		break;
	}
}

#define KVM_CPUID_SIGNATURE 0x40000000u
#define CPUID_TIMING_LEAF 0x40000010u /* EAX: TSC kHz, EBX: local APIC bus kHz */

/* Tells the guest the TSC frequency, so it need not calibrate against the PIT. */
static void x86_cpuid_tsc_leaf(struct kvm_cpuid2 *c, int vcpu_fd)
{
	int khz = _kvm_ioctl_val(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	unsigned int i;
	bool have_sig = false;

	if (khz <= 0)
		return;
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == KVM_CPUID_SIGNATURE) {
			have_sig = true;
			if (e->eax < CPUID_TIMING_LEAF)
				e->eax = CPUID_TIMING_LEAF;
		}
		if (e->function == CPUID_TIMING_LEAF)
			return;
	}
	if (!have_sig)
		return;
	/* KVM's local APIC timer counts at 1 GHz. */
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = CPUID_TIMING_LEAF, .eax = (uint32_t)khz, .ebx = 1000000,
	};
}

static int x86_vcpu_cpuid(struct arch_vm *avm, int vcpu_fd, unsigned int index)
{
	size_t size = sizeof(*avm->cpuid) + avm->cpuid->nent * sizeof(avm->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(size + sizeof(c->entries[0]));
	unsigned int i;
	int ret;

	if (!c)
		return -ENOMEM;
	memcpy(c, avm->cpuid, size);
	for (i = 0; i < c->nent; i++)
		x86_cpuid_topology(&c->entries[i], index, avm->nr_cpus);
	x86_cpuid_tsc_leaf(c, vcpu_fd);
	ret = kvm_ioctl(vcpu_fd, KVM_SET_CPUID2, c);
	free(c);
	return ret;
}

static int x86_vcpu_msrs(int vcpu_fd)
{
	static const uint32_t zeroed[] = {
		0x174, 0x175, 0x176, /* SYSENTER_CS/ESP/EIP */
		0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, /* STAR..KERNEL_GS_BASE */
		0x10, /* TSC */
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(zeroed) + 1];
	} m = { 0 };
	unsigned int i;
	int n;

	for (i = 0; i < ARRAY_SIZE(zeroed); i++)
		m.e[i].index = zeroed[i];
	m.e[i].index = 0x1a0; /* MISC_ENABLE: fast strings */
	m.e[i].data = 1;
	m.hdr.nmsrs = ARRAY_SIZE(m.e);
	n = kvm_ioctl(vcpu_fd, KVM_SET_MSRS, &m.hdr);
	if (n < 0)
		return n;
	if ((unsigned int)n != m.hdr.nmsrs) {
		pr_err("KVM_SET_MSRS: MSR 0x%x refused", m.e[n].index);
		return -EINVAL;
	}
	return 0;
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x700
#define APIC_MODE_NMI 0x400

/* LINT0 takes the 8259's ExtINT and LINT1 the NMI, as on a PC, so legacy interrupts reach the CPU. */
static int x86_vcpu_lapic(int vcpu_fd)
{
	struct kvm_lapic_state l;
	uint32_t v;
	int ret;

	ret = kvm_ioctl(vcpu_fd, KVM_GET_LAPIC, &l);
	if (ret)
		return ret;
	memcpy(&v, &l.regs[APIC_LVT0], 4);
	v = (v & ~0x700u) | APIC_MODE_EXTINT;
	memcpy(&l.regs[APIC_LVT0], &v, 4);
	memcpy(&v, &l.regs[APIC_LVT1], 4);
	v = (v & ~0x700u) | APIC_MODE_NMI;
	memcpy(&l.regs[APIC_LVT1], &v, 4);
	return kvm_ioctl(vcpu_fd, KVM_SET_LAPIC, &l);
}

int arch_vcpu_init(struct arch_vm *avm, int vcpu_fd, unsigned int index)
{
	int ret;

	ret = x86_vcpu_cpuid(avm, vcpu_fd, index);
	if (ret) {
		pr_err("vCPU %u: KVM_SET_CPUID2: %s", index, strerror(-ret));
		return ret;
	}
	ret = x86_vcpu_msrs(vcpu_fd);
	if (ret) {
		pr_err("vCPU %u: KVM_SET_MSRS: %s", index, strerror(-ret));
		return ret;
	}
	ret = x86_vcpu_lapic(vcpu_fd);
	if (ret)
		pr_err("vCPU %u: setting up the local APIC: %s", index, strerror(-ret));
	return ret;
}

#define X86_IOAPIC_PINS 24
#define X86_PIC_PINS 16

unsigned int arch_irq_default_routes(struct kvm_irq_routing_entry *e, unsigned int max)
{
	unsigned int gsi, n = 0;

	/* As KVM_CREATE_IRQCHIP set them up: ISA GSIs on both PIC and IOAPIC, 16-23 on the IOAPIC. */
	for (gsi = 0; gsi < X86_IOAPIC_PINS && n < max; gsi++) {
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi < X86_PIC_PINS && n < max)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
								    KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
	}
	return e ? n : X86_IOAPIC_PINS + X86_PIC_PINS;
}

uint32_t arch_irq_msi_gsi_base(void)
{
	return X86_IOAPIC_PINS;
}
