/* The debug-exit port: firmware ends the VM with a 32-bit status. */
#ifndef VEIL_DEBUG_EXIT_H
#define VEIL_DEBUG_EXIT_H

#include <stdint.h>

#include "bus.h"

struct debug_exit {
	void (*exit)(void *opaque, uint32_t status);
	void *opaque;
};

/* Register with opaque = a struct debug_exit; writes of 1, 2 or 4 bytes end the VM. */
extern const struct bus_device_ops debug_exit_bus_ops;

#endif
