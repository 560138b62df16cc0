/* Freestanding helpers for x86 firmware: port I/O, CPUID, and fwcommon.h's hooks. */
#ifndef VEIL_FWLIB_H
#define VEIL_FWLIB_H

#include <stdint.h>

#include "fwcommon.h"

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

static inline int fw_wait_over(struct fw_wait *w, unsigned long spins, unsigned int seconds)
{
	(void)seconds;
	return w->n++ >= spins;
}

#define FW_HWID_NAME "APIC ID"
#define FW_HWID_SOURCE "CPUID reports APIC ID"

static inline uint32_t fw_cpu_hwid(void)
{
	uint32_t a, b, c, d;

	cpuid(1, &a, &b, &c, &d);
	return b >> 24;
}

static inline uint32_t fw_cpu_hwid_of(uint64_t cpu)
{
	return (uint32_t)(cpu & 0xff);
}

static inline void fw_reg_write32(uint64_t port, uint32_t v)
{
	outl((uint16_t)port, v);
}

#endif
