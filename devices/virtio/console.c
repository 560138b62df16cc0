/* virtio-console, one port: guest output to the owner, host input into the guest's buffers. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "log.h"

struct console_config { /* virtio 1.2 §5.3.4 */
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

_Static_assert(offsetof(struct console_config, emerg_wr) == 8, "virtio-console config layout");
_Static_assert(sizeof(struct console_config) == 12, "virtio-console config layout");

static struct virtio_console *to_console(struct virtio_dev *vd)
{
	return vd->opaque;
}

/* No VIRTIO_CONSOLE_F_SIZE: cols and rows read 0; emerg_wr is write-only and reads 0. */
static void console_config_read(struct virtio_dev *vd, uint32_t off, void *data, unsigned int len)
{
	struct console_config cfg = { .max_nr_ports = 1 };
	uint32_t size = sizeof(cfg);

	(void)vd;
	if (off < size)
		memcpy(data, (uint8_t *)&cfg + off, off + len <= size ? len : size - off);
}

/*
 * An emergency write: the character is emerg_wr's low byte, which a little
 * endian field keeps at offset 8 whatever the width of the access.  It is
 * honoured before DRIVER_OK too, for early consoles (§5.3.4).  The other
 * fields are read-only: writes to them are ignored.
 */
static void console_config_write(struct virtio_dev *vd, uint32_t off, const void *data,
				 unsigned int len)
{
	struct virtio_console *c = to_console(vd);
	uint8_t ch;

	(void)len;
	if (off != offsetof(struct console_config, emerg_wr))
		return;
	memcpy(&ch, data, 1);
	/* The lock keeps it in order with transmitted buffers and serializes output. */
	pthread_mutex_lock(&c->lock);
	c->stats.tx_bytes++;
	if (c->output)
		c->output(c->output_opaque, &ch, 1);
	pthread_mutex_unlock(&c->lock);
}

/*
 * With c->lock held: a transmit chain's readable buffers go out as they
 * lie in guest memory, pinned until the push.  The guest may change them
 * meanwhile; that garbles only its own output.
 */
static void transmit(struct virtio_console *c, const struct vq_req *req)
{
	unsigned int i;

	for (i = 0; i < req->nr_out; i++) {
		if (!req->seg[i].len)
			continue;
		c->stats.tx_bytes += req->seg[i].len;
		if (c->output)
			c->output(c->output_opaque, req->seg[i].hva, req->seg[i].len);
	}
}

/*
 * With c->lock held, pops from queue q: 1 a chain to serve, 0 a chain to
 * return with 0 bytes (malformed), -ENOENT nothing available, -EPROTO the
 * ring is broken (the device now needs a reset), -EAGAIN a buffer is under
 * conversion (try again later; the owner is told through virtio_dev_defer).
 */
static int pop(struct virtio_console *c, unsigned int q, struct vq_req *req)
{
	struct virtqueue *vq = &c->vdev.vq[q];
	int ret = vq_pop(vq, req);

	if (ret == 1) {
		/* Transmit buffers are all device-readable, receive buffers all writable. */
		if (q == CONSOLE_Q_TX ? req->nr_out == req->nr_segs : req->nr_out == 0)
			return 1;
		c->stats.malformed++;
		pr_debug("%s: %s chain with buffers of the wrong direction", c->vdev.name,
			 q == CONSOLE_Q_TX ? "transmit" : "receive");
		return 0;
	}
	if (ret == 0)
		return -ENOENT;
	if (ret == -EAGAIN) {
		virtio_dev_defer(&c->vdev);
		return -EAGAIN;
	}
	c->stats.malformed++;
	if (ret == -EPROTO) {
		/* The ring itself is broken: nothing was consumed, nothing more will be. */
		virtio_dev_needs_reset(&c->vdev, vq->error);
		return -EPROTO;
	}
	/* A malformed chain: nothing pinned, it goes back empty. */
	pr_debug("%s: %s", c->vdev.name, vq->error);
	return 0;
}

