/* PCI host bridge: configuration mechanism #1, bus 0, memory BARs in one window. */
#include <errno.h>
#include <string.h>

#include "compiler.h"
#include "pci.h"

#define BAR_MEM_64 0x4 /* memory BAR, type 64-bit, not prefetchable */

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	pci_put16(d->cfg + PCI_VENDOR_ID, vendor);
	pci_put16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION] = revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	pci_put16(d->cfg + PCI_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
	/* The guest may enable memory decoding and bus mastering, nothing else of the command. */
	pci_put16(d->wmask + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	d->wmask[0x0c] = 0xff; /* cache line size */
	d->wmask[0x0d] = 0xff; /* latency timer */
	d->wmask[0x3c] = 0xff; /* interrupt line: scratch for the guest */
	d->cap_last = 0;
}

void pci_set_bar64(struct pci_dev *d, unsigned int bar, uint64_t size,
		   const struct bus_device_ops *ops, void *opaque)
{
	uint64_t mask = ~(size - 1);

	d->bar_size[bar] = size;
	d->bar_ops[bar] = ops;
	d->bar_opaque[bar] = opaque;
	pci_put32(d->cfg + PCI_BAR0 + 4 * bar, BAR_MEM_64);
	/* Sizing works by writing all ones: only the address bits above the size stick. */
	pci_put32(d->wmask + PCI_BAR0 + 4 * bar, (uint32_t)mask & ~0xfu);
	pci_put32(d->wmask + PCI_BAR0 + 4 * bar + 4, (uint32_t)(mask >> 32));
}

uint8_t pci_add_cap(struct pci_dev *d, uint8_t id, uint8_t len)
{
	unsigned int off = d->cap_last ? ALIGN_UP(d->cap_end, 4u) : PCI_CAP_FIRST;

	if (len < 2 || off + len > PCI_CFG_SIZE)
		return 0;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAP_PTR] = (uint8_t)off;
	pci_put16(d->cfg + PCI_STATUS, pci_get16(d->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	d->cap_last = (uint8_t)off;
	d->cap_end = off + len;
	return (uint8_t)off;
}

uint64_t pci_bar_addr(const struct pci_dev *d, unsigned int bar)
{
	if (bar >= PCI_BARS || !d->bar_size[bar])
		return 0;
	return ((uint64_t)pci_get32(d->cfg + PCI_BAR0 + 4 * bar + 4) << 32) |
	       (pci_get32(d->cfg + PCI_BAR0 + 4 * bar) & ~0xfULL);
}

static struct pci_dev *dev_at(struct pci_host *h, unsigned int slot)
{
	return slot < PCI_SLOTS ? h->slot[slot] : NULL;
}

uint32_t pci_cfg_read(struct pci_host *h, unsigned int slot, uint32_t off, unsigned int len)
{
	struct pci_dev *d;
	uint32_t v = 0;
	unsigned int i;

	pthread_mutex_lock(&h->lock);
	d = dev_at(h, slot);
	if (!d || off + len > PCI_CFG_SIZE) {
		pthread_mutex_unlock(&h->lock);
		return len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1; /* nobody home */
	}
	for (i = 0; i < len; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	pthread_mutex_unlock(&h->lock);
	return v;
}

void pci_cfg_write(struct pci_host *h, unsigned int slot, uint32_t off, uint32_t val,
		   unsigned int len)
{
	struct pci_dev *d;
	unsigned int i;

	pthread_mutex_lock(&h->lock);
	d = dev_at(h, slot);
	if (!d || off + len > PCI_CFG_SIZE) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	for (i = 0; i < len; i++) {
		uint8_t m = d->wmask[off + i], b = (uint8_t)(val >> (8 * i));

		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | (b & m));
	}
	pthread_mutex_unlock(&h->lock);
	if (d->cfg_written)
		d->cfg_written(d, off, len);
}

static int data_read(void *opaque, uint64_t off, void *data, unsigned int len);
static int data_write(void *opaque, uint64_t off, const void *data, unsigned int len);

/*
 * 0xCF8-0xCFF: the address register (32-bit only at 0xCF8; other widths
 * are the legacy probe, ignored), 0xCF9 the reset control, then data.
 */
static int addr_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct pci_host *h = opaque;
	uint32_t v;

	if (off >= 4)
		return data_read(h, off - 4, data, len);
	if (off == 1 && len == 1 && h->cf9_ops && h->cf9_ops->read)
		return h->cf9_ops->read(h->cf9_opaque, 0, data, len);
	if (off != 0 || len != 4) {
		memset(data, 0xff, len);
		return 0;
	}
	pthread_mutex_lock(&h->lock);
	v = h->addr;
	pthread_mutex_unlock(&h->lock);
	memcpy(data, &v, 4);
	return 0;
}

static int addr_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct pci_host *h = opaque;
	uint32_t v;

	if (off >= 4)
		return data_write(h, off - 4, data, len);
	if (off == 1 && len == 1 && h->cf9_ops && h->cf9_ops->write)
		return h->cf9_ops->write(h->cf9_opaque, 0, data, len);
	if (off != 0 || len != 4)
		return 0; /* Linux's type-1 probe writes a byte at 0xCFB: harmless */
	memcpy(&v, data, 4);
	pthread_mutex_lock(&h->lock);
	h->addr = v & 0x80fffffcu;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* Decodes the address register: false unless enabled, bus 0, function 0. */
static bool target(struct pci_host *h, uint64_t off, unsigned int len, unsigned int *slot,
		   uint32_t *reg)
{
	uint32_t a;

	pthread_mutex_lock(&h->lock);
	a = h->addr;
	pthread_mutex_unlock(&h->lock);
	if (!(a & 0x80000000u) || ((a >> 16) & 0xff) || ((a >> 8) & 0x7) || off + len > 4)
		return false;
	*slot = (a >> 11) & 0x1f;
	*reg = (a & 0xfc) + (uint32_t)off;
	return true;
}

static int data_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct pci_host *h = opaque;
	unsigned int slot;
	uint32_t reg, v = 0xffffffffu;

	if (len != 1 && len != 2 && len != 4)
		return -EINVAL;
	if (target(h, off, len, &slot, &reg))
		v = pci_cfg_read(h, slot, reg, len);
	memcpy(data, &v, len);
	return 0;
}

