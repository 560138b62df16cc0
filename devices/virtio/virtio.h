/*
 * virtio 1.x device core, shared by the transports (virtio-mmio now,
 * virtio-pci next) and the device models.  A device is a state machine: the
 * transport feeds it register accesses from vCPU threads, and it signals
 * the guest through the set_irq callback its owner (vmm/) provides.
 */
#ifndef VEIL_VIRTIO_H
#define VEIL_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "virtqueue.h"

/* Device status bits (virtio 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_F_VERSION_1 32 /* feature bit numbers */
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Interrupt status bits. */
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_MAX_QUEUES 4
#define VIRTIO_NOTIFY_CONFIG (-1)

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5

struct virtio_dev;

struct virtio_dev_ops {
	/* Device-specific configuration space, bounds already checked against config_size. */
	void (*config_read)(struct virtio_dev *vd, uint32_t off, void *data, unsigned int len);
	void (*config_write)(struct virtio_dev *vd, uint32_t off, const void *data,
			     unsigned int len);
	/* The driver kicked queue q (ready).  Called on a vCPU thread, dev lock not held. */
	void (*queue_notify)(struct virtio_dev *vd, unsigned int q);
	/* The driver reset the device: drop in-flight work (queues are reset after). */
	void (*reset)(struct virtio_dev *vd);
};

struct virtio_dev {
	const char *name;
	uint32_t device_id;
	uint64_t features;        /* offered, VIRTIO_F_VERSION_1 included */
	uint32_t config_size;
	unsigned int nr_queues;
	uint16_t queue_max;       /* largest size offered per queue */
	const struct virtio_dev_ops *ops;
	void *opaque;             /* the device model's state */

	/* Interrupt line: level while isr != 0 (virtio-mmio is level-triggered). */
	void (*set_irq)(void *irq_opaque, bool level);
	void *irq_opaque;
	/*
	 * Message-signalled instead (virtio-pci with MSI-X): called for queue q,
	 * or VIRTIO_NOTIFY_CONFIG, in place of the ISR and the line.
	 */
	void (*msi_notify)(void *irq_opaque, int q);

	pthread_mutex_t lock;     /* the fields below */
	uint8_t status;
	uint32_t isr;
	uint32_t config_generation;
	uint64_t driver_features;
	struct virtqueue vq[VIRTIO_MAX_QUEUES];
	uint64_t errors;          /* guest mistakes seen (malformed rings, bad registers) */
	bool retry;               /* a queue met a buffer under conversion: process again soon */
	char last_error[160];
};

/* Sets up the core; gm is where the queues live. */
int virtio_dev_init(struct virtio_dev *vd, struct gmem *gm) __must_check;
void virtio_dev_destroy(struct virtio_dev *vd);

/* Raises the queue interrupt unless the driver suppressed it for queue q. */
void virtio_dev_notify_queue(struct virtio_dev *vd, unsigned int q);
/*
 * The device configuration changed (virtio 1.2 §2.1.2): a new generation,
 * and once the driver is up (DRIVER_OK) the configuration interrupt; a
 * driver not up yet reads the configuration when it starts.  Not with
 * vd->lock held.
 */
void virtio_dev_config_changed(struct virtio_dev *vd);
/* Something is broken: NEEDS_RESET and a configuration interrupt (virtio 1.2 §2.1.2). */
void virtio_dev_needs_reset(struct virtio_dev *vd, const char *why);

/*
 * A transport's queue enable, with vd->lock held: vq_configure() for queue q,
 * refusing a size above the queue_max the device offered (-EINVAL, the reason
 * in vd->vq[q].error).
 */
int virtio_dev_configure_queue(struct virtio_dev *vd, unsigned int q, uint16_t size,
			       uint64_t desc, uint64_t avail, uint64_t used) __must_check;
/* A queue met a buffer under conversion (vq_pop -EAGAIN): the owner runs the device again. */
static inline void virtio_dev_defer(struct virtio_dev *vd)
{
	__atomic_store_n(&vd->retry, true, __ATOMIC_RELAXED);
}
/* Takes the flag: true if the device asked to be run again. */
static inline bool virtio_dev_take_retry(struct virtio_dev *vd)
{
	return __atomic_exchange_n(&vd->retry, false, __ATOMIC_RELAXED);
}
/*
 * Completes req on queue q (vq_push): a used ring under conversion defers
 * it (virtio_dev_defer; virtio_dev_flush publishes it), a broken one means
 * NEEDS_RESET, a queue reset since the pop drops it.  True if it was
 * published now.
 */
bool virtio_dev_push(struct virtio_dev *vd, unsigned int q, struct vq_req *req, uint32_t written);
/* As virtio_dev_push, writing a status byte first unless the request is stale (vq_push_status). */
bool virtio_dev_push_status(struct virtio_dev *vd, unsigned int q, struct vq_req *req,
			    uint32_t written, uint8_t *status_byte, uint8_t status);
/*
 * Publishes the completions deferred on every queue (vq_flush) and
 * interrupts for each queue whose used ring moved; defers again if a ring
 * is still under conversion.  A device calls it first whenever it runs.
 * Not with vd->lock held.  True if any used ring moved.
 */
bool virtio_dev_flush(struct virtio_dev *vd);
/* True once the driver set DRIVER_OK and the device needs no reset. */
bool virtio_dev_running(struct virtio_dev *vd);

/* Transport helpers: the logic both transports share. */
/* Device-configuration access of 1, 2 or 4 bytes inside config_size; -EINVAL otherwise. */
int virtio_dev_config_access(struct virtio_dev *vd, uint64_t off, void *data, unsigned int len,
			     bool write);
/* 32-bit word sel (0 or 1) of the offered, or the driver's, features; 0 past them. */
uint32_t virtio_dev_features_word(const struct virtio_dev *vd, uint32_t sel, bool driver);
/* With vd->lock held: the driver's features word sel, until FEATURES_OK freezes them. */
void virtio_dev_set_driver_features_word(struct virtio_dev *vd, uint32_t sel, uint32_t v);
/* Sets the low (hi false) or high 32 bits of a 64-bit queue address register pair. */
static inline void virtio_set_addr_half(uint64_t *addr, bool hi, uint32_t v)
{
	*addr = hi ? (*addr & 0xffffffffULL) | ((uint64_t)v << 32) : (*addr & ~0xffffffffULL) | v;
}
void virtio_dev_set_status(struct virtio_dev *vd, uint8_t status);
void virtio_dev_ack_isr(struct virtio_dev *vd, uint32_t bits);

#endif
