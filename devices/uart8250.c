/* A 16550A-compatible UART: the register file, the receive FIFO and the interrupt it raises. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "uart8250.h"

enum {
	REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
	REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct uart8250 {
	pthread_mutex_t lock;
	struct uart8250_config cfg;
	uint8_t ier, lcr, mcr, lsr_oe, scr, fcr, dll, dlm;
	bool thri_pending; /* THR-empty interrupt not yet acknowledged */
	int irq_level;
	uint8_t fifo[UART8250_FIFO_SIZE];
	unsigned int head, count;
	/* Bytes the host has not taken yet (tx_room() said no): THRE and TEMT stay clear. */
	uint8_t txf[UART8250_TX_FIFO_SIZE];
	unsigned int tx_head, tx_count;
	uint64_t tx_dropped;
};

int uart8250_create(const struct uart8250_config *cfg, struct uart8250 **out)
{
	struct uart8250 *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	u->cfg = *cfg;
	u->dll = 12; /* 9600 baud, as firmware leaves it */
	*out = u;
	return 0;
}

void uart8250_destroy(struct uart8250 *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static uint8_t uart_iir(const struct uart8250 *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((u->ier & IER_RDI) && u->count)
		return fifo | IIR_RDI;
	if ((u->ier & IER_THRI) && u->thri_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

static void uart_update_irq(struct uart8250 *u)
{
	int level = !(uart_iir(u) & IIR_NO_INT);

	if (level != u->irq_level && u->cfg.set_irq)
		u->cfg.set_irq(u->cfg.opaque, level);
	u->irq_level = level;
}

static bool fifo_push(struct uart8250 *u, uint8_t byte)
{
	if (u->count == UART8250_FIFO_SIZE) {
		u->lsr_oe = LSR_OE;
		return false;
	}
	u->fifo[(u->head + u->count) % UART8250_FIFO_SIZE] = byte;
	u->count++;
	return true;
}

static uint8_t fifo_pop(struct uart8250 *u)
{
	uint8_t byte;

	if (!u->count)
		return 0;
	byte = u->fifo[u->head];
	u->head = (u->head + 1) % UART8250_FIFO_SIZE;
	u->count--;
	return byte;
}

size_t uart8250_rx(struct uart8250 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/* Take only what fits: the caller keeps the rest, so nothing is overrun. */
	while (n < len && u->count < UART8250_FIFO_SIZE && fifo_push(u, buf[n]))
		n++;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

/* Without FIFOs enabled the transmitter holds one byte, as THR alone would. */
static unsigned int tx_capacity(const struct uart8250 *u)
{
	return (u->fcr & FCR_ENABLE) ? UART8250_TX_FIFO_SIZE : 1;
}

/* Hands the transmit FIFO to the host as far as it has room; empty again means THR empty. */
static void uart_tx_drain(struct uart8250 *u)
{
	size_t room;

	if (!u->tx_count)
		return;
	room = u->cfg.tx_room ? u->cfg.tx_room(u->cfg.opaque) : SIZE_MAX;
	while (u->tx_count && room) {
		if (u->cfg.tx)
			u->cfg.tx(u->cfg.opaque, u->txf[u->tx_head]);
		u->tx_head = (u->tx_head + 1) % UART8250_TX_FIFO_SIZE;
		u->tx_count--;
		room--;
	}
	if (!u->tx_count)
		u->thri_pending = true;
}

void uart8250_tx_ready(struct uart8250 *u)
{
	pthread_mutex_lock(&u->lock);
	uart_tx_drain(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

uint64_t uart8250_tx_dropped(struct uart8250 *u)
{
	uint64_t n;

	pthread_mutex_lock(&u->lock);
	n = u->tx_dropped;
	pthread_mutex_unlock(&u->lock);
	return n;
}

static uint8_t uart_lsr(struct uart8250 *u)
{
	uint8_t v = (uint8_t)(u->lsr_oe | (u->count ? LSR_DR : 0));

	/* A guest polling LSR moves the FIFO along itself, whether or not the host kicks. */
	uart_tx_drain(u);
	if (!u->tx_count)
		v |= LSR_THRE | LSR_TEMT;
	u->lsr_oe = 0;
	return v;
}

static uint8_t uart_msr(const struct uart8250 *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return 0xb0; /* DCD, DSR, CTS: a cable that is always ready */
	/* Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD, as drivers probe for. */
	return (uint8_t)(((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4));
}

static uint8_t uart_read_reg(struct uart8250 *u, unsigned int reg)
{
	uint8_t v;

	switch (reg) {
	case REG_RBR_THR:
		return (u->lcr & LCR_DLAB) ? u->dll : fifo_pop(u);
	case REG_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR_FCR:
		v = uart_iir(u);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if ((v & 0x0f) == IIR_THRI)
			u->thri_pending = false;
		return v;
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		return uart_lsr(u);
	case REG_MSR:
		return uart_msr(u);
	default:
		return u->scr;
	}
}

static void uart_write_thr(struct uart8250 *u, uint8_t v)
{
	if (u->mcr & MCR_LOOP) {
		fifo_push(u, v);
		u->thri_pending = true; /* the loop is instantaneous */
		return;
	}
	/* Writing THR acknowledges THR empty; the drain raises it again once all went out. */
	u->thri_pending = false;
	if (u->tx_count >= tx_capacity(u)) {
		u->tx_dropped++; /* the guest did not wait for THRE: a real UART loses it too */
		return;
	}
	u->txf[(u->tx_head + u->tx_count) % UART8250_TX_FIFO_SIZE] = v;
	u->tx_count++;
	uart_tx_drain(u);
}

static void uart_write_reg(struct uart8250 *u, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			uart_write_thr(u, v);
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling the THR-empty interrupt while THR is empty raises it. */
		if ((v & IER_THRI) && !(u->ier & IER_THRI) && !u->tx_count)
			u->thri_pending = true;
		u->ier = v & 0x0f;
		break;
	case REG_IIR_FCR:
		u->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			u->head = u->count = 0;
		if ((v & FCR_CLEAR_TX) && u->tx_count) {
			u->tx_dropped += u->tx_count;
			u->tx_head = u->tx_count = 0;
			u->thri_pending = true;
		}
		break;
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		u->mcr = v & 0x1f;
		break;
	case REG_SCR:
		u->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static int uart_bus_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct uart8250 *u = opaque;

	if (len != 1 || offset >= UART8250_NR_REGS)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	*(uint8_t *)data = uart_read_reg(u, (unsigned int)offset);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static int uart_bus_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	struct uart8250 *u = opaque;

	if (len != 1 || offset >= UART8250_NR_REGS)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	uart_write_reg(u, (unsigned int)offset, *(const uint8_t *)data);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

const struct bus_device_ops uart8250_bus_ops = {
	.read = uart_bus_read,
	.write = uart_bus_write,
};
