/* fuzz: guest register accesses through the bus: PCI config mechanism #1, BAR sizing and decoding, virtio-pci BAR 0 and MSI-X. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "bus.h"
#include "fuzz.h"
#include "fuzz_vdev.h"
#include "log.h"
#include "pci.h"
#include "vpci.h"

#define WIN 0xe0000000ULL
#define WIN_SIZE 0x100000ULL
#define OPS 64 /* accesses per iteration, on devices that keep their state between iterations */

struct t {
	struct fuzz *f;
	struct gmem *gm;
	struct bus *bus;
	struct pci_host host;
	struct virtio_blk blk; /* behind virtio-pci */
	struct virtio_pci vp;
	uint32_t gen;
	uint8_t ro[PCI_SLOTS][PCI_CFG_SIZE]; /* each function's bits outside its write mask */
	bool kicked;
	unsigned long msis, accesses, refused;
};

static int be_submit(void *opaque, struct blk_io *io)
{
	(void)opaque, (void)io;
	return -EIO; /* the I/O path is fuzz_blk's; here a request only has to be answered */
}

static const struct blk_backend_ops be_ops = { .submit = be_submit };

static void kick(void *opaque)
{
	((struct t *)opaque)->kicked = true;
}

/* A message only for an enabled, unmasked vector of the table. */
static void signal_msi(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	struct t *t = opaque;
	uint16_t ctrl = pci_get16(t->vp.pci.cfg + t->vp.msix_cap + 2);

	(void)addr, (void)data;
	CHECK(vector < VPCI_VECTORS && (ctrl & 0x8000) && !(ctrl & 0x4000));
	CHECK(vector < VPCI_VECTORS && !(t->vp.msix[vector].ctrl & 1));
	t->msis++;
}

static void setup(struct t *t)
{
	t->gm = test_gmem(MEM, 20);
	if (bus_create(&t->bus) || pci_host_init(&t->host, t->bus, WIN, WIN_SIZE, NULL, NULL) ||
	    virtio_blk_init(&t->blk, t->gm, "fuzz-blk", 1 << 20, false, "fuzz"))
		exit(1);
	t->blk.backend = &be_ops;
	t->blk.kick = kick;
	t->blk.kick_opaque = t;
	virtio_pci_init(&t->vp, &t->blk.vdev, 0x010000);
	t->vp.signal_msi = signal_msi;
	t->vp.msi_opaque = t;
	if (pci_host_add(&t->host, &t->vp.pci, &(unsigned int){ 0 }))
		exit(1);
	pci_put16(t->vp.pci.cfg + PCI_COMMAND, PCI_COMMAND_MEMORY); /* as firmware leaves it */
	for (unsigned int s = 0; s < PCI_SLOTS; s++)
		for (unsigned int i = 0; t->host.slot[s] && i < PCI_CFG_SIZE; i++)
			t->ro[s][i] = t->host.slot[s]->cfg[i] & ~t->host.slot[s]->wmask[i];
}

/* Register values: random, at the edges, small (inside RAM, selectors, status bits), or PCI addresses. */
static uint64_t value(struct t *t)
{
	struct fuzz *f = t->f;

	switch (fuzz_below(f, 6)) {
	case 0: return fuzz_next(f);
	case 1: return fuzz_interesting(f);
	case 2: return fuzz_below(f, MEM) & ~0xfULL;
	case 3: return 0x80000000u | fuzz_below(f, 3) << 11 | (fuzz_below(f, 64) << 2) |
		       (fuzz_one_in(f, 8) ? fuzz_below(f, 0x100) << 16 | fuzz_below(f, 8) << 8 : 0);
	case 4: return fuzz_one_in(f, 2) ? 0x8000 : 0x4000; /* MSI-X enable and function mask */
	default: return fuzz_below(f, 16);
	}
}

/* The registers a driver uses, at their own widths: what random offsets rarely hit. */
static const struct { uint16_t off; uint8_t len; } vpci_regs[] = {
	{ 0x00, 4 }, { 0x04, 4 }, { 0x08, 4 }, { 0x0c, 4 }, { 0x10, 2 }, { 0x12, 2 }, { 0x14, 1 },
	{ 0x15, 1 }, { 0x16, 2 }, { 0x18, 2 }, { 0x1a, 2 }, { 0x1c, 2 }, { 0x1e, 2 }, { 0x20, 4 },
	{ 0x24, 4 }, { 0x28, 4 }, { 0x2c, 4 }, { 0x30, 4 }, { 0x34, 4 }, { 0x800, 4 }, { 0x80c, 4 },
	{ 0x81c, 4 }, { 0x808, 4 }, { 0xc00, 4 }, { 0x1000, 1 }, { 0x2000, 4 }, { 0x2008, 1 },
	{ 0x3000, 4 },
};

