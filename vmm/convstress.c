/* `veil run --convert-stress`: host round trips over guest RAM and live I/O buffers. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "convstress.h"
#include "arch.h"
#include "gmem.h"
#include "log.h"
#include "sandbox.h"
#include "veil_boot.h"
#include "virtio_devs.h"
#include "vm.h"


/* The pages of a disk request's buffer, likely in flight; false before any disk I/O. */
static bool live_buffer(struct vm *vm, uint64_t x, uint64_t *gpa, uint64_t *pages)
{
	return vm_disk_last_buffer(vm, x, gpa, pages);
}

/*
 * Two kinds of target.  Half the round trips go over the pages of the disk
 * request started last, which are live I/O buffers while it is in flight
 * (the round trip then waits for its pin).  The other half go over RAM the
 * guest does not use, disjoint from any I/O (I4).  Nothing else: code and
 * page tables must stay shared, because KVM reads them through the host
 * mapping to decode an intercepted instruction.  On the nested platform even
 * a CPUID needs that; a Linux guest whose RAM was round-tripped at random
 * died in its decompressor with "instruction emulation failed", and one
 * whose disk buffers' neighbouring pages were included died the same way
 * in a user process.
 */
static void *convstress_main(void *arg)
{
	struct convstress *cs = arg;
	uint64_t x = cs->seed, spare = 0, spare_len = 0;

	if (arch_unused_ram(&spare, &spare_len))
		spare_len = 0;
	while (!vm_stopping(cs->vm)) {
		struct timespec idle = { 0, 1000000 };
		struct gmem_conv_result res;
		uint64_t pages = 0, gpa = 0;
		bool live;
		int ret;

		x = veil_mix64(x + 1);
		live = (x & 1) || !spare_len;
		if (live) {
			if (!live_buffer(cs->vm, x >> 1, &gpa, &pages)) {
				nanosleep(&idle, NULL); /* no disk I/O yet */
				continue;
			}
		} else {
			pages = 1 + (x >> 40) % 8;
			gpa = spare + ((x >> 8) % (spare_len / GMEM_PAGE_SIZE - pages + 1)) *
				      GMEM_PAGE_SIZE;
		}
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
	struct vmm_sandbox_fds fds;
	int ret;

	memset(cs, 0, sizeof(*cs));
	cs->vm = vm;
	cs->seed = seed;
	if (m == GMEM_MODEL_OUT_OF_PLACE || vm->cfg.destructive)
		return -EOPNOTSUPP;
	ret = vmm_sandbox_fds_of(vm, NULL, &fds);
	if (!ret)
		ret = vmm_thread_start(&cs->thread, VMM_THREAD_WORKER,
				       vm->cfg.seccomp ? &fds : NULL, "convert-stress",
				       convstress_main, cs);
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
