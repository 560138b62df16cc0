/* virtio-pci (modern): capabilities, the common configuration, notifications, MSI-X. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vpci.h"

#define CAP_VENDOR 0x09
#define CAP_MSIX 0x11
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR 3
#define CFG_DEVICE 4
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000
#define MSIX_CTRL_MASKED 1

/* Common configuration offsets (virtio 1.2 §4.1.4.3). */
enum {
	C_DFSELECT = 0x00, C_DF = 0x04, C_GFSELECT = 0x08, C_GF = 0x0c, C_MSIX_CONFIG = 0x10,
	C_NUM_QUEUES = 0x12, C_STATUS = 0x14, C_CFG_GEN = 0x15, C_Q_SELECT = 0x16, C_Q_SIZE = 0x18,
	C_Q_VECTOR = 0x1a, C_Q_ENABLE = 0x1c, C_Q_NOTIFY_OFF = 0x1e, C_Q_DESC = 0x20,
	C_Q_DRIVER = 0x28, C_Q_DEVICE = 0x30, C_END = 0x38,
};

static struct virtio_pci *of(void *opaque)
{
	return opaque;
}

/* ---- MSI-X ---- */

static bool msix_enabled(struct virtio_pci *p, bool *maskall)
{
	uint16_t ctrl = pci_get16(p->pci.cfg + p->msix_cap + 2);

	*maskall = ctrl & MSIX_MASKALL;
	return ctrl & MSIX_ENABLE;
}

/* Sends vector v's message, or marks it pending while masked.  With vd->lock held. */
static void msix_fire(struct virtio_pci *p, uint16_t v)
{
	bool maskall;

	if (v >= VPCI_VECTORS || !msix_enabled(p, &maskall))
		return;
	if (maskall || (p->msix[v].ctrl & MSIX_CTRL_MASKED)) {
		p->pending |= 1ULL << v;
		return;
	}
	p->pending &= ~(1ULL << v);
	p->msis++;
	if (p->signal_msi)
		p->signal_msi(p->msi_opaque, v,
			      (uint64_t)p->msix[v].addr_hi << 32 | p->msix[v].addr_lo, p->msix[v].data);
}

/* Delivers what became unmasked.  With vd->lock held. */
static void msix_flush(struct virtio_pci *p)
{
	uint16_t v;

	for (v = 0; v < VPCI_VECTORS; v++)
		if (p->pending & (1ULL << v))
			msix_fire(p, v);
}

/* ---- INTx, for drivers without MSI-X ---- */

/*
 * INTA# follows the ISR while MSI-X is off and the command register leaves
 * INTx enabled (PCI 3.0 §6.8.3.2: MSI-X on means no INTx).  The status bit
 * shows the device's wish even when the command register disables the line.
 * With vd->lock held.
 */
static void intx_update(struct virtio_pci *p)
{
	uint16_t st = pci_get16(p->pci.cfg + PCI_STATUS);
	bool maskall, want = p->vd->isr != 0 && !msix_enabled(p, &maskall), level;

	level = want && !(pci_get16(p->pci.cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);
	pci_put16(p->pci.cfg + PCI_STATUS,
		  want ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT);
	if (level == p->intx_level)
		return;
	p->intx_level = level;
	p->intx_raised += level;
	if (p->set_intx)
		p->set_intx(p->intx_opaque, level);
}

/* The core's level interrupt (ISR changed, with vd->lock held): INTx's business only. */
static void intx_set_irq(void *opaque, bool level)
{
	(void)level;
	intx_update(of(opaque));
}

static void msi_notify(void *opaque, int q)
{
	struct virtio_pci *p = of(opaque);
	bool maskall;

	pthread_mutex_lock(&p->vd->lock);
	if (msix_enabled(p, &maskall)) {
		/*
		 * Under MSI-X the ISR's queue bit is not set (virtio 1.2 §4.1.4.5.1),
		 * so nothing stale raises INTA# if the driver later turns MSI-X off.
		 */
		if (q != VIRTIO_NOTIFY_CONFIG)
			p->vd->isr &= ~VIRTIO_ISR_QUEUE;
		msix_fire(p, q == VIRTIO_NOTIFY_CONFIG ? p->msix_config :
			     (unsigned int)q < VIRTIO_MAX_QUEUES ? p->q[q].vector : VPCI_NO_VECTOR);
	} else {
		intx_update(p);
	}
	pthread_mutex_unlock(&p->vd->lock);
}

static void cfg_written(struct pci_dev *d, uint32_t off, unsigned int len)
{
	struct virtio_pci *p = d->opaque;

	/* Enabling MSI-X or clearing its function mask may release pending messages. */
	if (off < (uint32_t)p->msix_cap + 4 && off + len > (uint32_t)p->msix_cap + 2) {
		pthread_mutex_lock(&p->vd->lock);
		msix_flush(p);
		intx_update(p); /* MSI-X on takes INTx down; off, INTx follows the ISR again */
		pthread_mutex_unlock(&p->vd->lock);
	}
	if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND) {
		pthread_mutex_lock(&p->vd->lock);
		intx_update(p); /* the Interrupt Disable bit */
		pthread_mutex_unlock(&p->vd->lock);
	}
}

