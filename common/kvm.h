/* The leaf KVM layer: /dev/kvm, size-checked ioctls in tiers, exit names, kvm_run pages. */
#ifndef VEIL_KVM_H
#define VEIL_KVM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "compiler.h"
#include "kvm_uapi.h"

/*
 * ioctls in the KVM selftests' tiers (tools/testing/selftests/kvm/include/
 * kvm_util.h), for any fd (/dev/kvm, VM, vCPU, guest_memfd, block device):
 *
 *   __kvm_ioctl(fd, cmd, arg)  the raw result: >= 0, or -1 with errno set;
 *   _kvm_ioctl(fd, cmd, arg)   the result, or -errno: for callers that expect
 *                              failures (probes, fallbacks) or name their own;
 *   kvm_ioctl(fd, cmd, arg)    as _kvm_ioctl, and a failure is logged with the
 *                              ioctl's name.
 *
 * arg points at the ioctl's argument, and its size must be the one encoded in
 * cmd: a wrong struct (a header with entries after it, say) fails the build,
 * not the ioctl.  Pass the header of a variable-length argument.  The _val
 * forms are for ioctls that take a plain value (_IO), such as KVM_CREATE_VM.
 */
#define kvm_check_arg_size(cmd, arg)                                                   \
	_Static_assert(!_IOC_SIZE(cmd) || sizeof(*(arg)) == _IOC_SIZE(cmd),            \
		       #cmd ": the argument's size is not the ioctl's")
#define kvm_check_val(cmd) _Static_assert(_IOC_SIZE(cmd) == 0, #cmd " takes a pointer, not a value")

#define __kvm_ioctl(fd, cmd, arg) ({ kvm_check_arg_size(cmd, arg); ioctl(fd, cmd, arg); })
#define __kvm_ioctl_val(fd, cmd, val) ({ kvm_check_val(cmd); ioctl(fd, cmd, (unsigned long)(val)); })

#define _kvm_ioctl(fd, cmd, arg) kvm_ret(__kvm_ioctl(fd, cmd, arg))
#define _kvm_ioctl_val(fd, cmd, val) kvm_ret(__kvm_ioctl_val(fd, cmd, val))

#define kvm_ioctl(fd, cmd, arg) kvm_ret_named(__kvm_ioctl(fd, cmd, arg), #cmd)
#define kvm_ioctl_val(fd, cmd, val) kvm_ret_named(__kvm_ioctl_val(fd, cmd, val), #cmd)

/* ret < 0 ? -errno : ret, as syscall wrappers return. */
static inline int kvm_ret(int ret)
{
	return ret < 0 ? -errno : ret;
}

/* kvm_ret(), and a failure logged as "NAME: strerror". */
int kvm_ret_named(int ret, const char *name);

/* Opens /dev/kvm and checks its API version; *max_vcpus gets KVM_CAP_MAX_VCPUS. */
int kvm_open(int *kvm_fd, unsigned int *max_vcpus) __must_check;
/* The same checks on a copy of an already open /dev/kvm, from. */
int kvm_dup(int from, int *kvm_fd, unsigned int *max_vcpus) __must_check;

/* KVM_CHECK_EXTENSION on /dev/kvm or a VM: the capability's value, 0 when absent or refused. */
int64_t kvm_check_extension(int fd, long cap);

/*
 * KVM_CREATE_VM: the VM's fd, or -errno.  Every VM veil creates goes through
 * here and is logged at info level ("WHAT created (KVM_CREATE_VM type T)"),
 * so `veil run -v` shows how many VMs a run made and what for.
 */
int kvm_create_vm(int kvm_fd, unsigned long type, const char *what) __must_check;

/* Maps a vCPU's kvm_run (KVM_GET_VCPU_MMAP_SIZE bytes); 0 or -errno. */
int kvm_run_map(int kvm_fd, int vcpu_fd, struct kvm_run **run, size_t *size) __must_check;
void kvm_run_unmap(struct kvm_run *run, size_t size);

/* KVM_EXIT_* in words ("IO", "MEMORY_FAULT"); never NULL. */
const char *kvm_exit_reason_name(uint32_t reason);

#endif
