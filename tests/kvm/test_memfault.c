/*
 * kvm (SW_PROTECTED VMs only): KVM_EXIT_MEMORY_FAULT provoked the way the
 * kernel's private_mem_kvm_exits_test provokes it, and veil stopping cleanly
 * with a precise error (exit code 1, the GPA and the direction named).
 *
 * Both cases put a 2 MiB slot of the test's own at TEST_GPA, outside veil's
 * RAM, mark it private, and have the peek firmware read from it:
 *   - "not private": the slot has no guest_memfd, so a private access cannot
 *     be served;
 *   - "deleted": the slot had a guest_memfd but was deleted after the
 *     attribute was set.
 * The raw memslot ioctls belong to the test: it sabotages the VM on purpose.
 *
 * Skips (77) without /dev/kvm or without KVM_X86_SW_PROTECTED_VM.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fw.h"
#include "fw_blobs.h"
#include "kvm_uapi.h"
#include "test.h"
#include "vm_run.h"
#include "veil_peek.h"
#include "vm.h"

#define TEST_GPA 0x8000000ULL /* 128 MiB: above the 64 MiB of RAM, below mapped_top */
#define TEST_SIZE (2ULL << 20)
#define TEST_SLOT 100
#define READ_GPA (TEST_GPA + 0x1000)

struct peek_dev {
	unsigned int op_reads;
};

/* One guest read of READ_GPA, then DONE (never reached: the read faults). */
static int peek_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct peek_dev *d = opaque;
	uint32_t v = 0;

	if (len != 4)
		return -EINVAL;
	switch (off + PEEK_PORT_OP) {
	case PEEK_PORT_OP: v = d->op_reads++ == 0 ? PEEK_OP_READ : PEEK_OP_DONE; break;
	case PEEK_PORT_ADDR_LO: v = (uint32_t)READ_GPA; break;
	case PEEK_PORT_ADDR_HI: v = (uint32_t)(READ_GPA >> 32); break;
	default: return -EINVAL;
	}
	*(uint32_t *)data = v;
	return 0;
}

static int peek_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	(void)opaque, (void)off, (void)data, (void)len;
	return 0; /* the value read: the test fails below if the read ever completes */
}

static const struct bus_device_ops peek_ops = { .read = peek_read, .write = peek_write };

static int set_private(int vm_fd)
{
	struct kvm_memory_attributes a = {
		.address = TEST_GPA, .size = TEST_SIZE, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
	};

	return ioctl(vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &a) < 0 ? -errno : 0;
}

/* Adds the test slot, sabotaged as the case says; 0 or -errno. */
static int sabotage(int vm_fd, bool deleted, void *shared)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = TEST_SLOT, .guest_phys_addr = TEST_GPA, .memory_size = TEST_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)shared,
	};
	struct kvm_create_guest_memfd g = { .size = TEST_SIZE };
	int gfd = -1, ret;

	if (deleted) {
		gfd = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &g);
		if (gfd < 0)
			return -errno;
		r.flags = KVM_MEM_GUEST_MEMFD;
		r.guest_memfd = (uint32_t)gfd;
	}
	ret = ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &r) < 0 ? -errno : 0;
	if (!ret)
		ret = set_private(vm_fd);
	if (!ret && deleted) {
		r.memory_size = 0;
		ret = ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &r) < 0 ? -errno : 0;
	}
	if (gfd >= 0)
		close(gfd);
	return ret;
}

static void run_case(const char *name, bool deleted)
{
	struct vm_config cfg = {
		.nr_cpus = 1, .mem_size = 64ULL << 20, .vm_type = KVM_X86_SW_PROTECTED_VM,
		.console_fd = STDOUT_FILENO, .console_in_fd = -1,
	};
	struct fw_image img = { .name = "peek", .data = fw_blob_peek, .size = 0 };
	char want[96];
	struct peek_dev dev = { 0 };
	struct fw_boot fb;
	struct vm *vm;
	void *shared;
	int ret;

	img.size = fw_blob_peek_size;
	fprintf(stderr, "case %s\n", name);
	ret = vm_create(&cfg, &vm);
	CHECK_EQ(ret, 0);
	if (ret)
		return;
	shared = mmap(NULL, TEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	if (shared == MAP_FAILED)
		goto out_vm;
	CHECK_EQ(bus_register(vm->bus, BUS_PIO, PEEK_PORT_OP, PEEK_PORT_VAL_HI + 4 - PEEK_PORT_OP,
			      &peek_ops, &dev, "peek"), 0);
	CHECK_EQ(fw_boot(vm, &img, &(struct fw_boot_opts){ .seed = 7 }, &fb), 0);
	ret = sabotage(vm->vm_fd, deleted, shared);
	if (ret)
		fprintf(stderr, "sabotage: %s\n", strerror(-ret));
	CHECK_EQ(ret, 0);
	if (ret)
		goto out_map;

	/* veil stops with exit code 1 and says what faulted, and where. */
	CHECK_EQ(test_vm_run(vm), VM_EXIT_FAILURE);
	fprintf(stderr, "stop: %s\n", vm->stop_reason);
	snprintf(want, sizeof(want), "memory fault at GPA 0x%llx", (unsigned long long)READ_GPA);
	CHECK_STR_CONTAINS(vm->stop_reason, want);
	CHECK_STR_CONTAINS(vm->stop_reason, "guest wanted it private");
	CHECK_STR_CONTAINS(vm->stop_reason, "not guest RAM");
	/* The read never completed: the firmware asked for one operation only. */
	CHECK_EQ(dev.op_reads, 1);
out_map:
	munmap(shared, TEST_SIZE);
out_vm:
	vm_destroy(vm);
}

int main(void)
{
	unsigned int max;
	int kvm_fd, types;

	if (kvm_open(&kvm_fd, &max))
		SKIP("no usable /dev/kvm");
	types = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
	close(kvm_fd);
	if (types <= 0 || !(types & (1 << KVM_X86_SW_PROTECTED_VM)))
		SKIP("this KVM has no KVM_X86_SW_PROTECTED_VM (KVM_CAP_VM_TYPES 0x%x)",
		     types > 0 ? types : 0);
	run_case("not private: a private attribute over a slot without guest_memfd", false);
	run_case("deleted: a private guest_memfd slot deleted before the access", true);
	return test_done("memfault");
}