/* Where a guest pokes, and how wide: device registers, just past them, or anywhere. */
static void target(struct t *t, enum bus_space *space, uint64_t *addr, unsigned int *len)
{
	static const unsigned int lens[] = { 1, 2, 4, 4, 8, 3, 0 };
	struct fuzz *f = t->f;
	uint64_t bar = pci_bar_addr(&t->vp.pci, 0);
	unsigned int k;

	*space = BUS_MMIO;
	*len = lens[fuzz_below(f, ARRAY_SIZE(lens))];
	switch (fuzz_below(f, 6)) {
	case 0:
		*space = BUS_PIO;
		*addr = PCI_PORT_ADDR + (fuzz_one_in(f, 2) ? 0 : fuzz_below(f, 10)) - fuzz_one_in(f, 8);
		break;
	case 1: case 2: case 3:
		k = (unsigned int)fuzz_below(f, ARRAY_SIZE(vpci_regs));
		*addr = bar + vpci_regs[k].off + (vpci_regs[k].off >= 0x800 ? 16 * fuzz_below(f, 8) : 0);
		*len = vpci_regs[k].len;
		break;
	case 4:
		*addr = bar + fuzz_below(f, VPCI_BAR_SIZE + 16);
		break;
	default:
		*addr = fuzz_one_in(f, 2) ? WIN + fuzz_below(f, WIN_SIZE) : fuzz_interesting(f);
		break;
	}
}

/* What mechanism #1 must return for a data-port read, from the test's own decode. */
static bool cfg_expect(struct t *t, uint64_t port, unsigned int len, uint32_t *want)
{
	uint32_t a = t->host.addr, off = (uint32_t)(port - PCI_PORT_DATA);
	struct pci_dev *d = t->host.slot[(a >> 11) & 0x1f];

	if (port < PCI_PORT_DATA || off + len > 4 || (len != 1 && len != 2 && len != 4))
		return false;
	*want = len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
	if ((a & 0x80000000u) && !(a & 0xff0700) && d) {
		*want = 0;
		memcpy(want, d->cfg + (a & 0xfc) + off, len);
	}
	return true;
}

/* The status register's Interrupt Status bit: the device's INTx state, not a constant. */
static uint8_t volatile_bits(unsigned int i)
{
	return i == PCI_STATUS ? PCI_STATUS_INTERRUPT : 0;
}

/* Device state no access may break; and PCI configuration bits outside the write mask stay. */
static void check_state(struct t *t)
{
	const struct virtio_pci *p = &t->vp;
	bool msix = pci_get16(p->pci.cfg + p->msix_cap + 2) & 0x8000;
	bool intx_off = pci_get16(p->pci.cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;

	drv_check_vdev(&t->blk.vdev, &t->gen);
	/* INTA# is up exactly while the ISR is set, MSI-X is off and INTx not disabled. */
	CHECK_EQ(p->intx_level, t->blk.vdev.isr && !msix && !intx_off);
	CHECK_EQ(!!(pci_get16(p->pci.cfg + PCI_STATUS) & PCI_STATUS_INTERRUPT),
		 t->blk.vdev.isr && !msix);
	for (unsigned int s = 0; s < PCI_SLOTS; s++)
		for (unsigned int i = 0; t->host.slot[s] && i < PCI_CFG_SIZE; i++)
			if ((t->host.slot[s]->cfg[i] & ~t->host.slot[s]->wmask[i] & ~volatile_bits(i)) !=
			    (t->ro[s][i] & ~volatile_bits(i))) {
				CHECK(!"a read-only PCI configuration bit changed");
				fprintf(stderr, "slot %u offset 0x%x\n", s, i);
			}
}

/* Mechanism #1 as a driver uses it: the address, then a data access inside that dword. */
static void cfg_pair(struct t *t)
{
	static const uint8_t regs[] = { PCI_COMMAND, PCI_BAR0, PCI_BAR0 + 4, PCI_CAP_PTR, 0x3c };
	struct fuzz *f = t->f;
	unsigned int len = 1u << fuzz_below(f, 3), off = (unsigned int)fuzz_below(f, 4) & ~(len - 1);
	uint32_t reg = fuzz_one_in(f, 2) ? t->vp.msix_cap : regs[fuzz_below(f, ARRAY_SIZE(regs))];
	uint32_t a, v = 0, want;
	uint64_t x = value(t);

	if (fuzz_one_in(f, 8))
		reg = (uint32_t)fuzz_below(f, PCI_CFG_SIZE);
	a = 0x80000000u | (uint32_t)fuzz_below(f, 3) << 11 | (reg & 0xfc);
	if (fuzz_one_in(f, 8)) /* another function or bus: nobody home */
		a |= (uint32_t)(fuzz_below(f, 8) << 8 | fuzz_below(f, 2) << 16);
	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_ADDR, &a, 4, true), 0);
	if (fuzz_one_in(f, 2)) {
		CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_DATA + off, &x, len, true), 0);
		return;
	}
	CHECK(cfg_expect(t, PCI_PORT_DATA + off, len, &want));
	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_DATA + off, &v, len, false), 0);
	CHECK_EQ(v, want);
}

