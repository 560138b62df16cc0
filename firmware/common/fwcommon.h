/*
 * What every architecture's fwlib.h provides to the firmware programs shared
 * between architectures (firmware/common): output, a lock, exit.  Besides
 * these, an fwlib.h defines inline:
 *   cpu_relax()                  a spin-wait hint
 *   fw_reg_write32(reg, v)       a 32-bit write to a firmware register (VEIL_PORT_*)
 *   fw_wait_over(w, spins, seconds)  whether a bounded wait (w zeroed at its start) is
 *                                over: after spins calls (x86) or seconds of the generic
 *                                timer (arm64)
 *   fw_cpu_hwid(), fw_cpu_hwid_of(cpu), FW_HWID_NAME, FW_HWID_SOURCE
 *                                this vCPU's hardware ID, the one vCPU cpu should have, and
 *                                how messages name it
 * and declares fw_hypercall_init() (once, on vCPU 0, before any conversion) and
 * fw_hypercall_convert(gpa, npages, to_private): npages 4 KiB pages converted by the
 * architecture's hypercalls, 0 on success.
 */
#ifndef VEIL_FWCOMMON_H
#define VEIL_FWCOMMON_H

#include <stdarg.h>
#include <stdint.h>

#include "veil_boot.h"

struct fw_wait {
	uint64_t n;
	uint64_t start;
};

void fw_putc(char c); /* the UART, waiting for room */
void fw_lock(void);
void fw_unlock(void);
/* %s %c %u %d %x %lx %lu: enough for diagnostics.  Callers hold fw_lock for whole lines. */
void fw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fw_vprintf(const char *fmt, va_list ap);
__attribute__((noreturn)) void fw_exit(uint32_t status);
__attribute__((noreturn)) void fw_halt(void);

void fw_hypercall_init(void);
long fw_hypercall_convert(uint64_t gpa, uint64_t npages, int to_private);

#endif
