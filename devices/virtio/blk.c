/* virtio-blk: request parsing and validation, completion, reset with I/O in flight. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blk.h"
#include "log.h"

#define RESET_WAIT_S 5 /* a reset waits this long for in-flight I/O */

struct blk_config { /* virtio 1.2 §5.2.4, the fields we offer */
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

_Static_assert(offsetof(struct blk_config, max_discard_sectors) == 36, "virtio-blk config layout");
_Static_assert(sizeof(struct blk_config) == 60, "virtio-blk config layout");

struct blk_discard { /* one DISCARD / WRITE_ZEROES segment */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

#define DISCARD_F_UNMAP 1
#define MAX_DISCARD_SECTORS (1U << 22) /* 2 GiB per request */

/* iovecs over bytes [off, off+len) of the readable (write=false) or writable segments. */
static int build_iov(const struct vq_req *req, bool write, uint64_t off, uint64_t len,
		     struct blk_parsed *p)
{
	unsigned int i = write ? req->nr_out : 0, end = write ? req->nr_segs : req->nr_out;

	p->niov = 0;
	for (; i < end && len; i++) {
		uint64_t seg_len = req->seg[i].len, n;

		if (off >= seg_len) {
			off -= seg_len;
			continue;
		}
		if (p->niov == BLK_SEG_MAX)
			return -E2BIG;
		n = seg_len - off < len ? seg_len - off : len;
		p->iov[p->niov].iov_base = (uint8_t *)req->seg[i].hva + off;
		p->iov[p->niov].iov_len = n;
		p->niov++;
		len -= n;
		off = 0;
	}
	return len ? -EINVAL : 0;
}

static void fail(struct blk_parsed *p, uint8_t status, const char *why)
{
	p->status = status;
	p->error = why;
}

/* Bytes [sector*512, +len) inside the disk, without overflow. */
static bool in_disk(uint64_t sector, uint64_t len, uint64_t capacity)
{
	return sector <= capacity && len / BLK_SECTOR <= capacity - sector;
}

static void parse_rw(const struct vq_req *req, uint64_t capacity, bool read_only,
		     struct blk_parsed *p)
{
	bool in = p->type == VIRTIO_BLK_T_IN;
	/* IN data: every writable byte but the status; OUT data: every readable byte after the header. */
	uint64_t len = in ? req->in_len - 1 : req->out_len - 16;

	if (!in && read_only)
		return fail(p, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
	if (!len || len % BLK_SECTOR)
		return fail(p, VIRTIO_BLK_S_IOERR, "data length not a positive multiple of 512");
	if (!in_disk(p->sector, len, capacity))
		return fail(p, VIRTIO_BLK_S_IOERR, "beyond the end of the disk");
	if (build_iov(req, in, in ? 0 : 16, len, p))
		return fail(p, VIRTIO_BLK_S_IOERR, "more data segments than seg_max");
	p->op = in ? BLK_OP_READ : BLK_OP_WRITE;
	p->offset = p->sector * BLK_SECTOR;
	p->len = len;
	if (in)
		p->written += len;
}

static void parse_discard(const struct vq_req *req, uint64_t capacity, bool read_only,
			  struct blk_parsed *p)
{
	bool zeroes = p->type == VIRTIO_BLK_T_WRITE_ZEROES;
	struct blk_discard d;