/* A driver's write; -ENOENT where the fuzzer moved the BAR away or turned decoding off. */
static void put(struct t *t, enum bus_space space, uint64_t addr, uint32_t v, unsigned int len)
{
	int ret = bus_dispatch(t->bus, space, addr, &v, len, true);

	CHECK(ret == 0 || (ret == -ENOENT && space == BUS_MMIO));
}

static void cfg_put(struct t *t, uint32_t reg, uint32_t v, unsigned int len)
{
	put(t, BUS_PIO, PCI_PORT_ADDR, 0x80000800u | (reg & 0xfc), 4);
	put(t, BUS_PIO, PCI_PORT_DATA + (reg & 3), v, len);
}

/* MSI-X on, vectors masked or not, the configuration and queue 0 vectors assigned. */
static void msix_setup(struct t *t, uint64_t bar)
{
	struct fuzz *f = t->f;

	cfg_put(t, t->vp.msix_cap + 2, 0x8000, 2);
	for (unsigned int v = 0; v < VPCI_VECTORS; v++)
		put(t, BUS_MMIO, bar + VPCI_MSIX_TABLE + 16 * v + 12, (uint32_t)fuzz_one_in(f, 4), 4);
	put(t, BUS_MMIO, bar + 0x10, (uint32_t)fuzz_below(f, VPCI_VECTORS + 1), 2);
	put(t, BUS_MMIO, bar + 0x16, 0, 2);
	put(t, BUS_MMIO, bar + 0x1a, (uint32_t)fuzz_below(f, VPCI_VECTORS + 1), 2);
}

/*
 * What a driver does first, some of it, some iterations: the random pokes
 * that follow then reach state (a mapped BAR, MSI-X on, vectors assigned)
 * they would almost never set up alone, and undo.
 */
