/*
 * arm64's device tree (fdt.h): the nodes Linux's virt-style boot needs, written with libfdt's
 * sequential-write API.  The layout follows what stock kernels bind on QEMU's virt machine
 * and kvmtool: GICv3, the architected timer, PSCI by HVC, an ns16550a UART and virtio-mmio.
 */
#include <errno.h>
#include <libfdt.h>
#include <stdbool.h>
#include <stdio.h>

#include "fdt.h"

#define PHANDLE_GIC 1
#define GIC_FDT_SPI 0
#define GIC_FDT_PPI 1
#define IRQ_EDGE_RISING 1
#define IRQ_LEVEL_HIGH 4
/* The architected timer's PPIs, as INTIDs: secure, non-secure, virtual, hypervisor. */
static const unsigned int timer_ppis[] = { 29, 30, 27, 26 };

static bool range_ok(const struct arm64_fdt_range *r)
{
	uint64_t end;

	return r->size && !__builtin_add_overflow(r->base, r->size, &end);
}

static bool overlap(const struct arm64_fdt_range *a, const struct arm64_fdt_range *b)
{
	return a->base < b->base + b->size && b->base < a->base + a->size;
}

static bool spi_ok(unsigned int irq)
{
	return irq >= ARM64_GIC_SPI_BASE && irq < ARM64_GIC_NR_IRQS;
}

/* Everything that must be non-empty, fit in 64 bits and be disjoint from everything else. */
static int check_desc(const struct arm64_fdt_desc *d)
{
	struct arm64_fdt_range all[ARM64_FDT_MAX_MEM + 3 + ARM64_FDT_MAX_VIRTIO];
	unsigned int n = 0, i, j;

	if (!d->nr_cpus || d->nr_cpus > ARM64_FDT_MAX_CPUS || !d->nr_mem ||
	    d->nr_mem > ARM64_FDT_MAX_MEM || d->nr_virtio > ARM64_FDT_MAX_VIRTIO)
		return -EINVAL;
	for (i = 0; i < d->nr_mem; i++)
		all[n++] = d->mem[i];
	all[n++] = d->gic_dist;
	all[n++] = d->gic_redist;
	if (d->uart.size) {
		if (!spi_ok(d->uart_irq))
			return -EINVAL;
		all[n++] = d->uart;
	}
	for (i = 0; i < d->nr_virtio; i++) {
		if (!spi_ok(d->virtio[i].irq))
			return -EINVAL;
		all[n++] = d->virtio[i].reg;
	}
	for (i = 0; i < n; i++) {
		if (!range_ok(&all[i]))
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (overlap(&all[i], &all[j]))
				return -EINVAL;
	}
	if (d->initrd_size) {
		struct arm64_fdt_range rd = { d->initrd_start, d->initrd_size };
		bool in_ram = false;

		if (!range_ok(&rd))
			return -EINVAL;
		for (i = 0; i < d->nr_mem; i++)
			in_ram |= rd.base >= d->mem[i].base &&
				  rd.base + rd.size <= d->mem[i].base + d->mem[i].size;
		if (!in_ram)
			return -EINVAL;
	}
	return 0;
}

/* reg = <base size> with two cells each, as the root's #address-cells and #size-cells say. */
static int prop_reg(void *fdt, const struct arm64_fdt_range *r, unsigned int n)
{
	fdt64_t cells[2 * ARM64_FDT_MAX_MEM];
	unsigned int i;

	for (i = 0; i < n; i++) {
		cells[2 * i] = cpu_to_fdt64(r[i].base);
		cells[2 * i + 1] = cpu_to_fdt64(r[i].size);
	}
	return fdt_property(fdt, "reg", cells, (int)(n * 2 * sizeof(fdt64_t)));
}

static int prop_irq(void *fdt, unsigned int type, unsigned int num, unsigned int flags)
{
	fdt32_t cells[3] = { cpu_to_fdt32(type), cpu_to_fdt32(num), cpu_to_fdt32(flags) };

	return fdt_property(fdt, "interrupts", cells, sizeof(cells));
}

/* Each node helper returns a libfdt error (negative FDT_ERR_*) or 0. */
#define TRY(x)                          \
	do {                            \
		int err_ = (x);         \
		if (err_)               \
			return err_;    \
	} while (0)

static int node_begin(void *fdt, const char *name, uint64_t addr, bool with_addr)
{
	char buf[64];

	if (!with_addr)
		return fdt_begin_node(fdt, name);
	snprintf(buf, sizeof(buf), "%s@%llx", name, (unsigned long long)addr);
	return fdt_begin_node(fdt, buf);
}

static int write_cpus(void *fdt, unsigned int nr_cpus)
{
	unsigned int i;

	TRY(fdt_begin_node(fdt, "cpus"));
	TRY(fdt_property_cell(fdt, "#address-cells", 1));
	TRY(fdt_property_cell(fdt, "#size-cells", 0));
	for (i = 0; i < nr_cpus; i++) {
		/* KVM's default MPIDR: Aff0 holds 16 vCPUs, Aff1 the rest (reset_mpidr). */
		uint32_t mpidr = (i & 0xf) | ((i >> 4) & 0xff) << 8 | ((i >> 12) & 0xff) << 16;

		TRY(node_begin(fdt, "cpu", mpidr, true));
		TRY(fdt_property_string(fdt, "device_type", "cpu"));
		TRY(fdt_property_string(fdt, "compatible", "arm,arm-v8"));
		TRY(fdt_property_string(fdt, "enable-method", "psci"));
		TRY(fdt_property_cell(fdt, "reg", mpidr));
		TRY(fdt_end_node(fdt));
	}
	return fdt_end_node(fdt);
}

