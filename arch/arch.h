/* The interface each architecture implements: VM and vCPU setup, boot state, probes, diagnostics. */
#ifndef VEIL_ARCH_H
#define VEIL_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "compiler.h"
#include "gmem.h"

struct arch_vm;

extern const char arch_name[];

/* Where RAM goes in this architecture's guest physical address space. */
const struct gmem_arch_map *arch_mem_map(void);

/* Interrupt controller, timers and whatever else a VM needs before vCPUs exist. */
/*
 * legacy_timer: the board's legacy interval timer (x86: the i8254 PIT), for
 * kernels that calibrate or tick with it.  Firmware guests do without: on
 * x86 KVM its in-kernel model costs about 17 ms of the VM's teardown here.
 */
int arch_vm_create(int kvm_fd, int vm_fd, unsigned int nr_cpus, bool legacy_timer,
		   struct arch_vm **out) __must_check;
void arch_vm_destroy(struct arch_vm *avm);
/* Raises or lowers a legacy interrupt line. */
int arch_vm_irq_line(struct arch_vm *avm, unsigned int irq, int level) __must_check;

/* CPUID, MSRs, local APIC: everything a vCPU needs except its entry state. */
int arch_vcpu_init(struct arch_vm *avm, int vcpu_fd, unsigned int index) __must_check;

/* Firmware boot: page tables and descriptor tables in guest memory. */
struct arch_fw_boot {
	uint64_t entry;
	uint64_t boot_info_gpa;
	uint64_t mapped_top; /* filled by arch_fw_prepare */
};
int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot) __must_check;
/* Sets a vCPU's registers to enter the firmware with its index and stack. */
int arch_fw_vcpu_entry(int vcpu_fd, const struct arch_fw_boot *boot, unsigned int index,
		       uint64_t stack_top) __must_check;

/*
 * A tiny guest that reads one word of guest memory and reports it by port
 * I/O or MMIO: used to learn whether the guest survives the VMM revoking its
 * mapping.  The probe VM needs no irqchip.
 */
struct arch_mem_probe {
	uint64_t code_gpa;
	uint64_t data_gpa;
	uint16_t port; /* the guest writes the word it read here, 16 bits */
	uint64_t mmio; /* or, when non-zero, to this MMIO address (the caller zeroes it) */
};
int arch_mem_probe_prepare(struct gmem *gm, int vcpu_fd, struct arch_mem_probe *p) __must_check;
/* A tiny guest that makes one hypercall nr(a0, a1, a2), then halts. */
int arch_hypercall_probe_prepare(struct gmem *gm, int vcpu_fd, uint32_t nr, uint32_t a0,
				 uint32_t a1, uint32_t a2) __must_check;

/*
 * Guest conversions through the architecture's own calls (arm64: pKVM's
 * HYP_MEMINFO, MEM_SHARE and MEM_UNSHARE; x86 has none but
 * KVM_HC_MAP_GPA_RANGE, which vmm/ handles).  arch_vm_hypercalls_enable()
 * asks KVM to forward them, before any vCPU runs: 1 if it did, 0 if the
 * architecture has none, -errno if KVM refused.
 */
int arch_vm_hypercalls_enable(int vm_fd) __must_check;
/* Of those, the one that shares the page at its first argument; nr 0 if there are none. */
struct arch_share_call {
	uint32_t nr;      /* KVM_EXIT_HYPERCALL's nr (arm64: the SMCCC function id) */
	const char *name; /* the guest's conversion call, in words (x86: MAP_GPA_RANGE) */
};
extern const struct arch_share_call arch_share_call;
struct arch_hypercall_ops {
	const struct gmem_layout *ram; /* NULL: no guest RAM to convert */
	/* Converts [gpa, gpa+len) for the guest: 0, or -errno (reported by the callee). */
	int (*convert)(void *opaque, uint64_t gpa, uint64_t len, bool to_private);
	void *opaque;
};
/*
 * Answers a KVM_EXIT_HYPERCALL of function nr through the vCPU's registers:
 * 0 (*fault NULL, or the guest's mistake in words), -ENOSYS if it is not
 * one of the architecture's calls, other -errno if the registers failed.
 */
int arch_vcpu_hypercall(int vcpu_fd, uint64_t nr, const struct arch_hypercall_ops *ops,
			const char **fault) __must_check;

/*
 * The board: the platform devices (console UART, clock, power and reset
 * controls, debug-exit) on the VM's bus.  They reach the VMM only through ops.
 */
struct arch_board;
struct arch_board_ops {
	void (*console_tx)(void *opaque, uint8_t byte);
	size_t (*console_tx_room)(void *opaque); /* never waits; NULL: unbounded */
	void (*stop)(void *opaque, int exit_code, const char *why);
	void *opaque;
};
int arch_board_create(struct arch_vm *avm, struct bus *bus, const struct arch_board_ops *ops,
		      struct arch_board **out) __must_check;
