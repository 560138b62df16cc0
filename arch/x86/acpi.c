/* ACPI table builder: RSDP, XSDT, FADT (PM1 + reset register), FACS, DSDT with \_S5, MADT. */
#include <errno.h>
#include <string.h>

#include "acpi.h"
#include "compiler.h"

#define ACPI_HDR_LEN 36
#define FADT_LEN 244 /* ACPI 2.0 layout, revision 3 */
#define FACS_LEN 64
#define RSDP_LEN 36

struct acpi_buf {
	uint8_t *base;
	size_t len;
	size_t used;
	uint64_t gpa;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

/* Reserves len bytes, 16-byte aligned; NULL if the buffer is full. */
static uint8_t *acpi_alloc(struct acpi_buf *b, size_t len, uint64_t *gpa)
{
	size_t off = ALIGN_UP(b->used, (size_t)16);
	uint8_t *p;

	if (off > b->len || len > b->len - off)
		return NULL;
	p = b->base + off;
	memset(p, 0, len);
	b->used = off + len;
	*gpa = b->gpa + off;
	return p;
}

static void acpi_header(uint8_t *p, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(p, sig, 4);
	put32(p + 4, len);
	p[8] = rev;
	memcpy(p + 10, "VEIL  ", 6);
	memcpy(p + 16, "VEILVMM ", 8);
	put32(p + 24, 1);         /* OEM revision */
	memcpy(p + 28, "VEIL", 4); /* creator */
	put32(p + 32, 1);
}

static void acpi_finish(uint8_t *p, uint32_t len)
{
	p[9] = 0;
	p[9] = acpi_checksum(p, len);
}

/* Generic Address Structure for a system I/O register. */
static void acpi_gas_io(uint8_t *p, uint16_t port, uint8_t bits)
{
	p[0] = 1; /* system I/O */
	p[1] = bits;
	p[2] = 0;
	p[3] = bits == 8 ? 1 : bits == 16 ? 2 : 3;
	put64(p + 4, port);
}

/* Name (_S5, Package (4) { 5, 5, 0, 0 }): the SLP_TYP values for soft-off. */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00,
};

/* AML PkgLength for a package whose contents (after the PkgLength) are n bytes; n < 4096. */
static size_t aml_pkglen(uint8_t *p, size_t n)
{
	if (n + 1 < 64) {
		p[0] = (uint8_t)(n + 1);
		return 1;
	}
	n += 2;
	p[0] = (uint8_t)(0x40 | (n & 0xf));
	p[1] = (uint8_t)(n >> 4);
	return 2;
}

/* Name (_CRS, Buffer (n) { the n bytes at crs }) at p; n < 256.  Returns its length. */
static size_t aml_name_crs(uint8_t *p, const uint8_t *crs, size_t n)
{
	size_t len = 0;

	p[len++] = 0x08; /* NameOp */
	memcpy(p + len, "_CRS", 4);
	len += 4;
	p[len++] = 0x11; /* BufferOp */
	len += aml_pkglen(p + len, 2 + n);
	p[len++] = 0x0a; /* ByteConst: the size */
	p[len++] = (uint8_t)n;
	memcpy(p + len, crs, n);
	return len + n;
}

/* Device () around the b bytes at body (its name first), at p.  Returns its length. */
static size_t aml_device(uint8_t *p, const uint8_t *body, size_t b)
{
	size_t len = 0;

	p[len++] = 0x5b; /* DeviceOp */
	p[len++] = 0x82;
	len += aml_pkglen(p + len, b);
	memcpy(p + len, body, b);
	return len + b;
}

/*
 * Device (VRnn) { Name (_HID, "LNRO0005") Name (_UID, n) Name (_CRS, ResourceTemplate () {
 *   Memory32Fixed (ReadWrite, base, size) Interrupt (ResourceConsumer, Level, ActiveHigh,
 *   Exclusive) { irq } }) }
 * written at p; returns its length.  At most 80 bytes.
 */
