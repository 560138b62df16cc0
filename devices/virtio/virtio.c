/* virtio device core: status, features, interrupts, NEEDS_RESET. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "virtio.h"

int virtio_dev_init(struct virtio_dev *vd, struct gmem *gm)
{
	unsigned int i;
	int ret;

	if (vd->nr_queues > VIRTIO_MAX_QUEUES || !vd->queue_max || vd->queue_max > VQ_MAX_SIZE ||
	    (vd->queue_max & (vd->queue_max - 1)))
		return -EINVAL;
	ret = -pthread_mutex_init(&vd->lock, NULL);
	if (ret)
		return ret;
	/*
	 * Every device runs its queues through virtqueue.c, which handles the
	 * ring features for all of them: indirect tables, and event indices
	 * that spare a kick or an interrupt per request (what QEMU offers too).
	 */
	vd->features |= 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
			1ULL << VIRTIO_RING_F_EVENT_IDX;
	vd->status = 0;
	vd->isr = 0;
	vd->driver_features = 0;
	for (i = 0; i < vd->nr_queues; i++)
		vq_init(&vd->vq[i], gm, vd->name);
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *vd)
{
	unsigned int i;

	for (i = 0; i < vd->nr_queues; i++)
		vq_destroy(&vd->vq[i]);
	pthread_mutex_destroy(&vd->lock);
}

/* What a push or flush on queue q returned, acted on: true if the used ring moved. */
static bool used_result(struct virtio_dev *vd, unsigned int q, int ret)
{
	if (ret == -EAGAIN)
		virtio_dev_defer(vd); /* kept: the next run of the device publishes it */
	else if (ret < 0 && ret != -ESTALE)
		virtio_dev_needs_reset(vd, vd->vq[q].error);
	return ret >= 0;
}

bool virtio_dev_push(struct virtio_dev *vd, unsigned int q, struct vq_req *req, uint32_t written)
{
	return used_result(vd, q, vq_push(&vd->vq[q], req, written));
}

bool virtio_dev_push_status(struct virtio_dev *vd, unsigned int q, struct vq_req *req,
			    uint32_t written, uint8_t *status_byte, uint8_t status)
{
	return used_result(vd, q, vq_push_status(&vd->vq[q], req, written, status_byte, status));
}

bool virtio_dev_flush(struct virtio_dev *vd)
{
	unsigned int q;
	bool moved = false;

	for (q = 0; q < vd->nr_queues; q++) {
		int ret = vq_flush(&vd->vq[q]);

		used_result(vd, q, ret);
		if (ret > 0) {
			moved = true;
			virtio_dev_notify_queue(vd, q);
		}
	}
	return moved;
}

/* With vd->lock held. */
static void update_irq(struct virtio_dev *vd)
{
	if (vd->set_irq)
		vd->set_irq(vd->irq_opaque, vd->isr != 0);
}

void virtio_dev_notify_queue(struct virtio_dev *vd, unsigned int q)
{
	bool msi = false;

	pthread_mutex_lock(&vd->lock);
	if (q < vd->nr_queues && vq_should_interrupt(&vd->vq[q])) {
		vd->isr |= VIRTIO_ISR_QUEUE;
		if (vd->msi_notify)
			msi = true;
		else
			update_irq(vd);
	}
	pthread_mutex_unlock(&vd->lock);
	if (msi)
		vd->msi_notify(vd->irq_opaque, (int)q);
}

int virtio_dev_configure_queue(struct virtio_dev *vd, unsigned int q, uint16_t size,
			       uint64_t desc, uint64_t avail, uint64_t used)
{
	struct virtqueue *vq = &vd->vq[q];

	/* The spec forbids it, and the device sized nothing for it: refused, not clamped. */
	if (size > vd->queue_max) {
		snprintf(vq->error, sizeof(vq->error), "queue size %u is above the %u offered",
			 size, vd->queue_max);
		return -EINVAL;
	}
	/* The ring features the driver accepted, frozen by FEATURES_OK before queues are set up. */
	vq_set_features(vq, vd->driver_features);
	return vq_configure(vq, size, desc, avail, used);
}

/*
 * A configuration change, with vd->lock held: the generation moves and the
 * config interrupt is raised on the line, or (true) is left for the caller
 * to send as an MSI once the lock is dropped.
 */
static bool config_change_locked(struct virtio_dev *vd, bool notify)
{
	vd->config_generation++;
	if (!notify)
		return false;
	vd->isr |= VIRTIO_ISR_CONFIG;
	if (vd->msi_notify)
		return true;
	update_irq(vd);
	return false;
}