static int msix_access(struct virtio_pci *p, uint64_t off, void *data, unsigned int len,
		       bool write)
{
	uint32_t v = 0;

	if (len != 4 || off % 4)
		return -EINVAL;
	pthread_mutex_lock(&p->vd->lock);
	if (off >= VPCI_MSIX_PBA - VPCI_MSIX_TABLE) {
		uint64_t word = (off - (VPCI_MSIX_PBA - VPCI_MSIX_TABLE)) / 4;

		if (!write)
			v = word < 2 ? (uint32_t)(p->pending >> (32 * word)) : 0;
	} else if (off / 16 < VPCI_VECTORS) {
		uint32_t *e = &p->msix[off / 16].addr_lo + (off % 16) / 4;

		if (write) {
			memcpy(e, data, 4);
			if ((off % 16) == 12)
				msix_flush(p); /* an entry unmasked */
		} else {
			v = *e;
		}
	}
	pthread_mutex_unlock(&p->vd->lock);
	if (!write)
		memcpy(data, &v, 4);
	return 0;
}

/* ---- the common configuration ---- */

static uint64_t *q_addr(struct virtio_pci *p, unsigned int q, uint64_t off)
{
	return off < C_Q_DRIVER ? &p->q[q].desc : off < C_Q_DEVICE ? &p->q[q].driver : &p->q[q].device;
}

static uint32_t common_read(struct virtio_pci *p, uint64_t off, unsigned int len)
{
	struct virtio_dev *vd = p->vd;
	unsigned int q = p->queue_select;
	bool qok = q < vd->nr_queues;

	switch (off) {
	case C_DFSELECT: return p->dfselect;
	case C_DF: return virtio_dev_features_word(vd, p->dfselect, false);
	case C_GFSELECT: return p->gfselect;
	case C_GF: return virtio_dev_features_word(vd, p->gfselect, true);
	case C_MSIX_CONFIG: return p->msix_config;
	case C_NUM_QUEUES: return vd->nr_queues;
	case C_STATUS: return len == 1 ? vd->status : (uint32_t)vd->status | vd->config_generation << 8;
	case C_CFG_GEN: return vd->config_generation & 0xff;
	case C_Q_SELECT: return p->queue_select;
	case C_Q_SIZE: return qok ? p->q[q].size : 0;
	case C_Q_VECTOR: return qok ? p->q[q].vector : VPCI_NO_VECTOR;
	case C_Q_ENABLE: return qok && vd->vq[q].ready;
	case C_Q_NOTIFY_OFF: return qok ? q : 0;
	case C_Q_DESC: case C_Q_DRIVER: case C_Q_DEVICE:
		return qok ? (uint32_t)*q_addr(p, q, off) : 0;
	case C_Q_DESC + 4: case C_Q_DRIVER + 4: case C_Q_DEVICE + 4:
		return qok ? (uint32_t)(*q_addr(p, q, off) >> 32) : 0;
	default: return 0;
	}
}

