/*
 * A PCI host bridge for x86: configuration mechanism #1 (ports 0xCF8 and
 * 0xCFC-0xCFF), bus 0 only, a host bridge at 00:00.0, and memory BARs
 * served from one MMIO window.  A device model fills its configuration
 * space and write mask; the host handles BAR sizing and relocation inside
 * the window and dispatches BAR accesses to the device by its BARs' current
 * addresses and the memory-enable bit.
 */
#ifndef VEIL_PCI_H
#define VEIL_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "compiler.h"

#define PCI_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_BARS 6
#define PCI_PORT_ADDR 0xcf8
#define PCI_PORT_DATA 0xcfc

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS 0x06
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_STATUS_INTERRUPT 0x08
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_CAP_FIRST 0x40

struct pci_dev {
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];  /* bits the guest may change */
	uint64_t bar_size[PCI_BARS];   /* 0: no BAR; else a power of 2, at least 16 (memory BARs) */
	const struct bus_device_ops *bar_ops[PCI_BARS]; /* offsets relative to the BAR */
	void *bar_opaque[PCI_BARS];
	/* After a configuration write landed (capabilities with side effects: MSI-X enable). */
	void (*cfg_written)(struct pci_dev *d, uint32_t off, unsigned int len);
	void *opaque;
	uint8_t cap_last; /* the last capability added, for chaining */
	unsigned int cap_end;
};

struct pci_host {
	pthread_mutex_t lock;
	/* 0xCF9 (a byte inside 0xCF8's dword) is the PC's reset control: forwarded there. */
	const struct bus_device_ops *cf9_ops;
	void *cf9_opaque;
	uint32_t addr;                  /* the value at 0xCF8 */
	struct pci_dev *slot[PCI_SLOTS];
	uint64_t win_base, win_size;   /* where BARs live */
	uint64_t win_next;             /* next free address for a BAR */
	struct pci_dev bridge;         /* 00:00.0 */
};

/*
 * Sets up the host bridge and claims ports 0xCF8-0xCFF and the window on
 * bus.  Byte accesses to 0xCF9 go to cf9_ops (may be NULL).
 */
int pci_host_init(struct pci_host *h, struct bus *bus, uint64_t win_base, uint64_t win_size,
		  const struct bus_device_ops *cf9_ops, void *cf9_opaque) __must_check;
void pci_host_destroy(struct pci_host *h);

/*
 * Adds d at the next free slot, giving its BARs addresses in the window
 * (naturally aligned) as a firmware would.  -ENOSPC without a slot or room.
 */
int pci_host_add(struct pci_host *h, struct pci_dev *d, unsigned int *slot) __must_check;

/*
 * Takes d off its slot again, before any vCPU runs: an attach that failed
 * after adding it.  Its BARs' room is given back if they were the last
 * allocated.  -ENOENT if d is not on the host.
 */
int pci_host_remove(struct pci_host *h, struct pci_dev *d);

/* The BAR's current guest address (0 if absent). */
uint64_t pci_bar_addr(const struct pci_dev *d, unsigned int bar);

/* Device-model helpers. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision);
void pci_set_bar64(struct pci_dev *d, unsigned int bar, uint64_t size,
		   const struct bus_device_ops *ops, void *opaque);
/* Appends a capability of len bytes (id first, next second); returns its offset, or 0 if full. */
uint8_t pci_add_cap(struct pci_dev *d, uint8_t id, uint8_t len);

static inline void pci_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *p, uint32_t v)
{
	pci_put16(p, (uint16_t)v);
	pci_put16(p + 2, (uint16_t)(v >> 16));
}

static inline uint16_t pci_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t pci_get32(const uint8_t *p)
{
	return pci_get16(p) | (uint32_t)pci_get16(p + 2) << 16;
}

/* The config-space access the ports perform, exposed for tests: slot, offset, width 1/2/4. */
uint32_t pci_cfg_read(struct pci_host *h, unsigned int slot, uint32_t off, unsigned int len);
void pci_cfg_write(struct pci_host *h, unsigned int slot, uint32_t off, uint32_t val,
		   unsigned int len);

#endif