	if (read_only)
		return fail(p, VIRTIO_BLK_S_IOERR, "discard or write-zeroes on a read-only disk");
	/* max_discard_seg and max_write_zeroes_seg are 1. */
	if (req->out_len - 16 != sizeof(d) || vq_copy_from(req, 16, &d, sizeof(d)) != sizeof(d))
		return fail(p, VIRTIO_BLK_S_UNSUPP, "not exactly one discard segment");
	if (d.flags & ~(uint32_t)(zeroes ? DISCARD_F_UNMAP : 0))
		return fail(p, VIRTIO_BLK_S_UNSUPP, "unsupported discard flags");
	if (!d.num_sectors || d.num_sectors > MAX_DISCARD_SECTORS ||
	    !in_disk(d.sector, (uint64_t)d.num_sectors * BLK_SECTOR, capacity))
		return fail(p, VIRTIO_BLK_S_IOERR, "discard range empty, too large or beyond the disk");
	p->op = zeroes ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
	p->offset = d.sector * BLK_SECTOR;
	p->len = (uint64_t)d.num_sectors * BLK_SECTOR;
}

int blk_parse(const struct vq_req *req, uint64_t capacity, bool read_only, struct blk_parsed *p)
{
	const struct vq_seg *last;
	struct {
		uint32_t type;
		uint32_t reserved;
		uint64_t sector;
	} hdr;

	memset(p, 0, offsetof(struct blk_parsed, iov));
	p->niov = 0;
	if (!req->nr_segs || req->nr_out == req->nr_segs)
		return -EINVAL; /* nowhere to put a status */
	last = &req->seg[req->nr_segs - 1];
	p->status_byte = (uint8_t *)last->hva + last->len - 1;
	p->written = 1;
	if (req->out_len < sizeof(hdr) || vq_copy_from(req, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		fail(p, VIRTIO_BLK_S_IOERR, "request header shorter than 16 bytes");
		return 0;
	}
	p->type = hdr.type;
	p->sector = hdr.sector;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		parse_rw(req, capacity, read_only, p);
		break;
	case VIRTIO_BLK_T_FLUSH:
		p->op = BLK_OP_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID:
		if (req->in_len - 1 < 1)
			fail(p, VIRTIO_BLK_S_IOERR, "GET_ID without room for the id");
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		parse_discard(req, capacity, read_only, p);
		break;
	default:
		fail(p, VIRTIO_BLK_S_UNSUPP, "unknown request type");
		break;
	}
	return 0;
}

/* ---- the device ---- */

static struct virtio_blk *to_blk(struct virtio_dev *vd)
{
	return vd->opaque;
}

static void blk_config_read(struct virtio_dev *vd, uint32_t off, void *data, unsigned int len)
{
	struct virtio_blk *blk = to_blk(vd);
	struct blk_config c = {
		.capacity = blk->capacity, .size_max = VQ_MAX_SEG_LEN, .seg_max = BLK_SEG_MAX,
		.blk_size = BLK_SECTOR, .num_queues = (uint16_t)blk->vdev.nr_queues,
		.max_discard_sectors = MAX_DISCARD_SECTORS, .max_discard_seg = 1,
		.discard_sector_alignment = 1,
		.max_write_zeroes_sectors = MAX_DISCARD_SECTORS, .max_write_zeroes_seg = 1,
		.write_zeroes_may_unmap = 1,
	};

	if (off < sizeof(c))
		memcpy(data, (uint8_t *)&c + off, off + len <= sizeof(c) ? len : sizeof(c) - off);
}

/*
 * Completes a request, with blk->lock held: status, used ring, then the
 * pins go.  A used ring under conversion defers the used element (the
 * device runs again and publishes it); a queue reset since the pop takes
 * nothing, not even the status byte.  True if the used ring moved.
 */
static bool complete(struct virtio_blk *blk, unsigned int q, struct vq_req *req,
		     const struct blk_parsed *p)
{
	if (p->status != VIRTIO_BLK_S_OK) {
		blk->stats.errors++;
		pr_debug("%s: request type %u sector %llu: %s", blk->vdev.name, p->type,
			 (unsigned long long)p->sector, p->error ? p->error : "I/O error");
	}
	return virtio_dev_push_status(&blk->vdev, q, req,
				      (uint32_t)(p->status == VIRTIO_BLK_S_OK ? p->written : 1),
				      p->status_byte, p->status);
}

static struct blk_io *io_get(struct virtio_blk *blk)
{
	return blk->nr_free ? &blk->io[blk->free_io[--blk->nr_free]] : NULL;
}

static void io_put(struct virtio_blk *blk, struct blk_io *io)
{
	io->busy = false;
	blk->free_io[blk->nr_free++] = (uint16_t)(io - blk->io);
	if (--blk->inflight == 0)
		pthread_cond_broadcast(&blk->idle);
}

/* With blk->lock held: queue q's used ring moved; it is signalled at the batch end. */
static void moved(struct virtio_blk *blk, unsigned int q, bool yes)
{
	if (yes)
		blk->signal |= 1U << q;
}

static void count(struct virtio_blk *blk, const struct blk_parsed *p)
{
	switch (p->op) {
	case BLK_OP_READ: blk->stats.reads++; blk->stats.bytes_read += p->len; break;
	case BLK_OP_WRITE: blk->stats.writes++; blk->stats.bytes_written += p->len; break;
	case BLK_OP_FLUSH: blk->stats.flushes++; break;
	case BLK_OP_DISCARD: blk->stats.discards++; break;
	case BLK_OP_WRITE_ZEROES: blk->stats.write_zeroes++; break;
	}
}

/*
 * With blk->lock held: one popped request, answered now (returns true: the
 * used ring moved) or handed to the backend (false: its completion signals).
 */
static bool start(struct virtio_blk *blk, struct blk_io *io)
{
	struct blk_parsed *p = &io->parsed;
	bool moved;
	int ret;

	if (blk_parse(io->req, blk->capacity, blk->read_only, p)) {
		blk->stats.malformed++;
		moved = virtio_dev_push(&blk->vdev, io->q, io->req, 0);
		io_put(blk, io);
		return moved;
	}
	if (p->status == VIRTIO_BLK_S_OK && p->type == VIRTIO_BLK_T_GET_ID) {
		uint64_t n = io->req->in_len - 1 < BLK_ID_BYTES ? io->req->in_len - 1 : BLK_ID_BYTES;

		vq_copy_to(io->req, 0, blk->id, n);
		p->written += n;
		blk->stats.get_ids++;
	}
	if (p->status != VIRTIO_BLK_S_OK || p->type == VIRTIO_BLK_T_GET_ID) {
		moved = complete(blk, io->q, io->req, p);
		io_put(blk, io);
		return moved;
	}
	io->op = p->op;
	io->offset = p->offset;
	io->len = p->len;
	io->iov = p->iov;
	io->niov = p->niov;
	io->result = 0;
	ret = blk->backend->submit(blk->backend_opaque, io);
	if (ret) {
		p->status = VIRTIO_BLK_S_IOERR;
		p->error = "the backend could not start the I/O";
		moved = complete(blk, io->q, io->req, p);
		io_put(blk, io);
		return moved;
	}
	/* In flight now (its completion runs on this thread, later): publish its buffer. */
	io->buf_word = 0;
	if ((p->op == BLK_OP_READ || p->op == BLK_OP_WRITE) && io->req->nr_segs > 2) {
		const struct vq_seg *s = &io->req->seg[1];
		uint64_t first = s->gpa >> 12, last = (s->gpa + s->len - 1) >> 12;

		/* One word, so a reader on another thread never mixes two requests. */
		io->buf_word = first << 12 | ((last - first) & 0xfff);
		__atomic_store_n(&blk->last_buf, io->buf_word, __ATOMIC_RELAXED);
	}
	return false;
}

bool virtio_blk_last_buffer(struct virtio_blk *blk, uint64_t *gpa, uint64_t *pages)
{
	uint64_t v = __atomic_load_n(&blk->last_buf, __ATOMIC_RELAXED);

	*gpa = v & ~0xfffULL;
	*pages = (v & 0xfff) + 1;
	return v != 0;
}

/*
 * With blk->lock held: pops and starts every available request of queue q.
 * -EPROTO if the ring is broken (the caller, unlocked, asks for a reset).
 */
static int pop_queue(struct virtio_blk *blk, unsigned int q)
{
	struct virtqueue *vq = &blk->vdev.vq[q];

	while (virtio_dev_running(&blk->vdev)) {
		struct blk_io *io = io_get(blk);
		int ret;

		if (!io) {
			blk->starved = true; /* completions pop again */
			break;
		}
		ret = vq_pop(vq, io->req);
		if (ret == 0 || ret == -EAGAIN || ret == -EPROTO)
			blk->nr_free++; /* the slot stays free: it is still on top of the stack */
		if (ret == 0)
			break;
		if (ret == -EAGAIN) {
			virtio_dev_defer(&blk->vdev);
			break;
		}
		if (ret == -EPROTO) {
			blk->stats.malformed++;
			return -EPROTO;
		}
		io->busy = true;
		io->q = q;
		blk->inflight++;
		blk->stats.queue_reqs[q]++;
		if (ret < 0) {
			uint32_t written = 0;

			/*
			 * A malformed chain: nothing pinned, no status byte we may trust.  But a
			 * buffer in private memory (the guest did not share it) fails as an I/O
			 * error in the status byte, if the guest shared that: nothing else is written.
			 */
			blk->stats.malformed++;
			if (ret == -EACCES && !vq_fail_status(vq, io->req, VIRTIO_BLK_S_IOERR)) {
				blk->stats.errors++;
				written = 1;
			}
			pr_debug("%s: %s", blk->vdev.name, vq->error);
			moved(blk, q, virtio_dev_push(&blk->vdev, q, io->req, written));
			io_put(blk, io);
			continue;
		}
		moved(blk, q, start(blk, io));
	}
	return 0;
}

/* The owner's batch end, or ours now. */
static void batch(struct virtio_blk *blk)
{
	if (blk->batch)
		blk->batch(blk->batch_opaque);
	else
		blk_batch_end(blk);
}

/* Pops the queues in mask; a broken ring puts the device into NEEDS_RESET. */
static void pop_queues(struct virtio_blk *blk, uint32_t mask)
{
	unsigned int q;
	int broken = -1;

	pthread_mutex_lock(&blk->lock);
	for (q = 0; q < blk->vdev.nr_queues && broken < 0; q++)
		if (mask & 1U << q && pop_queue(blk, q) == -EPROTO)
			broken = (int)q;
	pthread_mutex_unlock(&blk->lock);
	if (broken >= 0)
		virtio_dev_needs_reset(&blk->vdev, blk->vdev.vq[broken].error);
}

void blk_process_queue(struct virtio_blk *blk, unsigned int q)
{
	if (q >= blk->vdev.nr_queues)
		return;
	/* Completions the used ring could not take before (it was being converted) go first. */
	virtio_dev_flush(&blk->vdev);
	pop_queues(blk, 1U << q);
	batch(blk);
}

void blk_process(struct virtio_blk *blk)
{
	virtio_dev_flush(&blk->vdev);
	pop_queues(blk, (1U << blk->vdev.nr_queues) - 1);
	batch(blk);
}

void blk_batch_end(struct virtio_blk *blk)
{
	uint32_t refill, signal;
	unsigned int q;

	pthread_mutex_lock(&blk->lock);
	refill = blk->starved ? (1U << blk->vdev.nr_queues) - 1 : blk->refill;
	blk->starved = false;
	blk->refill = 0;
	pthread_mutex_unlock(&blk->lock);
	/* Slots freed: requests the guest queued without a kick (or that found no slot) start now. */
	if (refill)
		pop_queues(blk, refill);
	pthread_mutex_lock(&blk->lock);
	signal = blk->signal;
	blk->signal = 0;
	if (signal)
		blk->stats.batches++;
	pthread_mutex_unlock(&blk->lock);
	for (q = 0; signal; q++, signal >>= 1) {
		if (!(signal & 1))
			continue;
		__atomic_store_n(&blk->stats.signals, blk->stats.signals + 1, __ATOMIC_RELAXED);
		virtio_dev_notify_queue(&blk->vdev, q);
	}
}

void blk_io_done(struct blk_io *io)
{
	struct virtio_blk *blk = io->blk;
	struct blk_parsed *p = &io->parsed;
	bool running;

	pthread_mutex_lock(&blk->lock);
	if (io->buf_word) {
		uint64_t word = io->buf_word;

		__atomic_compare_exchange_n(&blk->last_buf, &word, 0, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
		io->buf_word = 0;
	}
	running = virtio_dev_running(&blk->vdev);
	count(blk, p);
	/* Reads and writes must be whole: a short one is an error, not a retry the guest sees. */
	if (io->result < 0 || ((p->op == BLK_OP_READ || p->op == BLK_OP_WRITE) &&
			       (uint64_t)io->result != p->len)) {
		p->status = VIRTIO_BLK_S_IOERR;
		p->error = "I/O error or short transfer";
	}
	/*
	 * A reset waiting for us: drop, do not touch the rings.  A queue reset
	 * that did not wait (QueueReady=0, or a device reset that gave up) is
	 * caught by the queue's generation: complete() then drops it too.
	 */
	if (running) {
		moved(blk, io->q, complete(blk, io->q, io->req, p));
		blk->refill |= 1U << io->q;
	} else {
		vq_release(io->req);
	}
	io_put(blk, io);
	pthread_mutex_unlock(&blk->lock);
	if (running)
		batch(blk);
}

/* A reset waits (bounded) for in-flight I/O: its buffers are pinned and the backend writes them. */
static void blk_reset(struct virtio_dev *vd)
{
	struct virtio_blk *blk = to_blk(vd);
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += RESET_WAIT_S;
	pthread_mutex_lock(&blk->lock);
	while (blk->inflight && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&blk->idle, &blk->lock, &deadline);
	if (blk->inflight)
		pr_warn("%s: reset with %u requests still in flight after %d s", vd->name,
			blk->inflight, RESET_WAIT_S);
	blk->signal = blk->refill = 0; /* the queues go: nothing of theirs is signalled */
	blk->starved = false;
	pthread_mutex_unlock(&blk->lock);
}

static void blk_notify(struct virtio_dev *vd, unsigned int q)
{
	struct virtio_blk *blk = to_blk(vd);

	if (blk->kick_queue)
		blk->kick_queue(blk->kick_opaque, q);
	else if (blk->kick)
		blk->kick(blk->kick_opaque);
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.queue_notify = blk_notify,
	.reset = blk_reset,
};

int virtio_blk_init(struct virtio_blk *blk, struct gmem *gm, const char *name, uint64_t size,
		    bool read_only, const char *id)
{
	return virtio_blk_init_mq(blk, gm, name, size, read_only, id, 1);
}

int virtio_blk_init_mq(struct virtio_blk *blk, struct gmem *gm, const char *name, uint64_t size,
		       bool read_only, const char *id, unsigned int nr_queues)
{
	unsigned int i;
	int ret;

	if (!size || size % BLK_SECTOR || !nr_queues || nr_queues > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	memset(blk, 0, sizeof(*blk));
	blk->capacity = size / BLK_SECTOR;
	blk->read_only = read_only;
	strncpy(blk->id, id ? id : "", sizeof(blk->id));
	for (i = 0; i < BLK_MAX_INFLIGHT; i++) {
		blk->io[i].blk = blk;
		blk->free_io[BLK_MAX_INFLIGHT - 1 - i] = (uint16_t)i;
		blk->io[i].req = malloc(sizeof(*blk->io[i].req));
		if (!blk->io[i].req) {
			ret = -ENOMEM;
			goto err;
		}
	}
	blk->vdev.name = name;
	blk->vdev.device_id = VIRTIO_ID_BLOCK;
	blk->vdev.features = 1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
			     1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH |
			     (read_only ? 1ULL << VIRTIO_BLK_F_RO :
					  1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	if (nr_queues > 1)
		blk->vdev.features |= 1ULL << VIRTIO_BLK_F_MQ;
	blk->nr_free = BLK_MAX_INFLIGHT;
	blk->vdev.config_size = sizeof(struct blk_config);
	blk->vdev.nr_queues = nr_queues;
	blk->vdev.queue_max = BLK_QUEUE_SIZE;
	blk->vdev.ops = &blk_ops;
	blk->vdev.opaque = blk;
	ret = -pthread_mutex_init(&blk->lock, NULL);
	if (ret)
		goto err;
	ret = -pthread_cond_init(&blk->idle, NULL);
	if (ret)
		goto err_lock;
	ret = virtio_dev_init(&blk->vdev, gm);
	if (ret)
		goto err_cond;
	return 0;
err_cond:
	pthread_cond_destroy(&blk->idle);
err_lock:
	pthread_mutex_destroy(&blk->lock);
err:
	for (i = 0; i < BLK_MAX_INFLIGHT; i++)
		free(blk->io[i].req);
	return ret;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
	unsigned int i;

	virtio_dev_destroy(&blk->vdev);
	pthread_cond_destroy(&blk->idle);
	pthread_mutex_destroy(&blk->lock);
	for (i = 0; i < BLK_MAX_INFLIGHT; i++)
		free(blk->io[i].req);
}
