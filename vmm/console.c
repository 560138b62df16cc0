/* The guest console's input: raw terminal mode, the Ctrl-A escape, and back-pressure from the UART. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "log.h"

#define CTRL_A 0x01

void console_in_open(struct console_in *c, int fd)
{
	struct termios raw;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	if (fd < 0 || !isatty(fd) || tcgetattr(fd, &c->saved) < 0)
		return;
	raw = c->saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* veil's own messages still start at column 0 */
	if (tcsetattr(fd, TCSANOW, &raw) == 0)
		c->raw = true;
}

void console_in_close(struct console_in *c)
{
	if (c->raw && tcsetattr(c->fd, TCSANOW, &c->saved) < 0)
		pr_warn("restoring the terminal: %s", strerror(errno));
	c->raw = false;
}

int console_in_poll_fd(const struct console_in *c)
{
	return c->off < c->len ? -1 : c->fd;
}

/* Strips the Ctrl-A escape out of buf in place; false when it was Ctrl-A x. */
static bool console_escape(struct console_in *c, uint8_t *buf, size_t *n)
{
	size_t i, out = 0;

	for (i = 0; i < *n; i++) {
		if (c->escape) {
			c->escape = false;
			if (buf[i] == 'x')
				return false;
			if (buf[i] != CTRL_A)
				continue; /* unknown command: dropped */
		} else if (buf[i] == CTRL_A) {
			c->escape = true;
			continue;
		}
		buf[out++] = buf[i];
	}
	*n = out;
	return true;
}

bool console_in_read(struct console_in *c)
{
	ssize_t n = read(c->fd, c->pending, sizeof(c->pending));
	size_t len;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		c->fd = -1; /* EOF or error: the guest gets no more input */
		return true;
	}
	len = (size_t)n;
	if (c->raw && !console_escape(c, c->pending, &len))
		return false;
	c->len = len;
	c->off = 0;
	return true;
}

bool console_in_flush(struct console_in *c, size_t (*rx)(void *opaque, const uint8_t *, size_t),
		      void *opaque)
{
	if (c->off < c->len)
		c->off += rx(opaque, c->pending + c->off, c->len - c->off);
	return c->off < c->len;
}
