/*
 * selftest: runs on every vCPU.  Each checks its hardware ID (x86: APIC ID;
 * arm64: MPIDR affinity), reads the probes
 * veil wrote through its guest_memfd mapping, and writes a result page veil
 * checks after the stop.  vCPU 0 waits for all, then ends the VM.
 */
#include "fwlib.h"

/*
 * Bounded wait for the other vCPUs.  They start together, so on real KVM they
 * check in within microseconds; the bound is sized for an emulated KVM (x86:
 * spins) or a nested one under TCG (arm64: the generic timer's seconds).
 */
#define CHECKIN_SPINS 5000000UL
#define CHECKIN_SECONDS 30

static volatile uint32_t checked_in;
static volatile uint32_t failed;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	__atomic_store_n(&failed, 1, __ATOMIC_RELEASE);
	fw_lock();
	fw_printf("selftest: FAIL ");
	va_start(ap, fmt);
	fw_vprintf(fmt, ap);
	va_end(ap);
	fw_printf("\n");
	fw_unlock();
	fw_exit(1);
}

static void check_probes(uint64_t cpu, const struct veil_boot_info *bi)
{
	uint32_t i;

	for (i = 0; i < bi->nr_probes; i++) {
		uint64_t gpa = bi->probes[i];
		uint64_t want = veil_probe_value(bi->seed, gpa);
		uint64_t got;

		if (gpa + 8 > bi->mapped_top)
			fail("cpu %lu: probe %u at 0x%lx is not mapped", cpu, i, gpa);
		got = *(volatile uint64_t *)(uintptr_t)gpa;
		if (got != want)
			fail("cpu %lu: memory at 0x%lx reads 0x%lx, veil wrote 0x%lx", cpu, gpa, got, want);
	}
}

static void write_result_page(uint64_t cpu, const struct veil_boot_info *bi)
{
	volatile uint64_t *page = (volatile uint64_t *)(uintptr_t)(bi->scratch_base + cpu * 4096);
	uint32_t i;

	for (i = 0; i < 512; i++)
		page[i] = veil_result_value(bi->seed, (uint32_t)cpu, i);
	for (i = 0; i < 512; i++) {
		if (page[i] != veil_result_value(bi->seed, (uint32_t)cpu, i))
			fail("cpu %lu: result word %u did not read back", cpu, i);
	}
}

static void wait_for_all(const struct veil_boot_info *bi)
{
	struct fw_wait w = { 0, 0 };

	while (!fw_wait_over(&w, CHECKIN_SPINS, CHECKIN_SECONDS)) {
		if (__atomic_load_n(&checked_in, __ATOMIC_ACQUIRE) == bi->nr_cpus)
			return;
		if (__atomic_load_n(&failed, __ATOMIC_ACQUIRE))
			fw_halt();
		cpu_relax();
	}
	fail("only %u of %u vCPUs checked in", checked_in, bi->nr_cpus);
}

void fw_main(uint64_t cpu, const struct veil_boot_info *bi)
{
	uint32_t hwid;

	if (bi->magic != VEIL_BOOT_MAGIC || bi->version != VEIL_BOOT_VERSION)
		fail("cpu %lu: bad boot info (magic 0x%x, version %u)", cpu, bi->magic, bi->version);
	if (cpu >= bi->nr_cpus)
		fail("cpu %lu: index beyond the %u vCPUs in boot info", cpu, bi->nr_cpus);
	hwid = fw_cpu_hwid();
	fw_lock();
	fw_printf("selftest: cpu %lu/%u up, " FW_HWID_NAME " %u\n", cpu, bi->nr_cpus, hwid);
	fw_unlock();
	if (hwid != fw_cpu_hwid_of(cpu))
		fail("cpu %lu: " FW_HWID_SOURCE " %u", cpu, hwid);
	check_probes(cpu, bi);
	write_result_page(cpu, bi);
	__atomic_add_fetch(&checked_in, 1, __ATOMIC_RELEASE);
	if (cpu != 0)
		fw_halt();
	wait_for_all(bi);
	fw_lock();
	fw_printf("selftest: %u vCPU%s read %u probes and wrote their result pages\n",
		  bi->nr_cpus, bi->nr_cpus == 1 ? "" : "s", bi->nr_probes);
	fw_printf("selftest: pass\n");
	fw_unlock();
	fw_exit(0);
}