static int data_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct pci_host *h = opaque;
	unsigned int slot;
	uint32_t reg, v = 0;

	if (len != 1 && len != 2 && len != 4)
		return -EINVAL;
	memcpy(&v, data, len);
	if (target(h, off, len, &slot, &reg))
		pci_cfg_write(h, slot, reg, v, len);
	return 0;
}

static const struct bus_device_ops ports_ops = { .read = addr_read, .write = addr_write };

/* Finds the device BAR that decodes [addr, addr+len): memory decoding on, inside the BAR. */
static struct pci_dev *decode(struct pci_host *h, uint64_t addr, unsigned int len,
			      unsigned int *bar, uint64_t *off)
{
	unsigned int s, b;

	for (s = 0; s < PCI_SLOTS; s++) {
		struct pci_dev *d = h->slot[s];

		if (!d || !(pci_get16(d->cfg + PCI_COMMAND) & PCI_COMMAND_MEMORY))
			continue;
		for (b = 0; b < PCI_BARS; b++) {
			uint64_t base = pci_bar_addr(d, b);

			if (d->bar_size[b] && addr >= base && addr - base + len <= d->bar_size[b]) {
				*bar = b;
				*off = addr - base;
				return d;
			}
		}
	}
	return NULL;
}

static int window_access(void *opaque, uint64_t off, void *data, unsigned int len, bool write)
{
	struct pci_host *h = opaque;
	const struct bus_device_ops *ops;
	struct pci_dev *d;
	unsigned int bar;
	uint64_t boff;
	void *dev;

	pthread_mutex_lock(&h->lock);
	d = decode(h, h->win_base + off, len, &bar, &boff);
	ops = d ? d->bar_ops[bar] : NULL;
	dev = d ? d->bar_opaque[bar] : NULL;
	pthread_mutex_unlock(&h->lock);
	if (!ops)
		return -ENOENT;
	if (write)
		return ops->write ? ops->write(dev, boff, data, len) : 0;
	if (!ops->read) {
		memset(data, 0, len);
		return 0;
	}
	return ops->read(dev, boff, data, len);
}

