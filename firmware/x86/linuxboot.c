/*
 * linuxboot: test firmware that veil boots as a Linux bzImage (mkbzimage.py).
 * The BSP checks what the boot protocol hands a kernel: boot_params, the
 * command line, e820, the initrd and ACPI.  Then it starts every AP the MADT
 * lists with INIT/SIPI/SIPI through the xAPIC, as Linux does; each AP comes up
 * through trampoline.S, says so and halts.
 */
#include <stddef.h>
#include <stdint.h>

#include "fwlib.h"

#define LB_MAX_CPUS 64
#define AP_STACK_SIZE 4096
#define CMDLINE_WANT "veiltest=linuxboot"
#define SZ_1M 0x100000UL
#define SZ_2M 0x200000UL
#define SZ_4G 0x100000000UL

/* boot_params (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 4096
#define HDRS_MAGIC 0x53726448

#define E820_RAM 1
#define E820_RESERVED 2
#define HIGH_RESERVED 0xfec00000UL /* IOAPIC .. 4 GiB */

/* xAPIC registers and ICR bits. */
#define APIC_ID 0x020
#define APIC_SVR 0x0f0
#define APIC_ESR 0x280
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define ICR_BUSY 0x1000
#define ICR_INIT 0x500
#define ICR_STARTUP 0x600
#define ICR_ASSERT 0x4000
#define ICR_LEVEL 0x8000
#define MSR_APIC_BASE 0x1b
#define APIC_BASE_BSP 0x100
#define APIC_BASE_ENABLE 0x800

#define PTE_P 0x1UL
#define PTE_RW 0x2UL
#define PTE_PWT 0x8UL
#define PTE_PCD 0x10UL
#define PTE_PS 0x80UL
#define PTE_ADDR 0x000ffffffffff000UL

/* The hypervisor leaf where veil publishes the TSC frequency (kHz in EAX). */
#define CPUID_HV_BASE 0x40000000u
#define CPUID_HV_TIMING 0x40000010u
#define CPUID_1_ECX_HYPERVISOR (1u << 31)

/* Read by trampoline.S at fixed offsets: keep the two in step. */
struct ap_boot {
	uint32_t cr3;
	uint32_t next; /* the next AP index, claimed with lock xadd */
	uint32_t max;
	uint32_t stack_size;
	uint64_t stacks;
	uint64_t entry;
};
_Static_assert(offsetof(struct ap_boot, stack_size) == 12 && offsetof(struct ap_boot, stacks) == 16 &&
	       offsetof(struct ap_boot, entry) == 24, "trampoline.S reads ap_boot at fixed offsets");

typedef uint64_t __attribute__((may_alias)) u64_alias; /* guest memory read as words */

struct range {
	uint64_t lo, hi;
	const char *what;
};

/* What the BSP learned; APs read lapic and write seen/up. */
struct lb_state {
	const uint8_t *bp;
	uint64_t lapic;
	const uint8_t *madt;
	uint32_t bsp_id;
	uint32_t nr_cpus;
	uint8_t apic_ids[LB_MAX_CPUS];
	struct range used[16]; /* what veil placed in low memory: the trampoline must miss it */
	uint32_t nr_used;
	volatile uint8_t seen[256];
	volatile uint32_t aps_up;
};

struct ap_boot ap_boot;
static struct lb_state lb;
static uint8_t ap_stacks[LB_MAX_CPUS][AP_STACK_SIZE]
	__attribute__((aligned(4096), section(".bss.ap_stacks")));
static uint64_t lapic_pd[512] __attribute__((aligned(4096), section(".bss.lapic_pd")));

extern const uint8_t trampoline_start[], trampoline_end[], startup_32[], _end[];
extern const uint64_t trampoline_gpa;

