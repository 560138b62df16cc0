/* virtio-mmio transport, version 2 (virtio 1.2 §4.2), for a virtio_dev on the bus. */
#ifndef VEIL_VIRTIO_MMIO_H
#define VEIL_VIRTIO_MMIO_H

#include "bus.h"
#include "virtio.h"

#define VIRTIO_MMIO_SIZE 0x200
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050 /* for an ioeventfd on this register */

struct virtio_mmio {
	struct virtio_dev *vd;
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint32_t queue_sel;
	struct {
		uint16_t num;
		uint64_t desc, avail, used;
	} q[VIRTIO_MAX_QUEUES];
};

/* Bus ops over a struct virtio_mmio (the bus opaque). */
extern const struct bus_device_ops virtio_mmio_ops;

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *vd);

/* The Linux command-line word that declares the device: virtio_mmio.device=... */
int virtio_mmio_cmdline(char *buf, size_t len, uint64_t base, unsigned int irq);

#endif
