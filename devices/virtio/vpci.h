/*
 * virtio-pci, modern only (virtio 1.2 §4.1): one 64-bit memory BAR with the
 * common configuration, the ISR, the device configuration, the queue
 * notifications (one 4-byte register per queue) and the MSI-X table and
 * PBA.  Interrupts are MSI-X only: the owner's signal_msi delivers a
 * message (x86: KVM_SIGNAL_MSI).  No INTx, so a driver without MSI-X cannot
 * use the device.
 */
#ifndef VEIL_VPCI_H
#define VEIL_VPCI_H

#include <stdint.h>

#include "pci.h"
#include "virtio.h"

#define VPCI_BAR_SIZE 0x4000
#define VPCI_COMMON 0x0000
#define VPCI_MSIX_TABLE 0x0800
#define VPCI_MSIX_PBA 0x0c00
#define VPCI_ISR 0x1000
#define VPCI_DEVICE_CFG 0x2000
#define VPCI_NOTIFY 0x3000
#define VPCI_NOTIFY_MULT 4
#define VPCI_VECTORS 8
#define VPCI_NO_VECTOR 0xffff

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *vd;
	uint8_t msix_cap;          /* offset of the MSI-X capability */
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t msix_config;
	struct {
		uint16_t size, vector;
		uint64_t desc, driver, device;
	} q[VIRTIO_MAX_QUEUES];
	struct {
		uint32_t addr_lo, addr_hi, data, ctrl;
	} msix[VPCI_VECTORS];
	uint64_t pending;          /* MSI-X PBA */
	/* The owner's: deliver an MSI (x86: address 0xfee..., data the vector). */
	void (*signal_msi)(void *opaque, unsigned int vector, uint64_t addr, uint32_t data);
	void *msi_opaque;
	uint64_t msis;             /* messages sent */
	/*
	 * The owner's: the level of the function's INTA# line, which follows the
	 * ISR while MSI-X is off and the command register does not disable it.
	 */
	void (*set_intx)(void *opaque, bool level);
	void *intx_opaque;
	bool intx_level;
	uint64_t intx_raised;      /* times INTA# went up */
};

/* Sets up the PCI function for vd (vendor 0x1af4, device 0x1040 + id); add it to a host after. */
void virtio_pci_init(struct virtio_pci *p, struct virtio_dev *vd, uint32_t class_code);

#endif