void linuxboot_main(const uint8_t *bp);
void linuxboot_ap_main(uint32_t index);

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fw_lock();
	fw_printf("linuxboot: ");
	va_start(ap, fmt);
	fw_vprintf(fmt, ap);
	va_end(ap);
	fw_printf("\n");
	fw_unlock();
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	fw_lock();
	fw_printf("linuxboot: FAIL ");
	va_start(ap, fmt);
	fw_vprintf(fmt, ap);
	va_end(ap);
	fw_printf("\n");
	fw_unlock();
	fw_exit(1);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static const uint8_t *ptr(uint64_t gpa) { return (const uint8_t *)(uintptr_t)gpa; }

static int bytes_eq(const uint8_t *a, const char *b, size_t n)
{
	while (n--)
		if (*a++ != (uint8_t)*b++)
			return 0;
	return 1;
}

static uint64_t read_cr3(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (uint64_t)hi << 32;
}

static uint32_t cpuid_apic_id(void)
{
	uint32_t a, b, c, d;

	cpuid(1, &a, &b, &c, &d);
	return b >> 24;
}

/*
 * ---- time: the TSC, at the rate veil publishes in CPUID ----
 * Bounds are wall-clock: a spin count means nothing across emulated and
 * hardware KVM.  The TSC is read without an exit.  PIT channel 2 is no
 * alternative today: its gate and output live in port 0x61, which veil's
 * in-kernel PIT leaves to userspace, where the i8042 stub reads it as 0.
 */
static uint64_t tsc_khz;

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

static void clock_init(void)
{
	uint32_t a, b, c, d;

	cpuid(1, &a, &b, &c, &d);
	if (!(c & CPUID_1_ECX_HYPERVISOR))
		fail("no hypervisor CPUID leaves: cannot learn the TSC frequency");
	cpuid(CPUID_HV_BASE, &a, &b, &c, &d);
	if (a < CPUID_HV_TIMING)
		fail("CPUID 0x%x reaches only leaf 0x%x; veil publishes the TSC rate in 0x%x",
		     CPUID_HV_BASE, a, CPUID_HV_TIMING);
	cpuid(CPUID_HV_TIMING, &a, &b, &c, &d);
	if (!a)
		fail("CPUID 0x%x gives a TSC frequency of 0", CPUID_HV_TIMING);
	tsc_khz = a;
}

static uint64_t deadline_us(uint64_t us)
{
	return rdtsc() + us * tsc_khz / 1000;
}

static int passed(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) >= 0;
}

static void udelay(uint64_t us)
{
	uint64_t end = deadline_us(us);

	while (!passed(end))
		cpu_relax();
}

/* ---- page tables: what veil handed us, walked rather than assumed ---- */

/* The entry that maps va, or 0 when it is not mapped. */
static uint64_t pt_lookup(uint64_t va)
{
	uint64_t table = read_cr3() & PTE_ADDR, e = 0;
	int level;

	for (level = 4; level >= 1; level--) {
		e = ((const uint64_t *)(uintptr_t)table)[(va >> (12 + 9 * (level - 1))) & 511];
		if (!(e & PTE_P))
			return 0;
		if (level == 1 || (level < 4 && (e & PTE_PS)))
			return e;
		table = e & PTE_ADDR;
	}
	return e;
}

static void check_mapped(const char *what, uint64_t gpa, uint64_t len)
{
	uint64_t a;

	if (gpa + len < gpa || gpa + len > SZ_4G)
		fail("%s [0x%lx, +0x%lx) is not below 4 GiB", what, gpa, len);
	for (a = gpa & ~0xfffUL; a < gpa + len; a += 4096)
		if (!pt_lookup(a))
			fail("%s at 0x%lx: 0x%lx is not mapped by the boot page tables", what, gpa, a);
}

/* Does any page-table page reachable from table (at level) overlap [lo, hi)? */
static int tables_overlap(uint64_t table, int level, uint64_t lo, uint64_t hi)
{
	const uint64_t *t = (const uint64_t *)(uintptr_t)table;
	int i;

	if (table < hi && lo < table + 4096)
		return 1;
	if (level == 1)
		return 0;
	for (i = 0; i < 512; i++) {
		if (!(t[i] & PTE_P) || (level < 4 && (t[i] & PTE_PS)))
			continue;
		if (tables_overlap(t[i] & PTE_ADDR, level - 1, lo, hi))
			return 1;
	}
	return 0;
}