static void driver_prefix(struct t *t)
{
	struct fuzz *f = t->f;
	uint64_t bar = 0xe0000000ULL + VPCI_BAR_SIZE * fuzz_below(f, 4);

	if (fuzz_one_in(f, 2)) { /* firmware's BAR assignment, memory decoding on */
		cfg_put(t, PCI_BAR0, (uint32_t)bar, 4);
		cfg_put(t, PCI_BAR0 + 4, 0, 4);
		cfg_put(t, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	}
	bar = pci_bar_addr(&t->vp.pci, 0);
	if (fuzz_one_in(f, 4)) { /* reset and bring-up, the queue's layout good or bad */
		put(t, BUS_MMIO, bar + 0x14, 0, 1);
		put(t, BUS_MMIO, bar + 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
		if (fuzz_one_in(f, 2))
			msix_setup(t, bar);
		put(t, BUS_MMIO, bar + 0x08, 1, 4);
		put(t, BUS_MMIO, bar + 0x0c, 1, 4); /* VERSION_1 */
		put(t, BUS_MMIO, bar + 0x14, 0x0b, 1);
		put(t, BUS_MMIO, bar + 0x16, 0, 2);
		put(t, BUS_MMIO, bar + 0x18, (uint32_t)value(t), 2);
		for (unsigned int k = 0; k < 3; k++)
			put(t, BUS_MMIO, bar + 0x20 + 8 * k, (uint32_t)(0x10000 * (k + 1)), 4);
		put(t, BUS_MMIO, bar + 0x1c, 1, 2);
		put(t, BUS_MMIO, bar + 0x14, 0x0f, 1);
	} else if (fuzz_one_in(f, 4)) {
		msix_setup(t, bar);
	}
}

static void poke(struct t *t)
{
	struct fuzz *f = t->f;
	bool write = fuzz_one_in(f, 2);
	uint8_t data[16];
	enum bus_space space;
	uint64_t addr, v = value(t);
	uint32_t want = 0;
	unsigned int len;
	bool know;
	int ret;

	if (fuzz_one_in(f, 8)) {
		cfg_pair(t);
		goto after;
	}
	target(t, &space, &addr, &len);
	know = !write && space == BUS_PIO && cfg_expect(t, addr, len, &want);
	memset(data, 0xcc, sizeof(data));
	if (write)
		memcpy(data, &v, len);
	ret = bus_dispatch(t->bus, space, addr, data, len, write);
	t->accesses++;
	t->refused += ret != 0;
	/* A refusal is -ENOENT (nobody there) or -EINVAL (the device said no), never more. */
	CHECK(ret == 0 || ret == -ENOENT || ret == -EINVAL);
	for (unsigned int i = write ? 0 : len; i < sizeof(data); i++)
		CHECK(i < len ? data[i] == ((uint8_t *)&v)[i] : data[i] == 0xcc);
	if (know) {
		CHECK_EQ(ret, 0);
		CHECK(memcmp(data, &want, len) == 0);
	}
	if (!write && !ret && space == BUS_MMIO && addr == pci_bar_addr(&t->vp.pci, 0) + 0x12 && len == 2)
		CHECK_EQ(fuzz_get(data, 2), 1); /* num_queues, whatever state the device is in */
after:
	if (t->kicked) { /* what the I/O thread does when a queue is kicked */
		t->kicked = false;
		blk_process(&t->blk);
	}
	check_state(t);
}

#ifdef VEIL_LIBFUZZER
/*
 * Fresh devices for every input, RAM holding the same junk each time; the
 * input is driver_prefix()'s and poke()'s choices, up to 4 rounds.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t *junk;
	struct t *t = calloc(1, sizeof(*t));
	struct fuzz f;
	void *ram;

	log_set_level(LOG_ERR);
	if (!junk) {
		junk = malloc(MEM);
		fuzz_lf_begin(&f, "fuzz_pci", NULL, 0);
		for (uint64_t i = 0; i < MEM / 8; i++)
			junk[i] = fuzz_splitmix(&f) % 4 ? 0 : fuzz_splitmix(&f);
	}
	fuzz_lf_begin(&f, "fuzz_pci", data, size);
	t->f = &f;
	setup(t);
	if (gmem_translate(t->gm, 0, MEM, &ram))
		abort();
	memcpy(ram, junk, MEM);
	CHECK_EQ(gmem_attr_set_private(t->gm, GUARD, GUARD_LEN, true), 0);
	for (unsigned int n = 0; n < 4 && !test_failures && (n == 0 || fuzz_lf_more(&f)); n++) {
		driver_prefix(t);
		for (unsigned int k = 0; k < OPS && !test_failures; k++)
			poke(t);
	}
	fuzz_lf_end(&f);
	virtio_blk_destroy(&t->blk);
	pci_host_destroy(&t->host);
	bus_destroy(t->bus);
	gmem_destroy(t->gm);
	free(t);
	return 0;
}
#else
int main(void)
{
	struct t *t = calloc(1, sizeof(*t));
	struct fuzz f;
	void *ram;

	log_set_level(LOG_ERR); /* guest mistakes are logged as warnings, by the thousand */
	fuzz_init(&f, "fuzz_pci", 0x706369, 3000);
	f.carries_state = true; /* the devices live through all iterations, like a guest's */
	t->f = &f;
	setup(t);
	/* Junk in RAM, so queues the fuzzer enables hold chains to walk. */
	if (gmem_translate(t->gm, 0, MEM, &ram))
		return 1;
	for (uint64_t i = 0; i < MEM / 8; i++)
		((uint64_t *)ram)[i] = fuzz_one_in(&f, 4) ? fuzz_next(&f) : 0;
	/* As in fuzz_vq.h's drv_layout_ok: no ring may sit in private memory. */
	CHECK_EQ(gmem_attr_set_private(t->gm, GUARD, GUARD_LEN, true), 0);
	FUZZ_FOR_EACH(&f, i) {
		driver_prefix(t);
		for (unsigned int k = 0; k < OPS && !test_failures; k++)
			poke(t);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_pci: %lu accesses, %lu refused, %lu MSIs\n", t->accesses, t->refused, t->msis);
	if (!test_failures && f.iters >= 1000)
		CHECK(t->msis > 0 && t->refused < t->accesses * 3 / 4);
	virtio_blk_destroy(&t->blk);
	pci_host_destroy(&t->host);
	bus_destroy(t->bus);
	gmem_destroy(t->gm);
	free(t);
	return test_done("fuzz_pci");
}
#endif
