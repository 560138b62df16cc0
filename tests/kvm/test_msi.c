/*
 * kvm: MSI routes on a real KVM (vmm/msi.c's own ops): every message reaches
 * the vCPU's in-kernel LAPIC with the vector the guest last programmed, be it
 * sent directly or through the irqfd, and a guest that reprograms the vector
 * before each message does not get a KVM_SET_GSI_ROUTING per message.  The
 * vCPU never runs: its LAPIC's IRR shows what was delivered.
 */
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm_uapi.h"
#include "test.h"
#include "vm.h"

#define APIC_SVR 0xf0
#define APIC_IRR 0x200
#define MSI_ADDR 0xfee00000u /* APIC ID 0, physical */

static int get_lapic(struct vm *vm, struct kvm_lapic_state *s)
{
	return ioctl(vm->vcpus[0].fd, KVM_GET_LAPIC, s);
}

/* Software-enables the LAPIC (an APIC disabled so drops fixed interrupts) and clears its IRR. */
static int reset_lapic(struct vm *vm)
{
	struct kvm_lapic_state s;
	uint32_t svr;

	if (get_lapic(vm, &s))
		return -1;
	memcpy(&svr, s.regs + APIC_SVR, 4);
	svr |= 0x1ff;
	memcpy(s.regs + APIC_SVR, &svr, 4);
	for (int i = 0; i < 8; i++)
		memset(s.regs + APIC_IRR + 0x10 * i, 0, 4);
	return ioctl(vm->vcpus[0].fd, KVM_SET_LAPIC, &s);
}

/* The vector pending in the IRR after a message (irqfd injection may lag), or -1. */
static int pending_vector(struct vm *vm)
{
	struct kvm_lapic_state s;
	struct timespec ms = { 0, 1000000 };

	for (int tries = 0; tries < 1000; tries++, nanosleep(&ms, NULL)) {
		if (get_lapic(vm, &s))
			return -1;
		for (int v = 255; v >= 16; v--) {
			uint32_t w;

			memcpy(&w, s.regs + APIC_IRR + 0x10 * (v / 32), 4);
			if (w & 1u << (v % 32))
				return v;
		}
	}
	return -1;
}

/* One message from source h with vector v, settled as the I/O thread would; delivered? */
static void deliver(struct vm *vm, int h, uint32_t v)
{
	CHECK_EQ(reset_lapic(vm), 0);
	CHECK_EQ(vm_msi_send(&vm->msi, h, MSI_ADDR, v), 0);
	CHECK_EQ(pending_vector(vm), (int)v);
	CHECK_EQ(vm_msi_settle(&vm->msi), 0);
}

int main(void)
{
	struct vm_config cfg = { .nr_cpus = 1, .mem_size = 16ULL << 20, .console_fd = STDOUT_FILENO };
	struct vm_msi_stats st;
	struct vm *vm;
	int kvm_fd, h, i;
	unsigned int max;

	if (kvm_open(&kvm_fd, &max))
		SKIP("no usable /dev/kvm");
	close(kvm_fd);
	if (vm_create(&cfg, &vm))
		SKIP("no VM");
	if (!vm->nr_vcpus || reset_lapic(vm))
		SKIP("no in-kernel LAPIC to read back");
	h = vm_msi_source(&vm->msi);
	CHECK(h >= 0);
	deliver(vm, h, 0x41); /* directly, then routed */
	st = vm_msi_stats(&vm->msi);
	CHECK_EQ(st.direct, 1);
	CHECK_EQ(st.reroutes, 1);
	deliver(vm, h, 0x41); /* through the irqfd */
	CHECK_EQ(vm_msi_stats(&vm->msi).sent, 1);
	/* Reprogrammed before each of 50 messages: each arrives with its vector. */
	for (i = 0; i < 50; i++)
		deliver(vm, h, 0x50 + (uint32_t)(i % 2));
	st = vm_msi_stats(&vm->msi);
	CHECK(st.reroutes <= 2); /* one per message before: 51 */
	/* Steady again: the route follows, and the irqfd carries the new vector. */
	for (i = 0; i < 8; i++)
		deliver(vm, h, 0x60);
	st = vm_msi_stats(&vm->msi);
	CHECK(st.sent >= 2);
	CHECK_EQ(st.errors, 0);
	fprintf(stderr, "msi: %llu through irqfd, %llu direct, %llu route updates\n",
		(unsigned long long)st.sent, (unsigned long long)st.direct,
		(unsigned long long)st.reroutes);
	vm_destroy(vm);
	return test_done("msi");
}