/*
 * veil identity-maps [0, ALIGN_UP(RAM top, 1 GiB)) with 2 MiB pages, so with
 * --mem up to 3G the xAPIC at 0xfee00000 is not mapped.  We add it to veil's
 * own tables rather than build new ones: the BSP keeps running on what the
 * boot protocol handed it, and the APs load this same CR3, as Linux's
 * trampoline loads the kernel's tables.  Our PD, in bss, maps only the
 * LAPIC's 2 MiB page, uncached.  When veil already maps that GiB (--mem > 3G)
 * there is nothing to add.
 */
static void map_lapic(uint64_t lapic)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(read_cr3() & PTE_ADDR), *pdpt;

	if (pt_lookup(lapic))
		return;
	if (!(pml4[(lapic >> 39) & 511] & PTE_P))
		fail("no PML4 entry covers the LAPIC at 0x%lx", lapic);
	pdpt = (uint64_t *)(uintptr_t)(pml4[(lapic >> 39) & 511] & PTE_ADDR);
	if (pdpt[(lapic >> 30) & 511] & PTE_P)
		fail("the GiB holding the LAPIC at 0x%lx is mapped, but not the LAPIC", lapic);
	lapic_pd[(lapic >> 21) & 511] = (lapic & ~(SZ_2M - 1)) | PTE_P | PTE_RW | PTE_PS | PTE_PCD | PTE_PWT;
	pdpt[(lapic >> 30) & 511] = (uintptr_t)lapic_pd | PTE_P | PTE_RW;
	__asm__ volatile("mov %0, %%cr3" : : "r"(read_cr3()) : "memory");
	if (!pt_lookup(lapic))
		fail("mapping the LAPIC at 0x%lx did not take", lapic);
}

static void use(uint64_t lo, uint64_t len, const char *what)
{
	if (lb.nr_used < sizeof(lb.used) / sizeof(lb.used[0]))
		lb.used[lb.nr_used++] = (struct range){ lo, lo + len, what };
}

/* ---- boot_params ---- */

static void check_entry_state(const uint8_t *bp)
{
	uint16_t cs, ds;
	uint64_t flags;

	__asm__ volatile("mov %%cs, %0; mov %%ds, %1; pushfq; popq %2" : "=r"(cs), "=r"(ds), "=r"(flags));
	if (cs != 0x10 || ds != 0x18)
		fail("entered with CS 0x%x, DS 0x%x; the 64-bit boot protocol wants 0x10 and 0x18", cs, ds);
	if (flags & 0x200)
		fail("entered with interrupts enabled");
	check_mapped("boot_params", (uintptr_t)bp, BP_SIZE);
	if (get32(bp + BP_HEADER) != HDRS_MAGIC)
		fail("boot_params at 0x%lx: setup header magic 0x%x, not HdrS", (uint64_t)(uintptr_t)bp,
		     get32(bp + BP_HEADER));
	if (bp[BP_TYPE_OF_LOADER] != 0xff)
		fail("type_of_loader is 0x%x, veil should write 0xff", bp[BP_TYPE_OF_LOADER]);
	use((uintptr_t)bp, BP_SIZE, "boot_params");
	say("64-bit entry at 0x%lx, boot_params at 0x%lx: HdrS, protocol %u.%u, loader 0xff",
	    (uint64_t)(uintptr_t)startup_32 + 0x200, (uint64_t)(uintptr_t)bp,
	    get16(bp + BP_VERSION) >> 8, get16(bp + BP_VERSION) & 0xff);
}

static int contains(const char *s, size_t len, const char *word)
{
	size_t n = 0, i;

	while (word[n])
		n++;
	for (i = 0; i + n <= len; i++)
		if (bytes_eq((const uint8_t *)s + i, word, n))
			return 1;
	return 0;
}

