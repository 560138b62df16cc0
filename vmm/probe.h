/* Probe VMs: a throwaway default VM with one vCPU, run once with a time bound, to learn what KVM does. */
#ifndef VEIL_PROBE_H
#define VEIL_PROBE_H

#include <linux/kvm.h>
#include <stddef.h>

#include "compiler.h"
#include "gmem.h"

struct probe_vm {
	int vm_fd;
	int vcpu_fd;
	struct gmem *gm;
	struct kvm_run *run;
	size_t run_size;
};

/* 2 MiB of guest_memfd RAM, one vCPU, no irqchip (so HLT exits); what names it in the log. */
int probe_vm_create(int kvm_fd, const char *what, struct probe_vm *pv) __must_check;
void probe_vm_destroy(struct probe_vm *pv);
/* One KVM_RUN; -ETIMEDOUT if it had not returned after timeout_ms (it is kicked out). */
int probe_vm_run(struct probe_vm *pv, unsigned int timeout_ms) __must_check;

#endif
