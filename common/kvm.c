/* The leaf KVM layer: opens /dev/kvm, names failed ioctls and exits, maps kvm_run. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "log.h"

int kvm_ret_named(int ret, const char *name)
{
	if (ret >= 0)
		return ret;
	ret = -errno;
	pr_err("%s: %s", name, strerror(-ret));
	return ret;
}

int64_t kvm_check_extension(int fd, long cap)
{
	int r = __kvm_ioctl_val(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static int kvm_check(int fd, int *kvm_fd, unsigned int *max_vcpus)
{
	int ver, max;

	if (fd < 0)
		return -errno;
	ver = __kvm_ioctl_val(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		close(fd);
		return -EPROTO;
	}
	max = (int)kvm_check_extension(fd, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = (int)kvm_check_extension(fd, KVM_CAP_NR_VCPUS);
	*max_vcpus = max > 0 ? (unsigned int)max : 4;
	*kvm_fd = fd;
	return 0;
}

int kvm_open(int *kvm_fd, unsigned int *max_vcpus)
{
	return kvm_check(open("/dev/kvm", O_RDWR | O_CLOEXEC), kvm_fd, max_vcpus);
}

int kvm_dup(int from, int *kvm_fd, unsigned int *max_vcpus)
{
	return kvm_check(fcntl(from, F_DUPFD_CLOEXEC, 0), kvm_fd, max_vcpus);
}

int kvm_create_vm(int kvm_fd, unsigned long type, const char *what)
{
	int fd = _kvm_ioctl_val(kvm_fd, KVM_CREATE_VM, type);

	if (fd >= 0)
		pr_info("%s created (KVM_CREATE_VM type %lu)", what, type);
	return fd;
}

int kvm_run_map(int kvm_fd, int vcpu_fd, struct kvm_run **run, size_t *size)
{
	int n = _kvm_ioctl_val(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	void *p;

	if (n < 0)
		return n;
	if ((size_t)n < sizeof(struct kvm_run))
		return -EINVAL;
	p = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*run = p;
	*size = (size_t)n;
	return 0;
}

void kvm_run_unmap(struct kvm_run *run, size_t size)
{
	if (run && run != MAP_FAILED)
		munmap(run, size);
}

const char *kvm_exit_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO", [KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT", [KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN", [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY", [KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR", [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI", [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_OSI] = "OSI", [KVM_EXIT_PAPR_HCALL] = "PAPR_HCALL",
		[KVM_EXIT_WATCHDOG] = "WATCHDOG", [KVM_EXIT_EPR] = "EPR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT", [KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
		[KVM_EXIT_HYPERV] = "HYPERV", [KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
		[KVM_EXIT_X86_WRMSR] = "X86_WRMSR", [KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
		[KVM_EXIT_AP_RESET_HOLD] = "AP_RESET_HOLD", [KVM_EXIT_X86_BUS_LOCK] = "X86_BUS_LOCK",
		[KVM_EXIT_XEN] = "XEN", [KVM_EXIT_RISCV_SBI] = "RISCV_SBI",
		[KVM_EXIT_NOTIFY] = "NOTIFY", [KVM_EXIT_MEMORY_FAULT] = "MEMORY_FAULT",
	};

	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "(unknown exit reason)";
}
