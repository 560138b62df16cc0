/*
 * The interface each architecture implements, in the phases where
 * architectures really differ (as crosvm's LinuxArch and kvmtool's
 * kvm__arch_* hooks):
 *   1. the VM and its interrupt controller: VM type, irqchip, timers, GSIs,
 *      the guest's conversion exits;
 *   2. guest memory and devices: the RAM map, device slots and interrupts,
 *      and the board (the platform's own devices, which report events:
 *      poweroff, reset, failure; vmm/ turns them into exit codes);
 *   3. vCPUs: creating and resetting them (x86: CPUID, MSRs, LAPIC;
 *      arm64: KVM_ARM_VCPU_INIT);
 *   4. loading and booting a kernel or firmware, and the probe guests;
 *   5. describing the machine to the guest (x86: ACPI and e820; arm64: the
 *      FDT), done by arch_linux_load() from struct arch_linux_boot;
 *   6. arch exits: registers KVM may coalesce, register dumps.
 * vm_create() (vmm/vm.c) runs 1-3, build_boot() (vmm/build.c) 4-5, the vCPU
 * threads 6.  Nothing outside arch/ names an architecture's constant; what
 * only one architecture has (x86's ACPI, e820, PCI window and INTx pins)
 * stays in its folder.
 */
#ifndef VEIL_ARCH_H
#define VEIL_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "compiler.h"
#include "gmem.h"

struct arch_vm;

extern const char arch_name[];

/* ---- 1. The VM and its interrupt controller ---- */

/*
 * The KVM_CREATE_VM type of a default VM, or of a software-protected one
 * (x86: KVM_X86_SW_PROTECTED_VM), for mem_size bytes of RAM (arm64: the IPA
 * size it needs).  -EOPNOTSUPP with a sentence in err if this KVM has no such
 * type, -E2BIG if the RAM does not fit its guest physical address space.
 */
int arch_vm_type(int kvm_fd, bool sw_protected, uint64_t mem_size, unsigned long *type, char *err,
		 size_t errlen) __must_check;
/*
 * Interrupt controller, timers and whatever else a VM needs before vCPUs
 * exist.  legacy_timer: the board's legacy interval timer (x86: the i8254 PIT), for
 * kernels that calibrate or tick with it.  Firmware guests do without: on
 * x86 KVM its in-kernel model costs about 17 ms of the VM's teardown here.
 */
int arch_vm_create(int kvm_fd, int vm_fd, unsigned int nr_cpus, bool legacy_timer,
		   struct arch_vm **out) __must_check;
void arch_vm_destroy(struct arch_vm *avm);
/*
 * Whether the guest's conversion requests (x86: KVM_HC_MAP_GPA_RANGE; arm64:
 * pKVM's MEM_SHARE/UNSHARE) reach vmm/ as KVM_EXIT_HYPERCALL:
 * arch_vm_create() asked KVM for them.
 */
bool arch_vm_guest_conversions(const struct arch_vm *avm);
/*
 * The architecture's own conversion calls, beyond KVM_HC_MAP_GPA_RANGE
 * (arm64: pKVM's HYP_MEMINFO, MEM_SHARE and MEM_UNSHARE; x86: none).
 * arch_vm_hypercalls_enable() asks KVM to forward them, before any vCPU
 * runs (arch_vm_create() does; so do probe VMs): 1 if it did, 0 if there
 * are none, -errno if KVM refused.
 */
int arch_vm_hypercalls_enable(int vm_fd) __must_check;
/*
 * The confidential mode (arm64 only): KVM also forwards its vendor-hypervisor FEATURES call, so
 * arch_vcpu_hypercall() can add the memory-sharing calls to KVM's own bits.  Before any vCPU
 * runs; 0, -EOPNOTSUPP where the architecture has no such mode, other -errno if KVM refused.
 */
int arch_vm_confidential_enable(int vm_fd) __must_check;
/* Of those, the one that shares the page at its first argument; nr 0 if there are none. */
struct arch_share_call {
	uint32_t nr;      /* KVM_EXIT_HYPERCALL's nr (arm64: the SMCCC function id) */
	const char *name; /* the guest's conversion call, in words (x86: MAP_GPA_RANGE) */
};
extern const struct arch_share_call arch_share_call;
/* Raises or lowers a wired interrupt line (x86: a GSI; arm64: an SPI's INTID). */
int arch_vm_irq_line(struct arch_vm *avm, unsigned int irq, int level) __must_check;
/*
 * Whether a device's level-triggered line irq is driven through an irqfd
 * with a resample eventfd instead (arm64: yes), and the GSI KVM_IRQFD names
 * it by (arm64: the SPI's INTID - 32, KVM's default route).  false: use
 * arch_vm_irq_line() (x86).
 */
bool arch_irq_line_irqfd(unsigned int irq, uint32_t *gsi);
/*
 * The irqchip's default GSI routes (x86: GSIs 0-15 to the PIC and IOAPIC,
 * 16-23 to the IOAPIC; arm64: GSI n to SPI n), which a KVM_SET_GSI_ROUTING
 * table must repeat.  Fills at most max entries of struct
 * kvm_irq_routing_entry; returns how many there are (e NULL, max 0: the count).
 */
struct kvm_irq_routing_entry;
unsigned int arch_irq_default_routes(struct kvm_irq_routing_entry *e, unsigned int max);
/* The first GSI above the irqchip's own: where vmm/ numbers its MSI routes (x86: 24). */
uint32_t arch_irq_msi_gsi_base(void);

/* ---- 2. Guest memory and devices ---- */

