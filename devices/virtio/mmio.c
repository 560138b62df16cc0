/*
 * virtio-mmio, version 2: the register file of virtio 1.2 §4.2.2.  Register
 * accesses are 32 bits wide; the configuration space above 0x100 takes 1,
 * 2 or 4 bytes.  Anything else is refused, and the bus counts it as a
 * guest fault.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mmio.h"

#define MAGIC 0x74726976 /* "virt" */
#define VENDOR 0x6c696576 /* "veil" */

enum {
	R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_VENDOR_ID = 0x00c,
	R_DEV_FEATURES = 0x010, R_DEV_FEATURES_SEL = 0x014,
	R_DRV_FEATURES = 0x020, R_DRV_FEATURES_SEL = 0x024,
	R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038,
	R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050,
	R_INTERRUPT_STATUS = 0x060, R_INTERRUPT_ACK = 0x064, R_STATUS = 0x070,
	R_QUEUE_DESC_LO = 0x080, R_QUEUE_DESC_HI = 0x084,
	R_QUEUE_AVAIL_LO = 0x090, R_QUEUE_AVAIL_HI = 0x094,
	R_QUEUE_USED_LO = 0x0a0, R_QUEUE_USED_HI = 0x0a4,
	R_CONFIG_GENERATION = 0x0fc, R_CONFIG = 0x100,
};

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *vd)
{
	memset(m, 0, sizeof(*m));
	m->vd = vd;
}

int virtio_mmio_cmdline(char *buf, size_t len, uint64_t base, unsigned int irq)
{
	/* The kernel parses size@base:irq with memparse; 0x200 bytes, said in bytes. */
	int n = snprintf(buf, len, "virtio_mmio.device=%u@0x%llx:%u", VIRTIO_MMIO_SIZE,
			 (unsigned long long)base, irq);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *vd = m->vd;
	unsigned int q = m->queue_sel;

	switch (off) {
	case R_MAGIC: return MAGIC;
	case R_VERSION: return 2;
	case R_DEVICE_ID: return vd->device_id;
	case R_VENDOR_ID: return VENDOR;
	case R_DEV_FEATURES:
		return virtio_dev_features_word(vd, m->dev_features_sel, false);
	case R_QUEUE_NUM_MAX: return q < vd->nr_queues ? vd->queue_max : 0;
	case R_QUEUE_READY: return q < vd->nr_queues && vd->vq[q].ready;
	case R_INTERRUPT_STATUS: return vd->isr;
	case R_STATUS: return vd->status;
	case R_CONFIG_GENERATION: return vd->config_generation;
	default: return 0; /* write-only or reserved registers read as zero */
	}
}

static void set_queue_ready(struct virtio_mmio *m, unsigned int q, uint32_t v)
{
	struct virtio_dev *vd = m->vd;
	char why[200];

	if (!v) {
		vq_reset(&vd->vq[q]);
		return;
	}
	if (vd->vq[q].ready)
		return;
	if (virtio_dev_configure_queue(vd, q, m->q[q].num, m->q[q].desc, m->q[q].avail,
				       m->q[q].used)) {
		snprintf(why, sizeof(why), "queue %u: %s", q, vd->vq[q].error);
		pthread_mutex_unlock(&vd->lock);
		virtio_dev_needs_reset(vd, why);
		pthread_mutex_lock(&vd->lock);
	}
}

/* With vd->lock held.  Returns the queue to notify, or -1. */
static int write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_dev *vd = m->vd;
	unsigned int q = m->queue_sel;
	bool q_ok = q < vd->nr_queues && !vd->vq[q].ready; /* queue registers are set before ready */

	switch (off) {
	case R_DEV_FEATURES_SEL: m->dev_features_sel = v; break;
	case R_DRV_FEATURES_SEL: m->drv_features_sel = v; break;
	case R_DRV_FEATURES: virtio_dev_set_driver_features_word(vd, m->drv_features_sel, v); break;
	case R_QUEUE_SEL: m->queue_sel = v; break;
	case R_QUEUE_NUM: if (q_ok) m->q[q].num = v > 0xffff ? 0 : (uint16_t)v; break;
	case R_QUEUE_DESC_LO: case R_QUEUE_DESC_HI:
		if (q_ok) virtio_set_addr_half(&m->q[q].desc, off == R_QUEUE_DESC_HI, v);
		break;
	case R_QUEUE_AVAIL_LO: case R_QUEUE_AVAIL_HI:
		if (q_ok) virtio_set_addr_half(&m->q[q].avail, off == R_QUEUE_AVAIL_HI, v);
		break;
	case R_QUEUE_USED_LO: case R_QUEUE_USED_HI:
		if (q_ok) virtio_set_addr_half(&m->q[q].used, off == R_QUEUE_USED_HI, v);
		break;
	case R_QUEUE_READY:
		if (q < vd->nr_queues)
			set_queue_ready(m, q, v);
		break;
	case R_QUEUE_NOTIFY:
		return v < vd->nr_queues && vd->vq[v].ready ? (int)v : -1;
	default:
		break; /* read-only or reserved: ignored */
	}
	return -1;
}

static int mmio_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct virtio_mmio *m = opaque;
	uint32_t v;

	if (off >= R_CONFIG)
		return virtio_dev_config_access(m->vd, off - R_CONFIG, data, len, false);
	if (len != 4 || off % 4)
		return -EINVAL;
	pthread_mutex_lock(&m->vd->lock);
	v = read_reg(m, off);
	pthread_mutex_unlock(&m->vd->lock);
	memcpy(data, &v, 4);
	return 0;
}

static int mmio_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct virtio_mmio *m = opaque;
	struct virtio_dev *vd = m->vd;
	uint32_t v;
	int notify;

	if (off >= R_CONFIG)
		return virtio_dev_config_access(vd, off - R_CONFIG, (void *)data, len, true);
	if (len != 4 || off % 4)
		return -EINVAL;
	memcpy(&v, data, 4);
	/* Status and interrupt acks take the lock themselves (a reset calls into the device). */
	if (off == R_STATUS) {
		virtio_dev_set_status(vd, (uint8_t)v);
		return 0;
	}
	if (off == R_INTERRUPT_ACK) {
		virtio_dev_ack_isr(vd, v);
		return 0;
	}
	pthread_mutex_lock(&vd->lock);
	notify = write_reg(m, off, v);
	pthread_mutex_unlock(&vd->lock);
	if (notify >= 0 && vd->ops->queue_notify && virtio_dev_running(vd))
		vd->ops->queue_notify(vd, (unsigned int)notify);
	return 0;
}

const struct bus_device_ops virtio_mmio_ops = { .read = mmio_read, .write = mmio_write };
