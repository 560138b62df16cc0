/* Internal to arch/x86: the pieces its files share. */
#ifndef VEIL_X86_H
#define VEIL_X86_H

#include <stdint.h>

#include "compiler.h"

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

#endif
