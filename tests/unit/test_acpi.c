/* unit: the x86 ACPI tables and the e820 map, checked field by field. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "arch.h"
#include "test.h"
#include "x86.h"

#define BASE 0xe0000ULL
#define LEN 0x20000

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const uint8_t *at(const uint8_t *buf, uint64_t gpa)
{
	CHECK(gpa >= BASE && gpa < BASE + LEN);
	return buf + (gpa - BASE);
}

/* A table at gpa with signature sig and a valid checksum. */
static const uint8_t *table(const uint8_t *buf, uint64_t gpa, const char *sig)
{
	const uint8_t *t = at(buf, gpa);

	CHECK(memcmp(t, sig, 4) == 0);
	CHECK_EQ(sum(t, get32(t + 4)), 0);
	return t;
}

static void check_fadt(const uint8_t *buf, const uint8_t *f)
{
	const uint8_t *dsdt;

	CHECK_EQ(get32(f + 4), 244);
	CHECK_EQ(f[8], 3);
	CHECK_EQ(get16(f + 46), 9);        /* SCI */
	CHECK_EQ(get32(f + 48), 0);        /* no SMI_CMD */
	CHECK_EQ(get32(f + 56), 0x600);    /* PM1a_EVT */
	CHECK_EQ(get32(f + 64), 0x604);    /* PM1a_CNT */
	CHECK_EQ(f[88], 4);
	CHECK_EQ(f[89], 2);
	CHECK(get32(f + 112) & (1u << 10)); /* RESET_REG_SUP */
	CHECK_EQ(f[116], 1);               /* reset register in system I/O */
	CHECK_EQ(get64(f + 120), 0xcf9);
	CHECK_EQ(f[128], 6);
	CHECK_EQ(get64(f + 140), get32(f + 40)); /* X_DSDT == DSDT */
	CHECK_EQ(get64(f + 132), get32(f + 36)); /* X_FIRMWARE_CTRL == FACS */
	CHECK_EQ(get64(f + 152), 0x600);   /* X_PM1a_EVT address */
	CHECK_EQ(get64(f + 176), 0x604);   /* X_PM1a_CNT address */
	CHECK(memcmp(at(buf, get32(f + 36)), "FACS", 4) == 0);
	dsdt = table(buf, get32(f + 40), "DSDT");
	CHECK(memmem(dsdt + 36, get32(dsdt + 4) - 36, "_S5_", 4) != NULL);
}

static void check_madt(const uint8_t *m, unsigned int nr_cpus)
{
	const uint8_t *e = m + 44, *end = m + get32(m + 4);
	unsigned int cpus = 0, ioapics = 0, isos = 0, nmis = 0;

	CHECK_EQ(get32(m + 36), 0xfee00000);
	for (; e < end; e += e[1]) {
		CHECK(e[1] >= 2);
		if (e[1] < 2)
			break;
		if (e[0] == 0) {
			CHECK_EQ(e[3], cpus); /* APIC IDs are the vCPU indexes */
			CHECK_EQ(get32(e + 4), 1);
			cpus++;
		} else if (e[0] == 1) {
			CHECK_EQ(get32(e + 4), 0xfec00000);
			CHECK_EQ(get32(e + 8), 0);
			ioapics++;
		} else if (e[0] == 2) {
			isos++;
			if (e[3] == 0)
				CHECK_EQ(get32(e + 4), 2); /* PIT to GSI 2 */
			else
				CHECK_EQ(get16(e + 8), 0x0d); /* SCI level, active high */
		} else if (e[0] == 4) {
			CHECK_EQ(e[5], 1); /* LINT1 */
			nmis++;
		}
	}
	CHECK(e == end);
	CHECK_EQ(cpus, nr_cpus);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 2);
	CHECK_EQ(nmis, 1);
}

static void test_tables(unsigned int nr_cpus)
{
	struct x86_acpi_config cfg = {
		.nr_cpus = nr_cpus, .pm_port = 0x600, .sci_irq = 9, .reset_port = 0xcf9,
		.reset_value = 6,
	};
	uint8_t *buf = calloc(1, LEN);
	const uint8_t *x, *found_fadt = NULL, *found_madt = NULL;
	long n = x86_acpi_build(&cfg, BASE, buf, LEN);
	unsigned int i;

	CHECK(n > 0 && n <= LEN);
	CHECK(memcmp(buf, "RSD PTR ", 8) == 0);
	CHECK_EQ(sum(buf, 20), 0);
	CHECK_EQ(sum(buf, 36), 0);
	CHECK_EQ(buf[15], 2);
	CHECK_EQ(get32(buf + 20), 36);
	x = table(buf, get64(buf + 24), "XSDT");
	for (i = 0; i < (get32(x + 4) - 36) / 8; i++) {
		const uint8_t *t = at(buf, get64(x + 36 + 8 * i));

		if (!memcmp(t, "FACP", 4))
			found_fadt = table(buf, get64(x + 36 + 8 * i), "FACP");
		if (!memcmp(t, "APIC", 4))
			found_madt = table(buf, get64(x + 36 + 8 * i), "APIC");
	}
	CHECK(found_fadt && found_madt);
	if (found_fadt)
		check_fadt(buf, found_fadt);
	if (found_madt)
		check_madt(found_madt, nr_cpus);
	free(buf);
}

