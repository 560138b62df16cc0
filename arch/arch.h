/* The interface each architecture implements: VM and vCPU setup, boot state, probes, diagnostics. */
#ifndef VEIL_ARCH_H
#define VEIL_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "gmem.h"

struct arch_vm;

extern const char arch_name[];

/* Where RAM goes in this architecture's guest physical address space. */
const struct gmem_arch_map *arch_mem_map(void);

/* Interrupt controller, timers and whatever else a VM needs before vCPUs exist. */
int arch_vm_create(int kvm_fd, int vm_fd, unsigned int nr_cpus, struct arch_vm **out) __must_check;
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
 * I/O: used to learn whether the guest survives the VMM revoking its
 * mapping.  The probe VM needs no irqchip.
 */
struct arch_mem_probe {
	uint64_t code_gpa;
	uint64_t data_gpa;
	uint16_t port; /* the guest writes the word it read here, 16 bits */
};
int arch_mem_probe_prepare(struct gmem *gm, int vcpu_fd, struct arch_mem_probe *p) __must_check;

/* Register dump for diagnostics, one line per group. */
void arch_vcpu_dump(int vcpu_fd, char *buf, size_t len);

#endif
