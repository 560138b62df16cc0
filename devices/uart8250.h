/* A 16550A-compatible UART: register model, receive FIFO, interrupt line. */
#ifndef VEIL_UART8250_H
#define VEIL_UART8250_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"

#define UART8250_NR_REGS 8
#define UART8250_FIFO_SIZE 64
#define UART8250_TX_FIFO_SIZE 16 /* a 16550A's transmit FIFO, as Linux loads it */

struct uart8250_config {
	/* A transmitted byte; called with the UART's lock held, so calls are ordered. */
	void (*tx)(void *opaque, uint8_t byte);
	/*
	 * How many bytes tx() takes now, never waiting; NULL: as many as come.
	 * With the lock held.  While it says 0, bytes stay in the transmit FIFO
	 * and LSR shows THRE and TEMT clear: the guest's driver waits, as for a
	 * slow line.  Bytes written to a full transmit FIFO are dropped, counted.
	 */
	size_t (*tx_room)(void *opaque);
	/* Interrupt line level; may be NULL when the UART is polled. */
	void (*set_irq)(void *opaque, int level);
	void *opaque;
};

struct uart8250;

int uart8250_create(const struct uart8250_config *cfg, struct uart8250 **out) __must_check;
void uart8250_destroy(struct uart8250 *u);
/* Queues received bytes; returns how many fit in the FIFO. */
size_t uart8250_rx(struct uart8250 *u, const uint8_t *buf, size_t len);
/* tx_room() has room again: the transmit FIFO moves on, and THR empty may interrupt. */
void uart8250_tx_ready(struct uart8250 *u);
/* Bytes the guest wrote to THR while the transmit FIFO was full: lost. */
uint64_t uart8250_tx_dropped(struct uart8250 *u);

extern const struct bus_device_ops uart8250_bus_ops;

#endif
