/* virtio-balloon: free page reporting and inflation discard guest pages through gmem. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "balloon.h"
#include "log.h"

#define PFN_SHIFT 12 /* the balloon's page frame numbers are 4 KiB, whatever the guest's */
#define PFNS_PER_CHUNK 256
#define BALLOON_MAX_PFNS 256 /* per inflate request */

struct balloon_config {
	uint32_t num_pages;
	uint32_t actual;
	uint32_t free_page_hint_cmd_id;
	uint32_t poison_val;
};

static struct virtio_balloon *to_balloon(struct virtio_dev *vd)
{
	return vd->opaque;
}

static void balloon_config_read(struct virtio_dev *vd, uint32_t off, void *data,
				unsigned int len)
{
	struct virtio_balloon *b = to_balloon(vd);
	struct balloon_config c = {
		.num_pages = __atomic_load_n(&b->num_pages, __ATOMIC_RELAXED),
		.actual = __atomic_load_n(&b->actual, __ATOMIC_RELAXED),
	};

	if (off < sizeof(c))
		memcpy(data, (uint8_t *)&c + off, off + len <= sizeof(c) ? len : sizeof(c) - off);
}

static void balloon_config_write(struct virtio_dev *vd, uint32_t off, const void *data,
				 unsigned int len)
{
	struct virtio_balloon *b = to_balloon(vd);
	uint32_t actual;

	if (off == offsetof(struct balloon_config, actual) && len == 4) {
		memcpy(&actual, data, 4);
		__atomic_store_n(&b->actual, actual, __ATOMIC_RELAXED);
	}
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
	__atomic_store_n(&b->num_pages, pages, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->stats.targets, 1, __ATOMIC_RELAXED);
	virtio_dev_config_changed(&b->vdev);
}

uint32_t virtio_balloon_actual(struct virtio_balloon *b)
{
	return __atomic_load_n(&b->actual, __ATOMIC_RELAXED);
}

/* Discards [gpa, gpa+len) if it is whole pages; the guest gave them up. */
static void discard(struct virtio_balloon *b, uint64_t gpa, uint64_t len)
{
	struct gmem_conv_result res;
	int ret;

	if (!len || gpa % GMEM_PAGE_SIZE || len % GMEM_PAGE_SIZE || gpa + len < gpa) {
		b->stats.discard_errors++;
		return;
	}
	/*
	 * Never wait: this runs on the I/O thread, and a pin on these pages may
	 * belong to I/O only this thread completes.  A busy range is not
	 * punched (I1 holds); the report is advice, and the guest reports again.
	 */
	ret = gmem_discard_try(b->gm, gpa, len, &res);
	if (ret == -EAGAIN) {
		b->stats.discard_busy++;
		return;
	}
	if (ret) {
		b->stats.discard_errors++;
		pr_debug("%s: discarding GPA 0x%llx+0x%llx: %s%s%s", b->vdev.name,
			 (unsigned long long)gpa, (unsigned long long)len, strerror(-ret),
			 res.culprit[0] ? ": " : "", res.culprit);
		return;
	}
	b->stats.discarded_bytes += len;
}

/* One report: each descriptor is a free range (Linux sends them device-writable). */
static void report(struct virtio_balloon *b, const struct vq_req *req)
{
	unsigned int i;

	b->stats.reports++;
	for (i = 0; i < req->nr_segs; i++) {
		b->stats.reported_bytes += req->seg[i].len;
		discard(b, req->seg[i].gpa, req->seg[i].len);
	}
}

/*
 * Inflate (or deflate): the readable buffers hold 32-bit PFNs of pages the
 * guest gave up (or takes back).  At most BALLOON_MAX_PFNS a request, as Linux sends (its
 * VIRTIO_BALLOON_ARRAY_PFNS_MAX): a chain of 1 MiB buffers would otherwise
 * hold ~34 M PFNs, a punch each, and hold the I/O thread for minutes (found
 * by vdev_balloon_lf: 38 s for one 1 MiB buffer).  The rest is ignored.
 */
