/* Probe VMs: a throwaway VM run once under a watchdog, so a probe can never hang veil. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "kvm.h"
#include "probe.h"

/* The vCPU kick veil uses elsewhere; installed only while a probe runs, then restored. */
#define PROBE_KICK_SIGNAL SIGUSR1

int probe_vm_create(int kvm_fd, const char *what, struct probe_vm *pv)
{
	struct gmem_layout layout;
	int ret;

	memset(pv, 0, sizeof(*pv));
	pv->vcpu_fd = -1;
	pv->run = MAP_FAILED;
	pv->vm_fd = kvm_create_vm(kvm_fd, KVM_X86_DEFAULT_VM, what);
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

struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool fired;
	unsigned int timeout_ms;
	pthread_t target;
	struct kvm_run *run;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += w->timeout_ms / 1000;
	ts.tv_nsec += (long)(w->timeout_ms % 1000) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&w->lock);
	while (!w->done && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	/* Kick until the run has returned: one signal can land just before KVM_RUN. */
	while (!w->done) {
		struct timespec tick = { 0, 10000000L };

		w->fired = true;
		__atomic_store_n(&w->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(w->target, PROBE_KICK_SIGNAL);
		pthread_mutex_unlock(&w->lock);
		nanosleep(&tick, NULL);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void probe_kick_handler(int sig)
{
	(void)sig;
}

int probe_vm_run(struct probe_vm *pv, unsigned int timeout_ms)
{
	struct watchdog w = {
		.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
		.timeout_ms = timeout_ms, .target = pthread_self(), .run = pv->run,
	};
	struct sigaction sa = { .sa_handler = probe_kick_handler }, old_sa;
	sigset_t kick, old_mask;
	pthread_t t;
	int ret;

	sigemptyset(&kick);
	sigaddset(&kick, PROBE_KICK_SIGNAL);
	sigaction(PROBE_KICK_SIGNAL, &sa, &old_sa);
	pthread_sigmask(SIG_UNBLOCK, &kick, &old_mask);
	if (pthread_create(&t, NULL, watchdog_thread, &w)) {
		ret = -EAGAIN;
		goto out;
	}
	ret = _kvm_ioctl_val(pv->vcpu_fd, KVM_RUN, 0);
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(t, NULL);
	if (w.fired && (ret == -EINTR || pv->run->exit_reason == KVM_EXIT_INTR))
		ret = -ETIMEDOUT;
	pv->run->immediate_exit = 0;
out:
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(PROBE_KICK_SIGNAL, &old_sa, NULL);
	return ret;
}
