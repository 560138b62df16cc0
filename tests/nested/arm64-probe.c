/*
 * The arm64 nested platform's own check, run as L1's init step (tests/nested/arm64.sh): what
 * the L1 kernel's KVM offers veil, and one tiny guest run entirely from guest_memfd.
 *
 * The guest (a few instructions, MMU off, at the start of RAM) reads a word the host wrote
 * through its mapping of the guest_memfd, writes it to an MMIO address (an exit), reads a
 * second word after the host has made its own mapping PROT_NONE (the revocation question:
 * does KVM fault guest pages from the file, not through the VMM's mapping?), writes that to
 * MMIO, stores a word the host reads back, and powers off with PSCI SYSTEM_OFF.
 *
 * Output: "ARM64-PROBE: " lines, and the exit code 0 only when every step behaved.
 * Built static with Debian's aarch64-linux-gnu-gcc; uses only the kernel's uAPI.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_uapi.h"

#ifndef KVM_CAP_ARM_VM_IPA_SIZE
#define KVM_CAP_ARM_VM_IPA_SIZE 165
#endif

#define RAM_GPA 0x80000000ULL
#define RAM_SIZE (2ULL << 20)
#define MMIO_GPA 0x09000000ULL
#define IN1_OFF 0x2000   /* host -> guest, read while the host mapping is live */
#define IN2_OFF 0x3000   /* host -> guest, read after the host mapping is revoked */
#define OUT_OFF 0x4000   /* guest -> host */
#define PSCI_SYSTEM_OFF 0x84000008U

/*
 * The guest: position-independent, immediates only.  x5 = RAM base.  The labels are global
 * (and hidden): PIE code reaches them through the GOT, and GOT relocations against local
 * labels collapse onto one section-symbol entry, so every label would read as the first.
 */
__asm__(".pushsection .rodata\n"
	".global probe_guest, probe_guest_len\n"
	".hidden probe_guest, probe_guest_len\n"
	".balign 4\n"
	"probe_guest:\n"
	"  movz x5, #0x8000, lsl #16\n"
	"  movz x0, #0x0900, lsl #16\n"
	"  ldr  x1, [x5, #0x2000]\n"
	"  str  x1, [x0]\n"          /* exit 1: the first word */
	"  ldr  x1, [x5, #0x3000]\n"
	"  str  x1, [x0]\n"          /* exit 2: the second word, host mapping revoked */
	"  movz x2, #0xcafe\n"
	"  movk x2, #0xf00d, lsl #16\n"
	"  str  x2, [x5, #0x4000]\n"
	"  movz w0, #0x0008\n"
	"  movk w0, #0x8400, lsl #16\n"
	"  hvc  #0\n"               /* PSCI SYSTEM_OFF: a system event exit */
	"1: b 1b\n"
	"probe_guest_end:\n"
	".balign 8\n"
	"probe_guest_len: .quad probe_guest_end - probe_guest\n"
	".popsection\n");
extern const uint8_t probe_guest[];
extern const uint64_t probe_guest_len;

#define say(...) (printf("ARM64-PROBE: " __VA_ARGS__), fflush(stdout))

static void on_alarm(int sig)
{
	(void)sig; /* only to interrupt KVM_RUN: a guest that loops fails the probe, not L1 */
}

static const char *volatile step = "start";

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	printf("ARM64-PROBE: signal %d (code %d) at address %p during: %s\n", sig, si->si_code,
	       si->si_addr, step);
	fflush(stdout);
	_exit(1);
}

static uint64_t core_reg(size_t off)
{
	return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (off / sizeof(uint32_t));
}

static int run_until(int vcpu, struct kvm_run *run, unsigned int want, const char *what)
{
	if (ioctl(vcpu, KVM_RUN, 0) < 0) {
		say("KVM_RUN (%s): %s\n", what, strerror(errno));
		return -1;
	}
	if (run->exit_reason != want) {
		say("%s: exit reason %u, expected %u\n", what, run->exit_reason, want);
		return -1;
	}
	return 0;
}

static int mmio_word(int vcpu, struct kvm_run *run, uint64_t *val, const char *what)
{
	if (run_until(vcpu, run, KVM_EXIT_MMIO, what))
		return -1;
	if (!run->mmio.is_write || run->mmio.phys_addr != MMIO_GPA || run->mmio.len != 8) {
		say("%s: MMIO %s of %u bytes at 0x%llx\n", what, run->mmio.is_write ? "write" : "read",
		    run->mmio.len, (unsigned long long)run->mmio.phys_addr);
		return -1;
	}
	memcpy(val, run->mmio.data, 8);
	return 0;
}

