/*
 * unit: the PCI host (configuration mechanism #1 through the bus, BAR sizing
 * and decoding) and the virtio-pci transport in front of a virtio-blk over
 * a detached gmem: the capability chain a driver walks, the common
 * configuration, queue setup, notifications, MSI-X delivery with masking and
 * the pending bits, NEEDS_RESET signalled on the configuration vector, and
 * the MSI routes (vmm/msi.c, on fake KVM ops) a reprogramming guest moves,
 * on GSIs clear of the irqchip's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "arch.h"
#include "blk.h"
#include "bus.h"
#include "gmem.h"
#include "msi.h"
#include "pci.h"
#include "test.h"
#include "virtio_drv.h"
#include "vpci.h"

#define WIN 0xe0000000ULL
#define WIN_SIZE 0x100000ULL
#define DESC 0x10000ULL
#define AVAIL 0x11000ULL
#define USED 0x12000ULL
#define HDR 0x20000ULL
#define STATUS 0x21000ULL
#define QSIZE 16

struct t {
	struct bus *bus;
	struct pci_host host;
	struct gmem *gm;
	struct virtio_blk blk;
	struct virtio_pci vp;
	unsigned int slot;
	uint64_t bar;
	struct blk_io *pending;
	unsigned int kicks, msis, intx_changes;
	bool intx;
	uint64_t msi_addr;
	uint32_t msi_data;
};

static int be_submit(void *opaque, struct blk_io *io)
{
	((struct t *)opaque)->pending = io;
	return 0;
}

static const struct blk_backend_ops be_ops = { .submit = be_submit };

static void kick(void *opaque)
{
	((struct t *)opaque)->kicks++;
}

static void signal_msi(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	(void)vector;
	struct t *t = opaque;

	t->msis++;
	t->msi_addr = addr;
	t->msi_data = data;
}

static void set_intx(void *opaque, bool level)
{
	struct t *t = opaque;

	CHECK(level != t->intx); /* only changes are reported */
	t->intx = level;
	t->intx_changes++;
}

/* Configuration mechanism #1, as a guest does it. */
static uint32_t cfg_rd(struct t *t, unsigned int slot, uint32_t off, unsigned int len)
{
	uint32_t a = 0x80000000u | slot << 11 | (off & 0xfc), v = 0;

	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_ADDR, &a, 4, true), 0);
	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_DATA + (off & 3), &v, len, false), 0);
	return v;
}

static void cfg_wr(struct t *t, unsigned int slot, uint32_t off, uint32_t v, unsigned int len)
{
	uint32_t a = 0x80000000u | slot << 11 | (off & 0xfc);

	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_ADDR, &a, 4, true), 0);
	CHECK_EQ(bus_dispatch(t->bus, BUS_PIO, PCI_PORT_DATA + (off & 3), &v, len, true), 0);
}

static uint32_t bar_rd(struct t *t, uint64_t off, unsigned int len)
{
	uint32_t v = 0;

	CHECK_EQ(bus_dispatch(t->bus, BUS_MMIO, t->bar + off, &v, len, false), 0);
	return v;
}

static void bar_wr(struct t *t, uint64_t off, uint32_t v, unsigned int len)
{
	CHECK_EQ(bus_dispatch(t->bus, BUS_MMIO, t->bar + off, &v, len, true), 0);
}

static void setup(struct t *t)
{
	memset(t, 0, sizeof(*t));
	t->gm = test_gmem(4 << 20, 20);
	if (bus_create(&t->bus) || pci_host_init(&t->host, t->bus, WIN, WIN_SIZE, NULL, NULL))
		exit(1);
	CHECK_EQ(virtio_blk_init(&t->blk, t->gm, "virtio-blk-pci-test", 1 << 20, false, "id"), 0);
	t->blk.backend = &be_ops;
	t->blk.backend_opaque = t;
	t->blk.kick = kick;
	t->blk.kick_opaque = t;
	virtio_pci_init(&t->vp, &t->blk.vdev, 0x010000);
	t->vp.signal_msi = signal_msi;
	t->vp.msi_opaque = t;
	t->vp.set_intx = set_intx;
	t->vp.intx_opaque = t;
	CHECK_EQ(pci_host_add(&t->host, &t->vp.pci, &t->slot), 0);
	t->bar = pci_bar_addr(&t->vp.pci, 0);
}