/* An AML PkgLength at p: the package's length (itself included); *n gets its own size. */
static uint32_t pkglen(const uint8_t *p, unsigned int *n)
{
	unsigned int extra = p[0] >> 6, i;
	uint32_t len = extra ? p[0] & 0xf : p[0] & 0x3f;

	for (i = 0; i < extra; i++)
		len |= (uint32_t)p[1 + i] << (4 + 8 * i);
	*n = 1 + extra;
	return len;
}

/* The DSDT declares each virtio-mmio device as LNRO0005, packages nested exactly. */
static void test_virtio_mmio_dsdt(void)
{
	struct x86_acpi_config cfg = {
		.nr_cpus = 1, .pm_port = 0x600, .sci_irq = 9, .reset_port = 0xcf9, .reset_value = 6,
		.nr_mmio_devs = 3,
		.mmio_devs = { { 0xd0000000, 0x200, 16 }, { 0xd0001000, 0x200, 17 },
			       { 0xd0002000, 0x200, 18 } },
	};
	uint8_t *buf = calloc(1, LEN);
	const uint8_t *x, *fadt = NULL, *d, *scope, *dev, *end;
	long n = x86_acpi_build(&cfg, BASE, buf, LEN);
	unsigned int i, k, found = 0;
	uint32_t len, slen;

	CHECK(n > 0);
	x = table(buf, get64(buf + 24), "XSDT");
	for (i = 0; i < (get32(x + 4) - 36) / 8; i++)
		if (!memcmp(at(buf, get64(x + 36 + 8 * i)), "FACP", 4))
			fadt = at(buf, get64(x + 36 + 8 * i));
	CHECK(fadt != NULL);
	if (!fadt)
		goto out;
	d = table(buf, get64(fadt + 140), "DSDT");
	len = get32(d + 4);
	end = d + len;
	/* Name (_S5 ...) is 14 bytes; then Scope (\_SB) { Device ... } to the end. */
	scope = d + 36 + 14;
	CHECK_EQ(scope[0], 0x10);
	slen = pkglen(scope + 1, &k);
	CHECK(scope + 1 + slen == end);
	CHECK(memcmp(scope + 1 + k, "\\_SB_", 5) == 0);
	for (dev = scope + 1 + k + 5; dev < end; dev += 2 + len) {
		CHECK(dev[0] == 0x5b && dev[1] == 0x82);
		len = pkglen(dev + 2, &k);
		CHECK(dev + 2 + len <= end);
		CHECK(memcmp(dev + 2 + k, "VR0", 3) == 0);
		CHECK(memmem(dev, 2 + len, "LNRO0005", 9) != NULL);
		/* Memory32Fixed with this device's base, and its GSI in the interrupt descriptor. */
		{
			const uint8_t *m = memmem(dev, 2 + len, "\x86\x09\x00\x01", 4);

			CHECK(m != NULL);
			if (m) {
				CHECK_EQ(get32(m + 4), cfg.mmio_devs[found].base);
				CHECK_EQ(get32(m + 8), 0x200);
				CHECK_EQ(m[12], 0x89);
				CHECK_EQ(get32(m + 17), cfg.mmio_devs[found].irq);
			}
		}
		found++;
		if (found > 3)
			break;
	}
	CHECK_EQ(found, 3);
	/* With PCI, a PNP0A03 root bridge follows: its package ends at the table's end. */
	cfg.pci_win_base = 0xe0000000u;
	cfg.pci_win_size = 0x1000000u;
	cfg.pci_intx_gsi[1] = 17;
	cfg.pci_intx_gsi[7] = 23;
	CHECK(x86_acpi_build(&cfg, BASE, buf, LEN) > 0);
	/* The DSDT grew, so the FADT after it moved: find it again. */
	x = table(buf, get64(buf + 24), "XSDT");
	for (i = 0; i < (get32(x + 4) - 36) / 8; i++)
		if (!memcmp(at(buf, get64(x + 36 + 8 * i)), "FACP", 4))
			fadt = at(buf, get64(x + 36 + 8 * i));
	d = table(buf, get64(fadt + 140), "DSDT");
	end = d + get32(d + 4);
	scope = d + 36 + 14;
	slen = pkglen(scope + 1, &k);
	CHECK(scope + 1 + slen == end);
	for (dev = scope + 1 + k + 5, found = 0; dev < end && found < 8; dev += 2 + len, found++) {
		CHECK(dev[0] == 0x5b && dev[1] == 0x82);
		len = pkglen(dev + 2, &k);
		if (!memcmp(dev + 2 + k, "PCI0", 4)) {
			const uint8_t pnp0a03[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
			const uint8_t *m = memmem(dev, 2 + len, "\x87\x17\x00\x00", 4);

			CHECK(memmem(dev, 2 + len, pnp0a03, sizeof(pnp0a03)) != NULL);
			CHECK(m != NULL);
			if (m) {
				CHECK_EQ(get32(m + 10), 0xe0000000u);
				CHECK_EQ(get32(m + 14), 0xe0ffffffu);
				CHECK_EQ(get32(m + 22), 0x1000000u);
			}
			/* _PRT: Package (2) { {0x1FFFF, INTA, 0, 17}, {0x7FFFF, INTA, 0, 23} } */
			m = memmem(dev, 2 + len, "_PRT", 4);
			CHECK(m != NULL);
			if (m) {
				static const uint8_t prt[] = {
					0x12, 0x1a, 0x02,
					0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x0a, 17,
					0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x07, 0x00, 0x00, 0x00, 0x0a, 23,
				};

				CHECK(m + 4 + sizeof(prt) <= dev + 2 + len);
				CHECK(memcmp(m + 4, prt, sizeof(prt)) == 0);
			}
			CHECK(dev + 2 + len == end);
		}
	}
	CHECK_EQ(found, 4);
	cfg.nr_mmio_devs = X86_ACPI_MAX_MMIO_DEVS + 1;
	CHECK_EQ(x86_acpi_build(&cfg, BASE, buf, LEN), -EINVAL);
out:
	free(buf);
}

static void test_bad_config(void)
{
	struct x86_acpi_config cfg = { .nr_cpus = 2, .pm_port = 0x600, .sci_irq = 9 };
	uint8_t buf[64];

	CHECK_EQ(x86_acpi_build(&cfg, BASE, buf, sizeof(buf)), -ENOSPC);
	CHECK_EQ(x86_acpi_build(&cfg, BASE + 4, buf, sizeof(buf)), -EINVAL);
	cfg.nr_cpus = 0;
	CHECK_EQ(x86_acpi_build(&cfg, BASE, buf, sizeof(buf)), -EINVAL);
	cfg.nr_cpus = 256;
	CHECK_EQ(x86_acpi_build(&cfg, BASE, buf, sizeof(buf)), -EINVAL);
}

static void test_e820(void)
{
	struct gmem_layout l;
	struct x86_e820 t;
	unsigned int i;

	CHECK_EQ(gmem_layout_compute(arch_mem_map(), 64ULL << 20, &l), 0);
	x86_e820_build(&l, &t);
	CHECK_EQ(t.nr, 4);
	CHECK_EQ(t.e[0].addr, 0);
	CHECK_EQ(t.e[0].size, 0x9fc00);
	CHECK_EQ(t.e[0].type, 1);
	CHECK_EQ(t.e[1].addr, 0x9fc00);
	CHECK_EQ(t.e[1].type, 2);
	CHECK_EQ(t.e[2].addr, 0x100000);
	CHECK_EQ(t.e[2].size, (64ULL << 20) - 0x100000);
	CHECK_EQ(t.e[2].type, 1);
	CHECK_EQ(t.e[3].addr, 0xfec00000);
	CHECK_EQ(t.e[3].size, 0x1400000);
	CHECK_EQ(t.e[3].type, 2);
	/* 5 GiB: 3 GiB low, the reserved top of the hole, 2 GiB above 4 GiB; sorted. */
	CHECK_EQ(gmem_layout_compute(arch_mem_map(), 5ULL << 30, &l), 0);
	x86_e820_build(&l, &t);
	CHECK_EQ(t.nr, 5);
	CHECK_EQ(t.e[2].addr + t.e[2].size, 3ULL << 30);
	CHECK_EQ(t.e[4].addr, 4ULL << 30);
	CHECK_EQ(t.e[4].size, 2ULL << 30);
	CHECK_EQ(t.e[4].type, 1);
	for (i = 1; i < t.nr; i++)
		CHECK(t.e[i].addr >= t.e[i - 1].addr + t.e[i - 1].size);
}

int main(void)
{
	test_tables(1);
	test_tables(2);
	test_tables(255);
	test_virtio_mmio_dsdt();
	test_bad_config();
	test_e820();
	return test_done("acpi");
}
