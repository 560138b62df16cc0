/*
 * The host side of the conversions firmware: a port through which the guest
 * asks veil to write, check, punch or allocate guest memory as the host, or
 * to convert, the way the kernel's private_mem_conversions_test has its
 * host act between guest steps.  Every request goes through gmem's checked,
 * pinned accessors, so a guest can ask for nothing a device could not do.
 */
#ifndef VEIL_FWSVC_H
#define VEIL_FWSVC_H

#include <stdint.h>

#include "compiler.h"
#include "fw.h"
#include "veil.h"

struct vm;

struct fwsvc {
	struct vm *vm;
	uint64_t ctl_gpa;
	uint64_t data_gpa;
	uint32_t conv_port; /* VEIL_PORT_SERVICE where MAP_GPA_RANGE hypercalls do not reach veil */
	uint32_t check_stride;
	uint64_t requests;
	uint64_t refused;   /* requests gmem refused, as the firmware sometimes expects */
};

/*
 * Registers the service port on vm's bus and fills opts so that fw_boot()
 * reserves and describes the control page and the data area.  s must live
 * until the VM is destroyed.
 */
int fwsvc_prepare(struct fwsvc *s, struct vm *vm, uint32_t check_stride,
		  struct fw_boot_opts *opts) __must_check;

/*
 * veil_vm_create() for the conversions firmware (cfg->boot.firmware
 * "conversions"): the same VM with the service attached, as `veil run`
 * makes it.  s must live until the VM is destroyed.
 */
int fwsvc_vm_create(struct fwsvc *s, const struct veil_config *cfg, struct veil_vm **out,
		    struct veil_error *err) __must_check;

/* Serves one request for vCPU cpu; what the port write does.  Exposed for tests. */
int fwsvc_serve(struct fwsvc *s, uint32_t cpu) __must_check;

/*
 * The vCPU a 32-bit write at offset 0 of a firmware port acts for: vcpu,
 * the one whose exit it is (struct bus_device_ops.write_vcpu).  The
 * firmware writes its own index; any other value, or a write from no vCPU,
 * is refused (-EINVAL), so a guest can neither index past the vCPUs nor
 * act as, or in the request slot of, another vCPU.
 */
int fwsvc_port_vcpu(const struct vm *vm, unsigned int vcpu, uint64_t offset, const void *data,
		    unsigned int len) __must_check;

#endif