static int write_gic_timer_psci(void *fdt, const struct arm64_fdt_desc *d)
{
	const struct arm64_fdt_range gic[2] = { d->gic_dist, d->gic_redist };
	fdt32_t timer[3 * 4];
	unsigned int i;
	static const char psci_compat[] = "arm,psci-1.0\0arm,psci-0.2";

	TRY(node_begin(fdt, "intc", d->gic_dist.base, true));
	TRY(fdt_property_string(fdt, "compatible", "arm,gic-v3"));
	TRY(fdt_property_cell(fdt, "#interrupt-cells", 3));
	TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
	TRY(prop_reg(fdt, gic, 2));
	TRY(fdt_property_cell(fdt, "phandle", PHANDLE_GIC));
	TRY(fdt_end_node(fdt));

	TRY(fdt_begin_node(fdt, "timer"));
	TRY(fdt_property_string(fdt, "compatible", "arm,armv8-timer"));
	TRY(fdt_property(fdt, "always-on", NULL, 0));
	for (i = 0; i < 4; i++) {
		timer[3 * i] = cpu_to_fdt32(GIC_FDT_PPI);
		timer[3 * i + 1] = cpu_to_fdt32(timer_ppis[i] - 16);
		timer[3 * i + 2] = cpu_to_fdt32(IRQ_LEVEL_HIGH);
	}
	TRY(fdt_property(fdt, "interrupts", timer, sizeof(timer)));
	TRY(fdt_end_node(fdt));

	TRY(fdt_begin_node(fdt, "psci"));
	TRY(fdt_property(fdt, "compatible", psci_compat, sizeof(psci_compat)));
	TRY(fdt_property_string(fdt, "method", "hvc"));
	return fdt_end_node(fdt);
}

static int write_devices(void *fdt, const struct arm64_fdt_desc *d, char *uart_path, size_t len)
{
	unsigned int i;

	if (d->uart.size) {
		snprintf(uart_path, len, "/uart@%llx", (unsigned long long)d->uart.base);
		TRY(node_begin(fdt, "uart", d->uart.base, true));
		TRY(fdt_property_string(fdt, "compatible", "ns16550a"));
		TRY(prop_reg(fdt, &d->uart, 1));
		TRY(fdt_property_cell(fdt, "clock-frequency", 1843200));
		TRY(fdt_property_cell(fdt, "reg-shift", 0));
		TRY(fdt_property_cell(fdt, "reg-io-width", 1));
		TRY(prop_irq(fdt, GIC_FDT_SPI, d->uart_irq - ARM64_GIC_SPI_BASE, IRQ_LEVEL_HIGH));
		TRY(fdt_end_node(fdt));
	}
	for (i = 0; i < d->nr_virtio; i++) {
		TRY(node_begin(fdt, "virtio_mmio", d->virtio[i].reg.base, true));
		TRY(fdt_property_string(fdt, "compatible", "virtio,mmio"));
		TRY(prop_reg(fdt, &d->virtio[i].reg, 1));
		TRY(prop_irq(fdt, GIC_FDT_SPI, d->virtio[i].irq - ARM64_GIC_SPI_BASE, IRQ_EDGE_RISING));
		TRY(fdt_property(fdt, "dma-coherent", NULL, 0));
		TRY(fdt_end_node(fdt));
	}
	return 0;
}

static int write_tree(void *fdt, const struct arm64_fdt_desc *d)
{
	char uart_path[40] = "";

	TRY(fdt_finish_reservemap(fdt));
	TRY(fdt_begin_node(fdt, ""));
	TRY(fdt_property_string(fdt, "compatible", "linux,dummy-virt"));
	TRY(fdt_property_cell(fdt, "#address-cells", 2));
	TRY(fdt_property_cell(fdt, "#size-cells", 2));
	TRY(fdt_property_cell(fdt, "interrupt-parent", PHANDLE_GIC));

	TRY(node_begin(fdt, "memory", d->mem[0].base, true));
	TRY(fdt_property_string(fdt, "device_type", "memory"));
	TRY(prop_reg(fdt, d->mem, d->nr_mem));
	TRY(fdt_end_node(fdt));

	TRY(write_cpus(fdt, d->nr_cpus));
	TRY(write_gic_timer_psci(fdt, d));
	TRY(write_devices(fdt, d, uart_path, sizeof(uart_path)));

	TRY(fdt_begin_node(fdt, "chosen"));
	if (d->bootargs)
		TRY(fdt_property_string(fdt, "bootargs", d->bootargs));
	if (uart_path[0])
		TRY(fdt_property_string(fdt, "stdout-path", uart_path));
	if (d->initrd_size) {
		TRY(fdt_property_u64(fdt, "linux,initrd-start", d->initrd_start));
		TRY(fdt_property_u64(fdt, "linux,initrd-end", d->initrd_start + d->initrd_size));
	}
	TRY(fdt_end_node(fdt));

	TRY(fdt_end_node(fdt));
	return fdt_finish(fdt);
}

int arm64_fdt_build(const struct arm64_fdt_desc *d, void *buf, size_t size)
{
	int ret = check_desc(d);

	if (ret)
		return ret;
	if (size > ARM64_FDT_MAX_SIZE)
		size = ARM64_FDT_MAX_SIZE;
	ret = fdt_create(buf, (int)size);
	if (!ret)
		ret = write_tree(buf, d);
	if (ret == -FDT_ERR_NOSPACE)
		return -ENOSPC;
	return ret ? -EINVAL : 0;
}
