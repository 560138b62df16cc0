/* Unit test: the 8250 register model as a guest driver sees it, through the bus interface. */
#include <errno.h>
#include <stdint.h>

#include "test.h"
#include "uart8250.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
       LSR = 5, MSR = 6, SCR = 7 };

/* The host side of the UART: what it transmitted and the interrupt line. */
struct host {
	uint8_t tx[256];
	unsigned int nr_tx;
	int level;
	unsigned int irq_calls;
	size_t room; /* what host_room() offers */
};

static size_t host_room(void *opaque)
{
	struct host *h = opaque;

	return h->room;
}

static void host_tx(void *opaque, uint8_t byte)
{
	struct host *h = opaque;

	if (h->nr_tx < sizeof(h->tx))
		h->tx[h->nr_tx] = byte;
	h->nr_tx++;
}

static void host_irq(void *opaque, int level)
{
	struct host *h = opaque;

	h->level = level;
	h->irq_calls++;
}

static struct uart8250 *make_uart(struct host *h)
{
	struct uart8250_config cfg = { .tx = host_tx, .set_irq = host_irq, .opaque = h };
	struct uart8250 *u = NULL;

	memset(h, 0, sizeof(*h));
	if (uart8250_create(&cfg, &u)) {
		fprintf(stderr, "uart8250_create failed\n");
		exit(1);
	}
	return u;
}

static uint8_t rd(struct uart8250 *u, unsigned int reg)
{
	uint8_t v = 0x5a;

	CHECK_EQ(uart8250_bus_ops.read(u, reg, &v, 1), 0);
	return v;
}

static void wr(struct uart8250 *u, unsigned int reg, uint8_t v)
{
	CHECK_EQ(uart8250_bus_ops.write(u, reg, &v, 1), 0);
}

static size_t rx_str(struct uart8250 *u, const char *s)
{
	return uart8250_rx(u, (const uint8_t *)s, strlen(s));
}

static void test_tx(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	CHECK_EQ(rd(u, LSR), 0x60);
	wr(u, THR, 'h');
	wr(u, THR, 'i');
	wr(u, THR, 0);
	CHECK_EQ(h.nr_tx, 3);
	CHECK_EQ(h.tx[0], 'h');
	CHECK_EQ(h.tx[1], 'i');
	CHECK_EQ(h.tx[2], 0);
	/* Transmission is instantaneous: THR is empty again at once. */
	CHECK_EQ(rd(u, LSR), 0x60);
	/* Nothing enabled an interrupt. */
	CHECK_EQ(h.irq_calls, 0);
	CHECK_EQ(rd(u, IIR), 0x01);
	uart8250_destroy(u);
}

static void test_rx_order(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	CHECK_EQ(rx_str(u, "abc"), 3);
	CHECK_EQ(rd(u, LSR), 0x61);
	CHECK_EQ(rd(u, RBR), 'a');
	CHECK_EQ(rd(u, LSR), 0x61);
	CHECK_EQ(rd(u, RBR), 'b');
	CHECK_EQ(rx_str(u, "de"), 2);
	CHECK_EQ(rd(u, RBR), 'c');
	CHECK_EQ(rd(u, RBR), 'd');
	CHECK_EQ(rd(u, RBR), 'e');
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(h.nr_tx, 0);
	uart8250_destroy(u);
}

static void fill_fifo(struct uart8250 *u, size_t n, size_t want_accepted)
{
	uint8_t buf[100];
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i + 1);
	CHECK_EQ(uart8250_rx(u, buf, n), want_accepted);
}

/*
 * The host side gets back-pressure: uart8250_rx() takes what fits and says
 * how much, and the caller keeps the rest (vmm/console.c retries it).
 */
static void test_rx_full(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);
	unsigned int i;

	fill_fifo(u, 70, UART8250_FIFO_SIZE);
	CHECK_EQ(uart8250_rx(u, (const uint8_t *)"x", 1), 0);
	CHECK_EQ(rd(u, LSR) & 0x01, 0x01);
	for (i = 0; i < UART8250_FIFO_SIZE; i++)
		CHECK_EQ(rd(u, RBR), i + 1);
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(rx_str(u, "y"), 1);
	CHECK_EQ(rd(u, RBR), 'y');
	/* Exactly full is no overrun. */
	fill_fifo(u, UART8250_FIFO_SIZE, UART8250_FIFO_SIZE);
	CHECK_EQ(rd(u, LSR), 0x61);
	/* FCR bit 1 empties the receive FIFO. */
	wr(u, FCR, 0x02);
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(rx_str(u, "z"), 1);
	CHECK_EQ(rd(u, RBR), 'z');
	uart8250_destroy(u);
}

