/* Freestanding helpers for x86 firmware: port I/O, the UART, a lock, formatted output, exit. */
#ifndef VEIL_FWLIB_H
#define VEIL_FWLIB_H

#include <stdarg.h>
#include <stdint.h>

#include "veil_boot.h"

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

void fw_lock(void);
void fw_unlock(void);
/* %s %c %u %d %x %lx %lu: enough for diagnostics.  Callers hold fw_lock for whole lines. */
void fw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fw_vprintf(const char *fmt, va_list ap);
__attribute__((noreturn)) void fw_exit(uint32_t status);
__attribute__((noreturn)) void fw_halt(void);

#endif
