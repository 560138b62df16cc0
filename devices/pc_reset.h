/* The PC's reset paths: the i8042 pulse-reset command and the 0xcf9 reset control register. */
#ifndef VEIL_PC_RESET_H
#define VEIL_PC_RESET_H

#include "bus.h"

struct pc_reset {
	void (*reset)(void *opaque, const char *how);
	void *opaque;
};

/* opaque = struct pc_reset.  i8042 data (0x60) and status/command (0x64) ports, one each. */
extern const struct bus_device_ops i8042_bus_ops;
extern const struct bus_device_ops i8042_cmd_bus_ops;
/* One port, 0xcf9: a write with RST_CPU (bit 2) set resets. */
extern const struct bus_device_ops cf9_bus_ops;

#endif