static void check_cmdline(const uint8_t *bp)
{
	uint64_t gpa = get32(bp + BP_CMD_LINE_PTR) | (uint64_t)get32(bp + BP_EXT_CMD_LINE_PTR) << 32;
	uint32_t max = get32(bp + BP_CMDLINE_SIZE);
	const char *s = (const char *)ptr(gpa);
	size_t len = 0;

	if (!gpa)
		fail("cmd_line_ptr is 0");
	check_mapped("the command line", gpa, max + 1);
	while (len <= max && s[len])
		len++;
	if (len > max)
		fail("the command line at 0x%lx has no NUL within cmdline_size %u", gpa, max);
	if (!contains(s, len, CMDLINE_WANT))
		fail("the command line at 0x%lx lacks %s: \"%s\"", gpa, CMDLINE_WANT, s);
	use(gpa, len + 1, "the command line");
	say("cmdline at 0x%lx (%lu bytes): \"%s\"", gpa, (uint64_t)len, s);
}

struct e820 {
	uint64_t addr, size;
	uint32_t type;
};

static struct e820 e820_get(const uint8_t *bp, uint32_t i)
{
	const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

	return (struct e820){ get64(e), get64(e + 8), get32(e + 16) };
}

/* Is [lo, hi) inside one e820 entry of this type? */
static int e820_covers(const uint8_t *bp, uint64_t lo, uint64_t hi, uint32_t type)
{
	uint32_t i;

	for (i = 0; i < bp[BP_E820_ENTRIES]; i++) {
		struct e820 e = e820_get(bp, i);

		if (e.type == type && e.addr <= lo && hi <= e.addr + e.size)
			return 1;
	}
	return 0;
}

static void check_e820(const uint8_t *bp)
{
	uint32_t n = bp[BP_E820_ENTRIES], i;
	uint64_t end = (uintptr_t)_end;

	if (n == 0 || n > BP_E820_MAX)
		fail("e820 has %u entries", n);
	for (i = 0; i < n; i++) {
		struct e820 e = e820_get(bp, i);

		if (e.size == 0 || e.addr + e.size < e.addr)
			fail("e820 entry %u [0x%lx, +0x%lx) is empty or wraps", i, e.addr, e.size);
		if (i + 1 < n && e.addr + e.size > e820_get(bp, i + 1).addr)
			fail("e820 entries %u and %u overlap or are out of order", i, i + 1);
	}
	if (!e820_covers(bp, SZ_1M, end, E820_RAM))
		fail("no e820 RAM entry covers the image [0x%lx, 0x%lx)", SZ_1M, end);
	if (!e820_covers(bp, HIGH_RESERVED, SZ_4G, E820_RESERVED))
		fail("no e820 reserved entry covers [0x%lx, 0x%lx)", HIGH_RESERVED, SZ_4G);
	say("e820: %u entries, sorted and disjoint; RAM holds [0x%lx, 0x%lx), [0x%lx, 0x%lx) reserved",
	    n, SZ_1M, end, HIGH_RESERVED, SZ_4G);
}

/*
 * The test wrote byte i = (i * 7 + 3) & 0xff.  Compared eight bytes at a time
 * (each lane of the next word is 56 more, added without carries between lanes),
 * because an emulating KVM runs a byte loop over even 100 KB for seconds.
 */
static uint64_t initrd_first_bad(const uint8_t *p, uint64_t size)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fUL, step = 0x3838383838383838UL;
	uint64_t want = 0, i, k;

	for (k = 8; k--;)
		want = want << 8 | (uint8_t)(7 * k + 3); /* little-endian: byte 0 lowest */
	for (i = 0; i + 8 <= size; i += 8) {
		if (*(const u64_alias *)(p + i) != want)
			break;
		want = ((want & lo7) + (step & lo7)) ^ ((want ^ step) & ~lo7);
	}
	for (; i < size; i++)
		if (p[i] != (uint8_t)(i * 7 + 3))
			return i;
	return size;
}