static size_t aml_virtio_mmio(uint8_t *p, unsigned int n, const struct x86_acpi_mmio_dev *d)
{
	uint8_t body[80], crs[32];
	size_t b = 0, c = 0;

	/* The resource template. */
	crs[c++] = 0x86; /* Memory32Fixed */
	put16(crs + c, 9);
	c += 2;
	crs[c++] = 1; /* read-write */
	put32(crs + c, d->base);
	put32(crs + c + 4, d->size);
	c += 8;
	crs[c++] = 0x89; /* Extended Interrupt */
	put16(crs + c, 6);
	c += 2;
	crs[c++] = 0x01; /* consumer, level, active high, exclusive */
	crs[c++] = 1;
	put32(crs + c, d->irq);
	c += 4;
	crs[c++] = 0x79; /* end tag, checksum 0 */
	crs[c++] = 0;

	body[b++] = 'V';
	body[b++] = 'R';
	body[b++] = (uint8_t)('0' + n / 10);
	body[b++] = (uint8_t)('0' + n % 10);
	body[b++] = 0x08; /* Name (_HID, "LNRO0005") */
	memcpy(body + b, "_HID", 4);
	b += 4;
	body[b++] = 0x0d;
	memcpy(body + b, "LNRO0005", 9);
	b += 9;
	body[b++] = 0x08; /* Name (_UID, n) */
	memcpy(body + b, "_UID", 4);
	b += 4;
	body[b++] = 0x0a;
	body[b++] = (uint8_t)n;
	b += aml_name_crs(body + b, crs, c);

	return aml_device(p, body, b);
}

/* A Word Address Space descriptor: type 1 I/O or 2 bus numbers, fixed [min, max]. */
static size_t aml_word_space(uint8_t *p, uint8_t type, uint8_t type_flags, uint16_t min,
			     uint16_t max)
{
	p[0] = 0x88;
	put16(p + 1, 13);
	p[3] = type;
	p[4] = 0x0c; /* producer, positive decode, MinFixed, MaxFixed */
	p[5] = type_flags;
	put16(p + 6, 0);     /* granularity */
	put16(p + 8, min);
	put16(p + 10, max);
	put16(p + 12, 0);    /* translation */
	put16(p + 14, (uint16_t)(max - min + 1));
	return 16;
}

/*
 * Name (_PRT, Package () { Package () { 0xSSSSFFFF, 0, 0, gsi }, ... }): INTA#
 * of each wired slot straight to a GSI (no link devices).  Linux then programs
 * the IOAPIC pin level-triggered, active-low; KVM's IOAPIC takes the line's
 * level as logical, so veil asserts with 1.  At most 8 + 32 * 12 bytes.
 */
static size_t aml_pci_prt(uint8_t *p, const uint8_t *gsi)
{
	uint8_t els[32 * 12];
	size_t e = 0, len = 0;
	unsigned int s, n = 0;

	for (s = 0; s < 32; s++) {
		if (!gsi[s])
			continue;
		els[e++] = 0x12; /* Package (4) */
		els[e++] = 11;   /* PkgLength: itself and 10 bytes */
		els[e++] = 4;
		els[e++] = 0x0c; /* DWordConst: the slot, any function */
		put32(els + e, s << 16 | 0xffff);
		e += 4;
		els[e++] = 0x00; /* pin: INTA# */
		els[e++] = 0x00; /* source: none, so the next is a GSI */
		els[e++] = 0x0a; /* ByteConst */
		els[e++] = gsi[s];
		n++;
	}
	if (!n)
		return 0;
	p[len++] = 0x08; /* Name (_PRT, ...) */
	memcpy(p + len, "_PRT", 4);
	len += 4;
	p[len++] = 0x12;
	len += aml_pkglen(p + len, 1 + e);
	p[len++] = (uint8_t)n;
	memcpy(p + len, els, e);
	return len + e;
}

/*
 * Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_UID, 0) Name (_CRS,
 * ResourceTemplate () { bus 0; IO 0xCF8-0xCFF; IO 0-0xCF7 and 0xD00-0xFFFF
 * windows; DWordMemory window }) Name (_PRT, ...) }: Linux scans bus 0 of a
 * root bridge it finds in ACPI, and no other.  At most 560 bytes.
 */
