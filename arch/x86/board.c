/* The x86 PC board: which devices sit at which ports, and how they reach the VMM. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_pm.h"
#include "arch.h"
#include "debug_exit.h"
#include "pc_reset.h"
#include "pci.h"
#include "rtc_cmos.h"
#include "uart8250.h"
#include "veil_boot.h"
#include "x86.h"

struct arch_board {
	struct arch_board_ops ops;
	struct arch_vm *avm;
	struct uart8250 *uart;
	struct rtc_cmos *rtc;
	struct acpi_pm *pm;
	struct debug_exit debug_exit;
	struct pc_reset reset;
	struct pci_host pci;
	bool pci_ready;
};

static void board_uart_irq(void *opaque, int level)
{
	struct arch_board *b = opaque;

	if (arch_vm_irq_line(b->avm, X86_UART_IRQ, level))
		b->ops.event(b->ops.opaque, ARCH_EVENT_FAILURE, "raising the UART interrupt failed");
}

static void board_console_tx(void *opaque, uint8_t byte)
{
	struct arch_board *b = opaque;

	b->ops.console_tx(b->ops.opaque, byte);
}

static size_t board_console_tx_room(void *opaque)
{
	struct arch_board *b = opaque;

	return b->ops.console_tx_room ? b->ops.console_tx_room(b->ops.opaque) : SIZE_MAX;
}

static void board_poweroff(void *opaque)
{
	struct arch_board *b = opaque;

	b->ops.event(b->ops.opaque, ARCH_EVENT_POWEROFF, "guest powered off (ACPI S5)");
}

static void board_reset(void *opaque, const char *how)
{
	struct arch_board *b = opaque;
	char why[96];

	snprintf(why, sizeof(why), "guest reset (%s)", how);
	b->ops.event(b->ops.opaque, ARCH_EVENT_RESET, why);
}

static void board_debug_exit(void *opaque, uint32_t status)
{
	struct arch_board *b = opaque;
	char why[96];

	if (status == 0) {
		b->ops.event(b->ops.opaque, ARCH_EVENT_POWEROFF,
			     "guest wrote status 0 to the debug-exit port");
		return;
	}
	snprintf(why, sizeof(why), "guest wrote failure status %u to the debug-exit port", status);
	b->ops.event(b->ops.opaque, ARCH_EVENT_FAILURE, why);
}

static int board_create_devices(struct arch_board *b)
{
	struct uart8250_config uc = { .tx = board_console_tx, .tx_room = board_console_tx_room,
				      .set_irq = board_uart_irq, .opaque = b };
	struct acpi_pm_config pc = { .poweroff = board_poweroff, .opaque = b };
	int ret;

	ret = uart8250_create(&uc, &b->uart);
	if (!ret)
		ret = rtc_cmos_create(NULL, &b->rtc);
	if (!ret)
		ret = acpi_pm_create(&pc, &b->pm);
	b->debug_exit = (struct debug_exit){ .exit = board_debug_exit, .opaque = b };
	b->reset = (struct pc_reset){ .reset = board_reset, .opaque = b };
	return ret;
}

static int board_register(struct arch_board *b, struct bus *bus)
{
	int ret;

	ret = bus_register(bus, BUS_PIO, VEIL_PORT_UART, UART8250_NR_REGS, &uart8250_bus_ops,
			   b->uart, "uart8250");
	if (!ret)
		ret = bus_register(bus, BUS_PIO, VEIL_PORT_DEBUG_EXIT, 4, &debug_exit_bus_ops,
				   &b->debug_exit, "debug-exit");
	if (!ret)
		ret = bus_register(bus, BUS_PIO, X86_PORT_RTC, 2, &rtc_cmos_bus_ops, b->rtc, "rtc-cmos");
	if (!ret)
		ret = bus_register(bus, BUS_PIO, X86_PORT_ACPI_PM, ACPI_PM_SIZE, &acpi_pm_bus_ops,
				   b->pm, "acpi-pm");
	if (!ret)
		ret = bus_register(bus, BUS_PIO, X86_PORT_I8042, 1, &i8042_bus_ops, &b->reset, "i8042");
	if (!ret)
		ret = bus_register(bus, BUS_PIO, X86_PORT_I8042 + 4, 1, &i8042_cmd_bus_ops, &b->reset,
				   "i8042");
	/* A PC's host bridge, whose config ports enclose the reset register at 0xCF9. */
	if (!ret) {
		uint64_t base, size;

		x86_pci_window(&base, &size);
		ret = pci_host_init(&b->pci, bus, base, size, &cf9_bus_ops, &b->reset);
		b->pci_ready = ret == 0;
	}
	return ret;
}

/*
 * The PCI address register, as QEMU's i440FX does: a config access is an
 * address write at 0xCF8 and a data access at 0xCFC, and only the second
 * needs to exit.  Linux's GART aperture search alone reads 8,192 config
 * dwords on an AMD CPU.  The zone holds 0xCF9 too: a reset written there
 * takes effect at the next exit, which the guest's next reset method (the
 * i8042, a triple fault) makes.
 */
unsigned int arch_coalesced_zones(struct arch_io_zone *z, unsigned int max)
{
	if (max < 1)
		return 0;
	z[0] = (struct arch_io_zone){ .addr = PCI_PORT_ADDR, .size = 4, .pio = true };
	return 1;
}

struct pci_host *arch_board_pci(struct arch_board *b)
{
	return b->pci_ready ? &b->pci : NULL;
}

unsigned int arch_board_pci_intx_gsi(struct arch_board *b, unsigned int slot)
{
	(void)b;
	return x86_pci_intx_gsi(slot);
}

int arch_board_create(struct arch_vm *avm, struct bus *bus, const struct arch_board_ops *ops,
		      struct arch_board **out)
{
	struct arch_board *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	b->ops = *ops;
	b->avm = avm;
	ret = board_create_devices(b);
	if (!ret)
		ret = board_register(b, bus);
	if (ret) {
		arch_board_destroy(b);
		return ret;
	}
	*out = b;
	return 0;
}

void arch_board_destroy(struct arch_board *b)
{
	if (!b)
		return;
	uart8250_destroy(b->uart);
	rtc_cmos_destroy(b->rtc);
	acpi_pm_destroy(b->pm);
	if (b->pci_ready)
		pci_host_destroy(&b->pci);
	free(b);
}

size_t arch_board_console_rx(struct arch_board *b, const uint8_t *buf, size_t len)
{
	return uart8250_rx(b->uart, buf, len);
}

void arch_board_console_tx_ready(struct arch_board *b)
{
	uart8250_tx_ready(b->uart);
}

uint64_t arch_board_console_tx_dropped(struct arch_board *b)
{
	return uart8250_tx_dropped(b->uart);
}
