/* virtio-rng: entropy into the guest's writable buffers, a bounded amount per request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "rng.h"

static struct virtio_rng *to_rng(struct virtio_dev *vd)
{
	return vd->opaque;
}

/*
 * The default source.  Non-blocking: before the host's pool is initialized
 * the guest gets 0 bytes and asks again, rather than the I/O thread
 * stalling behind a boot-time entropy wait.
 */
static int fill_getrandom(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, GRND_NONBLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Fills the writable segments in order, up to RNG_MAX_PER_REQ: the bytes
 * filled, or -errno if the source failed (the guest is then told 0 bytes:
 * never hand out bytes the source did not vouch for).
 */
static int64_t fill_req(struct virtio_rng *r, struct vq_req *req)
{
	uint64_t left = RNG_MAX_PER_REQ, done = 0;
	unsigned int i;

	for (i = req->nr_out; i < req->nr_segs && left; i++) {
		size_t n = req->seg[i].len < left ? req->seg[i].len : left;
		int ret;

		if (!n)
			continue;
		ret = r->fill ? r->fill(r->fill_opaque, req->seg[i].hva, n) :
				fill_getrandom(req->seg[i].hva, n);
		if (ret)
			return ret < 0 ? ret : -EIO;
		done += n;
		left -= n;
	}
	return (int64_t)done;
}

/* With r->lock held: answers one popped, pinned request; the bytes to report written. */
static uint32_t serve(struct virtio_rng *r, struct vq_req *req)
{
	int64_t n;

	if (req->nr_out) {
		r->stats.malformed++;
		pr_debug("%s: request with %u device-readable buffers", r->vdev.name, req->nr_out);
		return 0;
	}
	n = fill_req(r, req);
	if (n < 0) {
		r->stats.errors++;
		pr_debug("%s: entropy source failed: %s", r->vdev.name, strerror((int)-n));
		return 0;
	}
	r->stats.requests++;
	r->stats.bytes += (uint64_t)n;
	return (uint32_t)n;
}

void rng_process(struct virtio_rng *r)
{
	struct virtqueue *vq = &r->vdev.vq[0];
	bool done = false;

	virtio_dev_flush(&r->vdev); /* completions deferred by a used ring under conversion */
	pthread_mutex_lock(&r->lock);
	while (virtio_dev_running(&r->vdev)) {
		uint32_t written = 0;
		int ret = vq_pop(vq, r->req);

		if (ret == 0)
			break;
		if (ret == -EAGAIN) {
			virtio_dev_defer(&r->vdev);
			break;
		}
		if (ret == -EPROTO) {
			/* The ring itself is broken: nothing was consumed, nothing more will be. */
			r->stats.malformed++;
			virtio_dev_needs_reset(&r->vdev, vq->error);
			break;
		}
		if (ret < 0) {
			/* A malformed chain: nothing pinned, it goes back empty. */
			r->stats.malformed++;
			pr_debug("%s: %s", r->vdev.name, vq->error);
		} else {
			written = serve(r, r->req);
		}
		virtio_dev_push(&r->vdev, 0, r->req, written);
		done = true;
	}
	pthread_mutex_unlock(&r->lock);
	/* What was completed before the ring broke is still the guest's to see. */
	if (done)
		virtio_dev_notify_queue(&r->vdev, 0);
}

static void rng_notify(struct virtio_dev *vd, unsigned int q)
{
	struct virtio_rng *r = to_rng(vd);

	(void)q;
	if (r->kick)
		r->kick(r->kick_opaque);
}

/*
 * Requests complete synchronously, none stays popped: taking the lock
 * orders the reset after an rng_process() in progress, and the status is
 * already 0, so the next one pops nothing.
 */
static void rng_reset(struct virtio_dev *vd)
{
	struct virtio_rng *r = to_rng(vd);

	pthread_mutex_lock(&r->lock);
	pthread_mutex_unlock(&r->lock);
}

static const struct virtio_dev_ops rng_ops = {
	.queue_notify = rng_notify,
	.reset = rng_reset,
};

int virtio_rng_init(struct virtio_rng *r, struct gmem *gm, const char *name)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->req = malloc(sizeof(*r->req));
	if (!r->req)
		return -ENOMEM;
	r->vdev.name = name;
	r->vdev.device_id = VIRTIO_ID_RNG;
	r->vdev.features = 0; /* VERSION_1 only, added by the core */
	r->vdev.config_size = 0;
	r->vdev.nr_queues = 1;
	r->vdev.queue_max = RNG_QUEUE_SIZE;
	r->vdev.ops = &rng_ops;
	r->vdev.opaque = r;
	ret = -pthread_mutex_init(&r->lock, NULL);
	if (ret)
		goto err;
	ret = virtio_dev_init(&r->vdev, gm);
	if (ret) {
		pthread_mutex_destroy(&r->lock);
		goto err;
	}
	return 0;
err:
	free(r->req);
	r->req = NULL;
	return ret;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	virtio_dev_destroy(&r->vdev);
	pthread_mutex_destroy(&r->lock);
	free(r->req);
	r->req = NULL;
}
