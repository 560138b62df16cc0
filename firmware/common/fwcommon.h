/*
 * What every architecture's fwlib.h provides to the firmware programs shared
 * between architectures (firmware/common): output, a lock, exit.  Besides
 * these, an fwlib.h defines inline:
 *   cpu_relax()                  a spin-wait hint
 *   fw_reg_write32(reg, v)       a 32-bit write to a firmware register (VEIL_PORT_*)
 *   fw_cpu_hwid(), fw_cpu_hwid_of(cpu), FW_HWID_NAME, FW_HWID_SOURCE
 *                                this vCPU's hardware ID, the one vCPU cpu should have, and
 *                                how messages name it
 * and declares fw_hypercall_init() (once, on vCPU 0, before any conversion) and
 * fw_hypercall_convert(gpa, to_private): one 4 KiB conversion by the architecture's
 * hypercall, 0 on success.
 */
#ifndef VEIL_FWCOMMON_H
#define VEIL_FWCOMMON_H

#include <stdarg.h>
#include <stdint.h>

#include "veil_boot.h"

void fw_putc(char c); /* the UART, waiting for room */
void fw_lock(void);
void fw_unlock(void);
/* %s %c %u %d %x %lx %lu: enough for diagnostics.  Callers hold fw_lock for whole lines. */
void fw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fw_vprintf(const char *fmt, va_list ap);
__attribute__((noreturn)) void fw_exit(uint32_t status);
__attribute__((noreturn)) void fw_halt(void);

void fw_hypercall_init(void);
long fw_hypercall_convert(uint64_t gpa, int to_private);

#endif