/* In loopback a byte that finds the FIFO full is really lost: LSR reports it, once. */
static void test_overrun(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);
	unsigned int i;

	wr(u, MCR, 0x10);
	for (i = 0; i < UART8250_FIFO_SIZE + 1; i++)
		wr(u, THR, (uint8_t)(i + 1));
	CHECK_EQ(rd(u, LSR), 0x63);
	CHECK_EQ(rd(u, LSR), 0x61);
	for (i = 0; i < UART8250_FIFO_SIZE; i++)
		CHECK_EQ(rd(u, RBR), i + 1);
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(h.nr_tx, 0);
	uart8250_destroy(u);
}

static void test_dlab(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	wr(u, IER, 0x00);
	wr(u, LCR, 0x83);
	CHECK_EQ(rd(u, DLL), 12); /* 9600 baud until the guest says otherwise */
	CHECK_EQ(rd(u, DLM), 0);
	wr(u, DLL, 0x01);
	wr(u, DLM, 0x02);
	CHECK_EQ(h.nr_tx, 0);
	CHECK_EQ(h.irq_calls, 0); /* 0x02 went to DLM, not to IER's THRI */
	CHECK_EQ(rd(u, DLL), 0x01);
	CHECK_EQ(rd(u, DLM), 0x02);
	CHECK_EQ(rd(u, LCR), 0x83);
	wr(u, LCR, 0x03);
	CHECK_EQ(rd(u, IER), 0x00);
	wr(u, THR, 'A');
	CHECK_EQ(h.nr_tx, 1);
	CHECK_EQ(h.tx[0], 'A');
	wr(u, LCR, 0x80);
	CHECK_EQ(rd(u, DLL), 0x01);
	uart8250_destroy(u);
}

static void test_thri(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	wr(u, IER, 0x02);
	CHECK_EQ(h.level, 1);
	CHECK_EQ(h.irq_calls, 1);
	CHECK_EQ(rd(u, IER), 0x02);
	CHECK_EQ(rd(u, IIR) & 0x0f, 0x02);
	CHECK_EQ(h.level, 0);
	CHECK_EQ(h.irq_calls, 2);
	CHECK_EQ(rd(u, IIR) & 0x0f, 0x01);
	CHECK_EQ(h.irq_calls, 2);
	/* Each transmitted byte empties THR again, so the interrupt comes back. */
	wr(u, THR, 'x');
	CHECK_EQ(h.level, 1);
	/* With the FIFOs enabled IIR says so in its top bits. */
	wr(u, FCR, 0x01);
	CHECK_EQ(rd(u, IIR), 0xc2);
	CHECK_EQ(h.level, 0);
	CHECK_EQ(rd(u, IIR), 0xc1);
	wr(u, THR, 'y');
	CHECK_EQ(h.level, 1);
	wr(u, IER, 0x00);
	CHECK_EQ(h.level, 0);
	uart8250_destroy(u);
}

static void test_rdi(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	wr(u, IER, 0x01);
	CHECK_EQ(h.irq_calls, 0);
	CHECK_EQ(rx_str(u, "k"), 1);
	CHECK_EQ(h.level, 1);
	CHECK_EQ(rd(u, IIR), 0x04);
	CHECK_EQ(rd(u, IIR), 0x04); /* reading IIR does not clear received data */
	CHECK_EQ(h.level, 1);
	CHECK_EQ(rd(u, RBR), 'k');
	CHECK_EQ(h.level, 0);
	CHECK_EQ(rd(u, IIR), 0x01);
	uart8250_destroy(u);
}

/* Received data outranks THR empty; THR empty is still there once the data is read. */
static void test_rdi_priority(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	wr(u, IER, 0x03);
	CHECK_EQ(h.level, 1);
	CHECK_EQ(rx_str(u, "q"), 1);
	CHECK_EQ(rd(u, IIR), 0x04);
	CHECK_EQ(h.level, 1);
	CHECK_EQ(rd(u, RBR), 'q');
	CHECK_EQ(h.level, 1);
	CHECK_EQ(rd(u, IIR), 0x02);
	CHECK_EQ(h.level, 0);
	CHECK_EQ(rd(u, IIR), 0x01);
	uart8250_destroy(u);
}

