/* x86 Linux boot: kernel and initrd placement, boot_params with e820 and ACPI, the 64-bit entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "acpi.h"
#include "arch.h"
#include "kernel.h"
#include "x86.h"

#define BOOT_PARAMS_GPA 0x7000ULL
#define CMDLINE_GPA 0x60000ULL
#define CMDLINE_MAX 0x10000ULL
#define ACPI_GPA 0xe0000ULL
#define ACPI_MAX 0x20000ULL
#define EBDA_START 0x9fc00ULL
#define HIGH_RESERVED_START 0xfec00000ULL /* IOAPIC, LAPIC, TSS, BIOS: up to 4 GiB */

#define E820_RAM 1
#define E820_RESERVED 2

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static void e820_add(struct x86_e820 *t, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size && t->nr < X86_E820_MAX)
		t->e[t->nr++] = (struct x86_e820_entry){ addr, size, type };
}

void x86_e820_build(const struct gmem_layout *l, struct x86_e820 *t)
{
	uint64_t low_end = l->r[0].gpa + l->r[0].size;
	unsigned int i;

	t->nr = 0;
	/* The PC's low memory: RAM up to the EBDA, then the VGA/BIOS hole veil keeps its tables in. */
	e820_add(t, 0, EBDA_START, E820_RAM);
	e820_add(t, EBDA_START, 0x100000 - EBDA_START, E820_RESERVED);
	e820_add(t, 0x100000, low_end - 0x100000, E820_RAM);
	/* The reserved top of the 4 GiB hole sorts before the RAM above it. */
	e820_add(t, HIGH_RESERVED_START, (1ULL << 32) - HIGH_RESERVED_START, E820_RESERVED);
	for (i = 1; i < l->nr; i++)
		e820_add(t, l->r[i].gpa, l->r[i].size, E820_RAM);
}

int arch_linux_check(const uint8_t *kernel, size_t size, char *err, size_t errlen)
{
	struct x86_kernel *k = malloc(sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	ret = x86_kernel_parse(kernel, size, k, err, errlen);
	free(k);
	return ret;
}

static int linux_place(const struct gmem_layout *l, const struct x86_kernel *k,
		       const struct arch_linux_boot *b, uint64_t *initrd_gpa, char *err, size_t el)
{
	uint64_t low_end = l->r[0].gpa + l->r[0].size, kend = k->load_addr + k->init_size, top;

	if (kend > low_end) {
		snprintf(err, el, "the kernel needs RAM up to %llu MiB (load address 0x%llx, init_size "
			 "%llu MiB); give it more --mem", (unsigned long long)(kend >> 20),
			 (unsigned long long)k->load_addr, (unsigned long long)(k->init_size >> 20));
		return -ENOSPC;
	}
	if (strlen(b->cmdline) > k->cmdline_size || strlen(b->cmdline) >= CMDLINE_MAX) {
		snprintf(err, el, "--cmdline is %zu bytes; this kernel takes at most %u",
			 strlen(b->cmdline), k->cmdline_size);
		return -E2BIG;
	}
	if (!b->initrd_size)
		return 0;
	/* As high as possible under both the end of low RAM and initrd_addr_max. */
	top = (uint64_t)k->initrd_addr_max + 1 < low_end ? (uint64_t)k->initrd_addr_max + 1 : low_end;
	if (b->initrd_size > top || ALIGN_DOWN(top - b->initrd_size, GMEM_PAGE_SIZE) < ALIGN_UP(kend, GMEM_PAGE_SIZE)) {
		snprintf(err, el, "the %zu-byte initrd does not fit between the kernel's end (0x%llx) "
			 "and 0x%llx; give it more --mem", b->initrd_size, (unsigned long long)kend,
			 (unsigned long long)top);
		return -ENOSPC;
	}
	*initrd_gpa = ALIGN_DOWN(top - b->initrd_size, GMEM_PAGE_SIZE);
	return 0;
}

/* boot_params.hdr: the kernel's own header, or for an ELF vmlinux one written for it. */
static void bp_header(uint8_t *bp, const struct x86_kernel *k, const uint8_t *img)
{
	if (k->kind == X86_KERNEL_BZIMAGE) {
		memcpy(bp + BP_SETUP_SECTS, img + BP_SETUP_SECTS, k->hdr_len);
	} else {
		put16(bp + BP_BOOT_FLAG, 0xaa55);
		put32(bp + BP_HEADER, HDRS_MAGIC);
		put16(bp + BP_VERSION, 0x020f);
		put32(bp + BP_KERNEL_ALIGNMENT, 0x200000);
		put32(bp + BP_CMDLINE_SIZE, k->cmdline_size);
	}
	put16(bp + BP_VID_MODE, 0xffff); /* "normal" */
	bp[BP_TYPE_OF_LOADER] = 0xff;    /* an undefined boot loader */
	bp[BP_LOADFLAGS] |= LOADFLAG_LOADED_HIGH | LOADFLAG_CAN_USE_HEAP;
	put16(bp + BP_HEAP_END_PTR, 0xfe00);
}

static void bp_fill(uint8_t *bp, const struct gmem_layout *l, uint64_t initrd_gpa, size_t initrd_size,
		    uint64_t rsdp)
{
	struct x86_e820 t;
	unsigned int i;

	put32(bp + BP_CMD_LINE_PTR, (uint32_t)CMDLINE_GPA);
	put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(CMDLINE_GPA >> 32));
	put32(bp + BP_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	put32(bp + BP_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)initrd_size >> 32));
	put64(bp + BP_ACPI_RSDP_ADDR, rsdp);
	x86_e820_build(l, &t);
	bp[BP_E820_ENTRIES] = (uint8_t)t.nr;
	for (i = 0; i < t.nr; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		put64(e, t.e[i].addr);
		put64(e + 8, t.e[i].size);
		put32(e + 16, t.e[i].type);
	}
}

