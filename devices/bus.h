/* The I/O bus: one dispatcher for port I/O and MMIO, refusing overlapping ranges. */
#ifndef VEIL_BUS_H
#define VEIL_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

enum bus_space { BUS_PIO, BUS_MMIO, BUS_NR_SPACES };

/* The caller of an access that no vCPU made (the host, a test). */
#define BUS_NO_VCPU UINT32_MAX

/*
 * A device sees offsets relative to its base.  Handlers return 0 or -errno;
 * an error is the device refusing the access, never a reason to stop the VM.
 */
struct bus_device_ops {
	int (*read)(void *opaque, uint64_t offset, void *data, unsigned int len);
	int (*write)(void *opaque, uint64_t offset, const void *data, unsigned int len);
	/*
	 * Instead of write, for a device that acts for the vCPU writing to it:
	 * vcpu is the index of the vCPU whose exit this is, known from the
	 * exit and never from the guest's data, or BUS_NO_VCPU.
	 */
	int (*write_vcpu)(void *opaque, unsigned int vcpu, uint64_t offset, const void *data,
			  unsigned int len);
};

struct bus;

int bus_create(struct bus **out) __must_check;
void bus_destroy(struct bus *bus);

/*
 * Registration happens before any vCPU runs; dispatch is lock-free afterwards.
 * -EEXIST if [base, base+len) overlaps a registered range, -EINVAL if empty
 * or wrapping.
 */
int bus_register(struct bus *bus, enum bus_space space, uint64_t base, uint64_t len,
		 const struct bus_device_ops *ops, void *opaque, const char *name) __must_check;

/*
 * Removes the range registered at exactly base, before any vCPU runs (as
 * registration): an attach that failed after registering.  -ENOENT if none.
 */
int bus_unregister(struct bus *bus, enum bus_space space, uint64_t base);

/* -ENOENT when no single device covers [addr, addr+len). */
int bus_dispatch(struct bus *bus, enum bus_space space, uint64_t addr, void *data,
		 unsigned int len, bool is_write) __must_check;
/* The same, for an access vCPU vcpu made (its index; BUS_NO_VCPU for none). */
int bus_dispatch_vcpu(struct bus *bus, enum bus_space space, uint64_t addr, void *data,
		      unsigned int len, bool is_write, unsigned int vcpu) __must_check;

/* Name of the device at addr, or NULL: for diagnostics. */
const char *bus_device_name(struct bus *bus, enum bus_space space, uint64_t addr);

#endif
