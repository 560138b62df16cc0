/* The minimal ACPI tables a stock x86 Linux needs: CPUs (MADT), poweroff (FADT PM1, DSDT \_S5), reset. */
#ifndef VEIL_X86_ACPI_H
#define VEIL_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define X86_LAPIC_GPA 0xfee00000ULL
#define X86_IOAPIC_GPA 0xfec00000ULL

#define X86_ACPI_MAX_MMIO_DEVS 8

/* A virtio-mmio device, declared in the DSDT as LNRO0005 (Linux's virtio_mmio matches it). */
struct x86_acpi_mmio_dev {
	uint32_t base;
	uint32_t size;
	uint8_t irq; /* level-triggered, active high */
};

struct x86_acpi_config {
	unsigned int nr_cpus;
	unsigned int nr_mmio_devs;
	struct x86_acpi_mmio_dev mmio_devs[X86_ACPI_MAX_MMIO_DEVS];
	/* A PCI root bridge (PNP0A03) with bus 0, the config ports and this memory window. */
	uint32_t pci_win_base, pci_win_size; /* size 0: no PCI */
	uint8_t pci_intx_gsi[32]; /* _PRT: GSI of INTA# per slot; 0: not wired (slot 0 is the host) */
	uint16_t pm_port;    /* PM1a_EVT (4 bytes) then PM1a_CNT (2 bytes) */
	uint8_t sci_irq;
	uint16_t reset_port; /* FADT RESET_REG, system I/O */
	uint8_t reset_value;
};

/*
 * Builds RSDP (at offset 0), XSDT, FADT, FACS, DSDT and MADT into buf, to be
 * placed at guest address gpa (16-byte aligned).  Returns the bytes used, or
 * -ENOSPC / -EINVAL.
 */
long x86_acpi_build(const struct x86_acpi_config *cfg, uint64_t gpa, uint8_t *buf, size_t len);

#endif