int main(void)
{
	int kvm, vm, gmem, vcpu, ipa, flags, run_size, ok = 1;
	struct kvm_vcpu_init init;
	struct kvm_run *run;
	uint64_t v, pc = RAM_GPA;
	uint8_t *ram;

	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */

	struct sigaction sv = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGSEGV, &sv, NULL);
	sigaction(SIGBUS, &sv, NULL);
	alarm(60);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		say("no /dev/kvm: %s\n", strerror(errno));
		return 1;
	}
	ipa = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	vm = ioctl(kvm, KVM_CREATE_VM, 0); /* type 0: the default 40-bit IPA space */
	flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	say("api %d, ipa_size %d, guest_memfd %d, guest_memfd_flags %d, user_memory2 %d, "
	    "memory_attributes %d, psci_0_2 %d, vm_types %d\n",
	    ioctl(kvm, KVM_GET_API_VERSION, 0), ipa, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD),
	    flags, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2),
	    ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES),
	    ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2),
	    ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES));
	if (vm < 0 || flags < 0 || (flags & 3) != 3) {
		say("need a VM and guest_memfd with MMAP|INIT_SHARED\n");
		return 1;
	}

	struct kvm_create_guest_memfd cg = {
		.size = RAM_SIZE, .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
	};
	gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &cg);
	ram = gmem < 0 ? MAP_FAILED : mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	if (ram == MAP_FAILED) {
		say("guest_memfd or its mmap: %s\n", strerror(errno));
		return 1;
	}
	struct kvm_userspace_memory_region2 slot = {
		.slot = 0, .flags = KVM_MEM_GUEST_MEMFD, .guest_phys_addr = RAM_GPA,
		.memory_size = RAM_SIZE, .userspace_addr = (uintptr_t)ram, .guest_memfd = gmem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &slot)) {
		say("KVM_SET_USER_MEMORY_REGION2: %s\n", strerror(errno));
		return 1;
	}
	printf("ARM64-PROBE: guest_memfd mapped at %p, guest at %p, %zu bytes\n", (void *)ram,
	       (const void *)probe_guest, (size_t)probe_guest_len);
	step = "copying the guest into guest_memfd";
	memcpy(ram, probe_guest, (size_t)probe_guest_len);
	v = 0x1111222233334444ULL;
	memcpy(ram + IN1_OFF, &v, 8);
	v = 0x5555666677778888ULL;
	memcpy(ram + IN2_OFF, &v, 8);

	step = "creating the vCPU";
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = vcpu < 0 || run_size < 0 ? MAP_FAILED
		: mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init)) {
		say("vCPU: %s\n", strerror(errno));
		return 1;
	}
	init.features[0] |= 1U << KVM_ARM_VCPU_PSCI_0_2;
	struct kvm_one_reg reg = { .id = core_reg(offsetof(struct kvm_regs, regs.pc)), .addr = (uintptr_t)&pc };
	if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) || ioctl(vcpu, KVM_SET_ONE_REG, &reg)) {
		say("KVM_ARM_VCPU_INIT / PC: %s\n", strerror(errno));
		return 1;
	}
	say("vCPU target %u, guest %zu bytes at 0x%llx\n", init.target,
	    (size_t)probe_guest_len, RAM_GPA);

	step = "running the guest";
	if (mmio_word(vcpu, run, &v, "first word"))
		return 1;
	say("guest read 0x%llx through guest_memfd (host wrote 0x1111222233334444)\n", (unsigned long long)v);
	ok &= v == 0x1111222233334444ULL;

	/* Revoke the VMM's own mapping, as veil does for private pages where it is safe. */
	if (mprotect(ram, RAM_SIZE, PROT_NONE)) {
		say("mprotect: %s\n", strerror(errno));
		return 1;
	}
	if (mmio_word(vcpu, run, &v, "second word")) {
		say("revocation: the guest did not get past its read with the host mapping PROT_NONE\n");
		return 1;
	}
	say("revocation: guest read 0x%llx with the host mapping PROT_NONE (host wrote 0x5555666677778888): %s\n",
	    (unsigned long long)v, v == 0x5555666677778888ULL ? "safe" : "WRONG DATA");
	ok &= v == 0x5555666677778888ULL;
	mprotect(ram, RAM_SIZE, PROT_READ | PROT_WRITE);

	if (run_until(vcpu, run, KVM_EXIT_SYSTEM_EVENT, "PSCI SYSTEM_OFF"))
		return 1;
	memcpy(&v, ram + OUT_OFF, 8);
	say("system event type %u (shutdown is %u); guest wrote 0x%llx\n", run->system_event.type,
	    KVM_SYSTEM_EVENT_SHUTDOWN, (unsigned long long)v);
	ok &= run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN && v == 0xf00dcafeULL;
	say("%s\n", ok ? "all checks passed" : "FAILED");
	return ok ? 0 : 1;
}