void virtio_dev_config_changed(struct virtio_dev *vd)
{
	bool msi;

	pthread_mutex_lock(&vd->lock);
	msi = config_change_locked(vd, vd->status & VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&vd->lock);
	if (msi)
		vd->msi_notify(vd->irq_opaque, VIRTIO_NOTIFY_CONFIG);
}

void virtio_dev_needs_reset(struct virtio_dev *vd, const char *why)
{
	bool msi = false;

	pthread_mutex_lock(&vd->lock);
	vd->errors++;
	snprintf(vd->last_error, sizeof(vd->last_error), "%s", why);
	if (!(vd->status & VIRTIO_STATUS_NEEDS_RESET)) {
		pr_warn("%s: the driver broke the device's rules, it needs a reset: %s", vd->name, why);
		vd->status |= VIRTIO_STATUS_NEEDS_RESET;
		msi = config_change_locked(vd, true);
	}
	pthread_mutex_unlock(&vd->lock);
	if (msi)
		vd->msi_notify(vd->irq_opaque, VIRTIO_NOTIFY_CONFIG);
}

bool virtio_dev_running(struct virtio_dev *vd)
{
	bool running;

	pthread_mutex_lock(&vd->lock);
	running = (vd->status & VIRTIO_STATUS_DRIVER_OK) &&
		  !(vd->status & VIRTIO_STATUS_NEEDS_RESET);
	pthread_mutex_unlock(&vd->lock);
	return running;
}

/*
 * Called without the lock.  The status goes to 0 first, so that the device
 * starts no new work; then the device drops its in-flight work; then the
 * queues go.
 */
static void reset(struct virtio_dev *vd)
{
	unsigned int i;

	pthread_mutex_lock(&vd->lock);
	vd->status = 0;
	vd->isr = 0;
	update_irq(vd);
	pthread_mutex_unlock(&vd->lock);
	if (vd->ops->reset)
		vd->ops->reset(vd);
	pthread_mutex_lock(&vd->lock);
	for (i = 0; i < vd->nr_queues; i++)
		vq_reset(&vd->vq[i]);
	vd->driver_features = 0;
	pthread_mutex_unlock(&vd->lock);
}

void virtio_dev_set_status(struct virtio_dev *vd, uint8_t status)
{
	uint8_t old;

	if (status == 0) {
		reset(vd);
		return;
	}
	pthread_mutex_lock(&vd->lock);
	old = vd->status;
	/* FEATURES_OK only for a subset of what we offer, with VERSION_1 (no legacy). */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    ((vd->driver_features & ~vd->features) ||
	     !(vd->driver_features & (1ULL << VIRTIO_F_VERSION_1))))
		status &= ~VIRTIO_STATUS_FEATURES_OK;
	/* DRIVER_OK needs FEATURES_OK first. */
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))
		status &= ~VIRTIO_STATUS_DRIVER_OK;
	/* The driver cannot clear NEEDS_RESET except by resetting. */
	vd->status = status | (old & VIRTIO_STATUS_NEEDS_RESET);
	pthread_mutex_unlock(&vd->lock);
}

int virtio_dev_config_access(struct virtio_dev *vd, uint64_t off, void *data, unsigned int len,
			     bool write)
{
	if ((len != 1 && len != 2 && len != 4) || off + len > vd->config_size)
		return -EINVAL;
	if (write) {
		if (vd->ops->config_write)
			vd->ops->config_write(vd, (uint32_t)off, data, len);
	} else {
		memset(data, 0, len);
		if (vd->ops->config_read)
			vd->ops->config_read(vd, (uint32_t)off, data, len);
	}
	return 0;
}

uint32_t virtio_dev_features_word(const struct virtio_dev *vd, uint32_t sel, bool driver)
{
	if (sel >= 2)
		return 0;
	return (uint32_t)((driver ? vd->driver_features : vd->features) >> (32 * sel));
}

void virtio_dev_set_driver_features_word(struct virtio_dev *vd, uint32_t sel, uint32_t v)
{
	unsigned int shift = 32 * sel;

	if (sel >= 2 || (vd->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	vd->driver_features = (vd->driver_features & ~(0xffffffffULL << shift)) |
			      ((uint64_t)v << shift);
}

void virtio_dev_ack_isr(struct virtio_dev *vd, uint32_t bits)
{
	pthread_mutex_lock(&vd->lock);
	vd->isr &= ~bits;
	update_irq(vd);
	pthread_mutex_unlock(&vd->lock);
}