static size_t aml_pci_root(uint8_t *p, uint32_t win_base, uint32_t win_size, const uint8_t *gsi)
{
	uint8_t body[560], crs[120];
	size_t b = 0, c = 0;

	c += aml_word_space(crs + c, 2, 0, 0, 0);
	crs[c++] = 0x47; /* IO (Decode16, 0xCF8, 0xCF8, 1, 8) */
	crs[c++] = 0x01;
	put16(crs + c, 0xcf8);
	put16(crs + c + 2, 0xcf8);
	c += 4;
	crs[c++] = 1;
	crs[c++] = 8;
	c += aml_word_space(crs + c, 1, 0x03, 0x0000, 0x0cf7);
	c += aml_word_space(crs + c, 1, 0x03, 0x0d00, 0xffff);
	crs[c++] = 0x87; /* DWord Address Space: memory */
	put16(crs + c, 23);
	c += 2;
	crs[c++] = 0;    /* memory */
	crs[c++] = 0x0c; /* producer, positive decode, MinFixed, MaxFixed */
	crs[c++] = 0x01; /* read-write, non-cacheable */
	put32(crs + c, 0);
	put32(crs + c + 4, win_base);
	put32(crs + c + 8, win_base + win_size - 1);
	put32(crs + c + 12, 0);
	put32(crs + c + 16, win_size);
	c += 20;
	crs[c++] = 0x79;
	crs[c++] = 0;

	memcpy(body + b, "PCI0", 4);
	b += 4;
	body[b++] = 0x08; /* Name (_HID, EisaId ("PNP0A03")) */
	memcpy(body + b, "_HID", 4);
	b += 4;
	body[b++] = 0x0c;
	body[b++] = 0x41;
	body[b++] = 0xd0;
	body[b++] = 0x0a;
	body[b++] = 0x03;
	body[b++] = 0x08; /* Name (_UID, 0) */
	memcpy(body + b, "_UID", 4);
	b += 4;
	body[b++] = 0x00;
	b += aml_name_crs(body + b, crs, c);
	b += aml_pci_prt(body + b, gsi);

	return aml_device(p, body, b);
}

static int acpi_dsdt(struct acpi_buf *b, const struct x86_acpi_config *cfg, uint64_t *gpa)
{
	uint8_t devs[X86_ACPI_MAX_MMIO_DEVS * 80 + 600], scope[8 + sizeof(devs)];
	size_t nd = 0, ns = 0;
	unsigned int i;
	uint32_t len;
	uint8_t *p;

	if (cfg->nr_mmio_devs > X86_ACPI_MAX_MMIO_DEVS)
		return -EINVAL;
	for (i = 0; i < cfg->nr_mmio_devs; i++)
		nd += aml_virtio_mmio(devs + nd, i, &cfg->mmio_devs[i]);
	if (cfg->pci_win_size)
		nd += aml_pci_root(devs + nd, cfg->pci_win_base, cfg->pci_win_size, cfg->pci_intx_gsi);
	if (nd) { /* Scope (\_SB) { devices } */
		scope[ns++] = 0x10;
		ns += aml_pkglen(scope + ns, 5 + nd);
		memcpy(scope + ns, "\\_SB_", 5);
		ns += 5;
		memcpy(scope + ns, devs, nd);
		ns += nd;
	}
	len = ACPI_HDR_LEN + sizeof(dsdt_aml) + ns;
	p = acpi_alloc(b, len, gpa);
	if (!p)
		return -ENOSPC;
	acpi_header(p, "DSDT", len, 2);
	memcpy(p + ACPI_HDR_LEN, dsdt_aml, sizeof(dsdt_aml));
	memcpy(p + ACPI_HDR_LEN + sizeof(dsdt_aml), scope, ns);
	acpi_finish(p, len);
	return 0;
}

static int acpi_facs(struct acpi_buf *b, uint64_t *gpa)
{
	uint8_t *p = acpi_alloc(b, FACS_LEN, gpa);

	if (!p)
		return -ENOSPC;
	memcpy(p, "FACS", 4);
	put32(p + 4, FACS_LEN);
	p[32] = 2; /* version */
	return 0;
}

static void fadt_fill(uint8_t *p, const struct x86_acpi_config *cfg, uint64_t facs, uint64_t dsdt)
{
	put32(p + 36, (uint32_t)facs);
	put32(p + 40, (uint32_t)dsdt);
	put16(p + 46, cfg->sci_irq);
	/* SMI_CMD (48) = 0: no SMM, the platform is always in ACPI mode. */
	put32(p + 56, cfg->pm_port);     /* PM1a_EVT_BLK */
	put32(p + 64, cfg->pm_port + 4); /* PM1a_CNT_BLK */
	p[88] = 4;                       /* PM1_EVT_LEN */
	p[89] = 2;                       /* PM1_CNT_LEN */
	put16(p + 96, 101);              /* P_LVL2_LAT > 100: no C2 */
	put16(p + 98, 1001);             /* P_LVL3_LAT > 1000: no C3 */
	put16(p + 109, 0);               /* IAPC_BOOT_ARCH: no legacy devices, no 8042 */
	/* WBINVD, power and sleep buttons absent (control-method style), RESET_REG_SUP. */
	put32(p + 112, (1u << 0) | (1u << 4) | (1u << 5) | (1u << 10));
	acpi_gas_io(p + 116, cfg->reset_port, 8);
	p[128] = cfg->reset_value;
	put64(p + 132, facs);
	put64(p + 140, dsdt);
	acpi_gas_io(p + 148, cfg->pm_port, 32);     /* X_PM1a_EVT_BLK */
	acpi_gas_io(p + 172, cfg->pm_port + 4, 16); /* X_PM1a_CNT_BLK */
}

