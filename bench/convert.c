/*
 * bench: conversions per second through veil's gmem_convert() against a raw
 * loop of the same kernel operations in the same run, for each range size
 * (4 KiB, 2 MiB, 64 MiB and 1 GiB unless sizes are given), ROUNDS rounds,
 * each of raw and veil passes interleaved up to ITERATIONS conversions a
 * side or about 2 * FIGURE_S seconds, so that both sides see the same load.
 * The ratio is the figure to report; absolute rates depend on the machine.
 *
 *   veil-bench-convert [default|sw-protected] [ITERATIONS [ROUNDS [SIZE...]]]
 *
 * SIZE is a number of bytes with an optional K, M or G, a multiple of 4 KiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "gmem.h"
#include "kvm_uapi.h"
#include "vm.h"

#define MIN_MEM (64ULL << 20)
#define MAX_SIZES 8
#define MAX_ROUNDS 101
#define FIGURE_S 0.2
#define MAX_SLOTS 32 /* distinct ranges a figure cycles through */

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* A figure's two rates: by this thread's CPU time (user + system) and by the wall clock. */
struct rate {
	double cpu, wall;
};

struct raw {
	enum gmem_model model;
	uint64_t mem;
	int vm_fd;
	int gmem_fd;
	int shared_fd;
};

static int punch(int fd, uint64_t off, uint64_t len)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* What the model's backend asks of the kernel for one conversion, and nothing else. */
static int raw_convert(struct raw *r, uint64_t gpa, uint64_t len, bool to_private)
{
	struct kvm_memory_attributes a = { gpa, len, to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0, 0 };
	struct kvm_memory_attributes2 a2 = { .offset = gpa, .size = len,
					     .attributes = a.attributes };

	switch (r->model) {
	case GMEM_MODEL_HOST: /* destructive default VM: the punch */
		return punch(r->gmem_fd, gpa, len);
	case GMEM_MODEL_OUT_OF_PLACE:
		if (ioctl(r->vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &a))
			return -errno;
		return punch(to_private ? r->shared_fd : r->gmem_fd, gpa, len);
	default:
		return ioctl(r->gmem_fd, KVM_SET_MEMORY_ATTRIBUTES2, &a2) ? -errno : 0;
	}
}

static int raw_setup(struct raw *r, int kvm_fd, unsigned long type)
{
	struct kvm_create_guest_memfd g = { .size = r->mem };
	struct kvm_userspace_memory_region2 slot = {
		.flags = KVM_MEM_GUEST_MEMFD, .memory_size = r->mem,
	};
	void *hva;

	r->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, type);
	if (r->vm_fd < 0)
		return -errno;
	if (r->model != GMEM_MODEL_OUT_OF_PLACE)
		g.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	r->gmem_fd = ioctl(r->vm_fd, KVM_CREATE_GUEST_MEMFD, &g);
	r->shared_fd = memfd_create("bench", MFD_CLOEXEC);
	if (r->gmem_fd < 0 || r->shared_fd < 0 || ftruncate(r->shared_fd, (off_t)r->mem))
		return -errno;
	hva = mmap(NULL, r->mem, PROT_READ | PROT_WRITE, MAP_SHARED,
		   r->model == GMEM_MODEL_OUT_OF_PLACE ? r->shared_fd : r->gmem_fd, 0);
	if (hva == MAP_FAILED)
		return -errno;
	slot.userspace_addr = (uint64_t)(uintptr_t)hva;
	slot.guest_memfd = (uint32_t)r->gmem_fd;
	return ioctl(r->vm_fd, KVM_SET_USER_MEMORY_REGION2, &slot) ? -errno : 0;
}

/* The ranges a figure cycles through: at most MAX_SLOTS, and a pass within iters. */
static uint64_t figure_slots(const struct raw *r, uint64_t size, unsigned int iters)
{
	uint64_t slots = r->mem / size;

	if (slots > MAX_SLOTS)
		slots = MAX_SLOTS;
	if (slots > iters / 2)
		slots = iters / 2 ? iters / 2 : 1;
	return slots;
}

/*
 * One pass: each range to private and back, so a pass starts and ends with
 * all ranges shared.  Adds its thread CPU time and wall time; -1 on failure.
 */