static void test_loopback(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	CHECK_EQ(rd(u, MSR), 0xb0); /* DCD, DSR, CTS: an always-ready cable */
	wr(u, MCR, 0x10);
	CHECK_EQ(rd(u, MCR), 0x10);
	CHECK_EQ(rd(u, MSR), 0x00);
	wr(u, THR, 'L');
	wr(u, THR, 'B');
	CHECK_EQ(h.nr_tx, 0);
	CHECK_EQ(rd(u, LSR), 0x61);
	CHECK_EQ(rd(u, RBR), 'L');
	CHECK_EQ(rd(u, RBR), 'B');
	CHECK_EQ(rd(u, LSR), 0x60);
	wr(u, MCR, 0x1f);
	CHECK_EQ(rd(u, MSR), 0xf0);
	wr(u, MCR, 0x11);
	CHECK_EQ(rd(u, MSR), 0x20); /* DTR -> DSR */
	wr(u, MCR, 0x12);
	CHECK_EQ(rd(u, MSR), 0x10); /* RTS -> CTS */
	wr(u, MCR, 0x14);
	CHECK_EQ(rd(u, MSR), 0x40); /* OUT1 -> RI */
	wr(u, MCR, 0x18);
	CHECK_EQ(rd(u, MSR), 0x80); /* OUT2 -> DCD */
	wr(u, MCR, 0x00);
	wr(u, THR, 'T');
	CHECK_EQ(h.nr_tx, 1);
	CHECK_EQ(h.tx[0], 'T');
	CHECK_EQ(rd(u, LSR), 0x60);
	uart8250_destroy(u);
}

static void test_bad_access(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);
	uint8_t v[4] = { 'a', 'b', 'c', 'd' };

	CHECK_EQ(uart8250_bus_ops.write(u, THR, v, 2), -EINVAL);
	CHECK_EQ(uart8250_bus_ops.write(u, THR, v, 4), -EINVAL);
	CHECK_EQ(uart8250_bus_ops.write(u, THR, v, 0), -EINVAL);
	CHECK_EQ(uart8250_bus_ops.read(u, LSR, v, 2), -EINVAL);
	CHECK_EQ(uart8250_bus_ops.read(u, 8, v, 1), -EINVAL);
	CHECK_EQ(uart8250_bus_ops.write(u, 8, v, 1), -EINVAL);
	CHECK_EQ(h.nr_tx, 0);
	CHECK_EQ(v[0], 'a');
	CHECK_EQ(v[1], 'b');
	uart8250_destroy(u);
}

static void test_scr_and_readonly(void)
{
	struct host h;
	struct uart8250 *u = make_uart(&h);

	CHECK_EQ(rd(u, SCR), 0);
	wr(u, SCR, 0xa5);
	CHECK_EQ(rd(u, SCR), 0xa5);
	wr(u, SCR, 0x5a);
	CHECK_EQ(rd(u, SCR), 0x5a);
	/* LSR and MSR ignore writes. */
	wr(u, LSR, 0x01);
	wr(u, MSR, 0x00);
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(rd(u, MSR), 0xb0);
	CHECK_EQ(rd(u, SCR), 0x5a);
	uart8250_destroy(u);
}

static struct uart8250 *make_slow_uart(struct host *h)
{
	struct uart8250_config cfg = { .tx = host_tx, .tx_room = host_room, .set_irq = host_irq,
				       .opaque = h };
	struct uart8250 *u = NULL;

	memset(h, 0, sizeof(*h));
	if (uart8250_create(&cfg, &u)) {
		fprintf(stderr, "uart8250_create failed\n");
		exit(1);
	}
	return u;
}

/*
 * A host that cannot take output (stdout's reader stalled) makes a full
 * transmitter: LSR shows THRE and TEMT clear until it has room, so a driver
 * that waits for THRE loses nothing, and nothing waits on the host.
 */
