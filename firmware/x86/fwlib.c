/* x86 firmware's machine: the UART on I/O ports, halt, and the debug-exit port. */
#include "fwlib.h"

void fw_putc(char c)
{
	while (!(inb(VEIL_PORT_UART + 5) & 0x20))
		cpu_relax();
	outb(VEIL_PORT_UART, (uint8_t)c);
}

void fw_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void fw_exit(uint32_t status)
{
	outl(VEIL_PORT_DEBUG_EXIT, status);
	fw_halt();
}

#define KVM_HC_MAP_GPA_RANGE 12
#define MAP_ENCRYPTED (1 << 4)

static volatile uint32_t use_vmmcall;

void fw_hypercall_init(void)
{
	uint32_t a, b, c, d;

	cpuid(0, &a, &b, &c, &d);
	/* "AuthenticAMD" and "HygonGenuine" use VMMCALL; Intel uses VMCALL. */
	use_vmmcall = b == 0x68747541 || b == 0x6f677948;
}

static long hypercall3(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	long ret;

	if (use_vmmcall)
		__asm__ volatile("vmmcall" : "=a"(ret) : "a"(nr), "b"(a0), "c"(a1), "d"(a2) : "memory");
	else
		__asm__ volatile("vmcall" : "=a"(ret) : "a"(nr), "b"(a0), "c"(a1), "d"(a2) : "memory");
	return ret;
}

long fw_hypercall_convert(uint64_t gpa, uint64_t npages, int to_private)
{
	return hypercall3(KVM_HC_MAP_GPA_RANGE, gpa, npages, to_private ? MAP_ENCRYPTED : 0);
}