static void check_initrd(const uint8_t *bp)
{
	uint64_t gpa = get32(bp + BP_RAMDISK_IMAGE) | (uint64_t)get32(bp + BP_EXT_RAMDISK_IMAGE) << 32;
	uint64_t size = get32(bp + BP_RAMDISK_SIZE) | (uint64_t)get32(bp + BP_EXT_RAMDISK_SIZE) << 32;
	const uint8_t *p = ptr(gpa);
	uint64_t i;

	if (!size) {
		say("no initrd");
		return;
	}
	check_mapped("the initrd", gpa, size);
	if (!e820_covers(bp, gpa, gpa + size, E820_RAM))
		fail("the initrd [0x%lx, +%lu) is not in e820 RAM", gpa, size);
	if (gpa < (uintptr_t)_end)
		fail("the initrd at 0x%lx overlaps the image, which ends at 0x%lx", gpa,
		     (uint64_t)(uintptr_t)_end);
	i = initrd_first_bad(p, size);
	if (i < size)
		fail("initrd byte %lu at 0x%lx is 0x%x, want 0x%x", i, gpa + i, p[i],
		     (uint8_t)(i * 7 + 3));
	use(gpa, size, "the initrd");
	say("initrd: %lu bytes at 0x%lx, every byte as the test wrote it", size, gpa);
}

/* ---- ACPI ---- */

static int acpi_sum_ok(const uint8_t *p, uint64_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum == 0;
}

/* A table at gpa with this signature, mapped and checksummed; fails otherwise. */
static const uint8_t *acpi_table(uint64_t gpa, const char *sig)
{
	const uint8_t *t = ptr(gpa);
	uint32_t len;

	check_mapped(sig, gpa, 36);
	len = get32(t + 4);
	if (!bytes_eq(t, sig, 4) || len < 36)
		fail("ACPI table at 0x%lx: want %s, found \"%c%c%c%c\" (%u bytes)", gpa, sig, t[0], t[1],
		     t[2], t[3], len);
	check_mapped(sig, gpa, len);
	if (!acpi_sum_ok(t, len))
		fail("ACPI %s at 0x%lx: bad checksum", sig, gpa);
	use(gpa, len, sig);
	return t;
}

static uint64_t acpi_rsdp(const uint8_t *bp)
{
	uint64_t gpa = get64(bp + BP_ACPI_RSDP_ADDR);
	const uint8_t *r = ptr(gpa);

	if (!gpa)
		fail("acpi_rsdp_addr is 0");
	check_mapped("the RSDP", gpa, 36);
	if (!bytes_eq(r, "RSD PTR ", 8))
		fail("acpi_rsdp_addr 0x%lx does not point to \"RSD PTR \"", gpa);
	if (!acpi_sum_ok(r, 20))
		fail("RSDP at 0x%lx: bad ACPI 1.0 checksum", gpa);
	if (r[15] >= 2)
		check_mapped("the RSDP", gpa, get32(r + 20));
	if (r[15] < 2 || get32(r + 20) < 36 || !acpi_sum_ok(r, get32(r + 20)))
		fail("RSDP at 0x%lx: revision %u, no valid extended checksum", gpa, r[15]);
	use(gpa, 36, "the RSDP");
	return gpa;
}

/* The XSDT entry whose table has this signature; fails when none has. */
static uint64_t xsdt_find(const uint8_t *xsdt, const char *sig)
{
	uint32_t i, n = (get32(xsdt + 4) - 36) / 8;

	for (i = 0; i < n; i++) {
		uint64_t gpa = get64(xsdt + 36 + 8 * i);

		check_mapped("an XSDT entry", gpa, 4);
		if (bytes_eq(ptr(gpa), sig, 4))
			return gpa;
	}
	fail("the XSDT lists no %s", sig);
}