static int pass(struct raw *r, struct gmem *gm, uint64_t size, uint64_t slots, struct rate *t)
{
	double w0 = now_s(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	struct gmem_conv_result res;
	uint64_t i;

	for (i = 0; i < 2 * slots; i++) {
		uint64_t gpa = (i % slots) * size;
		bool priv = i < slots;
		int ret = gm ? gmem_convert(gm, gpa, size, priv, &res) : raw_convert(r, gpa, size, priv);

		if (ret) {
			fprintf(stderr, "conversion %llu failed: %s %s\n", (unsigned long long)i,
				strerror(ret < 0 ? -ret : errno), gm ? res.culprit : "");
			return -1;
		}
	}
	t->cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	t->wall += now_s() - w0;
	return 0;
}

/*
 * One round: passes of raw and veil interleaved (raw first on even passes,
 * veil first on odd ones), until each side has done iters conversions or
 * the round has taken about 2 * FIGURE_S, at least one pass each.  Load
 * from elsewhere then falls on both sides alike, which a figure of one and
 * then a figure of the other did not ensure.  Rates in conversions per second.
 */
static int run_round(struct raw *r, struct gmem *gm, uint64_t size, unsigned int iters,
		     struct rate *raw, struct rate *veil)
{
	uint64_t slots = figure_slots(r, size, iters), done = 0, k;
	struct rate tr = { 0, 0 }, tv = { 0, 0 };
	double t0 = now_s();

	for (k = 0; !done || (done < iters && now_s() - t0 < 2 * FIGURE_S); k++) {
		if (pass(r, k % 2 ? gm : NULL, size, slots, k % 2 ? &tv : &tr) ||
		    pass(r, k % 2 ? NULL : gm, size, slots, k % 2 ? &tr : &tv))
			return -1;
		done += 2 * slots;
	}
	*raw = (struct rate){ done / tr.cpu, done / tr.wall };
	*veil = (struct rate){ done / tv.cpu, done / tv.wall };
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v and returns its median. */
static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_rate(const char *what, double *v, unsigned int n)
{
	double m = median(v, n);

	printf("  %-8s %12.0f %12.0f %12.0f /s\n", what, v[0], m, v[n - 1]);
}

static void print_size(uint64_t size, unsigned int rounds)
{
	const char *unit = size >= 1ULL << 30 ? "GiB" : size >= 1ULL << 20 ? "MiB" : "KiB";
	unsigned int shift = size >= 1ULL << 30 ? 30 : size >= 1ULL << 20 ? 20 : 10;

	printf("%llu %s ranges, %u rounds, by CPU time:  min       median          max\n",
	       (unsigned long long)(size >> shift), unit, rounds);
}

/*
 * ROUNDS of raw then veil for one size; prints min/median/max of the rates
 * and of the per-round ratios.  Rates are by the thread's CPU time, which a
 * busy shared machine disturbs far less than the wall clock (nothing here
 * sleeps or waits); the wall-clock ratio follows for comparison.
 */
static int bench_size(struct raw *r, struct gmem *gm, uint64_t size, unsigned int iters,
		      unsigned int rounds)
{
	double raw[MAX_ROUNDS], veil[MAX_ROUNDS], ratio[MAX_ROUNDS], wall[MAX_ROUNDS], mr, mv, mw;
	struct rate a, b;
	unsigned int i;

	for (i = 0; i < rounds; i++) {
		if (run_round(r, gm, size, iters, &a, &b))
			return -1;
		raw[i] = a.cpu;
		veil[i] = b.cpu;
		ratio[i] = b.cpu / a.cpu;
		wall[i] = b.wall / a.wall;
	}
	print_size(size, rounds);
	mr = median(raw, rounds);
	mv = median(veil, rounds);
	print_rate("raw", raw, rounds);
	print_rate("veil", veil, rounds);
	mw = median(ratio, rounds);
	printf("  veil/raw %12.2f %12.2f %12.2f    (per round; of the medians: %.2f)\n", ratio[0],
	       mw, ratio[rounds - 1], mv / mr);
	mw = median(wall, rounds);
	printf("  veil/raw by wall clock %.2f / %.2f / %.2f (min / median / max)\n", wall[0], mw,
	       wall[rounds - 1]);
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	default: break;
	}
	if (*end || !v || v % 4096)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long type = argc > 1 && !strcmp(argv[1], "sw-protected") ? KVM_X86_SW_PROTECTED_VM : 0;
	unsigned int iters = argc > 2 ? (unsigned int)atoi(argv[2]) : 20000, max, i, nsizes = 4;
	unsigned int rounds = argc > 3 ? (unsigned int)atoi(argv[3]) : 5;
	uint64_t sizes[MAX_SIZES] = { 4096, 2ULL << 20, 64ULL << 20, 1ULL << 30 }, mem = MIN_MEM;
	struct caps_vm_type t = { .type = type, .supported = true };
	struct gmem_config cfg = { .destructive = true };
	struct gmem_layout l = { .nr = 1 };
	struct raw r = { 0 };
	struct gmem *gm;
	int kvm_fd;

	if (argc > 4) {
		nsizes = 0;
		for (i = 4; i < (unsigned int)argc; i++)
			if (nsizes == MAX_SIZES || parse_size(argv[i], &sizes[nsizes++])) {
				fprintf(stderr, "bench: bad size '%s' (at most %u sizes, multiples of 4K)\n",
					argv[i], MAX_SIZES);
				return 2;
			}
	}
	if (!iters || !rounds || rounds > MAX_ROUNDS) {
		fprintf(stderr, "bench: ITERATIONS must be > 0 and ROUNDS 1..%u\n", MAX_ROUNDS);
		return 2;
	}
	for (i = 0; i < nsizes; i++)
		mem = sizes[i] > mem ? sizes[i] : mem;
	l.r[0] = (struct gmem_range){ 0, mem };
	if (kvm_open(&kvm_fd, &max) || (cfg.vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, type)) < 0) {
		fprintf(stderr, "bench: no usable /dev/kvm for VM type %lu\n", type);
		return 77;
	}
	caps_probe_vm(cfg.vm_fd, &t);
	caps_choose_model(&t, 0);
	cfg.model = caps_gmem_model(t.model);
	r.model = cfg.model;
	r.mem = mem;
	if (t.model == CAPS_MODEL_NONE || raw_setup(&r, kvm_fd, type) || gmem_create_cfg(&cfg, &l, &gm)) {
		fprintf(stderr, "bench: cannot set up VM type %lu with %llu MiB: %s\n", type,
			(unsigned long long)(mem >> 20), t.why);
		return 77;
	}
	printf("model %s%s; %llu MiB of guest memory; a round: raw and veil passes interleaved, up "
	       "to %u conversions a side or %.1f s\n",
	       gmem_model_name(cfg.model),
	       cfg.model == GMEM_MODEL_HOST ? " (destructive: each conversion punches)" : "",
	       (unsigned long long)(mem >> 20), iters, 2 * FIGURE_S);
	for (i = 0; i < nsizes; i++)
		if (bench_size(&r, gm, sizes[i], iters, rounds))
			return 1;
	gmem_destroy(gm);
	return 0;
}
