/*
 * For kvm tests that drive struct vm below libveil: start the VM, wait for
 * it to stop, join it.  The test installs the kick signal's handler, as a
 * program embedding libveil does; the core never does it for anyone.
 */
#ifndef VEIL_TEST_VM_RUN_H
#define VEIL_TEST_VM_RUN_H

#include <signal.h>
#include <string.h>

#include "vm.h"

static void test_vm_kick(int sig)
{
	(void)sig;
}

/* Returns the VM's exit code, or VM_EXIT_FAILURE if it could not be started or joined. */
static inline int test_vm_run(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = test_vm_kick };

	sigaction(vm->cfg.kick_signal, &sa, NULL);
	if (vm_start(vm))
		return VM_EXIT_FAILURE;
	if (vm->cfg.seccomp && vm_confine_caller(vm))
		vm_request_stop(vm, VM_EXIT_FAILURE, "seccomp: loading the main thread's filter");
	while (!vm_wait_stop(vm, 1000))
		;
	if (vm_join(vm, -1))
		return VM_EXIT_FAILURE;
	return vm->exit_code;
}

#endif
