/* Internal to arch/x86: the pieces its files share. */
#ifndef VEIL_X86_H
#define VEIL_X86_H

#include <stdint.h>

#include "arch.h"
#include "compiler.h"
#include "gmem.h"

/* The PC board's ports. */
#define X86_PORT_I8042 0x60
#define X86_PORT_RTC 0x70
#define X86_PORT_ACPI_PM 0x600
#define X86_PORT_RESET 0xcf9
#define X86_ACPI_SCI_IRQ 9
#define X86_UART_IRQ 4

/* Sets up long mode and the registers; makes the vCPU runnable without INIT/SIPI. */
int x86_enter_long_mode(int vcpu_fd, uint64_t rip, uint64_t rsp, uint64_t rdi, uint64_t rsi)
	__must_check;

/* Where PCI BARs go: a window in the MMIO hole. */
void x86_pci_window(uint64_t *base, uint64_t *size);
/* The IOAPIC pin INTA# of PCI slot (device number) slot is wired to, in the _PRT too. */
unsigned int x86_pci_intx_gsi(unsigned int slot);

/* The memory map the guest is told about (boot_params' e820 table). */
#define X86_E820_MAX 16
struct x86_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};
struct x86_e820 {
	unsigned int nr;
	struct x86_e820_entry e[X86_E820_MAX];
};
void x86_e820_build(const struct gmem_layout *l, struct x86_e820 *t);

#endif