static void test_tx_backpressure(void)
{
	struct host h;
	struct uart8250 *u = make_slow_uart(&h);

	CHECK_EQ(rd(u, LSR), 0x60);
	wr(u, THR, 'a');
	CHECK_EQ(h.nr_tx, 0);
	CHECK_EQ(rd(u, LSR), 0x00); /* held: THR not empty, transmitter not empty */
	/* Without FIFOs THR holds one byte: a second one is an overrun, lost and counted. */
	wr(u, THR, 'b');
	CHECK_EQ(uart8250_tx_dropped(u), 1);
	CHECK_EQ(rd(u, LSR), 0x00);
	/* Room again: polling LSR moves the byte on by itself. */
	h.room = 1;
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(h.nr_tx, 1);
	CHECK_EQ(h.tx[0], 'a');
	uart8250_destroy(u);
}

/* With FIFOs on, 16 bytes wait (as many as Linux loads per THRE); the interrupt comes when all left. */
static void test_tx_fifo_backpressure(void)
{
	struct host h;
	struct uart8250 *u = make_slow_uart(&h);
	unsigned int i;

	wr(u, FCR, 0x01);
	wr(u, IER, 0x02);
	CHECK_EQ(rd(u, IIR), 0xc2); /* THR empty at first; reading IIR acknowledges it */
	CHECK_EQ(h.level, 0);
	for (i = 0; i < UART8250_TX_FIFO_SIZE; i++)
		wr(u, THR, (uint8_t)('A' + i));
	CHECK_EQ(uart8250_tx_dropped(u), 0);
	wr(u, THR, '!');
	CHECK_EQ(uart8250_tx_dropped(u), 1);
	CHECK_EQ(h.nr_tx, 0);
	CHECK_EQ(rd(u, LSR), 0x00);
	CHECK_EQ(h.level, 0);
	CHECK_EQ(rd(u, IIR), 0xc1);
	/* The host drained some: part goes out, the transmitter is still busy, no interrupt. */
	h.room = 5;
	uart8250_tx_ready(u);
	CHECK_EQ(h.nr_tx, 5);
	CHECK_EQ(h.level, 0);
	h.room = 0;
	CHECK_EQ(rd(u, LSR), 0x00);
	/* All of it: in order, THRE and TEMT set, and THR empty interrupts. */
	h.room = 100;
	uart8250_tx_ready(u);
	CHECK_EQ(h.nr_tx, UART8250_TX_FIFO_SIZE);
	for (i = 0; i < UART8250_TX_FIFO_SIZE; i++)
		CHECK_EQ(h.tx[i], 'A' + i);
	CHECK_EQ(h.level, 1);
	CHECK_EQ(rd(u, IIR), 0xc2);
	CHECK_EQ(rd(u, LSR), 0x60);
	/* FCR bit 2 throws away what is held (counted), and THR is empty again. */
	h.room = 0;
	wr(u, THR, 'x');
	wr(u, THR, 'y');
	CHECK_EQ(rd(u, LSR), 0x00);
	wr(u, FCR, 0x05);
	CHECK_EQ(rd(u, LSR), 0x60);
	CHECK_EQ(uart8250_tx_dropped(u), 3);
	CHECK_EQ(h.level, 1);
	h.room = 100;
	uart8250_tx_ready(u);
	CHECK_EQ(h.nr_tx, UART8250_TX_FIFO_SIZE);
	uart8250_destroy(u);
}

/* Without a set_irq callback the UART is polled and must not call through NULL. */
static void test_polled(void)
{
	struct uart8250_config cfg = { .tx = host_tx };
	struct host h = { 0 };
	struct uart8250 *u = NULL;

	cfg.opaque = &h;
	CHECK_EQ(uart8250_create(&cfg, &u), 0);
	if (!u)
		return;
	wr(u, IER, 0x03);
	CHECK_EQ(rx_str(u, "p"), 1);
	CHECK_EQ(rd(u, IIR), 0x04);
	CHECK_EQ(rd(u, RBR), 'p');
	uart8250_destroy(u);
	uart8250_destroy(NULL);
}

int main(void)
{
	test_tx();
	test_rx_order();
	test_rx_full();
	test_overrun();
	test_dlab();
	test_thri();
	test_rdi();
	test_rdi_priority();
	test_loopback();
	test_bad_access();
	test_scr_and_readonly();
	test_polled();
	test_tx_backpressure();
	test_tx_fifo_backpressure();
	return test_done("test_uart");
}
