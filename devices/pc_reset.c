/* The PC's reset paths: no keyboard behind the i8042, only its reset line; and port 0xcf9. */
#include <errno.h>
#include <string.h>

#include "pc_reset.h"

#define I8042_CMD_PULSE_RESET 0xfe
#define CF9_RST_CPU 0x04

static int i8042_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	(void)opaque;
	(void)offset;
	/* Status 0: no data, input buffer empty, so drivers neither wait nor read. */
	memset(data, 0, len);
	return 0;
}

static int i8042_data_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	(void)opaque, (void)offset, (void)data, (void)len;
	return 0; /* no keyboard to talk to */
}

static int i8042_cmd_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	const struct pc_reset *r = opaque;

	if (len == 1 && offset == 0 && *(const uint8_t *)data == I8042_CMD_PULSE_RESET)
		r->reset(r->opaque, "i8042 reset");
	return 0;
}

const struct bus_device_ops i8042_bus_ops = {
	.read = i8042_read,
	.write = i8042_data_write,
};

const struct bus_device_ops i8042_cmd_bus_ops = {
	.read = i8042_read,
	.write = i8042_cmd_write,
};

static int cf9_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	const struct pc_reset *r = opaque;

	if (len != 1 || offset != 0)
		return -EINVAL;
	if (*(const uint8_t *)data & CF9_RST_CPU)
		r->reset(r->opaque, "reset through port 0xcf9");
	return 0;
}

const struct bus_device_ops cf9_bus_ops = {
	.read = i8042_read, /* reads as 0 */
	.write = cf9_write,
};
