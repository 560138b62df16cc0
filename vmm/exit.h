/* vCPU exit handling: what an exit means, as a result the vCPU loop acts on. */
#ifndef VEIL_EXIT_H
#define VEIL_EXIT_H

#include <stdint.h>

#include "compiler.h"

struct vcpu;

enum vcpu_action {
	VCPU_CONTINUE,  /* run the vCPU again */
	VCPU_STOP,      /* stop the VM with the result's code and reason */
	VCPU_STOP_DUMP, /* as VCPU_STOP, and the registers explain why */
	VCPU_PARK,      /* this vCPU cannot run again; wait for the VM to stop */
};

/* What an exit came to (Firecracker's VcpuEmulation, with the stop's reason). */
struct vcpu_exit {
	enum vcpu_action action;
	int code;         /* with a stop: the VM's exit code (enum vm_exit_code) */
	char reason[256]; /* with a stop: why, naming the vCPU */
};

/*
 * Handles the exit in vcpu->run: dispatches I/O to the bus, conversions to
 * gmem, and counts.  It stops nothing itself: a stop is returned, and the
 * caller asks the VM to stop.  A device on the bus may still request a stop
 * through its own callback; the caller's loop sees that.
 */
struct vcpu_exit vcpu_handle_exit(struct vcpu *vcpu);
/* The kind an exit reason is counted and timed as. */
enum vcpu_exit_kind vcpu_exit_kind(uint32_t exit_reason);
/* The kind's name in words, for reports ("port I/O", "MMIO", ...). */
const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind);
/*
 * With vm->profile: adds one exit's times to the vCPU's profile, run_ns
 * inside KVM_RUN before it and handle_ns handling it, and the handling to
 * the device vcpu_handle_exit() found for it.  The vCPU's thread only.
 */
void vcpu_profile_exit(struct vcpu *vcpu, enum vcpu_exit_kind kind, uint64_t run_ns,
		       uint64_t handle_ns);
/* What one CLOCK_MONOTONIC read costs here, in ns (the median of a few batches). */
uint64_t vcpu_clock_read_cost(void);

/* A guest's MAP_GPA_RANGE request, however it arrived; returns the guest's return value. */
uint64_t vcpu_map_gpa_range(struct vcpu *vcpu, uint64_t gpa, uint64_t npages, uint64_t attrs);
/* Checks KVM_HC_MAP_GPA_RANGE's arguments; 0 with *len, or -EINVAL. */
int vcpu_check_map_gpa_range(uint64_t gpa, uint64_t npages, uint64_t attrs, uint64_t *len)
	__must_check;

#endif
