/*
 * unit: arm64's device tree (arch/arm64/fdt.c), built on any host and read back with libfdt:
 * the nodes and properties a stock arm64 Linux binds, and the descriptions it refuses.
 * With --dump FILE it writes the tree of a board laid out as arch/arm64/vm.c lays one out,
 * which arm64_fdt_dtc.sh decompiles with dtc and checks node by node.
 */
#include <errno.h>
#include <stdbool.h>
#include <libfdt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "../../arch/arm64/fdt.h"
#include "../../gmem/gmem.h"

static uint8_t blob[ARM64_FDT_MAX_SIZE];

static void base_desc(struct arm64_fdt_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->nr_cpus = 2;
	d->mem[0] = (struct arm64_fdt_range){ 0x40000000, 256 << 20 };
	d->nr_mem = 1;
	d->gic_dist = (struct arm64_fdt_range){ 0x08000000, 0x10000 };
	d->gic_redist = (struct arm64_fdt_range){ 0x080a0000, 2 * 0x20000 };
	d->uart = (struct arm64_fdt_range){ 0x09000000, 0x1000 };
	d->uart_irq = 33;
	d->virtio[0].reg = (struct arm64_fdt_range){ 0x0a000000, 0x200 };
	d->virtio[0].irq = 48;
	d->virtio[1].reg = (struct arm64_fdt_range){ 0x0a000200, 0x200 };
	d->virtio[1].irq = 49;
	d->nr_virtio = 2;
	d->bootargs = "console=ttyS0 quiet";
	d->initrd_start = 0x48000000;
	d->initrd_size = 0x100000;
}

/* A string property, or "(absent)" (a string, so that a failed check reports, not crashes). */
static const char *str_prop(const char *path, const char *name)
{
	int off = fdt_path_offset(blob, path), len;
	const char *v;

	if (off < 0)
		return "(absent)";
	v = fdt_getprop(blob, off, name, &len);
	return v && len > 0 && v[len - 1] == '\0' ? v : "(absent)";
}

static bool has_prop(const char *path, const char *name)
{
	int off = fdt_path_offset(blob, path);

	return off >= 0 && fdt_getprop(blob, off, name, NULL) != NULL;
}

static int cells(const char *path, const char *name, uint32_t *out, int max)
{
	int off = fdt_path_offset(blob, path), len, i;
	const fdt32_t *v;

	if (off < 0)
		return -1;
	v = fdt_getprop(blob, off, name, &len);
	if (!v)
		return -1;
	for (i = 0; i < len / 4 && i < max; i++)
		out[i] = fdt32_to_cpu(v[i]);
	return len / 4;
}

static uint64_t u64_prop(const char *path, const char *name)
{
	uint32_t c[2] = { 0, 0 };

	CHECK_EQ(cells(path, name, c, 2), 2);
	return (uint64_t)c[0] << 32 | c[1];
}

static void test_tree(void)
{
	struct arm64_fdt_desc d;
	uint32_t c[16];

	base_desc(&d);
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), 0);
	CHECK_EQ(fdt_check_header(blob), 0);
	CHECK(fdt_totalsize(blob) <= sizeof(blob));
	CHECK_STR_CONTAINS(str_prop("/", "compatible"), "linux,dummy-virt");

	/* memory@40000000: reg = <0 0x40000000 0 0x10000000>, two cells each. */
	CHECK_STR_CONTAINS(str_prop("/memory@40000000", "device_type"), "memory");
	CHECK_EQ(cells("/memory@40000000", "reg", c, 16), 4);
	CHECK_EQ(c[1], 0x40000000);
	CHECK_EQ(c[3], 256 << 20);

	/* Two CPUs brought up by PSCI, which is called by HVC. */
	CHECK_STR_CONTAINS(str_prop("/cpus/cpu@0", "enable-method"), "psci");
	CHECK_STR_CONTAINS(str_prop("/cpus/cpu@1", "enable-method"), "psci");
	CHECK(fdt_path_offset(blob, "/cpus/cpu@2") < 0);
	CHECK_EQ(cells("/cpus/cpu@1", "reg", c, 16), 1);
	CHECK_EQ(c[0], 1);
	CHECK_STR_CONTAINS(str_prop("/psci", "method"), "hvc");
	CHECK_STR_CONTAINS(str_prop("/psci", "compatible"), "arm,psci-1.0");

	/* GICv3 with distributor then redistributors; the timer's four PPIs. */
	CHECK_STR_CONTAINS(str_prop("/intc@8000000", "compatible"), "arm,gic-v3");
	CHECK_EQ(cells("/intc@8000000", "reg", c, 16), 8);
	CHECK_EQ(c[1], 0x08000000);
	CHECK_EQ(c[5], 0x080a0000);
	CHECK_EQ(c[7], 2 * 0x20000);
	CHECK_EQ(cells("/timer", "interrupts", c, 16), 12);
	CHECK_EQ(c[0], 1);  /* PPI */
	CHECK_EQ(c[1], 13); /* INTID 29, the secure physical timer */
	CHECK_EQ(c[4], 14); /* INTID 30, the non-secure physical timer Linux uses */

	/* The UART is the console; virtio-mmio devices have their SPIs, edge-rising. */
	CHECK_STR_CONTAINS(str_prop("/chosen", "stdout-path"), "/uart@9000000");
	CHECK_STR_CONTAINS(str_prop("/uart@9000000", "compatible"), "ns16550a");
	CHECK_EQ(cells("/uart@9000000", "interrupts", c, 16), 3);
	CHECK_EQ(c[0], 0);
	CHECK_EQ(c[1], 1); /* SPI 33 */
	CHECK_STR_CONTAINS(str_prop("/virtio_mmio@a000200", "compatible"), "virtio,mmio");
	CHECK_EQ(cells("/virtio_mmio@a000200", "interrupts", c, 16), 3);
	CHECK_EQ(c[1], 17); /* SPI 49 */
	CHECK_EQ(c[2], 1);

	CHECK_STR_CONTAINS(str_prop("/chosen", "bootargs"), "console=ttyS0 quiet");
	CHECK_EQ(u64_prop("/chosen", "linux,initrd-start"), 0x48000000);
	CHECK_EQ(u64_prop("/chosen", "linux,initrd-end"), 0x48100000);
}

