/*
 * virtio-rng (virtio 1.2 §5.4): one request queue of device-writable
 * buffers, filled with entropy from a source the owner may provide
 * (getrandom(2) otherwise).  Requests are answered synchronously on the
 * owner's I/O thread, so none is ever left popped: a reset only has to wait
 * for the one rng_process() in progress.
 */
#ifndef VEIL_VIRTIO_RNG_H
#define VEIL_VIRTIO_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_PER_REQ (64U << 10) /* entropy handed out per request, whatever its size */

struct virtio_rng {
	struct virtio_dev vdev;
	pthread_mutex_t lock;  /* the queue while popping or pushing, and the stats */
	/*
	 * The entropy source: fills all len bytes of buf and returns 0, or
	 * returns -errno having filled none it vouches for.  It must not block
	 * for long (it runs on the I/O thread).  NULL: getrandom(2), non-blocking.
	 */
	int (*fill)(void *opaque, void *buf, size_t len);
	void *fill_opaque;
	/* Called when the guest kicks: the owner schedules rng_process() on its I/O thread. */
	void (*kick)(void *opaque);
	void *kick_opaque;
	struct vq_req *req;    /* heap: a vq_req is too large for the stack */
	struct {
		uint64_t requests;  /* answered with entropy */
		uint64_t bytes;     /* entropy handed to the guest */
		uint64_t malformed; /* chains refused: by the virtqueue, or with readable buffers */
		uint64_t errors;    /* requests answered with 0 bytes because the source failed */
	} stats;
};

/* Sets up the device.  The owner sets fill, kick and vdev.set_irq before the guest runs. */
int virtio_rng_init(struct virtio_rng *r, struct gmem *gm, const char *name) __must_check;
void virtio_rng_destroy(struct virtio_rng *r);

/* Answers every available request, then signals the guest.  On the I/O thread. */
void rng_process(struct virtio_rng *r);

#endif