static int acpi_fadt(struct acpi_buf *b, const struct x86_acpi_config *cfg, uint64_t *gpa)
{
	uint64_t facs, dsdt;
	uint8_t *p;
	int ret;

	ret = acpi_facs(b, &facs);
	if (!ret)
		ret = acpi_dsdt(b, cfg, &dsdt);
	if (ret)
		return ret;
	p = acpi_alloc(b, FADT_LEN, gpa);
	if (!p)
		return -ENOSPC;
	acpi_header(p, "FACP", FADT_LEN, 3);
	fadt_fill(p, cfg, facs, dsdt);
	acpi_finish(p, FADT_LEN);
	return 0;
}

static uint8_t *madt_entry(uint8_t *p, uint8_t type, uint8_t len)
{
	p[0] = type;
	p[1] = len;
	return p + len;
}

static int acpi_madt(struct acpi_buf *b, const struct x86_acpi_config *cfg, uint64_t *gpa)
{
	uint32_t len = ACPI_HDR_LEN + 8 + cfg->nr_cpus * 8 + 12 + 2 * 10 + 6;
	uint8_t *p = acpi_alloc(b, len, gpa), *e;
	unsigned int i;

	if (!p)
		return -ENOSPC;
	acpi_header(p, "APIC", len, 3);
	put32(p + 36, (uint32_t)X86_LAPIC_GPA);
	put32(p + 40, 1); /* PCAT_COMPAT: there are 8259s too */
	e = p + 44;
	for (i = 0; i < cfg->nr_cpus; i++) {
		e[2] = (uint8_t)i;  /* ACPI processor UID */
		e[3] = (uint8_t)i;  /* APIC ID */
		put32(e + 4, 1);    /* enabled */
		e = madt_entry(e, 0, 8);
	}
	e[2] = 0; /* IOAPIC ID 0, as KVM's in-kernel IOAPIC reports */
	put32(e + 4, (uint32_t)X86_IOAPIC_GPA);
	e = madt_entry(e, 1, 12);
	/* ISA IRQ 0 (the PIT) arrives on IOAPIC pin 2. */
	e[3] = 0;
	put32(e + 4, 2);
	e = madt_entry(e, 2, 10);
	/* The SCI: level-triggered, active high. */
	e[3] = cfg->sci_irq;
	put32(e + 4, cfg->sci_irq);
	put16(e + 8, 0x000d);
	e = madt_entry(e, 2, 10);
	/* LINT1 of every CPU is NMI. */
	e[2] = 0xff;
	e[5] = 1;
	madt_entry(e, 4, 6);
	acpi_finish(p, len);
	return 0;
}

static int acpi_rsdp_xsdt(struct acpi_buf *b, uint8_t *rsdp, const uint64_t *tables, unsigned int n)
{
	uint32_t len = ACPI_HDR_LEN + 8 * n;
	uint64_t xsdt_gpa;
	uint8_t *x = acpi_alloc(b, len, &xsdt_gpa);
	unsigned int i;

	if (!x)
		return -ENOSPC;
	acpi_header(x, "XSDT", len, 1);
	for (i = 0; i < n; i++)
		put64(x + ACPI_HDR_LEN + 8 * i, tables[i]);
	acpi_finish(x, len);
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "VEIL  ", 6);
	rsdp[15] = 2; /* ACPI 2.0+: use the XSDT */
	put32(rsdp + 20, RSDP_LEN);
	put64(rsdp + 24, xsdt_gpa);
	rsdp[8] = acpi_checksum(rsdp, 20);
	rsdp[32] = acpi_checksum(rsdp, RSDP_LEN);
	return 0;
}

long x86_acpi_build(const struct x86_acpi_config *cfg, uint64_t gpa, uint8_t *buf, size_t len)
{
	struct acpi_buf b = { .base = buf, .len = len, .gpa = gpa };
	uint64_t tables[2], rsdp_gpa;
	uint8_t *rsdp;
	int ret;

	if (!IS_ALIGNED(gpa, 16) || cfg->nr_cpus == 0 || cfg->nr_cpus > 255)
		return -EINVAL;
	rsdp = acpi_alloc(&b, RSDP_LEN, &rsdp_gpa);
	if (!rsdp)
		return -ENOSPC;
	ret = acpi_fadt(&b, cfg, &tables[0]);
	if (!ret)
		ret = acpi_madt(&b, cfg, &tables[1]);
	if (!ret)
		ret = acpi_rsdp_xsdt(&b, rsdp, tables, 2);
	return ret ? ret : (long)b.used;
}
