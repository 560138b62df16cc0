/* The debug-exit port: a write of the status is the firmware's last word. */
#include <errno.h>
#include <string.h>

#include "debug_exit.h"

static int debug_exit_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	const struct debug_exit *d = opaque;
	uint32_t status = 0;

	if (offset != 0 || (len != 1 && len != 2 && len != 4))
		return -EINVAL;
	memcpy(&status, data, len); /* x86 and arm64 are little-endian */
	d->exit(d->opaque, status);
	return 0;
}

const struct bus_device_ops debug_exit_bus_ops = {
	.write = debug_exit_write,
};
