/*
 * tsc-khz: a harness helper that runs on the host, not part of veil.  It prints the host's TSC
 * frequency in kHz, measured against CLOCK_MONOTONIC_RAW over half a second.
 *
 * Why: QEMU TCG gives L1 the host's TSC.  L1 calibrates it early and imprecisely (against an
 * emulated PIT or HPET), then refines it about a second later.  A KVM built into L1's kernel
 * (the shared swprot kernel) initialises in between and keeps the early value as its default
 * guest TSC rate; when the two differ by more than 250 ppm, L1 logs "kvm: user requested TSC
 * rate below hardware speed" at every vCPU creation, and L2's local APIC timer mostly never
 * fires (measured: 0 timer interrupts in L2; poweroff then stalls until RCU's stall detector,
 * and some L2 boots hang).  Passing the true rate as tsc_early_khz= makes both values agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One (time, tsc) pair from the tightest of several tries, so a preemption cannot skew it. */
static void sample(int64_t *ns, uint64_t *tsc)
{
	int64_t best = INT64_MAX;

	for (int i = 0; i < 200; i++) {
		int64_t a = now_ns();
		uint64_t t = __rdtsc();
		int64_t b = now_ns();

		if (b - a < best) {
			best = b - a;
			*ns = a + (b - a) / 2;
			*tsc = t;
		}
	}
}

int main(void)
{
	int64_t n0, n1;
	uint64_t t0, t1;
	struct timespec half = { .tv_nsec = 500000000 };

	sample(&n0, &t0);
	nanosleep(&half, NULL);
	sample(&n1, &t1);
	if (n1 <= n0 || t1 <= t0)
		return 1;
	printf("%.0f\n", (double)(t1 - t0) * 1e6 / (double)(n1 - n0));
	return 0;
}