static int window_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	return window_access(opaque, off, data, len, false);
}

static int window_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	return window_access(opaque, off, (void *)data, len, true);
}

static const struct bus_device_ops window_ops = { .read = window_read, .write = window_write };

int pci_host_init(struct pci_host *h, struct bus *bus, uint64_t win_base, uint64_t win_size,
		  const struct bus_device_ops *cf9_ops, void *cf9_opaque)
{
	int ret;

	memset(h, 0, sizeof(*h));
	ret = -pthread_mutex_init(&h->lock, NULL);
	if (ret)
		return ret;
	h->win_base = win_base;
	h->win_size = win_size;
	h->win_next = win_base;
	h->cf9_ops = cf9_ops;
	h->cf9_opaque = cf9_opaque;
	/* 00:00.0, a host bridge: Linux's type-1 probe looks for one. */
	pci_dev_init(&h->bridge, "pci-host", 0x8086, 0x29c0, 0x060000, 0);
	h->slot[0] = &h->bridge;
	ret = bus_register(bus, BUS_PIO, PCI_PORT_ADDR, 8, &ports_ops, h, "pci-config");
	if (!ret)
		ret = bus_register(bus, BUS_MMIO, win_base, win_size, &window_ops, h, "pci-window");
	if (ret)
		pthread_mutex_destroy(&h->lock);
	return ret;
}

void pci_host_destroy(struct pci_host *h)
{
	pthread_mutex_destroy(&h->lock);
}

int pci_host_add(struct pci_host *h, struct pci_dev *d, unsigned int *slot)
{
	uint64_t next;
	unsigned int s, b;

	pthread_mutex_lock(&h->lock);
	for (s = 1; s < PCI_SLOTS && h->slot[s]; s++)
		;
	next = h->win_next;
	for (b = 0; b < PCI_BARS && s < PCI_SLOTS; b++) {
		if (!d->bar_size[b])
			continue;
		next = ALIGN_UP(next, d->bar_size[b]);
		if (next + d->bar_size[b] > h->win_base + h->win_size) {
			s = PCI_SLOTS;
			break;
		}
		pci_put32(d->cfg + PCI_BAR0 + 4 * b,
			  (uint32_t)next | (pci_get32(d->cfg + PCI_BAR0 + 4 * b) & 0xf));
		pci_put32(d->cfg + PCI_BAR0 + 4 * b + 4, (uint32_t)(next >> 32));
		next += d->bar_size[b];
	}
	if (s == PCI_SLOTS) {
		pthread_mutex_unlock(&h->lock);
		return -ENOSPC;
	}
	h->win_next = next;
	h->slot[s] = d;
	pthread_mutex_unlock(&h->lock);
	*slot = s;
	return 0;
}

int pci_host_remove(struct pci_host *h, struct pci_dev *d)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned int s, b;

	pthread_mutex_lock(&h->lock);
	for (s = 1; s < PCI_SLOTS && h->slot[s] != d; s++)
		;
	if (s == PCI_SLOTS) {
		pthread_mutex_unlock(&h->lock);
		return -ENOENT;
	}
	h->slot[s] = NULL;
	for (b = 0; b < PCI_BARS; b++) {
		uint64_t base = pci_bar_addr(d, b);

		if (!d->bar_size[b])
			continue;
		lo = base < lo ? base : lo;
		hi = base + d->bar_size[b] > hi ? base + d->bar_size[b] : hi;
	}
	/* Only the last one's: the guest-visible layout of the others never moves. */
	if (hi && hi == h->win_next)
		h->win_next = lo;
	pthread_mutex_unlock(&h->lock);
	return 0;
}