static void check_acpi(const uint8_t *bp)
{
	uint64_t rsdp = acpi_rsdp(bp), dsdt;
	const uint8_t *xsdt = acpi_table(get64(ptr(rsdp) + 24), "XSDT");
	const uint8_t *fadt = acpi_table(xsdt_find(xsdt, "FACP"), "FACP");
	const uint8_t *d;

	lb.madt = acpi_table(xsdt_find(xsdt, "APIC"), "APIC");
	dsdt = get32(fadt + 4) >= 148 && get64(fadt + 140) ? get64(fadt + 140) : get32(fadt + 40);
	d = acpi_table(dsdt, "DSDT");
	if (!contains((const char *)d + 36, get32(d + 4) - 36, "_S5_"))
		fail("the DSDT at 0x%lx has no _S5_", dsdt);
	say("ACPI: RSDP at 0x%lx, XSDT with FACP and APIC, DSDT at 0x%lx has _S5_", rsdp, dsdt);
}

/* ---- the xAPIC and the MADT ---- */

static uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(lb.lapic + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(lb.lapic + reg) = v;
}

/* Local APIC entries (type 0) flagged enabled: the CPUs Linux would bring up. */
static void parse_madt(void)
{
	uint32_t len = get32(lb.madt + 4), off;

	lb.lapic = get32(lb.madt + 36);
	for (off = 44; off + 2 <= len; off += lb.madt[off + 1]) {
		const uint8_t *e = lb.madt + off;

		if (e[1] < 2 || off + e[1] > len)
			fail("MADT entry at offset %u has length %u", off, e[1]);
		if (e[0] == 5 && e[1] >= 12) /* Local APIC address override */
			lb.lapic = get64(e + 4);
		if (e[0] != 0 || e[1] < 8 || !(get32(e + 4) & 1))
			continue;
		if (lb.nr_cpus == LB_MAX_CPUS)
			fail("the MADT lists more than %u enabled CPUs", LB_MAX_CPUS);
		lb.apic_ids[lb.nr_cpus++] = e[3];
	}
	if (!lb.nr_cpus)
		fail("the MADT lists no enabled Local APIC");
	say("MADT: %u enabled CPUs, LAPIC at 0x%lx", lb.nr_cpus, lb.lapic);
}

static void setup_bsp_apic(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);
	uint32_t i, id = cpuid_apic_id();

	if ((base & ~0xfffUL) != lb.lapic || !(base & APIC_BASE_ENABLE) || !(base & APIC_BASE_BSP))
		fail("IA32_APIC_BASE is 0x%lx: want 0x%lx, enabled, BSP", base, lb.lapic);
	map_lapic(lb.lapic);
	if (lapic_read(APIC_ID) >> 24 != id)
		fail("the LAPIC ID register says %u, CPUID says %u", lapic_read(APIC_ID) >> 24, id);
	for (i = 0; i < lb.nr_cpus && lb.apic_ids[i] != id; i++)
		;
	if (i == lb.nr_cpus)
		fail("the BSP's APIC ID %u is not in the MADT", id);
	lb.bsp_id = id;
	lapic_write(APIC_SVR, 0x1ff); /* software-enable, spurious vector 0xff */
	say("BSP: APIC ID %u, xAPIC enabled at 0x%lx, TSC %lu kHz", id, lb.lapic, tsc_khz);
}

/* ---- AP start-up ---- */

/* Copies the trampoline to its page, after checking nothing veil placed is there. */
static void place_trampoline(void)
{
	uint64_t lo = trampoline_gpa, size = (uintptr_t)(trampoline_end - trampoline_start);
	uint64_t i, gdt;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr;

	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	gdt = gdtr.base;
	use(gdt, gdtr.limit + 1ULL, "the GDT");
	if ((lo & 0xfff) || lo + size > SZ_1M || size > 4096)
		fail("the trampoline [0x%lx, +%lu) is not one real-mode page", lo, size);
	if (!e820_covers(lb.bp, lo, lo + size, E820_RAM))
		fail("the trampoline page 0x%lx is not e820 RAM", lo);
	for (i = 0; i < lb.nr_used; i++)
		if (lo < lb.used[i].hi && lb.used[i].lo < lo + 4096)
			fail("the trampoline page 0x%lx holds %s [0x%lx, 0x%lx)", lo, lb.used[i].what,
			     lb.used[i].lo, lb.used[i].hi);
	if (tables_overlap(read_cr3() & PTE_ADDR, 4, lo, lo + 4096))
		fail("the trampoline page 0x%lx holds a page table", lo);
	for (i = 0; i < size; i++)
		((volatile uint8_t *)(uintptr_t)lo)[i] = trampoline_start[i];
	ap_boot = (struct ap_boot){
		.cr3 = (uint32_t)read_cr3(), .max = LB_MAX_CPUS, .stack_size = AP_STACK_SIZE,
		.stacks = (uintptr_t)ap_stacks, .entry = (uintptr_t)linuxboot_ap_main,
	};
	if (read_cr3() >= SZ_4G)
		fail("CR3 0x%lx is out of a 32-bit trampoline's reach", read_cr3());
	say("AP trampoline: %lu bytes at 0x%lx, clear of everything veil placed", size, lo);
}

