/* Freestanding helpers for arm64 firmware: MMIO, system registers, SMCCC, and fwcommon.h's hooks. */
#ifndef VEIL_FWLIB_H
#define VEIL_FWLIB_H

#include <stdint.h>

#include "fwcommon.h"

/* Single loads and stores, so that KVM decodes the access from the syndrome (ESR_EL2.ISV). */
static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	__asm__ volatile("strb %w0, [%1]" : : "r"(v), "r"(addr) : "memory");
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	uint32_t v;

	__asm__ volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
	return (uint8_t)v;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	__asm__ volatile("str %w0, [%1]" : : "r"(v), "r"(addr) : "memory");
}

static inline void cpu_relax(void)
{
	__asm__ volatile("yield" ::: "memory");
}

/* An SMCCC call by HVC: x0 = function, x1-x3 arguments; returns x0.  x4-x17 may change. */
static inline long smccc_hvc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
	register uint64_t x0 __asm__("x0") = fn;
	register uint64_t x1 __asm__("x1") = a1;
	register uint64_t x2 __asm__("x2") = a2;
	register uint64_t x3 __asm__("x3") = a3;

	__asm__ volatile("hvc #0"
			 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
			 :
			 : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
			   "x15", "x16", "x17", "memory");
	return (long)x0;
}

static inline int fw_wait_over(struct fw_wait *w, unsigned long spins, unsigned int seconds)
{
	uint64_t now, freq;

	(void)spins;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(now) : : "memory");
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
	if (!w->n++)
		w->start = now;
	return now - w->start >= (uint64_t)seconds * freq;
}

/* MPIDR_EL1's affinity fields Aff2.Aff1.Aff0, and the ones KVM gives vCPU cpu by default. */
#define FW_HWID_NAME "MPIDR affinity"
#define FW_HWID_SOURCE "MPIDR_EL1 reports affinity"

static inline uint32_t fw_cpu_hwid(void)
{
	uint64_t mpidr;

	__asm__ volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
	return (uint32_t)(mpidr & 0xffffff);
}

static inline uint32_t fw_cpu_hwid_of(uint64_t cpu)
{
	return (uint32_t)((cpu & 0xf) | ((cpu >> 4) & 0xff) << 8 | ((cpu >> 12) & 0xff) << 16);
}

static inline void fw_reg_write32(uint64_t reg, uint32_t v)
{
	mmio_write32(reg, v);
}

#endif
