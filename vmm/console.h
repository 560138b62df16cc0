/* The guest console's input side: the terminal in raw mode, and bytes waiting for room in the UART. */
#ifndef VEIL_CONSOLE_H
#define VEIL_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

struct console_in {
	int fd;            /* -1: no input */
	bool raw;          /* the terminal's settings are saved and must be restored */
	struct termios saved;
	bool escape;       /* Ctrl-A seen on a terminal: the next key is a command */
	uint8_t pending[256];
	size_t len, off;
};

/* A terminal goes raw: keys, Ctrl-C included, reach the guest; Ctrl-A x quits veil. */
void console_in_open(struct console_in *c, int fd);
void console_in_close(struct console_in *c);
/* The fd to poll for input, or -1 while input is at EOF or bytes are still pending. */
int console_in_poll_fd(const struct console_in *c);
/* Reads what is there; returns false when the user asked to quit (Ctrl-A x). */
bool console_in_read(struct console_in *c);
/* Offers pending bytes to rx(); returns true if some are still waiting. */
bool console_in_flush(struct console_in *c, size_t (*rx)(void *opaque, const uint8_t *, size_t),
		      void *opaque);

#endif