/* Sends one IPI and waits for the LAPIC to report it delivered and accepted. */
static void send_ipi(uint32_t id, uint32_t icr)
{
	uint64_t end;
	uint32_t esr;

	lapic_write(APIC_ESR, 0);
	lapic_write(APIC_ICR_HI, id << 24);
	lapic_write(APIC_ICR_LO, icr);
	end = deadline_us(100000);
	while (lapic_read(APIC_ICR_LO) & ICR_BUSY)
		if (passed(end))
			fail("IPI 0x%x to APIC %u still pending after 100 ms", icr, id);
	lapic_write(APIC_ESR, 0);
	esr = lapic_read(APIC_ESR) & 0xef;
	if (esr)
		fail("IPI 0x%x to APIC %u: APIC error status 0x%x", icr, id, esr);
}

/* Linux's wakeup_secondary_cpu_via_init(), then its wait for the AP to call in. */
static void start_ap(uint32_t id)
{
	uint32_t vector = (uint32_t)(trampoline_gpa >> 12), i;
	uint64_t end;

	send_ipi(id, ICR_INIT | ICR_LEVEL | ICR_ASSERT);
	send_ipi(id, ICR_INIT | ICR_LEVEL);
	udelay(10000); /* the MP spec's 10 ms after INIT */
	for (i = 0; i < 2; i++) {
		send_ipi(id, ICR_STARTUP | vector);
		udelay(200);
	}
	end = deadline_us(5000000);
	while (!lb.seen[id]) {
		if (passed(end))
			fail("AP %u did not come up within 5 s of INIT/SIPI/SIPI", id);
		cpu_relax();
	}
}

void linuxboot_ap_main(uint32_t index)
{
	uint32_t id = cpuid_apic_id();

	if (lapic_read(APIC_ID) >> 24 != id)
		fail("AP %u: the LAPIC ID register says %u", id, lapic_read(APIC_ID) >> 24);
	if (id == lb.bsp_id || lb.seen[id])
		fail("AP %u (index %u) started twice or as the BSP", id, index);
	say("AP %u up", id);
	__atomic_add_fetch(&lb.aps_up, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&lb.seen[id], 1, __ATOMIC_RELEASE);
	fw_halt();
}

static void start_aps(void)
{
	uint32_t i;

	place_trampoline();
	for (i = 0; i < lb.nr_cpus; i++)
		if (lb.apic_ids[i] != lb.bsp_id)
			start_ap(lb.apic_ids[i]);
	if (lb.aps_up + 1 != lb.nr_cpus)
		fail("%u APs came up, the MADT lists %u CPUs", lb.aps_up, lb.nr_cpus);
	say("%u CPUs up via INIT/SIPI", lb.aps_up + 1);
}

void linuxboot_main(const uint8_t *bp)
{
	lb.bp = bp;
	clock_init();
	check_entry_state(bp);
	check_cmdline(bp);
	check_e820(bp);
	check_initrd(bp);
	check_acpi(bp);
	parse_madt();
	setup_bsp_apic();
	start_aps();
	say("pass");
	fw_exit(0);
}