/* Where RAM goes in this architecture's guest physical address space. */
const struct gmem_arch_map *arch_mem_map(void);
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
/* Where virtio-mmio device n goes, and its interrupt line; -ENOSPC past ARCH_MAX_MMIO_DEVS. */
int arch_mmio_slot(unsigned int n, struct arch_mmio_dev *d) __must_check;

/*
 * The board: the platform devices (console UART, clock, power and reset
 * controls, debug-exit) on the VM's bus.  They reach the VMM only through
 * ops, and report what the guest did as events, which vmm/ turns into its
 * exit codes.
 */
enum arch_event {
	ARCH_EVENT_POWEROFF, /* the guest powered off, or reported success */
	ARCH_EVENT_RESET,    /* the guest asked for a reset */
	ARCH_EVENT_FAILURE,  /* the guest reported a failure, or the board failed */
};
struct arch_board;
struct arch_board_ops {
	void (*console_tx)(void *opaque, uint8_t byte);
	size_t (*console_tx_room)(void *opaque); /* never waits; NULL: unbounded */
	void (*event)(void *opaque, enum arch_event ev, const char *why); /* the VM stops */
	void *opaque;
};
int arch_board_create(struct arch_vm *avm, struct bus *bus, const struct arch_board_ops *ops,
		      struct arch_board **out) __must_check;
void arch_board_destroy(struct arch_board *b);
/* The board's PCI host bridge, or NULL without one. */
struct pci_host;
struct pci_host *arch_board_pci(struct arch_board *b);
/* The GSI that INTA# of PCI slot (device number) slot is wired to, as the firmware tables say. */
unsigned int arch_board_pci_intx_gsi(struct arch_board *b, unsigned int slot);
/* Console input; returns how many bytes the device took. */
size_t arch_board_console_rx(struct arch_board *b, const uint8_t *buf, size_t len);
/* console_tx_room() has room again; and the bytes the console lost because it had none. */
void arch_board_console_tx_ready(struct arch_board *b);
uint64_t arch_board_console_tx_dropped(struct arch_board *b);

/* ---- 3. vCPUs ---- */

/* Everything a vCPU needs except its entry state (x86: CPUID, MSRs, LAPIC). */
int arch_vcpu_init(struct arch_vm *avm, int vcpu_fd, unsigned int index) __must_check;

/* ---- 4. Loading and booting a kernel or firmware ---- */

/* Firmware boot: page tables and descriptor tables in guest memory. */
struct arch_fw_boot {
	uint64_t entry;
	uint64_t boot_info_gpa;
	uint64_t mapped_top; /* filled by arch_fw_prepare */
	uint64_t pgtable_gpa, pgtable_size; /* arch_fw_prepare: page tables it wrote, if any */
};
int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot) __must_check;
/* Sets a vCPU's registers to enter the firmware with its index and stack. */
int arch_fw_vcpu_entry(int vcpu_fd, const struct arch_fw_boot *boot, unsigned int index,
		       uint64_t stack_top) __must_check;

struct arch_linux_boot {
	const uint8_t *kernel;
	size_t kernel_size;
	const uint8_t *initrd;
	size_t initrd_size;
	const char *cmdline;
	const struct arch_mmio_dev *mmio_devs;
	unsigned int nr_mmio_devs;
	bool pci; /* declare the board's PCI root bridge */
};
/* What arch_linux_load() put in guest memory, in load order: the confidential mode measures it. */
#define ARCH_MAX_BLOBS 4
struct arch_blob {
	const char *name; /* "kernel", "dtb", "initrd", ... */
	uint64_t gpa;
	uint64_t size;
};
struct arch_boot_state {
	uint64_t entry;
	uint64_t boot_params;
	unsigned int nr_blobs;
	struct arch_blob blob[ARCH_MAX_BLOBS];
};
/* -EINVAL with a sentence in err if the kernel image is damaged or foreign. */
int arch_linux_check(const uint8_t *kernel, size_t size, char *err, size_t errlen) __must_check;
/* Places kernel, initrd, command line and tables; -ENOSPC/-E2BIG/-EINVAL with err on bad config. */
int arch_linux_load(struct gmem *gm, const struct arch_linux_boot *b, unsigned int nr_cpus,
		    struct arch_boot_state *st, char *err, size_t errlen) __must_check;
int arch_linux_vcpu_entry(int vcpu_fd, const struct arch_boot_state *st, unsigned int index)
	__must_check;

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

/* ---- 5. Describing the machine to the guest ---- */

/*
 * arch_linux_load() writes the description with the kernel: x86 its ACPI
 * tables and e820 map (arch/x86), arm64 its FDT (arch/arm64/fdt.c), from the
 * devices struct arch_linux_boot lists.
 */

/* ---- 6. Arch exits ---- */

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

/*
 * Register dump for diagnostics, one line per group.  (KVM_EXIT_SYSTEM_EVENT
 * and x86's KVM_HC_MAP_GPA_RANGE are decoded in vmm/exit.c for now.)
 */
void arch_vcpu_dump(int vcpu_fd, char *buf, size_t len);

/* A forwarded call of arch_vm_hypercalls_enable()'s, and what answering it needs. */
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
 * The ioctls a vCPU thread makes on its own vCPU fd once confined, besides
 * KVM_RUN: register access for arch_vcpu_hypercall() and arch_vcpu_dump()
 * (vmm/sandbox.c allows exactly these).  Fills at most max; returns how many.
 */
unsigned int arch_vcpu_ioctls(unsigned long *req, unsigned int max);

#endif
