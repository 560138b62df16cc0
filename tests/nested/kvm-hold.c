/*
 * kvm-hold: a harness helper for L1, not part of veil.  It creates one KVM VM with an in-kernel
 * irqchip and one vCPU that never runs, says so, and sleeps until killed.
 *
 * Why: creating and destroying a VM flips static keys in L1's kernel (preempt_notifier_key,
 * which is tested inside __schedule, and KVM's lapic keys).  Each flip patches live kernel text
 * through int3, and QEMU's multi-threaded TCG sometimes lets another L1 vCPU run the stale int3,
 * so L1 oopses with "int3" in __schedule (PLATFORM.md §B; seen here right after a veil VM was
 * destroyed).  With this VM held open, the keys flip once, at L1 boot, while L1 is quiet, and
 * veil's VMs only move the counts between 1 and 2.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("kvm-hold: /dev/kvm");
		return 1;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		perror("kvm-hold: KVM_CREATE_VM");
		return 1;
	}
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		perror("kvm-hold: KVM_CREATE_IRQCHIP");
	if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0)
		perror("kvm-hold: KVM_CREATE_VCPU");
	printf("kvm-hold: holding a VM\n");
	fflush(stdout);
	for (;;)
		pause();
}