static void teardown(struct t *t)
{
	virtio_blk_destroy(&t->blk);
	pci_host_destroy(&t->host);
	bus_destroy(t->bus);
	gmem_destroy(t->gm);
}

static void test_config_space(void)
{
	uint32_t lo, hi, types = 0;
	struct t t;
	uint8_t c;

	setup(&t);
	/* Linux's type-1 probe: a byte at 0xCFB is ignored, the address register reads back. */
	CHECK_EQ(bus_dispatch(t.bus, BUS_PIO, 0xcfb, &(uint8_t){ 1 }, 1, true), 0);
	CHECK_EQ(cfg_rd(&t, 0, 0, 4), 0x29c08086u);
	CHECK_EQ(cfg_rd(&t, 0, 0x0a, 2), 0x0600); /* a host bridge */
	CHECK_EQ(cfg_rd(&t, 7, 0, 4), 0xffffffffu); /* nobody there */
	CHECK_EQ(t.slot, 1);
	CHECK_EQ(cfg_rd(&t, 1, 0, 4), 0x10421af4u); /* virtio 1.x block */
	CHECK(cfg_rd(&t, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	CHECK_EQ(cfg_rd(&t, 1, PCI_INTERRUPT_PIN, 1), 1); /* INTA#, for drivers without MSI-X */
	/* The capability chain a driver walks. */
	for (c = (uint8_t)cfg_rd(&t, 1, PCI_CAP_PTR, 1); c; c = (uint8_t)cfg_rd(&t, 1, c + 1, 1)) {
		uint8_t id = (uint8_t)cfg_rd(&t, 1, c, 1);

		if (id == 0x11) {
			CHECK_EQ(cfg_rd(&t, 1, c + 2, 2) & 0x7ff, VPCI_VECTORS - 1);
			CHECK_EQ(cfg_rd(&t, 1, c + 4, 4), VPCI_MSIX_TABLE);
			CHECK_EQ(cfg_rd(&t, 1, c + 8, 4), VPCI_MSIX_PBA);
			continue;
		}
		CHECK_EQ(id, 0x09);
		CHECK_EQ(cfg_rd(&t, 1, c + 4, 1), 0); /* BAR 0 */
		types |= 1u << cfg_rd(&t, 1, c + 3, 1);
		if (cfg_rd(&t, 1, c + 3, 1) == 2)
			CHECK_EQ(cfg_rd(&t, 1, c + 16, 4), VPCI_NOTIFY_MULT);
		if (cfg_rd(&t, 1, c + 3, 1) == 4)
			CHECK_EQ(cfg_rd(&t, 1, c + 8, 4), VPCI_DEVICE_CFG);
		if (types > 0x1f)
			break;
	}
	CHECK_EQ(types, 0x1e); /* common, notify, ISR, device */
	/* BAR sizing: all ones in, the size mask out; then the address goes back. */
	CHECK_EQ(t.bar, WIN);
	lo = cfg_rd(&t, 1, PCI_BAR0, 4);
	hi = cfg_rd(&t, 1, PCI_BAR0 + 4, 4);
	CHECK_EQ(lo, (uint32_t)WIN | 0x4);
	cfg_wr(&t, 1, PCI_BAR0, 0xffffffffu, 4);
	cfg_wr(&t, 1, PCI_BAR0 + 4, 0xffffffffu, 4);
	CHECK_EQ(cfg_rd(&t, 1, PCI_BAR0, 4), 0xffffc004u);
	CHECK_EQ(cfg_rd(&t, 1, PCI_BAR0 + 4, 4), 0xffffffffu);
	cfg_wr(&t, 1, PCI_BAR0, lo, 4);
	cfg_wr(&t, 1, PCI_BAR0 + 4, hi, 4);
	CHECK_EQ(pci_bar_addr(&t.vp.pci, 0), WIN);
	/* Decoding only with memory enabled. */
	{
		uint32_t v;

		CHECK_EQ(bus_dispatch(t.bus, BUS_MMIO, WIN + 0x12, &v, 2, false), -ENOENT);
	}
	cfg_wr(&t, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	CHECK_EQ(bar_rd(&t, 0x12, 2), 1); /* num_queues */
	/* The guest moves the BAR inside the window: decoding follows. */
	cfg_wr(&t, 1, PCI_BAR0, (uint32_t)WIN + 0x8000, 4);
	t.bar = WIN + 0x8000;
	CHECK_EQ(bar_rd(&t, 0x12, 2), 1);
	teardown(&t);
}

/* A removed function is gone from config space and its BAR; its slot and window room are reused. */
static void test_remove(void)
{
	struct virtio_pci other;
	unsigned int slot = 0;
	uint32_t v;
	struct t t;

	setup(&t);
	cfg_wr(&t, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	CHECK_EQ(bar_rd(&t, 0x12, 2), 1);
	CHECK_EQ(pci_host_remove(&t.host, &t.vp.pci), 0);
	CHECK_EQ(pci_host_remove(&t.host, &t.vp.pci), -ENOENT);
	CHECK_EQ(pci_host_remove(&t.host, &t.host.bridge), -ENOENT); /* never the bridge */
	CHECK_EQ(cfg_rd(&t, 1, 0, 4), 0xffffffffu);
	CHECK_EQ(bus_dispatch(t.bus, BUS_MMIO, WIN + 0x12, &v, 2, false), -ENOENT);
	virtio_pci_init(&other, &t.blk.vdev, 0x010000);
	CHECK_EQ(pci_host_add(&t.host, &other.pci, &slot), 0);
	CHECK_EQ(slot, 1);
	CHECK_EQ(pci_bar_addr(&other.pci, 0), WIN); /* the room came back */
	CHECK_EQ(pci_host_remove(&t.host, &other.pci), 0);
	teardown(&t);
}

static void bring_up(struct t *t)
{
	static const uint8_t zero[0x3000];

	CHECK_EQ(gmem_write(t->gm, DESC, zero, sizeof(zero)), 0);
	cfg_wr(t, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	bar_wr(t, 0x14, 0, 1);
	bar_wr(t, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	bar_wr(t, 0x00, 1, 4);
	CHECK_EQ(bar_rd(t, 0x04, 4) & 1, 1); /* VERSION_1 */
	bar_wr(t, 0x08, 1, 4);
	bar_wr(t, 0x0c, 1, 4);
	bar_wr(t, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK, 1);
	CHECK(bar_rd(t, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	/* MSI-X: enable, vector 0 for the queue, vector 1 for configuration changes. */
	cfg_wr(t, 1, t->vp.msix_cap + 2, 0x8000, 2);
	bar_wr(t, VPCI_MSIX_TABLE + 0, 0xfee00000u, 4);
	bar_wr(t, VPCI_MSIX_TABLE + 8, 0x41, 4);
	bar_wr(t, VPCI_MSIX_TABLE + 12, 0, 4);
	bar_wr(t, VPCI_MSIX_TABLE + 16, 0xfee00000u, 4);
	bar_wr(t, VPCI_MSIX_TABLE + 24, 0x42, 4);
	bar_wr(t, VPCI_MSIX_TABLE + 28, 0, 4);
	bar_wr(t, 0x10, 1, 2);
	bar_wr(t, 0x16, 0, 2);
	CHECK_EQ(bar_rd(t, 0x18, 2), BLK_QUEUE_SIZE);
	bar_wr(t, 0x18, QSIZE, 2);
	bar_wr(t, 0x1a, 0, 2);
	bar_wr(t, 0x20, (uint32_t)DESC, 4);
	bar_wr(t, 0x24, 0, 4);
	bar_wr(t, 0x28, (uint32_t)AVAIL, 4);
	bar_wr(t, 0x2c, 0, 4);
	bar_wr(t, 0x30, (uint32_t)USED, 4);
	bar_wr(t, 0x34, 0, 4);
	bar_wr(t, 0x1c, 1, 2);
	CHECK_EQ(bar_rd(t, 0x1c, 2), 1);
	bar_wr(t, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	CHECK(bar_rd(t, 0x14, 1) & VIRTIO_STATUS_DRIVER_OK);
}

/* A FLUSH request in slot n of the ring; returns after the device took it. */
static void flush(struct t *t, uint16_t n)
{
	struct { uint32_t type, reserved; uint64_t sector; } hdr = { VIRTIO_BLK_T_FLUSH, 0, 0 };
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d[2] = {
		{ HDR, 16, VIRTQ_DESC_F_NEXT, 1 }, { STATUS, 1, VIRTQ_DESC_F_WRITE, 0 },
	};
	uint16_t head = 0, idx = (uint16_t)(n + 1);

	CHECK_EQ(gmem_write(t->gm, HDR, &hdr, sizeof(hdr)), 0);
	CHECK_EQ(gmem_write(t->gm, DESC, d, sizeof(d)), 0);
	CHECK_EQ(gmem_write(t->gm, AVAIL + 4 + 2 * (n % QSIZE), &head, 2), 0);
	CHECK_EQ(gmem_write(t->gm, AVAIL + 2, &idx, 2), 0);
	bar_wr(t, VPCI_NOTIFY, 0, 2); /* queue 0's notify register */
	blk_process(&t->blk);
}

static void test_virtio_pci(void)
{
	struct t t;
	uint16_t used = 0, bad = 500;

	setup(&t);
	bring_up(&t);
	flush(&t, 0);
	CHECK_EQ(t.kicks, 1);
	CHECK(t.pending != NULL);
	if (t.pending)
		blk_io_done(t.pending);
	CHECK_EQ(gmem_read(t.gm, USED + 2, &used, 2), 0);
	CHECK_EQ(used, 1);
	CHECK_EQ(t.msis, 1);
	CHECK_EQ(t.msi_addr, 0xfee00000u);
	CHECK_EQ(t.msi_data, 0x41);
	/* Masked: the message waits in the PBA, and goes when unmasked. */
	bar_wr(&t, VPCI_MSIX_TABLE + 12, 1, 4);
	t.pending = NULL;
	flush(&t, 1);
	if (t.pending)
		blk_io_done(t.pending);
	CHECK_EQ(t.msis, 1);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_PBA, 4), 1);
	bar_wr(&t, VPCI_MSIX_TABLE + 12, 0, 4);
	CHECK_EQ(t.msis, 2);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_PBA, 4), 0);
	/* The function mask holds everything back too. */
	cfg_wr(&t, 1, t.vp.msix_cap + 2, 0xc000, 2);
	t.pending = NULL;
	flush(&t, 2);
	if (t.pending)
		blk_io_done(t.pending);
	CHECK_EQ(t.msis, 2);
	cfg_wr(&t, 1, t.vp.msix_cap + 2, 0x8000, 2);
	CHECK_EQ(t.msis, 3);
	/* A configuration change (a balloon's new target): the configuration vector. */
	{
		uint8_t gen = (uint8_t)bar_rd(&t, 0x15, 1);

		virtio_dev_config_changed(&t.blk.vdev);
		CHECK_EQ(t.msis, 4);
		CHECK_EQ(t.msi_data, 0x42);
		CHECK(bar_rd(&t, 0x15, 1) != gen);
		t.msis = 3;
	}
	/* A broken ring: NEEDS_RESET, signalled on the configuration vector. */
	CHECK_EQ(gmem_write(t.gm, AVAIL + 2, &bad, 2), 0);
	bar_wr(&t, VPCI_NOTIFY, 0, 2);
	blk_process(&t.blk);
	CHECK(bar_rd(&t, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(t.msis, 4);
	CHECK_EQ(t.msi_data, 0x42);
	/* Reset: queues gone, and it comes back. */
	bar_wr(&t, 0x14, 0, 1);
	CHECK_EQ(bar_rd(&t, 0x14, 1), 0);
	CHECK_EQ(bar_rd(&t, 0x1c, 2), 0);
	bring_up(&t);
	CHECK(bar_rd(&t, 0x14, 1) & VIRTIO_STATUS_DRIVER_OK);
	/* Refused: odd widths and misaligned common-configuration accesses. */
	{
		uint32_t v;

		CHECK_EQ(bus_dispatch(t.bus, BUS_MMIO, t.bar + 0x01, &v, 2, false), -EINVAL);
		CHECK_EQ(bus_dispatch(t.bus, BUS_MMIO, t.bar + 0x00, &v, 8, false), -EINVAL);
	}
	teardown(&t);
}

/* One flush request completed: the device's interrupt, whichever way it goes. */
static void flush_done(struct t *t, uint16_t n)
{
	t->pending = NULL;
	flush(t, n);
	CHECK(t->pending != NULL);
	if (t->pending)
		blk_io_done(t->pending);
}

/* A driver that leaves MSI-X off (Linux with pci=nomsi) gets INTA#, which follows the ISR. */
static void test_intx(void)
{
	struct t t;

	setup(&t);
	CHECK_EQ(cfg_rd(&t, 1, PCI_INTERRUPT_PIN, 1), 1);
	bring_up(&t);
	/* MSI-X on: a completion is a message, and INTA# stays down. */
	flush_done(&t, 0);
	CHECK_EQ(t.msis, 1);
	CHECK_EQ(t.intx_changes, 0);
	/* MSI-X off: nothing stale from the MSI-X era comes up. */
	cfg_wr(&t, 1, t.vp.msix_cap + 2, 0, 2);
	CHECK(!t.intx);
	CHECK_EQ(bar_rd(&t, VPCI_ISR, 1), 0);
	/* Then a completion raises the line, and reading the ISR acknowledges it. */
	flush_done(&t, 1);
	CHECK_EQ(t.msis, 1);
	CHECK(t.intx);
	CHECK(cfg_rd(&t, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	CHECK_EQ(bar_rd(&t, VPCI_ISR, 1), VIRTIO_ISR_QUEUE);
	CHECK(!t.intx);
	CHECK(!(cfg_rd(&t, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
	CHECK_EQ(bar_rd(&t, VPCI_ISR, 1), 0);
	/* Interrupt Disable holds the line down; the status bit still shows the wish. */
	cfg_wr(&t, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
	       PCI_COMMAND_INTX_DISABLE, 2);
	flush_done(&t, 2);
	CHECK(!t.intx);
	CHECK(cfg_rd(&t, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cfg_wr(&t, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	CHECK(t.intx);
	/* Turning MSI-X on takes INTx down at once. */
	cfg_wr(&t, 1, t.vp.msix_cap + 2, 0x8000, 2);
	CHECK(!t.intx);
	CHECK_EQ(t.vp.intx_raised, 2);
	/* A reset clears the ISR, and the line with it. */
	cfg_wr(&t, 1, t.vp.msix_cap + 2, 0, 2);
	CHECK(t.intx);
	bar_wr(&t, 0x14, 0, 1);
	CHECK(!t.intx);
	teardown(&t);
}

/* ---- MSI routes: vmm/msi.c behind the transport, on fake KVM ops ---- */

struct fake_kvm {
	unsigned int updates, signals, binds;
	struct vm_msi_route table[VM_MSI_MAX];
	unsigned int nr;
	uint64_t sig_addr;
	uint32_t sig_data;
};

static int fake_set_routes(void *ctx, const struct vm_msi_route *r, unsigned int n)
{
	struct fake_kvm *k = ctx;

	k->updates++;
	memcpy(k->table, r, n * sizeof(*r));
	k->nr = n;
	return 0;
}

static int fake_bind(void *ctx, int efd, uint32_t gsi)
{
	(void)efd, (void)gsi;
	((struct fake_kvm *)ctx)->binds++;
	return 0;
}

static int fake_signal(void *ctx, uint64_t addr, uint32_t data)
{
	struct fake_kvm *k = ctx;

	k->signals++;
	k->sig_addr = addr;
	k->sig_data = data;
	return 0;
}

static const struct vm_msi_ops fake_ops = {
	.set_routes = fake_set_routes, .bind = fake_bind, .signal = fake_signal,
};

struct msi_t {
	struct t t;
	struct fake_kvm k;
	struct vm_msi m;
	int src[VPCI_VECTORS];
};

/* As vmm/vdev_transport.c does: a source per vector, made when first used. */
static void msi_signal(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	struct msi_t *mt = opaque;

	(void)addr, (void)data;
	if (mt->src[vector] < 0)
		mt->src[vector] = vm_msi_source(&mt->m);
	CHECK(mt->src[vector] >= 0);
	if (mt->src[vector] >= 0)
		CHECK_EQ(vm_msi_send(&mt->m, mt->src[vector], addr, data), 0);
}

/*
 * The one message vector 0 delivered since the last call, as the guest
 * would see it: sent directly, or through the irqfd and the GSI's route.
 */
static bool msi_got(struct msi_t *mt, unsigned int signals0, uint64_t *addr, uint32_t *data)
{
	uint64_t n = 0;
	unsigned int i;
	int efd = mt->m.src[mt->src[0]].efd;

	if (read(efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	if (mt->k.signals == signals0 + 1 && !n) {
		*addr = mt->k.sig_addr;
		*data = mt->k.sig_data;
		return true;
	}
	for (i = 0; n == 1 && mt->k.signals == signals0 && i < mt->k.nr; i++) {
		if (mt->k.table[i].gsi == mt->m.src[mt->src[0]].gsi) {
			*addr = mt->k.table[i].addr;
			*data = mt->k.table[i].data;
			return true;
		}
	}
	return false;
}

/* One request completed, then the I/O thread's settle; the message must carry (addr, data). */
static void msi_round(struct msi_t *mt, uint16_t n, uint64_t addr, uint32_t data)
{
	unsigned int signals0 = mt->k.signals;
	uint64_t a = 0;
	uint32_t d = 0;

	flush_done(&mt->t, n);
	CHECK_EQ(vm_msi_settle(&mt->m), 0);
	CHECK(msi_got(mt, signals0, &a, &d));
	CHECK_EQ(a, addr);
	CHECK_EQ(d, data);
}

/*
 * Reprogramming a vector costs no routing update by itself, and a guest
 * that reprograms between interrupts cannot force one per interrupt; every
 * message still carries the latest address and data.
 */
static void test_msi_routes(void)
{
	struct msi_t *mt = calloc(1, sizeof(*mt));
	uint16_t n = 0;
	unsigned int i, u0;

	if (!mt)
		exit(1);
	setup(&mt->t);
	for (i = 0; i < VPCI_VECTORS; i++)
		mt->src[i] = -1;
	CHECK_EQ(vm_msi_init_ops(&mt->m, &fake_ops, &mt->k), 0);
	mt->t.vp.signal_msi = msi_signal;
	mt->t.vp.msi_opaque = mt;
	bring_up(&mt->t);
	/* The first message goes directly; the route follows, once; then the irqfd. */
	msi_round(mt, n++, 0xfee00000u, 0x41);
	CHECK_EQ(mt->k.updates, 1);
	CHECK_EQ(mt->k.binds, 1);
	msi_round(mt, n++, 0xfee00000u, 0x41);
	CHECK_EQ(mt->k.updates, 1);
	CHECK_EQ(vm_msi_stats(&mt->m).sent, 1);
	/* 1000 rewrites of the entry without an interrupt: no update. */
	for (i = 0; i < 1000; i++) {
		bar_wr(&mt->t, VPCI_MSIX_TABLE + 0, 0xfee00000u | (i % 4) << 12, 4);
		bar_wr(&mt->t, VPCI_MSIX_TABLE + 4, 0, 4);
		bar_wr(&mt->t, VPCI_MSIX_TABLE + 8, 0x40 + i % 16, 4);
		CHECK_EQ(vm_msi_settle(&mt->m), 0);
	}
	CHECK_EQ(mt->k.updates, 1);
	/* Then interrupts: the first carries the last rewrite; at most one update before it. */
	msi_round(mt, n++, 0xfee03000u, 0x47);
	CHECK(mt->k.updates <= 2);
	for (i = 0; i < 4; i++)
		msi_round(mt, n++, 0xfee03000u, 0x47);
	CHECK_EQ(mt->k.updates, 2); /* the route moved once, for the lot */
	CHECK_EQ(mt->k.table[0].addr, 0xfee03000u);
	/* A hostile guest: a new address before each of 100 interrupts. */
	u0 = mt->k.updates;
	for (i = 0; i < 100; i++) {
		uint32_t addr = 0xfee00000u | (i % 2 + 1) << 12;

		bar_wr(&mt->t, VPCI_MSIX_TABLE + 0, addr, 4);
		msi_round(mt, n++, addr, 0x47);
	}
	CHECK(mt->k.updates - u0 <= 1); /* the old code: 100 */
	/* Settling down again, the route follows within a bounded number of messages. */
	for (i = 0; i < 64; i++)
		msi_round(mt, n++, 0xfee02000u, 0x47);
	CHECK(mt->k.updates - u0 <= 2);
	CHECK_EQ(mt->k.table[0].addr, 0xfee02000u);
	CHECK(vm_msi_stats(&mt->m).sent > 0);
	vm_msi_destroy_ops(&mt->m);
	teardown(&mt->t);
	free(mt);
}

/* sends n messages from source h and settles after each; how many went through the irqfd */
static unsigned int msi_burst(struct vm_msi *m, int h, uint64_t addr, unsigned int n)
{
	uint64_t before = vm_msi_stats(m).sent;

	while (n--) {
		CHECK_EQ(vm_msi_send(m, h, addr, 0x41), 0);
		CHECK_EQ(vm_msi_settle(m), 0);
	}
	return (unsigned int)(vm_msi_stats(m).sent - before);
}

/* The backoff doubles per move, and a route that carried 4096 messages moves quickly again. */
static void test_msi_backoff(void)
{
	struct fake_kvm k = { 0 };
	struct vm_msi m;
	int h;

	CHECK_EQ(vm_msi_init_ops(&m, &fake_ops, &k), 0);
	h = vm_msi_source(&m);
	CHECK_EQ(h, 0);
	CHECK_EQ(msi_burst(&m, h, 0xfee00000u, 1), 0); /* direct, then routed */
	CHECK_EQ(k.updates, 1);
	CHECK_EQ(msi_burst(&m, h, 0xfee01000u, 1), 0); /* a move waits for 2 */
	CHECK_EQ(k.updates, 1);
	CHECK_EQ(msi_burst(&m, h, 0xfee01000u, 1), 0);
	CHECK_EQ(k.updates, 2);
	CHECK_EQ(msi_burst(&m, h, 0xfee00000u, 3), 0); /* the next for 4 */
	CHECK_EQ(k.updates, 2);
	CHECK_EQ(msi_burst(&m, h, 0xfee00000u, 1), 0);
	CHECK_EQ(k.updates, 3);
	CHECK_EQ(msi_burst(&m, h, 0xfee00000u, 4096), 4096);
	CHECK_EQ(msi_burst(&m, h, 0xfee01000u, 2), 0); /* earned: 2 again, not 8 */
	CHECK_EQ(k.updates, 4);
	CHECK_EQ(k.table[0].addr, 0xfee01000u);
	CHECK_EQ(msi_burst(&m, h, 0xfee01000u, 1), 1);
	CHECK_EQ(vm_msi_stats(&m).direct, 9);
	vm_msi_destroy_ops(&m);
}

/*
 * MSI routes never take an irqchip GSI: arch_irq_msi_gsi_base() lies above
 * every default route (which KVM_SET_GSI_ROUTING repeats), the count
 * arch_irq_default_routes() gives is what it fills, and sources number
 * their GSIs from that base.
 */
static void test_msi_gsis_clear_irqchip(void)
{
	struct kvm_irq_routing_entry e[512];
	unsigned int i, n = arch_irq_default_routes(NULL, 0), base = arch_irq_msi_gsi_base();
	struct fake_kvm k = { 0 };
	struct vm_msi m;

	CHECK(n > 0 && n <= ARRAY_SIZE(e));
	CHECK_EQ(arch_irq_default_routes(e, ARRAY_SIZE(e)), n);
	for (i = 0; i < n; i++)
		CHECK(e[i].gsi < base);
	CHECK_EQ(vm_msi_init_ops(&m, &fake_ops, &k), 0);
	for (i = 0; i < 3; i++) {
		int h = vm_msi_source(&m);

		CHECK(h >= 0);
		CHECK_EQ(m.src[h].gsi, base + i);
	}
	vm_msi_destroy_ops(&m);
}

int main(void)
{
	test_config_space();
	test_remove();
	test_virtio_pci();
	test_intx();
	test_msi_routes();
	test_msi_backoff();
	test_msi_gsis_clear_irqchip();
	return test_done("pci");
}
