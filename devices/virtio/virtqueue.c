/*
 * virtio 1.x split virtqueues (virtio 1.2 §2.7) over gmem.
 *
 * The guest owns the rings and may change them at any moment, so every
 * field is read once, into a local copy, and checked there; nothing is read
 * twice and trusted the second time.  Ring accesses pin the bytes they
 * touch without waiting (gmem_pin_try), which refuses anything outside RAM
 * or in private memory and says -EAGAIN under a conversion; data buffers
 * are pinned for as long as the device holds the request, an indirect
 * table only while the walk reads it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "virtqueue.h"

/* The rings are little-endian and so is every host veil runs on: fields are used as they are. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

_Static_assert(sizeof(struct vring_desc) == 16, "virtq_desc is 16 bytes");
_Static_assert(sizeof(struct vq_used) == 8, "virtq_used_elem is 8 bytes");

/* Offsets in the avail ring (flags, idx, ring[size], used_event) and the used ring. */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_IDX 2
#define USED_RING 4
/* After the rings' size entries: used_event ends the avail ring, avail_event the used ring. */
#define USED_EVENT(vq) ((vq)->avail_gpa + AVAIL_RING + 2ULL * (vq)->size)
#define AVAIL_EVENT(vq) ((vq)->used_gpa + USED_RING + 8ULL * (vq)->size)

#define DESC_FLAGS_KNOWN (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE)

/*
 * The fences below order ring accesses against the guest's, which no
 * sanitizer sees.  TSan does not model fences (GCC says so with -Wtsan); a
 * test's driver thread is ordered for it by gmem's atomics on the page state.
 */
#ifdef __SANITIZE_THREAD__
#pragma GCC diagnostic ignored "-Wtsan"
#endif

static __printf(3, 4) int vq_fail(struct virtqueue *vq, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->error, sizeof(vq->error), fmt, ap);
	va_end(ap);
	return err;
}

static const char *access_error(int err)
{
	switch (err) {
	case -EFAULT:
		return "outside RAM";
	case -EACCES:
		return "in private memory";
	case -ETIMEDOUT:
		return "being converted, and the conversion did not finish";
	default:
		return strerror(-err);
	}
}

void vq_init(struct virtqueue *vq, struct gmem *gm, const char *owner)
{
	*vq = (struct virtqueue){ .gm = gm, .owner = owner };
	pthread_mutex_init(&vq->lock, NULL);
}

void vq_destroy(struct virtqueue *vq)
{
	pthread_mutex_destroy(&vq->lock);
}

/*
 * One ring access through a pin that never waits: -EAGAIN while the bytes
 * are being converted or punched, -EFAULT/-EACCES outside RAM or private.
 */
static int ring_access(struct virtqueue *vq, uint64_t gpa, void *buf, uint64_t len, bool write)
{
	struct gmem_pin pin;
	int ret = gmem_pin_try(vq->gm, gpa, len, vq->owner ? vq->owner : "virtqueue", 0, &pin);

	if (ret)
		return ret;
	if (write)
		memcpy(pin.hva, buf, len);
	else
		memcpy(buf, pin.hva, len);
	gmem_unpin(&pin);
	return 0;
}

static int ring_read(struct virtqueue *vq, uint64_t gpa, void *buf, uint64_t len)
{
	return ring_access(vq, gpa, buf, len, false);
}

static int ring_write(struct virtqueue *vq, uint64_t gpa, const void *buf, uint64_t len)
{
	return ring_access(vq, gpa, (void *)buf, len, true);
}

/* With vq->lock held: a new generation, nothing out, nothing waiting. */
static void new_generation(struct virtqueue *vq)
{
	vq->gen++;
	vq->outstanding = 0;
	vq->nr_pending = vq->pend_head = 0;
	vq->last_avail = vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->avail_event_valid = false;
}

