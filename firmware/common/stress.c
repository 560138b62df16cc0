/*
 * convert-stress: every vCPU converts its own pages and pages of a shared
 * pool between private and shared by hypercall (x86: KVM_HC_MAP_GPA_RANGE;
 * arm64: pKVM's MEM_UNSHARE and MEM_SHARE), checking after
 * each conversion that contents follow the semantics veil announced, and
 * counting in the control page until veil sets stop.
 */
#include "fwlib.h"

#define MAP_ENCRYPTED (1 << 4) /* the register's attrs: KVM_MAP_GPA_RANGE_ENCRYPTED */
#define CHECK_WORDS 8
#define MAX_POOL_LOCKS 1024
#define DONE_SPINS 50000000UL /* the bound on a vCPU finishing: x86 */
#define DONE_SECONDS 20       /* arm64 */

static volatile uint32_t pool_locks[MAX_POOL_LOCKS];

/* One page to private or shared: by hypercall or, where that does not reach veil, by its register. */
static long convert(const struct veil_boot_info *bi, struct veil_stress_cpu *me, uint64_t cpu,
		    uint64_t gpa, int to_private)
{
	if (!bi->conv_port)
		return fw_hypercall_convert(gpa, 1, to_private);
	me->req_gpa = gpa;
	me->req_args = 1 | ((uint64_t)(to_private ? MAP_ENCRYPTED : 0) << 32);
	fw_reg_write32(bi->conv_port, (uint32_t)cpu);
	return (long)me->req_ret;
}

static uint64_t pattern(uint64_t seed, uint64_t gpa, uint64_t iter, unsigned int j)
{
	return veil_mix64(seed ^ gpa ^ (iter << 20) ^ j) | 1; /* never zero */
}

static void fill(volatile uint64_t *p, uint64_t seed, uint64_t gpa, uint64_t iter)
{
	unsigned int j;

	for (j = 0; j < CHECK_WORDS; j++)
		p[j * 64] = pattern(seed, gpa, iter, j);
}

/* 0 if the words hold what the semantics promise after a conversion. */
static int check(volatile uint64_t *p, uint64_t seed, uint64_t gpa, uint64_t iter, uint32_t sem)
{
	unsigned int j;

	for (j = 0; j < CHECK_WORDS; j++) {
		uint64_t want = sem == VEIL_CONTENT_ZEROED ? 0 : pattern(seed, gpa, iter, j);

		if (p[j * 64] != want)
			return -1;
	}
	return 0;
}

/* Shared -> private -> shared on one page, checking contents at each step. */
static void round_trip(const struct veil_boot_info *bi, struct veil_stress_cpu *me, uint64_t cpu,
		       uint64_t gpa, uint64_t iter)
{
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)gpa;

	fill(p, bi->seed, gpa, iter);
	if (convert(bi, me, cpu, gpa, 1)) {
		me->hc_errors++;
		return;
	}
	me->conversions++;
	if (check(p, bi->seed, gpa, iter, bi->semantics))
		me->verify_errors++;
	fill(p, bi->seed, gpa, iter + 1);
	if (convert(bi, me, cpu, gpa, 0)) {
		me->hc_errors++;
		return;
	}
	me->conversions++;
	if (check(p, bi->seed, gpa, iter + 1, bi->semantics))
		me->verify_errors++;
}

static void lock(volatile uint32_t *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static void unlock(volatile uint32_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void stress_loop(uint64_t cpu, const struct veil_boot_info *bi, struct veil_stress_ctl *ctl)
{
	struct veil_stress_cpu *me = &ctl->cpu[cpu];
	uint64_t own = bi->pool_gpa + cpu * bi->own_pages * 4096ULL;
	uint64_t shared = bi->pool_gpa + (uint64_t)bi->nr_cpus * bi->own_pages * 4096ULL;
	uint64_t nshared = bi->pool_pages - (uint64_t)bi->nr_cpus * bi->own_pages, iter, x = cpu + 1;

	if (nshared > MAX_POOL_LOCKS)
		nshared = MAX_POOL_LOCKS;
	for (iter = 0; !__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE); iter += 2) {
		x = veil_mix64(x + iter);
		if ((iter & 2) || !nshared) {
			round_trip(bi, me, cpu, own + (x % bi->own_pages) * 4096ULL, iter);
		} else {
			uint64_t i = x % nshared;

			lock(&pool_locks[i]);
			round_trip(bi, me, cpu, shared + i * 4096ULL, iter);
			unlock(&pool_locks[i]);
		}
		me->iterations++;
	}
	__atomic_store_n(&me->done, 1, __ATOMIC_RELEASE);
}

static void report(const struct veil_boot_info *bi, struct veil_stress_ctl *ctl)
{
	uint64_t conv = 0, verr = 0, hcerr = 0;
	uint32_t i;

	for (i = 0; i < bi->nr_cpus; i++) {
		struct fw_wait w = { 0, 0 };

		while (!__atomic_load_n(&ctl->cpu[i].done, __ATOMIC_ACQUIRE)) {
			if (fw_wait_over(&w, DONE_SPINS, DONE_SECONDS)) {
				fw_printf("stress: FAIL cpu %u never finished\n", i);
				fw_exit(1);
			}
			cpu_relax();
		}
		conv += ctl->cpu[i].conversions;
		verr += ctl->cpu[i].verify_errors;
		hcerr += ctl->cpu[i].hc_errors;
	}
	fw_lock();
	fw_printf("stress: %u vCPU%s made %lu conversions, %lu refused, %lu content errors\n",
		  bi->nr_cpus, bi->nr_cpus == 1 ? "" : "s", conv, hcerr, verr);
	fw_printf(verr ? "stress: FAIL contents broke the announced semantics\n" : "stress: pass\n");
	fw_unlock();
	fw_exit(verr ? 1 : 0);
}

void fw_main(uint64_t cpu, const struct veil_boot_info *bi)
{
	struct veil_stress_ctl *ctl = (struct veil_stress_ctl *)(uintptr_t)bi->ctl_gpa;

	if (bi->magic != VEIL_BOOT_MAGIC || bi->version != VEIL_BOOT_VERSION || !bi->ctl_gpa ||
	    !bi->own_pages || bi->nr_cpus > VEIL_STRESS_MAX_CPUS ||
	    (uint64_t)bi->nr_cpus * bi->own_pages > bi->pool_pages) {
		fw_printf("stress: FAIL cpu %lu: no stress configuration in the boot info\n", cpu);
		fw_exit(1);
	}
	if (cpu == 0)
		fw_hypercall_init();
	else
		while (!__atomic_load_n(&ctl->cpu[0].iterations, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE))
			cpu_relax(); /* let vCPU 0 pick the hypercall instruction first */
	stress_loop(cpu, bi, ctl);
	if (cpu == 0)
		report(bi, ctl);
	fw_halt();
}