/*
 * Faults in the guest pages [gpa, gpa + len) will be copied into, in one
 * call rather than one page fault per 4 KiB page of the copy: a 65 MiB
 * vmlinux is 16,000 of them, which under nested TCG cost seconds.  Only a
 * hint: a kernel without MADV_POPULATE_WRITE (5.14) copies as before.
 */
static void linux_prefault(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t start = ALIGN_DOWN(gpa, GMEM_PAGE_SIZE), end = ALIGN_UP(gpa + len, GMEM_PAGE_SIZE);
	void *hva;

	if (len && !gmem_translate(gm, start, end - start, &hva))
		(void)madvise(hva, end - start, MADV_POPULATE_WRITE);
}

static int linux_copy_kernel(struct gmem *gm, const struct x86_kernel *k)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < k->nr_segs && !ret; i++) {
		const struct x86_kernel_seg *s = &k->segs[i];
		void *hva;

		linux_prefault(gm, s->paddr, s->memsz);
		/* A segment of bss only has nothing to copy (gmem refuses empty accesses). */
		ret = s->filesz ? gmem_write(gm, s->paddr, s->data, s->filesz) : 0;
		if (!ret && s->memsz > s->filesz) {
			ret = gmem_translate(gm, s->paddr + s->filesz, s->memsz - s->filesz, &hva);
			if (!ret)
				memset(hva, 0, s->memsz - s->filesz);
		}
	}
	return ret;
}

/* virtio-mmio devices: in the MMIO hole, on IOAPIC pins 16-23 that no ISA device uses. */
#define MMIO_DEV_BASE 0xd0000000ULL
#define MMIO_DEV_STRIDE 0x1000ULL
#define MMIO_DEV_IRQ 16

int arch_unused_ram(uint64_t *gpa, uint64_t *len)
{
	*gpa = 0xa0000;
	*len = 0x100000 - 0xa0000;
	return 0;
}

int arch_mmio_slot(unsigned int n, struct arch_mmio_dev *d)
{
	if (n >= ARCH_MAX_MMIO_DEVS)
		return -ENOSPC;
	d->base = MMIO_DEV_BASE + n * MMIO_DEV_STRIDE;
	d->size = 0x200;
	d->irq = MMIO_DEV_IRQ + n;
	return 0;
}

#define PCI_WIN_BASE 0xe0000000ULL
#define PCI_WIN_SIZE 0x01000000ULL

void x86_pci_window(uint64_t *base, uint64_t *size)
{
	*base = PCI_WIN_BASE;
	*size = PCI_WIN_SIZE;
}

/*
 * INTA# of slot s on IOAPIC pin 16 + s % 8, level-triggered, declared in the
 * root bridge's _PRT.  With --transport pci no virtio-mmio device uses
 * 16-23, and the at most 7 functions (4 disks, balloon, rng, console) in
 * slots 1-7 each get a pin of their own, so no line is shared.
 */
unsigned int x86_pci_intx_gsi(unsigned int slot)
{
	return MMIO_DEV_IRQ + slot % 8;
}