static void pfns(struct virtio_balloon *b, const struct vq_req *req, bool inflate)
{
	uint32_t pfn[PFNS_PER_CHUNK];
	uint64_t off = 0, n, i;

	if (req->out_len > BALLOON_MAX_PFNS * 4)
		b->stats.malformed++;
	while (off < BALLOON_MAX_PFNS * 4 && (n = vq_copy_from(req, off, pfn, sizeof(pfn)) / 4) != 0) {
		/*
		 * A deflated page needs nothing: it was discarded, and comes back
		 * zeroed when the guest touches it.
		 */
		for (i = 0; i < n && inflate; i++)
			discard(b, (uint64_t)pfn[i] << PFN_SHIFT, GMEM_PAGE_SIZE);
		*(inflate ? &b->stats.inflated_pages : &b->stats.deflated_pages) += n;
		off += n * 4;
	}
}

static bool serve(struct virtio_balloon *b, unsigned int q)
{
	struct virtqueue *vq = &b->vdev.vq[q];
	bool done = false;
	int ret;

	for (;;) {
		/* A report's buffers are the free pages themselves: never pin what gets punched. */
		ret = q == BALLOON_Q_REPORTING ? vq_pop_unpinned(vq, b->req) : vq_pop(vq, b->req);
		if (ret == 0)
			break;
		if (ret == -EAGAIN) {
			virtio_dev_defer(&b->vdev);
			break;
		}
		if (ret == -EPROTO) {
			b->stats.malformed++;
			pthread_mutex_unlock(&b->lock);
			virtio_dev_needs_reset(&b->vdev, vq->error);
			pthread_mutex_lock(&b->lock);
			break;
		}
		if (ret < 0)
			b->stats.malformed++;
		else if (q == BALLOON_Q_REPORTING)
			report(b, b->req);
		else
			pfns(b, b->req, q == BALLOON_Q_INFLATE);
		virtio_dev_push(&b->vdev, q, b->req, 0);
		done = true;
	}
	return done;
}

void balloon_process(struct virtio_balloon *b)
{
	unsigned int q;

	virtio_dev_flush(&b->vdev); /* completions deferred by a used ring under conversion */
	for (q = 0; q < b->vdev.nr_queues; q++) {
		bool done;

		pthread_mutex_lock(&b->lock);
		done = virtio_dev_running(&b->vdev) && serve(b, q);
		pthread_mutex_unlock(&b->lock);
		if (done)
			virtio_dev_notify_queue(&b->vdev, q);
	}
}

static void balloon_notify(struct virtio_dev *vd, unsigned int q)
{
	struct virtio_balloon *b = to_balloon(vd);

	(void)q;
	if (b->kick)
		b->kick(b->kick_opaque);
}

/* Requests complete synchronously: the lock orders a reset after any in progress. */
static void balloon_reset(struct virtio_dev *vd)
{
	struct virtio_balloon *b = to_balloon(vd);

	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&b->actual, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_dev_ops balloon_ops = {
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.queue_notify = balloon_notify,
	.reset = balloon_reset,
};

int virtio_balloon_init(struct virtio_balloon *b, struct gmem *gm, const char *name)
{
	int ret;

	memset(b, 0, sizeof(*b));
	b->gm = gm;
	b->req = malloc(sizeof(*b->req));
	if (!b->req)
		return -ENOMEM;
	b->vdev.name = name;
	b->vdev.device_id = VIRTIO_ID_BALLOON;
	b->vdev.features = 1ULL << VIRTIO_BALLOON_F_REPORTING;
	b->vdev.config_size = sizeof(struct balloon_config);
	b->vdev.nr_queues = 3;
	b->vdev.queue_max = 128;
	b->vdev.ops = &balloon_ops;
	b->vdev.opaque = b;
	ret = -pthread_mutex_init(&b->lock, NULL);
	if (ret)
		goto err;
	ret = virtio_dev_init(&b->vdev, gm);
	if (ret) {
		pthread_mutex_destroy(&b->lock);
		goto err;
	}
	return 0;
err:
	free(b->req);
	return ret;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	virtio_dev_destroy(&b->vdev);
	pthread_mutex_destroy(&b->lock);
	free(b->req);
}