/* A counter bump under vq->lock; readers load it relaxed, without the lock. */
static void count(uint64_t *c)
{
	__atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

struct vq_stats vq_stats(const struct virtqueue *vq)
{
	const struct vq_stats *s = &vq->stats;

	return (struct vq_stats){
		.popped = __atomic_load_n(&s->popped, __ATOMIC_RELAXED),
		.interrupts = __atomic_load_n(&s->interrupts, __ATOMIC_RELAXED),
		.suppressed = __atomic_load_n(&s->suppressed, __ATOMIC_RELAXED),
		.kick_asks = __atomic_load_n(&s->kick_asks, __ATOMIC_RELAXED),
		.indirect = __atomic_load_n(&s->indirect, __ATOMIC_RELAXED),
	};
}

void vq_set_features(struct virtqueue *vq, uint64_t features)
{
	pthread_mutex_lock(&vq->lock);
	vq->event_idx = features >> VIRTIO_RING_F_EVENT_IDX & 1;
	vq->indirect = features >> VIRTIO_RING_F_INDIRECT_DESC & 1;
	pthread_mutex_unlock(&vq->lock);
}

static int check_ring(struct virtqueue *vq, const char *name, uint64_t gpa, uint64_t align,
		      uint64_t len)
{
	void *hva;
	int ret;

	if (!IS_ALIGNED(gpa, align))
		return vq_fail(vq, -EINVAL, "%s ring at GPA 0x%llx is not %llu-byte aligned", name,
			       (unsigned long long)gpa, (unsigned long long)align);
	/* Only a check: rings are accessed through gmem each time, never through this hva. */
	ret = gmem_translate(vq->gm, gpa, len, &hva);
	if (ret)
		return vq_fail(vq, -EINVAL, "%s ring at GPA 0x%llx+0x%llx is %s", name,
			       (unsigned long long)gpa, (unsigned long long)len, access_error(ret));
	return 0;
}

/* All or nothing: a rejected layout leaves the queue as it was, apart from vq->error. */
int vq_configure(struct virtqueue *vq, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
		 uint64_t used_gpa)
{
	int ret;

	if (!size || size > VQ_MAX_SIZE || (size & (size - 1)))
		return vq_fail(vq, -EINVAL, "queue size %u is not a power of 2 from 1 to %u", size,
			       VQ_MAX_SIZE);
	ret = check_ring(vq, "descriptor", desc_gpa, 16, 16ULL * size);
	if (!ret)
		ret = check_ring(vq, "avail", avail_gpa, 2, 6 + 2ULL * size);
	if (!ret)
		ret = check_ring(vq, "used", used_gpa, 4, 6 + 8ULL * size);
	if (ret)
		return ret;
	pthread_mutex_lock(&vq->lock);
	new_generation(vq);
	vq->size = size;
	vq->desc_gpa = desc_gpa;
	vq->avail_gpa = avail_gpa;
	vq->used_gpa = used_gpa;
	vq->error[0] = '\0';
	vq->ready = true;
	pthread_mutex_unlock(&vq->lock);
	return 0;
}

void vq_reset(struct virtqueue *vq)
{
	/* req_seq keeps counting, so a pin's request id stays unique for the device's life. */
	pthread_mutex_lock(&vq->lock);
	new_generation(vq);
	vq->ready = false;
	vq->event_idx = vq->indirect = false;
	vq->size = 0;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->error[0] = '\0';
	pthread_mutex_unlock(&vq->lock);
}

void vq_release(struct vq_req *req)
{
	while (req->nr_pins)
		gmem_unpin(&req->pin[--req->nr_pins]);
	/* The hvas are no longer the device's: copies through them must find nothing. */
	req->nr_segs = req->nr_out = 0;
	req->out_len = req->in_len = 0;
}

/* A chain error, named by the descriptor's kind ("desc", "indirect desc"), index and buffer. */
static __printf(6, 7) int desc_fail(struct virtqueue *vq, int err, const char *kind, uint16_t i,
				    const struct vring_desc *d, const char *fmt, ...)
{
	size_t n = (size_t)snprintf(vq->error, sizeof(vq->error), "%s %u (GPA 0x%llx+0x%x): ", kind,
				    i, (unsigned long long)d->addr, d->len);
	va_list ap;

	if (n >= sizeof(vq->error))
		return err;
	va_start(ap, fmt);
	vsnprintf(vq->error + n, sizeof(vq->error) - n, fmt, ap);
	va_end(ap);
	return err;
}

/* One walk of a chain, through the descriptor table and perhaps one indirect table. */
struct walk {
	struct vq_req *req;
	uint64_t req_id;   /* the pins' request id */
	bool pin;          /* vq_pop, not vq_pop_unpinned */
	bool writable;     /* a device-writable buffer came already */
};

/* Checks one buffer descriptor as read (a copy); in_table: it came from an indirect table. */
static int check_desc(struct virtqueue *vq, const char *kind, bool in_table, uint16_t i,
		      const struct vring_desc *d, const struct walk *w)
{
	if (d->flags & VIRTQ_DESC_F_INDIRECT)
		return desc_fail(vq, -EINVAL, kind, i, d,
				 in_table ? "INDIRECT inside an indirect table" :
					    "INDIRECT, not negotiated");
	if (d->flags & ~DESC_FLAGS_KNOWN)
		return desc_fail(vq, -EINVAL, kind, i, d, "unknown flags 0x%x",
				 d->flags & ~DESC_FLAGS_KNOWN);
	/* The device finds the request's output before its input; interleaving would break that. */
	if (w->writable && !(d->flags & VIRTQ_DESC_F_WRITE))
		return desc_fail(vq, -EINVAL, kind, i, d, "device-readable after a writable one");
	if (!d->len)
		return desc_fail(vq, -EINVAL, kind, i, d, "zero length");
	/* What the device will touch is bounded; a range it only discards need not be. */
	if (w->pin && d->len > VQ_MAX_SEG_LEN)
		return desc_fail(vq, -E2BIG, kind, i, d, "longer than %u bytes", VQ_MAX_SEG_LEN);
	/* gmem would refuse it too, but as out of RAM: say what is really wrong. */
	if (d->addr + d->len < d->addr)
		return desc_fail(vq, -EFAULT, kind, i, d, "wraps around the address space");
	return 0;
}

/* Checks, pins (if the walk pins) and appends one buffer descriptor to the request. */
static int add_seg(struct virtqueue *vq, struct walk *w, bool in_table, uint16_t i,
		   const struct vring_desc *d)
{
	const char *kind = in_table ? "indirect desc" : "desc";
	struct vq_req *req = w->req;
	int ret;

	if (req->nr_segs == VQ_MAX_SEGS)
		return desc_fail(vq, -E2BIG, kind, i, d, "the chain from head %u is over %u long",
				 req->head, VQ_MAX_SEGS);
	ret = check_desc(vq, kind, in_table, i, d, w);
	if (ret)
		return ret;
	if (w->pin) {
		/* Never wait here: see vq_pop's -EAGAIN. */
		ret = gmem_pin_try(vq->gm, d->addr, d->len, vq->owner, w->req_id,
				   &req->pin[req->nr_pins]);
		if (ret == -EAGAIN)
			return vq_fail(vq, -EAGAIN, "%s %u (GPA 0x%llx+0x%x): being converted", kind,
				       i, (unsigned long long)d->addr, d->len);
		if (ret == -EACCES && !vq->stats.refused_private++)
			pr_warn("%s: refused a device access to private memory at GPA 0x%llx (+0x%x): "
				"the guest did not share that buffer", vq->owner ? vq->owner : "virtqueue",
				(unsigned long long)d->addr, d->len);
		if (ret)
			return desc_fail(vq, ret, kind, i, d, "buffer %s", access_error(ret));
	}
	w->writable = d->flags & VIRTQ_DESC_F_WRITE;
	req->seg[req->nr_segs] = (struct vq_seg){
		.hva = w->pin ? req->pin[req->nr_pins].hva : NULL, .gpa = d->addr, .len = d->len,
		.write = w->writable,
	};
	req->nr_segs++;
	if (w->pin)
		req->nr_pins++;
	if (w->writable) {
		req->in_len += d->len;
	} else {
		req->out_len += d->len;
		req->nr_out++;
	}
	return 0;
}

/*
 * The descriptor that points to an indirect table (virtio 1.2 §2.7.5.3):
 * no NEXT (the table ends the chain), whole descriptors, at most
 * VQ_MAX_INDIRECT of them.  Its WRITE flag means nothing: the device must
 * ignore it (§2.7.5.3.2).
 */
static int check_table(struct virtqueue *vq, uint16_t i, const struct vring_desc *d)
{
	const uint16_t known = DESC_FLAGS_KNOWN | VIRTQ_DESC_F_INDIRECT;

	if (d->flags & VIRTQ_DESC_F_NEXT)
		return desc_fail(vq, -EINVAL, "desc", i, d, "INDIRECT with NEXT");
	if (d->flags & ~known)
		return desc_fail(vq, -EINVAL, "desc", i, d, "unknown flags 0x%x", d->flags & ~known);
	if (!d->len)
		return desc_fail(vq, -EINVAL, "desc", i, d, "indirect table of zero length");
	if (d->len % sizeof(struct vring_desc))
		return desc_fail(vq, -EINVAL, "desc", i, d,
				 "indirect table length is not a multiple of 16");
	if (d->len / sizeof(struct vring_desc) > VQ_MAX_INDIRECT)
		return desc_fail(vq, -E2BIG, "desc", i, d, "indirect table of over %u descriptors",
				 VQ_MAX_INDIRECT);
	if (d->addr + d->len < d->addr)
		return desc_fail(vq, -EFAULT, "desc", i, d, "indirect table wraps around");
	return 0;
}

/*
 * Walks the indirect table desc i points to, from its entry 0, like the
 * direct chain: each entry copied once and checked in the copy, loops and
 * next checked against the table's own size, the chain's length and
 * direction order carried on.  The table is pinned without waiting, and
 * only while it is read: the request keeps its buffers' pins, not the
 * table's.
 */
static int walk_table(struct virtqueue *vq, struct walk *w, uint16_t i, const struct vring_desc *d)
{
	uint64_t seen[VQ_MAX_INDIRECT / 64] = { 0 };
	struct gmem_pin table;
	struct vring_desc e;
	uint16_t j = 0, n;
	int ret = check_table(vq, i, d);

	if (ret)
		return ret;
	n = (uint16_t)(d->len / sizeof(struct vring_desc));
	ret = gmem_pin_try(vq->gm, d->addr, d->len, vq->owner, w->req_id, &table);
	if (ret == -EAGAIN)
		return vq_fail(vq, -EAGAIN, "desc %u: indirect table at GPA 0x%llx+0x%x: being converted",
			       i, (unsigned long long)d->addr, d->len);
	if (ret)
		return desc_fail(vq, ret, "desc", i, d, "indirect table %s", access_error(ret));
	for (;;) {
		memcpy(&e, (const uint8_t *)table.hva + sizeof(e) * j, sizeof(e));
		if (seen[j / 64] & (1ULL << (j % 64))) {
			ret = desc_fail(vq, -ELOOP, "indirect desc", j, &e,
					"seen twice: the table of desc %u loops", i);
			break;
		}
		seen[j / 64] |= 1ULL << (j % 64);
		ret = add_seg(vq, w, true, j, &e);
		if (ret || !(e.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (e.next >= n) {
			ret = desc_fail(vq, -EINVAL, "indirect desc", j, &e,
					"next %u is outside the table of %u", e.next, n);
			break;
		}
		j = e.next;
	}
	gmem_unpin(&table);
	if (!ret)
		count(&vq->stats.indirect);
	return ret;
}

/*
 * Walks and pins the chain from req->head.  -EPROTO if the descriptor table
 * cannot be read (the ring is broken, not this chain); any other error is
 * this chain's.  Leaves what it pinned in req for the caller to release.
 */
static int walk_chain(struct virtqueue *vq, struct vq_req *req, bool pin)
{
	/*
	 * A loop is a descriptor seen twice: caught at once, whatever the queue
	 * size, rather than reported as a chain that grew too long.
	 */
	uint64_t seen[VQ_MAX_SIZE / 64] = { 0 };
	struct walk w = { .req = req, .req_id = ++vq->req_seq, .pin = pin };
	uint16_t i = req->head;
	struct vring_desc d;
	int ret;

	for (;;) {
		uint64_t at = vq->desc_gpa + 16ULL * i;

		ret = ring_read(vq, at, &d, sizeof(d));
		if (ret == -EAGAIN)
			return vq_fail(vq, -EAGAIN, "descriptor table at GPA 0x%llx: being converted",
				       (unsigned long long)at);
		if (ret)
			return vq_fail(vq, -EPROTO, "descriptor table at GPA 0x%llx is %s",
				       (unsigned long long)at, access_error(ret));
		if (seen[i / 64] & (1ULL << (i % 64)))
			return desc_fail(vq, -ELOOP, "desc", i, &d,
					 "seen twice: the chain from head %u loops", req->head);
		seen[i / 64] |= 1ULL << (i % 64);
		/* Zero or more direct descriptors, then perhaps one table (§2.7.5.3.2). */
		if ((d.flags & VIRTQ_DESC_F_INDIRECT) && vq->indirect)
			return walk_table(vq, &w, i, &d);
		ret = add_seg(vq, &w, false, i, &d);
		if (ret || !(d.flags & VIRTQ_DESC_F_NEXT))
			return ret;
		if (d.next >= vq->size)
			return desc_fail(vq, -EINVAL, "desc", i, &d, "next %u is outside the queue of %u",
					 d.next, vq->size);
		i = d.next;
	}
}

/* A ring read's failure: -EAGAIN under a conversion, -EPROTO if the ring is unreadable. */
static int ring_fail(struct virtqueue *vq, int err, const char *what, uint64_t at)
{
	if (err == -EAGAIN)
		return vq_fail(vq, -EAGAIN, "%s at GPA 0x%llx: being converted", what,
			       (unsigned long long)at);
	return vq_fail(vq, -EPROTO, "%s at GPA 0x%llx is %s", what, (unsigned long long)at,
		       access_error(err));
}

/* The avail idx, with vq->lock held; read before the entries it publishes. */
static int read_avail_idx(struct virtqueue *vq, uint16_t *idx)
{
	uint64_t at = vq->avail_gpa + AVAIL_IDX;
	int ret = ring_read(vq, at, idx, sizeof(*idx));

	if (ret)
		return ring_fail(vq, ret, "avail idx", at);
	/* The driver wrote the entries before the idx: read them only after it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return 0;
}

/*
 * EVENT_IDX, with vq->lock held and the ring found empty: asks for a kick
 * at the next entry (avail_event = last_avail), then reads the avail idx
 * again into *idx.  A driver publishes its idx, then reads avail_event to
 * decide on a kick; the device publishes avail_event, then reads the idx.
 * With a full fence between the two on each side, one of them sees the
 * other's write: an entry published meanwhile is kicked for or found here
 * (virtio 1.2 §2.7.10).  While the device drains the ring it asks for
 * nothing, so the driver does not kick it then.  Every device that stops
 * popping before the ring is empty comes back by itself (a completion, a
 * retry, room for its output).
 */
static int ask_for_kick(struct virtqueue *vq, uint16_t *idx)
{
	uint64_t at = AVAIL_EVENT(vq);
	int ret = ring_write(vq, at, &vq->last_avail, sizeof(vq->last_avail));

	if (ret)
		return ring_fail(vq, ret, "avail_event", at);
	/*
	 * Written every time all the same: the used ring may have been converted
	 * and back since, and a lost avail_event is a lost kick.
	 */
	if (!vq->avail_event_valid || vq->avail_event != vq->last_avail)
		count(&vq->stats.kick_asks);
	vq->avail_event = vq->last_avail;
	vq->avail_event_valid = true;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return read_avail_idx(vq, idx);
}

/*
 * A chain refused for a buffer in private memory: walked again without pins, so that req->seg[]
 * says where its buffers are (none touched) and the device can still fail it in one the guest
 * did share (vq_fail_status).  vq->error keeps the refusal.
 */
static void describe_refused(struct virtqueue *vq, struct vq_req *req)
{
	char why[sizeof(vq->error)];

	memcpy(why, vq->error, sizeof(why));
	req->nr_segs = req->nr_out = req->nr_pins = 0;
	req->out_len = req->in_len = 0;
	if (walk_chain(vq, req, false))
		req->nr_segs = 0;
	memcpy(vq->error, why, sizeof(why));
}

/* With vq->lock held. */
static int pop_locked(struct virtqueue *vq, struct vq_req *req, bool pin)
{
	uint16_t avail_idx, pending, slot, head;
	uint64_t at;
	int ret;

	/* Only the header: the seg and pin arrays are filled as far as nr_segs and nr_pins say. */
	req->head = 0;
	req->nr_segs = req->nr_out = req->nr_pins = 0;
	req->out_len = req->in_len = 0;
	req->gen = vq->gen;
	if (!vq->ready)
		return 0;
	ret = read_avail_idx(vq, &avail_idx);
	if (!ret && avail_idx == vq->last_avail && vq->event_idx)
		ret = ask_for_kick(vq, &avail_idx);
	if (ret)
		return ret;
	pending = (uint16_t)(avail_idx - vq->last_avail);
	if (!pending)
		return 0;
	if (pending > vq->size)
		return vq_fail(vq, -EPROTO, "avail idx %u is %u ahead of the device's %u, size %u",
			       avail_idx, pending, vq->last_avail, vq->size);
	/*
	 * Every completion needs a used ring slot, and deferred ones hold theirs
	 * until published: a driver that reuses heads still out, or a used
	 * ring under conversion, waits for room rather than growing the queue.
	 */
	if (vq->outstanding + vq->nr_pending >= vq->size)
		return vq_fail(vq, -EAGAIN,
			       "no room in the used ring: %u requests out, %u completions deferred",
			       vq->outstanding, vq->nr_pending);
	slot = vq->last_avail & (vq->size - 1);
	at = vq->avail_gpa + AVAIL_RING + 2ULL * slot;
	ret = ring_read(vq, at, &head, sizeof(head));
	if (ret)
		return ring_fail(vq, ret, "avail ring entry", at);
	if (head >= vq->size)
		return vq_fail(vq, -EPROTO, "avail ring entry %u (GPA 0x%llx): head %u, size %u",
			       slot, (unsigned long long)at, head, vq->size);
	req->head = head;
	ret = walk_chain(vq, req, pin);
	if (ret) {
		vq_release(req);
		/*
		 * A broken ring consumes nothing: the device goes to NEEDS_RESET from
		 * here.  A buffer under conversion consumes nothing either: the
		 * device tries the same chain again later.
		 */
		if (ret == -EPROTO || ret == -EAGAIN)
			return ret;
		if (ret == -EACCES && pin)
			describe_refused(vq, req);
	}
	/* Good or bad, the chain is consumed: a bad one goes back through the used ring. */
	vq->last_avail++;
	vq->outstanding++;
	count(&vq->stats.popped);
	return ret ? ret : 1;
}

static int pop(struct virtqueue *vq, struct vq_req *req, bool pin)
{
	int ret;

	pthread_mutex_lock(&vq->lock);
	ret = pop_locked(vq, req, pin);
	pthread_mutex_unlock(&vq->lock);
	return ret;
}

int vq_pop(struct virtqueue *vq, struct vq_req *req)
{
	return pop(vq, req, true);
}

int vq_fail_status(struct virtqueue *vq, const struct vq_req *req, uint8_t status)
{
	const struct vq_seg *s;

	if (!req->nr_segs || !req->seg[req->nr_segs - 1].write)
		return -ENOENT;
	s = &req->seg[req->nr_segs - 1];
	/* Refused (and counted by gmem) if that byte is private too: nothing is written then. */
	return ring_write(vq, s->gpa + s->len - 1, &status, 1);
}

int vq_pop_unpinned(struct virtqueue *vq, struct vq_req *req)
{
	return pop(vq, req, false);
}

/*
 * With vq->lock held: writes the waiting completions into the used ring,
 * oldest first, then publishes the used idx past those written.  A page
 * under conversion stops it, and what was not published waits for the next
 * flush.  A broken ring drops them all: the device goes to NEEDS_RESET.
 */
static int flush_locked(struct virtqueue *vq)
{
	const char *what = "used ring entry";
	unsigned int n;
	uint64_t at = 0;
	uint16_t idx;
	int ret = 0, err;

	if (!vq->nr_pending)
		return 0;
	for (n = 0; n < vq->nr_pending; n++) {
		at = vq->used_gpa + USED_RING + 8ULL * ((vq->used_idx + n) & (vq->size - 1U));
		ret = ring_write(vq, at, &vq->pending[(vq->pend_head + n) % VQ_MAX_SIZE],
				 sizeof(struct vq_used));
		if (ret)
			break;
	}
	if (n) {
		/* The elements must be visible before the idx that hands them to the driver. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		idx = (uint16_t)(vq->used_idx + n);
		err = ring_write(vq, vq->used_gpa + USED_IDX, &idx, sizeof(idx));
		if (!err) {
			/*
			 * 2^16 completions without an interrupt decision would make the
			 * next one's window ambiguous: decide afresh (interrupt) then.
			 */
			if ((uint16_t)(idx - vq->signalled_used) < (uint16_t)(idx - vq->used_idx))
				vq->signalled_valid = false;
			vq->used_idx = idx;
			vq->pend_head = (vq->pend_head + n) % VQ_MAX_SIZE;
			vq->nr_pending -= n;
		} else {
			/* Written but not published: the next flush writes them again. */
			what = "used idx";
			at = vq->used_gpa + USED_IDX;
			ret = err;
		}
	}
	if (!ret)
		return 1;
	if (ret == -EAGAIN)
		return vq_fail(vq, -EAGAIN,
			       "%s at GPA 0x%llx: being converted, %u completions deferred", what,
			       (unsigned long long)at, vq->nr_pending);
	vq->nr_pending = vq->pend_head = 0;
	return vq_fail(vq, -EFAULT, "%s at GPA 0x%llx is %s", what, (unsigned long long)at,
		       access_error(ret));
}

static int push(struct virtqueue *vq, struct vq_req *req, uint32_t written, uint8_t *status_byte,
		uint8_t status)
{
	struct vq_used elem = { .id = req->head, .len = written };
	int ret;

	/* The driver trusts the length: never claim more than the writable buffers hold. */
	if (elem.len > req->in_len)
		elem.len = (uint32_t)req->in_len;
	pthread_mutex_lock(&vq->lock);
	if (req->gen != vq->gen || !vq->ready) {
		/* Popped before a reset: the rings it came from are gone, so are its buffers. */
		vq_release(req);
		vq->stale++;
		/* Counted only: vq->error may be the transport's to read now (a refused configure). */
		ret = -ESTALE;
		goto out;
	}
	if (status_byte)
		*status_byte = status;
	/* Once the used idx is out the driver may reuse or convert the pages: let them go first. */
	vq_release(req);
	if (vq->outstanding)
		vq->outstanding--;
	if (vq->nr_pending == VQ_MAX_SIZE) {
		ret = vq_fail(vq, -EFAULT, "head %u: more completions than the queue holds",
			      req->head);
		goto out;
	}
	vq->pending[(vq->pend_head + vq->nr_pending++) % VQ_MAX_SIZE] = elem;
	ret = flush_locked(vq);
	if (ret == -EAGAIN)
		vq->deferred++;
	else if (ret > 0)
		ret = 0;
out:
	pthread_mutex_unlock(&vq->lock);
	return ret;
}

int vq_push(struct virtqueue *vq, struct vq_req *req, uint32_t written)
{
	return push(vq, req, written, NULL, 0);
}

int vq_push_status(struct virtqueue *vq, struct vq_req *req, uint32_t written,
		   uint8_t *status_byte, uint8_t status)
{
	return push(vq, req, written, status_byte, status);
}

int vq_flush(struct virtqueue *vq)
{
	int ret;

	pthread_mutex_lock(&vq->lock);
	ret = flush_locked(vq);
	pthread_mutex_unlock(&vq->lock);
	return ret;
}

/*
 * EVENT_IDX, with vq->lock held: whether the used idx crossed used_event
 * since the last decision; this one becomes the last.
 */
static bool used_event_crossed(struct virtqueue *vq)
{
	uint16_t event, old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;

	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (ring_read(vq, USED_EVENT(vq), &event, sizeof(event)))
		return true; /* unreadable (private, under conversion): see vq_should_interrupt */
	return !valid || vq_need_event(event, now, old);
}

bool vq_should_interrupt(struct virtqueue *vq)
{
	uint16_t flags = 0;
	bool ready, irq = false;

	pthread_mutex_lock(&vq->lock);
	ready = vq->ready;
	if (ready) {
		/*
		 * Store-load: the used idx just published must be visible before the
		 * flags or used_event are read, or a driver that re-enables interrupts
		 * and then checks the used idx could miss both the entry and the
		 * interrupt.
		 */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (vq->event_idx)
			irq = used_event_crossed(vq);
		else
			/*
			 * Unreadable flags (private, or under conversion, which is never
			 * waited for): interrupt; a spurious one is harmless, a lost one
			 * hangs the driver.
			 */
			irq = ring_read(vq, vq->avail_gpa + AVAIL_FLAGS, &flags, sizeof(flags)) ||
			      !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
		count(irq ? &vq->stats.interrupts : &vq->stats.suppressed);
	}
	pthread_mutex_unlock(&vq->lock);
	return irq;
}

/* Copies between segs[0..nr) (as one byte stream from offset off) and flat. */
static uint64_t copy_segs(const struct vq_seg *segs, unsigned int nr, uint64_t off, uint8_t *flat,
			  uint64_t len, bool to_segs)
{
	uint64_t done = 0, n;
	unsigned int i;

	for (i = 0; i < nr && done < len; i++) {
		if (off >= segs[i].len) {
			off -= segs[i].len;
			continue;
		}
		n = segs[i].len - off;
		if (n > len - done)
			n = len - done;
		if (to_segs)
			memcpy((uint8_t *)segs[i].hva + off, flat + done, n);
		else
			memcpy(flat + done, (const uint8_t *)segs[i].hva + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint64_t vq_copy_from(const struct vq_req *req, uint64_t off, void *buf, uint64_t len)
{
	return copy_segs(req->seg, req->nr_out, off, buf, len, false);
}

uint64_t vq_copy_to(struct vq_req *req, uint64_t off, const void *buf, uint64_t len)
{
	/* buf is only read: to_segs copies from it. */
	return copy_segs(req->seg + req->nr_out, req->nr_segs - req->nr_out, off, (uint8_t *)buf,
			 len, true);
}