/* With vd->lock held; returns true if the status register was written (handled unlocked). */
static bool common_write(struct virtio_pci *p, uint64_t off, uint32_t v)
{
	struct virtio_dev *vd = p->vd;
	unsigned int q = p->queue_select;
	bool qset = q < vd->nr_queues && !vd->vq[q].ready; /* queue fields are set before enable */

	switch (off) {
	case C_DFSELECT: p->dfselect = v; break;
	case C_GFSELECT: p->gfselect = v; break;
	case C_GF: virtio_dev_set_driver_features_word(vd, p->gfselect, v); break;
	case C_MSIX_CONFIG: p->msix_config = v < VPCI_VECTORS ? (uint16_t)v : VPCI_NO_VECTOR; break;
	case C_STATUS: return true;
	case C_Q_SELECT: p->queue_select = (uint16_t)v; break;
	case C_Q_SIZE:
		if (qset)
			p->q[q].size = (uint16_t)v;
		break;
	case C_Q_VECTOR:
		if (q < vd->nr_queues)
			p->q[q].vector = v < VPCI_VECTORS ? (uint16_t)v : VPCI_NO_VECTOR;
		break;
	case C_Q_DESC: case C_Q_DRIVER: case C_Q_DEVICE:
	case C_Q_DESC + 4: case C_Q_DRIVER + 4: case C_Q_DEVICE + 4:
		if (qset)
			virtio_set_addr_half(q_addr(p, q, off), off % 8 != 0, v);
		break;
	default:
		break; /* read-only or reserved: ignored */
	}
	return false;
}

/* queue_enable = 1: the layout is checked now; a bad one means NEEDS_RESET. */
static void enable_queue(struct virtio_pci *p, unsigned int q)
{
	struct virtio_dev *vd = p->vd;
	char why[200] = "";

	pthread_mutex_lock(&vd->lock);
	if (q < vd->nr_queues && !vd->vq[q].ready &&
	    virtio_dev_configure_queue(vd, q, p->q[q].size, p->q[q].desc, p->q[q].driver,
				       p->q[q].device))
		snprintf(why, sizeof(why), "queue %u: %s", q, vd->vq[q].error);
	pthread_mutex_unlock(&vd->lock);
	if (why[0])
		virtio_dev_needs_reset(vd, why);
}

static int common_access(struct virtio_pci *p, uint64_t off, void *data, unsigned int len,
			 bool write)
{
	struct virtio_dev *vd = p->vd;
	uint32_t v = 0;
	bool status;

	/* Naturally aligned accesses of the field's width; 64-bit fields in 32-bit halves. */
	if ((len != 1 && len != 2 && len != 4) || off % len || off + len > C_END)
		return -EINVAL;
	if (!write) {
		pthread_mutex_lock(&vd->lock);
		v = common_read(p, off, len);
		pthread_mutex_unlock(&vd->lock);
		memcpy(data, &v, len);
		return 0;
	}
	memcpy(&v, data, len);
	if (off == C_Q_ENABLE) {
		if (v == 1)
			enable_queue(p, p->queue_select);
		return 0;
	}
	pthread_mutex_lock(&vd->lock);
	status = common_write(p, off, v);
	pthread_mutex_unlock(&vd->lock);
	if (status) {
		virtio_dev_set_status(vd, (uint8_t)v);
		if (!(uint8_t)v) { /* a reset: the transport's own state goes too */
			pthread_mutex_lock(&vd->lock);
			memset(p->q, 0, sizeof(p->q));
			for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
				p->q[q].size = vd->queue_max;
				p->q[q].vector = VPCI_NO_VECTOR;
			}
			p->msix_config = VPCI_NO_VECTOR;
			pthread_mutex_unlock(&vd->lock);
		}
	}
	return 0;
}

/* ---- BAR 0 ---- */

static int bar_access(void *opaque, uint64_t off, void *data, unsigned int len, bool write)
{
	struct virtio_pci *p = of(opaque);
	struct virtio_dev *vd = p->vd;

	if (off < VPCI_MSIX_TABLE)
		return common_access(p, off - VPCI_COMMON, data, len, write);
	if (off < VPCI_ISR)
		return msix_access(p, off - VPCI_MSIX_TABLE, data, len, write);
	if (off < VPCI_DEVICE_CFG) {
		uint32_t v;

		if (write || off != VPCI_ISR || len != 1)
			return write ? 0 : -EINVAL;
		/* Reading the ISR acknowledges it. */
		pthread_mutex_lock(&vd->lock);
		v = vd->isr;
		pthread_mutex_unlock(&vd->lock);
		virtio_dev_ack_isr(vd, v);
		*(uint8_t *)data = (uint8_t)v;
		return 0;
	}
	if (off < VPCI_NOTIFY) {
		return virtio_dev_config_access(vd, off - VPCI_DEVICE_CFG, data, len, write);
	}
	off -= VPCI_NOTIFY;
	if (!write || off % VPCI_NOTIFY_MULT || off / VPCI_NOTIFY_MULT >= vd->nr_queues)
		return write ? 0 : -EINVAL;
	if (vd->ops->queue_notify && virtio_dev_running(vd) && vd->vq[off / VPCI_NOTIFY_MULT].ready)
		vd->ops->queue_notify(vd, (unsigned int)(off / VPCI_NOTIFY_MULT));
	return 0;
}

