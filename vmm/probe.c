/* Probe VMs: a throwaway VM run once under a watchdog, so a probe can never hang veil. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "kvm.h"
#include "probe.h"

int probe_vm_create(int kvm_fd, const char *what, struct probe_vm *pv)
{
	struct gmem_layout layout;
	unsigned long type;
	char why[160];
	int ret;

	memset(pv, 0, sizeof(*pv));
	pv->vcpu_fd = -1;
	pv->run = MAP_FAILED;
	pv->vm_fd = -1;
	ret = arch_vm_type(kvm_fd, false, GMEM_MIN_SIZE, &type, why, sizeof(why));
	if (ret)
		return ret;
	pv->vm_fd = kvm_create_vm(kvm_fd, type, what);
	if (pv->vm_fd < 0)
		return pv->vm_fd;
	ret = gmem_layout_compute(arch_mem_map(), GMEM_MIN_SIZE, &layout);
	if (!ret)
		ret = gmem_create(pv->vm_fd, &layout,
				  GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, &pv->gm);
	if (ret)
		goto err;
	pv->vcpu_fd = _kvm_ioctl_val(pv->vm_fd, KVM_CREATE_VCPU, 0);
	ret = pv->vcpu_fd < 0 ? pv->vcpu_fd : kvm_run_map(kvm_fd, pv->vcpu_fd, &pv->run, &pv->run_size);
	if (ret)
		goto err;
	return 0;
err:
	probe_vm_destroy(pv);
	return ret;
}

void probe_vm_destroy(struct probe_vm *pv)
{
	kvm_run_unmap(pv->run, pv->run_size);
	if (pv->vcpu_fd >= 0)
		close(pv->vcpu_fd);
	gmem_destroy(pv->gm);
	if (pv->vm_fd >= 0)
		close(pv->vm_fd);
	pv->run = MAP_FAILED;
	pv->vcpu_fd = pv->vm_fd = -1;
	pv->gm = NULL;
}

static uint64_t probe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void probe_alarm(int sig)
{
	(void)sig;
}

/*
 * The watchdog is an interval timer on this thread's process: SIGALRM, with
 * no SA_RESTART, breaks KVM_RUN out with EINTR after timeout_ms, then every
 * 10 ms (one can land just before KVM_RUN is entered).  No thread, so it
 * works in the forked child the probes run in (caps.c), whose signal
 * handlers are its own; the caller's are restored.
 */
int probe_vm_run(struct probe_vm *pv, unsigned int timeout_ms)
{
	struct itimerval it = {
		.it_value = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000 },
		.it_interval = { 0, 10000 },
	}, off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa = { .sa_handler = probe_alarm }, old_sa;
	sigset_t alrm, old_mask;
	uint64_t t0;
	int ret;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigaction(SIGALRM, &sa, &old_sa);
	pthread_sigmask(SIG_UNBLOCK, &alrm, &old_mask);
	t0 = probe_now_ms();
	if (setitimer(ITIMER_REAL, &it, NULL) < 0) {
		ret = -errno;
		goto out;
	}
	ret = _kvm_ioctl_val(pv->vcpu_fd, KVM_RUN, 0);
	setitimer(ITIMER_REAL, &off, NULL);
	if ((ret == -EINTR || pv->run->exit_reason == KVM_EXIT_INTR) &&
	    probe_now_ms() - t0 >= timeout_ms)
		ret = -ETIMEDOUT;
out:
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGALRM, &old_sa, NULL);
	return ret;
}