static void test_optional_parts(void)
{
	struct arm64_fdt_desc d;

	base_desc(&d);
	d.uart.size = 0;
	d.nr_virtio = 0;
	d.bootargs = NULL;
	d.initrd_size = 0;
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), 0);
	CHECK(fdt_path_offset(blob, "/chosen") >= 0);
	CHECK(!has_prop("/chosen", "stdout-path"));
	CHECK(!has_prop("/chosen", "bootargs"));
	CHECK(!has_prop("/chosen", "linux,initrd-start"));
	CHECK(fdt_path_offset(blob, "/uart@9000000") < 0);
	/* Many CPUs: MPIDR Aff1 takes over at 16, as KVM assigns it. */
	d.nr_cpus = 40;
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), 0);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@f") >= 0);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@100") >= 0);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@207") >= 0);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@10") < 0);
}

static void test_refused(void)
{
	struct arm64_fdt_desc d;

	base_desc(&d);
	d.nr_cpus = 0;
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.nr_mem = 0;
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.virtio[1].irq = 31; /* a PPI, not an SPI */
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.uart_irq = 1020;
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.virtio[1].reg.base = 0x0a000100; /* overlaps the first device */
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.virtio[0].reg.base = 0x40001000; /* inside RAM */
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.mem[0].base = UINT64_MAX - 0xfff; /* wraps */
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.initrd_start = 0x50000000 - 0x1000; /* runs past the end of RAM */
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	base_desc(&d);
	d.nr_virtio = ARM64_FDT_MAX_VIRTIO + 1;
	CHECK_EQ(arm64_fdt_build(&d, blob, sizeof(blob)), -EINVAL);
	/* Too small a buffer is said so, not truncated. */
	base_desc(&d);
	CHECK_EQ(arm64_fdt_build(&d, blob, 256), -ENOSPC);
}

/*
 * The tree veil's arm64 board describes for `--cpus 2 --mem 512M --disk --rng --balloon` with
 * an initrd: RAM from gmem's layout of arm64's map (RAM at 0x40000000, no hole: the values of
 * arch/arm64/vm.c, which needs KVM and is not linked here), the board's GICv3, UART and three
 * virtio-mmio slots, and the initrd below the DTB's 2 MiB at the end of RAM, as vm.c places it.
 */
static int dump(const char *path)
{
	static const struct gmem_arch_map map = { .ram_base = 0x40000000 };
	const uint64_t initrd_size = 0x1a2b3c, dtb_max = 2 << 20;
	struct arm64_fdt_desc d = { 0 };
	struct gmem_layout l;
	unsigned int i;
	FILE *f;
	int ret;

	ret = gmem_layout_compute(&map, 512ULL << 20, &l);
	if (ret) {
		fprintf(stderr, "gmem_layout_compute: %d\n", ret);
		return 1;
	}
	d.nr_cpus = 2;
	for (i = 0; i < l.nr; i++)
		d.mem[d.nr_mem++] = (struct arm64_fdt_range){ l.r[i].gpa, l.r[i].size };
	d.gic_dist = (struct arm64_fdt_range){ 0x08000000, 0x10000 };
	d.gic_redist = (struct arm64_fdt_range){ 0x080a0000, 2 * 0x20000 };
	d.uart = (struct arm64_fdt_range){ 0x09000000, 0x1000 };
	d.uart_irq = 33;
	for (i = 0; i < 3; i++) {
		d.virtio[i].reg = (struct arm64_fdt_range){ 0x0a000000 + i * 0x200, 0x200 };
		d.virtio[i].irq = 48 + i;
	}
	d.nr_virtio = 3;
	d.bootargs = "console=ttyS0 quiet veiltest=poweroff";
	d.initrd_start = (l.r[0].gpa + l.r[0].size - dtb_max - initrd_size) & ~4095ULL;
	d.initrd_size = initrd_size;
	ret = arm64_fdt_build(&d, blob, sizeof(blob));
	if (ret) {
		fprintf(stderr, "arm64_fdt_build: %d\n", ret);
		return 1;
	}
	f = fopen(path, "wb");
	if (!f || fwrite(blob, 1, fdt_totalsize(blob), f) != fdt_totalsize(blob) || fclose(f)) {
		perror(path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--dump"))
		return dump(argv[2]);
	test_tree();
	test_optional_parts();
	test_refused();
	return test_done("test_arm64_fdt");
}
