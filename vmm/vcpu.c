/* vCPU threads: each one only runs KVM_RUN and hands exits to vcpu_handle_exit(). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exit.h"
#include "kvm.h"
#include "log.h"
#include "sandbox.h"
#include "vm.h"

int vcpu_create(struct vm *vm, unsigned int index, struct vcpu *vcpu)
{
	struct kvm_run *run;
	size_t size;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = _kvm_ioctl_val(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0) {
		ret = vcpu->fd;
		pr_err("KVM_CREATE_VCPU %u: %s", index, strerror(-ret));
		return ret;
	}
	ret = kvm_run_map(vm->kvm_fd, vcpu->fd, &run, &size);
	if (ret)
		goto err;
	vcpu->run = run;
	vcpu->run_size = size;
	return 0;
err:
	pr_err("vCPU %u: mapping kvm_run: %s", index, strerror(-ret));
	close(vcpu->fd);
	vcpu->fd = -1;
	return ret;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	kvm_run_unmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

/*
 * The registers of the vCPU whose exit stops the VM, led by why it stops:
 * printed before the stop is requested, so before any other vCPU's.
 */
static void vcpu_dump(struct vcpu *vcpu, const char *why)
{
	char regs[1024];

	arch_vcpu_dump(vcpu->fd, regs, sizeof(regs));
	/* On AMD, KVM reinitializes the VMCB on a shutdown, so these may be the reset state. */
	pr_err("%s; vCPU %u registers at exit %s%s:\n%s", why, vcpu->index,
	       kvm_exit_reason_name(vcpu->run->exit_reason),
	       vcpu->run->exit_reason == KVM_EXIT_SHUTDOWN ?
		       " (after a triple fault KVM may have reset them already)" : "", regs);
}

/*
 * Another vCPU, kicked out of a failing VM: not the cause (an AP the guest
 * never started sits at the reset vector), so only with -v, and said so.
 */
static void vcpu_dump_bystander(struct vcpu *vcpu)
{
	char regs[1024];

	arch_vcpu_dump(vcpu->fd, regs, sizeof(regs));
	pr_info("vCPU %u, stopped with the failing VM (not the cause), was at:\n%s", vcpu->index,
		regs);
}

/* This vCPU thread will not enter KVM_RUN again: a pause need not wait for it. */
static void vcpu_leave(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->stop_lock);
	vm->vcpus_active--;
	pthread_cond_broadcast(&vm->stop_cond);
	pthread_mutex_unlock(&vm->stop_lock);
}

/* Waits until the VM stops: for a vCPU that can never run again. */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->stop_lock);
	while (!vm->stopping)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);
}

/*
 * A pause asked for: wait outside KVM_RUN until it is lifted or the VM
 * stops.  The kick that brought us here set immediate_exit; clear it for
 * the next KVM_RUN (a stop's kick racing this is repeated by vm_join()).
 */
static void vcpu_pause_point(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->pause_req && !vm->stopping) {
		vm->vcpus_parked++;
		pthread_cond_broadcast(&vm->stop_cond);
		while (vm->pause_req && !vm->stopping)
			pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
		vm->vcpus_parked--;
	}
	if (!vm->stopping)
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->stop_lock);
}

/*
 * KVM_RUN broke out with EINTR or EAGAIN (a kick): counted, and timed with
 * profiling.  *t is when the time being accounted started.
 */
static void vcpu_kicked(struct vcpu *vcpu, bool profile, uint64_t *t)
{
	uint64_t now;

	__atomic_store_n(&vcpu->prof.count[VCPU_EXIT_KICK],
			 __atomic_load_n(&vcpu->prof.count[VCPU_EXIT_KICK], __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	if (!profile)
		return;
	now = vm_now_ns();
	vcpu_profile_exit(vcpu, VCPU_EXIT_KICK, now - *t, 0);
	*t = now;
}

static void vcpu_loop(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	const bool profile = vm->profile; /* fixed before the start: one load, not one per exit */
	uint64_t t = 0, t_exit = 0;
	struct vcpu_exit r;

	vm_mark_time(vm, &vm->t_first_run_ns);
	if (profile)
		t = vm_now_ns();
	while (!vm_stopping(vm)) {
		if (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE)) {
			vcpu_pause_point(vcpu);
			if (profile)
				t = vm_now_ns(); /* a pause is neither guest time nor veil's work */
			continue;
		}
		if (__kvm_ioctl_val(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu_kicked(vcpu, profile, &t);
				/* Kicked out of a failing VM: show where this vCPU was. */
				if (vm_stopping(vm) && vm->exit_code == VM_EXIT_FAILURE)
					vcpu_dump_bystander(vcpu);
				continue;
			}
			/* A memory fault is reported as EFAULT with the exit filled in. */
			if (!(errno == EFAULT && vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT)) {
				char why[96];

				snprintf(why, sizeof(why), "vCPU %u: KVM_RUN: %s", vcpu->index,
					 strerror(errno));
				vcpu_dump(vcpu, why);
				vm_request_stop(vm, VM_EXIT_FAILURE, "%s", why);
				return;
			}
		}
		if (profile)
			t_exit = vm_now_ns();
		r = vcpu_handle_exit(vcpu);
		if (profile) {
			uint64_t now = vm_now_ns();

			vcpu_profile_exit(vcpu, vcpu_exit_kind(vcpu->run->exit_reason), t_exit - t,
					  now - t_exit);
			t = now;
		}
		if (r.action == VCPU_STOP_DUMP)
			vcpu_dump(vcpu, r.reason);
		if (r.action == VCPU_STOP || r.action == VCPU_STOP_DUMP)
			vm_request_stop(vm, r.code, "%s", r.reason);
		if (r.action == VCPU_PARK) {
			vcpu_leave(vcpu);
			vcpu_park(vcpu);
			return;
		}
		if (r.action != VCPU_CONTINUE)
			break;
	}
	vcpu_leave(vcpu);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t kick;

	/*
	 * Threads start with every signal blocked (vmm_thread_start()).  Only
	 * the kick is let through: its handler has no SA_RESTART, so it breaks
	 * KVM_RUN out with EINTR, and immediate_exit covers a kick that lands
	 * just before KVM_RUN is entered.
	 */
	sigemptyset(&kick);
	sigaddset(&kick, vcpu->vm->cfg.kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	vcpu_loop(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	struct vmm_sandbox_fds fds;
	int ret;

	snprintf(vcpu->label, sizeof(vcpu->label), "vCPU %u", vcpu->index);
	ret = vmm_sandbox_fds_of(vcpu->vm, vcpu, &fds);
	if (ret)
		goto err;
	pthread_mutex_lock(&vcpu->vm->stop_lock);
	vcpu->vm->vcpus_active++;
	pthread_mutex_unlock(&vcpu->vm->stop_lock);
	ret = vmm_thread_start(&vcpu->thread, VMM_THREAD_VCPU, vcpu->vm->cfg.seccomp ? &fds : NULL,
			       vcpu->label, vcpu_thread, vcpu);
	if (ret) {
		pthread_mutex_lock(&vcpu->vm->stop_lock);
		vcpu->vm->vcpus_active--;
		pthread_mutex_unlock(&vcpu->vm->stop_lock);
		goto err;
	}
	vcpu->started = true;
	return 0;
err:
	pr_err("starting vCPU %u: %s", vcpu->index, strerror(-ret));
	return ret;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, vcpu->vm->cfg.kick_signal);
}
