/* `veil run --convert-stress`: host round trips over guest RAM and live I/O buffers. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "convstress.h"
#include "gmem.h"
#include "log.h"
#include "veil_boot.h"
#include "virtio_devs.h"
#include "vm.h"

#define MAX_PAGES 16

/*
 * A guest disk buffer, page-aligned: the latest request's (live) or an
 * earlier one's; 0 before any disk I/O.
 */
static uint64_t io_gpa(struct vm *vm, uint64_t x, bool live)
{
	struct vm_virtio *v = vm->virtio;
	struct virtio_blk *blk;

	if (!v || !v->nr_blk)
		return 0;
	blk = &v->blk[x % v->nr_blk]->blk;
	return (live ? virtio_blk_last_gpa(blk) : virtio_blk_recent_gpa(blk, (unsigned int)(x >> 8))) &
	       ~(GMEM_PAGE_SIZE - 1);
}

/*
 * Only guest data pages, the disk's buffers, are round-tripped.  Code and
 * page tables must stay shared: KVM reads them through the host mapping
 * when it decodes an intercepted instruction (on the nested platform, with
 * no next-RIP help, even a CPUID), and a private page there made a Linux
 * guest die with "instruction emulation failed" in its decompressor.
 */
static void *convstress_main(void *arg)
{
	struct convstress *cs = arg;
	const struct gmem_layout *l = gmem_get_layout(cs->vm->gmem);
	uint64_t x = cs->seed;

	while (!vm_stopping(cs->vm)) {
		struct timespec idle = { 0, 1000000 };
		struct gmem_conv_result res;
		uint64_t pages, gpa;
		bool live;
		int ret;

		x = veil_mix64(x + 1);
		live = x & 1;
		pages = 1 + (x >> 40) % MAX_PAGES;
		gpa = io_gpa(cs->vm, x >> 1, live);
		if (!gpa) {
			nanosleep(&idle, NULL); /* no disk I/O yet */
			continue;
		}
		/* Stay inside the RAM range the address came from. */
		while (pages > 1 && !gmem_region_contains(l, gpa, pages * GMEM_PAGE_SIZE))
			pages--;
		ret = gmem_roundtrip(cs->vm->gmem, gpa, pages * GMEM_PAGE_SIZE, &res);
		cs->eagain += res.eagain;
		if (!ret) {
			cs->roundtrips++;
			cs->over_io += live;
			cs->waited += res.retries > res.eagain; /* a drain counts one retry */
		} else if (ret == -EBUSY) {
			cs->busy++;
		} else if (ret != -EINVAL) { /* -EINVAL: not one RAM range; pick again */
			if (cs->failures++ == 0)
				snprintf(cs->first_failure, sizeof(cs->first_failure),
					 "GPA 0x%llx+%llu pages: %s%s%s", (unsigned long long)gpa,
					 (unsigned long long)pages, strerror(-ret),
					 res.culprit[0] ? ": " : "", res.culprit);
		}
		sched_yield();
	}
	return NULL;
}

int convstress_start(struct convstress *cs, struct vm *vm, uint64_t seed)
{
	enum gmem_model m = gmem_model(vm->gmem);
	sigset_t all, old;
	int ret;

	memset(cs, 0, sizeof(*cs));
	cs->vm = vm;
	cs->seed = seed;
	if (m == GMEM_MODEL_OUT_OF_PLACE || vm->cfg.destructive)
		return -EOPNOTSUPP;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&cs->thread, NULL, convstress_main, cs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	cs->started = ret == 0;
	return ret;
}

void convstress_stop(struct convstress *cs)
{
	if (cs->started)
		pthread_join(cs->thread, NULL);
	cs->started = false;
}

void convstress_summary(const struct convstress *cs, FILE *f)
{
	fprintf(f, "veil: convert-stress: %llu round trips (%llu over the latest disk request's buffer), "
		"%llu waited for pins, %llu EAGAIN retried, %llu left to the guest, %llu failed%s%s\n",
		(unsigned long long)cs->roundtrips, (unsigned long long)cs->over_io,
		(unsigned long long)cs->waited, (unsigned long long)cs->eagain,
		(unsigned long long)cs->busy, (unsigned long long)cs->failures,
		cs->failures ? ": first: " : "", cs->first_failure);
}