/* ACPI tables for nr_cpus at their fixed place; *rsdp gets the RSDP's address. */
static int linux_acpi_write(struct gmem *gm, unsigned int nr_cpus,
			    const struct arch_mmio_dev *mmio_devs, unsigned int nr_mmio_devs, bool pci,
			    uint64_t *rsdp)
{
	struct x86_acpi_config cfg = {
		.nr_cpus = nr_cpus, .pm_port = X86_PORT_ACPI_PM, .sci_irq = X86_ACPI_SCI_IRQ,
		.reset_port = X86_PORT_RESET, .reset_value = 0x06,
	};
	unsigned int i;
	uint8_t *buf;
	long n;
	int ret;

	if (nr_mmio_devs > X86_ACPI_MAX_MMIO_DEVS)
		return -EINVAL;
	for (i = 0; i < nr_mmio_devs; i++)
		cfg.mmio_devs[i] = (struct x86_acpi_mmio_dev){
			.base = (uint32_t)mmio_devs[i].base, .size = (uint32_t)mmio_devs[i].size,
			.irq = (uint8_t)mmio_devs[i].irq,
		};
	cfg.nr_mmio_devs = nr_mmio_devs;
	if (pci) {
		cfg.pci_win_base = (uint32_t)PCI_WIN_BASE;
		cfg.pci_win_size = (uint32_t)PCI_WIN_SIZE;
		for (unsigned int s = 1; s < ARRAY_SIZE(cfg.pci_intx_gsi); s++)
			cfg.pci_intx_gsi[s] = (uint8_t)x86_pci_intx_gsi(s);
	}
	buf = calloc(1, ACPI_MAX);
	if (!buf)
		return -ENOMEM;
	n = x86_acpi_build(&cfg, ACPI_GPA, buf, ACPI_MAX);
	ret = n < 0 ? (int)n : gmem_write(gm, ACPI_GPA, buf, (uint64_t)n);
	free(buf);
	*rsdp = ACPI_GPA;
	return ret;
}

static int linux_write(struct gmem *gm, const struct x86_kernel *k, const struct arch_linux_boot *b,
		       uint64_t initrd_gpa, unsigned int nr_cpus)
{
	uint8_t *bp = calloc(1, BP_SIZE);
	struct arch_fw_boot tables = { 0 };
	uint64_t rsdp;
	int ret;

	if (!bp)
		return -ENOMEM;
	ret = linux_copy_kernel(gm, k);
	if (!ret && b->initrd_size) {
		linux_prefault(gm, initrd_gpa, b->initrd_size);
		ret = gmem_write(gm, initrd_gpa, b->initrd, b->initrd_size);
	}
	if (!ret)
		ret = gmem_write(gm, CMDLINE_GPA, b->cmdline, strlen(b->cmdline) + 1);
	if (!ret)
		ret = linux_acpi_write(gm, nr_cpus, b->mmio_devs, b->nr_mmio_devs, b->pci, &rsdp);
	if (!ret)
		ret = arch_fw_prepare(gm, &tables); /* GDT and identity page tables */
	if (!ret) {
		bp_header(bp, k, b->kernel);
		bp_fill(bp, gmem_get_layout(gm), initrd_gpa, b->initrd_size, rsdp);
		ret = gmem_write(gm, BOOT_PARAMS_GPA, bp, BP_SIZE);
	}
	free(bp);
	return ret;
}

int arch_linux_load(struct gmem *gm, const struct arch_linux_boot *b, unsigned int nr_cpus,
		    struct arch_boot_state *st, char *err, size_t errlen)
{
	struct x86_kernel *k = malloc(sizeof(*k));
	uint64_t initrd_gpa = 0;
	int ret;

	if (!k)
		return -ENOMEM;
	ret = x86_kernel_parse(b->kernel, b->kernel_size, k, err, errlen);
	if (!ret && nr_cpus > 255) {
		snprintf(err, errlen, "a Linux guest gets at most 255 vCPUs (xAPIC IDs in the MADT)");
		ret = -E2BIG;
	}
	if (!ret)
		ret = linux_place(gmem_get_layout(gm), k, b, &initrd_gpa, err, errlen);
	if (!ret) {
		ret = linux_write(gm, k, b, initrd_gpa, nr_cpus);
		if (ret)
			snprintf(err, errlen, "writing the boot image into guest memory: %s",
				 strerror(-ret));
	}
	st->entry = k->entry;
	st->boot_params = BOOT_PARAMS_GPA;
	free(k);
	return ret;
}

/* The boot vCPU enters the kernel; the others wait for Linux to send INIT/SIPI. */
int arch_linux_vcpu_entry(int vcpu_fd, const struct arch_boot_state *st, unsigned int index)
{
	if (index != 0)
		return 0;
	return x86_enter_long_mode(vcpu_fd, st->entry, 0, 0, st->boot_params);
}