void console_process_tx(struct virtio_console *c)
{
	bool done = false;

	/* Completions deferred by a used ring under conversion, receive queue's included. */
	virtio_dev_flush(&c->vdev);
	pthread_mutex_lock(&c->lock);
	c->tx_waiting = false;
	while (virtio_dev_running(&c->vdev)) {
		int ret;

		if (c->output_room && c->output_room(c->output_opaque) < CONSOLE_TX_MIN_ROOM) {
			/* Left in the queue: the guest waits for the reader, nothing blocks. */
			c->stats.tx_waits++;
			c->tx_waiting = true;
			break;
		}
		ret = pop(c, CONSOLE_Q_TX, c->req);

		if (ret < 0)
			break;
		if (ret)
			transmit(c, c->req);
		virtio_dev_push(&c->vdev, CONSOLE_Q_TX, c->req, 0);
		done = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (done)
		virtio_dev_notify_queue(&c->vdev, CONSOLE_Q_TX);
}

bool console_tx_take_waiting(struct virtio_console *c)
{
	bool waiting;

	pthread_mutex_lock(&c->lock);
	waiting = c->tx_waiting;
	c->tx_waiting = false;
	pthread_mutex_unlock(&c->lock);
	return waiting;
}

bool console_guest_attached(struct virtio_console *c)
{
	bool attached;

	pthread_mutex_lock(&c->lock);
	attached = c->stats.tx_bytes != 0;
	pthread_mutex_unlock(&c->lock);
	return attached;
}

size_t console_input(struct virtio_console *c, const void *buf, size_t len)
{
	struct virtqueue *vq = &c->vdev.vq[CONSOLE_Q_RX];
	const uint8_t *p = buf;
	bool done = false;
	size_t off = 0;

	pthread_mutex_lock(&c->lock);
	while (off < len && virtio_dev_running(&c->vdev)) {
		uint32_t written = 0;
		int ret = pop(c, CONSOLE_Q_RX, c->req);

		if (ret < 0)
			break;
		/* At most in_len, which VQ_MAX_SEGS * VQ_MAX_SEG_LEN keeps below 4 GiB. */
		if (ret)
			written = (uint32_t)vq_copy_to(c->req, 0, p + off, len - off);
		done = true;
		ret = vq_push(vq, c->req, written);
		if (ret == -EAGAIN) {
			virtio_dev_defer(&c->vdev); /* taken: published once the ring is back */
		} else if (ret) {
			/* The guest will never see those bytes: they were not taken. */
			if (ret != -ESTALE)
				virtio_dev_needs_reset(&c->vdev, vq->error);
			break;
		}
		off += written;
		c->stats.rx_bytes += written;
	}
	pthread_mutex_unlock(&c->lock);
	if (done)
		virtio_dev_notify_queue(&c->vdev, CONSOLE_Q_RX);
	return off;
}

static void console_notify(struct virtio_dev *vd, unsigned int q)
{
	struct virtio_console *c = to_console(vd);

	(void)q;
	if (c->kick)
		c->kick(c->kick_opaque);
}

/*
 * Requests complete synchronously, none stays popped: taking the lock
 * orders the reset after any queue work in progress, and the status is
 * already 0, so the next pops nothing.
 */
static void console_reset(struct virtio_dev *vd)
{
	struct virtio_console *c = to_console(vd);

	pthread_mutex_lock(&c->lock);
	pthread_mutex_unlock(&c->lock);
}

static const struct virtio_dev_ops console_ops = {
	.config_read = console_config_read,
	.config_write = console_config_write,
	.queue_notify = console_notify,
	.reset = console_reset,
};

int virtio_console_init(struct virtio_console *c, struct gmem *gm, const char *name)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->req = malloc(sizeof(*c->req));
	if (!c->req)
		return -ENOMEM;
	c->vdev.name = name;
	c->vdev.device_id = VIRTIO_ID_CONSOLE;
	c->vdev.features = 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;
	c->vdev.config_size = sizeof(struct console_config);
	c->vdev.nr_queues = 2;
	c->vdev.queue_max = CONSOLE_QUEUE_SIZE;
	c->vdev.ops = &console_ops;
	c->vdev.opaque = c;
	ret = -pthread_mutex_init(&c->lock, NULL);
	if (ret)
		goto err;
	ret = virtio_dev_init(&c->vdev, gm);
	if (ret) {
		pthread_mutex_destroy(&c->lock);
		goto err;
	}
	return 0;
err:
	free(c->req);
	c->req = NULL;
	return ret;
}

void virtio_console_destroy(struct virtio_console *c)
{
	virtio_dev_destroy(&c->vdev);
	pthread_mutex_destroy(&c->lock);
	free(c->req);
	c->req = NULL;
}