static int bar_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	return bar_access(opaque, off, data, len, false);
}

static int bar_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	return bar_access(opaque, off, (void *)data, len, true);
}

static const struct bus_device_ops bar_ops = { .read = bar_read, .write = bar_write };

/* A virtio vendor capability pointing into BAR 0. */
static uint8_t vendor_cap(struct virtio_pci *p, uint8_t type, uint32_t off, uint32_t len,
			  uint8_t cap_len)
{
	uint8_t c = pci_add_cap(&p->pci, CAP_VENDOR, cap_len);

	if (c) {
		p->pci.cfg[c + 2] = cap_len;
		p->pci.cfg[c + 3] = type;
		p->pci.cfg[c + 4] = 0; /* BAR 0 */
		pci_put32(p->pci.cfg + c + 8, off);
		pci_put32(p->pci.cfg + c + 12, len);
	}
	return c;
}

void virtio_pci_init(struct virtio_pci *p, struct virtio_dev *vd, uint32_t class_code)
{
	unsigned int q;
	uint8_t c;

	memset(p, 0, sizeof(*p));
	p->vd = vd;
	pci_dev_init(&p->pci, vd->name, 0x1af4, (uint16_t)(0x1040 + vd->device_id), class_code, 1);
	pci_put16(p->pci.cfg + PCI_SUBSYSTEM_VENDOR_ID, 0x1af4);
	pci_put16(p->pci.cfg + PCI_SUBSYSTEM_ID, 0x0040);
	p->pci.opaque = p;
	p->pci.cfg_written = cfg_written;
	pci_set_bar64(&p->pci, 0, VPCI_BAR_SIZE, &bar_ops, p);
	pci_put16(p->pci.wmask + PCI_COMMAND,
		  PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	p->pci.cfg[PCI_INTERRUPT_PIN] = 1; /* INTA#; the owner routes it and sets the line */

	p->msix_cap = pci_add_cap(&p->pci, CAP_MSIX, 12);
	pci_put16(p->pci.cfg + p->msix_cap + 2, VPCI_VECTORS - 1);
	pci_put16(p->pci.wmask + p->msix_cap + 2, MSIX_ENABLE | MSIX_MASKALL);
	pci_put32(p->pci.cfg + p->msix_cap + 4, VPCI_MSIX_TABLE);
	pci_put32(p->pci.cfg + p->msix_cap + 8, VPCI_MSIX_PBA);
	vendor_cap(p, CFG_COMMON, VPCI_COMMON, C_END, 16);
	c = vendor_cap(p, CFG_NOTIFY, VPCI_NOTIFY, VPCI_NOTIFY_MULT * VIRTIO_MAX_QUEUES, 20);
	if (c)
		pci_put32(p->pci.cfg + c + 16, VPCI_NOTIFY_MULT);
	vendor_cap(p, CFG_ISR, VPCI_ISR, 1, 16);
	vendor_cap(p, CFG_DEVICE, VPCI_DEVICE_CFG, vd->config_size ? vd->config_size : 4, 16);

	for (q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		p->q[q].size = vd->queue_max;
		p->q[q].vector = VPCI_NO_VECTOR;
	}
	p->msix_config = VPCI_NO_VECTOR;
	for (q = 0; q < VPCI_VECTORS; q++)
		p->msix[q].ctrl = MSIX_CTRL_MASKED; /* masked at reset (PCI spec) */
	vd->msi_notify = msi_notify;
	vd->set_irq = intx_set_irq;
	vd->irq_opaque = p;
}