void arch_board_destroy(struct arch_board *b);
/* The board's PCI host bridge, or NULL without one. */
struct pci_host;
struct pci_host *arch_board_pci(struct arch_board *b);
/* Console input; returns how many bytes the device took. */
size_t arch_board_console_rx(struct arch_board *b, const uint8_t *buf, size_t len);
/* console_tx_room() has room again; and the bytes the console lost because it had none. */
void arch_board_console_tx_ready(struct arch_board *b);
uint64_t arch_board_console_tx_dropped(struct arch_board *b);

/* Linux boot. */
/* A virtio-mmio device the firmware tables declare (x86: ACPI DSDT, LNRO0005). */
#define ARCH_MAX_MMIO_DEVS 8
struct arch_mmio_dev {
	uint64_t base;
	uint64_t size;
	unsigned int irq; /* GSI, level-triggered */
};
/*
 * RAM the guest is told is reserved and never runs code from nor keeps
 * page tables in (x86: the legacy hole at [640 KiB, 1 MiB), where veil puts
 * only ACPI tables); -EOPNOTSUPP if there is none.  Host stress uses it.
 */
int arch_unused_ram(uint64_t *gpa, uint64_t *len) __must_check;
/* Where virtio-mmio devices go: ARCH_MMIO_BASE + n * ARCH_MMIO_STRIDE, GSI ARCH_MMIO_IRQ + n. */
int arch_mmio_slot(unsigned int n, struct arch_mmio_dev *d) __must_check;

struct arch_linux_boot {
	const uint8_t *kernel;
	size_t kernel_size;
	const uint8_t *initrd;
	size_t initrd_size;
	const char *cmdline;
	const struct arch_mmio_dev *mmio_devs;
	unsigned int nr_mmio_devs;
	bool pci; /* declare the PCI root bridge (arch_pci_window) */
};
struct arch_boot_state {
	uint64_t entry;
	uint64_t boot_params;
};
/* -EINVAL with a sentence in err if the kernel image is damaged or foreign. */
int arch_linux_check(const uint8_t *kernel, size_t size, char *err, size_t errlen) __must_check;
/* Places kernel, initrd, command line and tables; -ENOSPC/-E2BIG/-EINVAL with err on bad config. */
int arch_linux_load(struct gmem *gm, const struct arch_linux_boot *b, unsigned int nr_cpus,
		    struct arch_boot_state *st, char *err, size_t errlen) __must_check;
int arch_linux_vcpu_entry(int vcpu_fd, const struct arch_boot_state *st, unsigned int index)
	__must_check;
/* ACPI tables for nr_cpus at their fixed place; *rsdp gets the RSDP's address. */
int arch_acpi_write(struct gmem *gm, unsigned int nr_cpus, const struct arch_mmio_dev *mmio_devs,
		    unsigned int nr_mmio_devs, bool pci, uint64_t *rsdp) __must_check;
/*
 * The irqchip's default GSI routes (x86: GSIs 0-15 to the PIC and IOAPIC,
 * 16-23 to the IOAPIC), which a KVM_SET_GSI_ROUTING table must repeat.
 * Fills at most max entries of struct kvm_irq_routing_entry; returns how many.
 */
#define ARCH_IRQ_DEFAULT_ROUTES 40
struct kvm_irq_routing_entry;
unsigned int arch_irq_default_routes(struct kvm_irq_routing_entry *e, unsigned int max);
/* Where PCI BARs go (x86: a window in the MMIO hole); -EOPNOTSUPP without PCI. */
int arch_pci_window(uint64_t *base, uint64_t *size) __must_check;
/* The GSI that INTA# of PCI slot (device number) slot is wired to, as the firmware tables say. */
unsigned int arch_pci_intx_gsi(unsigned int slot);

/*
 * Registers whose writes KVM may queue in its coalesced ring instead of
 * exiting, because only a later access that exits reads what they select
 * (x86: the PCI configuration address register).  vmm/ applies the queued
 * writes, in order, before it handles any exit.  Fills at most max; returns
 * how many.
 */
struct arch_io_zone {
	uint64_t addr;
	uint32_t size;
	bool pio;
};
unsigned int arch_coalesced_zones(struct arch_io_zone *z, unsigned int max);

/* The memory map the guest is told about. */
#define ARCH_E820_MAX 16
struct arch_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};
struct arch_e820 {
	unsigned int nr;
	struct arch_e820_entry e[ARCH_E820_MAX];
};
void arch_e820_build(const struct gmem_layout *l, struct arch_e820 *t);

/* Register dump for diagnostics, one line per group. */
void arch_vcpu_dump(int vcpu_fd, char *buf, size_t len);

#endif
