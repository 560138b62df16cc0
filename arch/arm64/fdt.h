/*
 * arm64: the machine description an arm64 Linux boots from, as a flattened device tree built
 * with libfdt.  Pure: it takes what the board laid out and writes a blob; it knows nothing of
 * KVM, threads or guest memory, so it is tested (and fuzzed) anywhere.
 */
#ifndef VEIL_ARM64_FDT_H
#define VEIL_ARM64_FDT_H

#include <stddef.h>
#include <stdint.h>

#define ARM64_FDT_MAX_MEM 8
#define ARM64_FDT_MAX_VIRTIO 32
#define ARM64_FDT_MAX_CPUS 512
#define ARM64_FDT_MAX_SIZE (64 << 10) /* the blob's buffer: Linux maps at most 2 MiB */

/* GIC interrupt numbers: SPIs from 32, PPIs 16 to 31 (the FDT counts each from 0). */
#define ARM64_GIC_SPI_BASE 32
#define ARM64_GIC_NR_IRQS 1020

struct arm64_fdt_range {
	uint64_t base, size;
};

struct arm64_fdt_desc {
	unsigned int nr_cpus;            /* cpu@N with reg = N (MPIDR Aff0..2 as KVM assigns them) */
	struct arm64_fdt_range mem[ARM64_FDT_MAX_MEM];
	unsigned int nr_mem;
	struct arm64_fdt_range gic_dist;  /* GICv3 distributor */
	struct arm64_fdt_range gic_redist; /* one region covering every vCPU's redistributor */
	struct arm64_fdt_range uart;      /* ns16550a with 1-byte registers; size 0: none */
	unsigned int uart_irq;            /* a GIC SPI (>= 32) */
	struct {
		struct arm64_fdt_range reg;
		unsigned int irq;             /* a GIC SPI (>= 32), edge-rising */
	} virtio[ARM64_FDT_MAX_VIRTIO];
	unsigned int nr_virtio;
	const char *bootargs;             /* may be NULL */
	uint64_t initrd_start, initrd_size; /* size 0: no initrd */
};

/*
 * Writes the description into @buf (@size bytes, at most ARM64_FDT_MAX_SIZE is ever needed).
 * 0, or -EINVAL for a description Linux could not use (no CPUs, no memory, an SPI out of
 * range, overlapping or empty device ranges), or -ENOSPC when @buf is too small.
 */
int arm64_fdt_build(const struct arm64_fdt_desc *d, void *buf, size_t size);

#endif
