/*
 * arm64 firmware's machine: the ns16550a UART and the debug-exit register on
 * MMIO, secondaries started by PSCI, exceptions reported, conversions by
 * pKVM's MEM_SHARE/MEM_UNSHARE hypercalls.
 */
#include "fwlib.h"

#define PSCI_CPU_ON_64 0xC4000003u
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define MAX_CPUS 4096 /* what one page of PSCI targets could name; veil's boards have fewer */

extern char fw_secondary_entry[]; /* entry.S: x0 = the vCPU's index */
void fw_main(uint64_t cpu, const struct veil_boot_info *bi);
void fw_arm64_boot(const struct veil_boot_info *bi);
void fw_arm64_trap(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far);

/*
 * GCC emits calls to these for struct initialisers and copies even when freestanding; the
 * volatile stores keep it from turning the loops back into calls to themselves.
 */
void *memset(void *s, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

void *memset(void *s, int c, unsigned long n)
{
	volatile uint8_t *p = s;

	while (n--)
		*p++ = (uint8_t)c;
	return s;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	volatile uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

void fw_putc(char c)
{
	while (!(mmio_read8(VEIL_PORT_UART + UART_LSR) & UART_LSR_THRE))
		cpu_relax();
	mmio_write8(VEIL_PORT_UART, (uint8_t)c);
}

void fw_halt(void)
{
	for (;;)
		__asm__ volatile("msr daifset, #0xf; wfi" ::: "memory");
}

void fw_exit(uint32_t status)
{
	fw_reg_write32(VEIL_PORT_DEBUG_EXIT, status);
	fw_halt();
}

/* vCPU 0, MMU on: starts the others (powered off until now) and runs the program. */
void fw_arm64_boot(const struct veil_boot_info *bi)
{
	uint32_t i;

	for (i = 1; bi->magic == VEIL_BOOT_MAGIC && i < bi->nr_cpus && i < MAX_CPUS; i++) {
		long ret = smccc_hvc(PSCI_CPU_ON_64, fw_cpu_hwid_of(i), (uintptr_t)fw_secondary_entry, i);

		if (ret) {
			fw_lock();
			fw_printf("fw: FAIL PSCI CPU_ON of vCPU %u answered %ld\n", i, ret);
			fw_unlock();
			fw_exit(1);
		}
	}
	fw_main(0, bi);
	fw_halt();
}

/* Any exception is a firmware bug: say where, and end the VM with a failure. */
void fw_arm64_trap(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far)
{
	fw_printf("fw: FAIL exception (vector %lu): ESR 0x%lx at ELR 0x%lx, FAR 0x%lx\n", vector, esr,
		  elr, far);
	fw_exit(1);
}

void fw_hypercall_init(void)
{
}

/*
 * pKVM's guest ABI: MEM_UNSHARE makes the 4 KiB granule at x1 private, MEM_SHARE shared again;
 * one call per granule, stopping at the first error.
 */
long fw_hypercall_convert(uint64_t gpa, uint64_t npages, int to_private)
{
	uint64_t i;
	long ret = 0;

	for (i = 0; i < npages && !ret; i++)
		ret = smccc_hvc(to_private ? VEIL_SMCCC_MEM_UNSHARE : VEIL_SMCCC_MEM_SHARE,
				gpa + i * 4096, 0, 0);
	return ret;
}
