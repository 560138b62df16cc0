/*
 * virtio 1.x split virtqueues over gmem (virtio spec 1.2, §2.7).
 *
 * The rings are read and written one access at a time, each through a pin
 * that never waits (gmem_pin_try), like the buffers: the queue runs on the
 * thread that completes the I/O a conversion may be waiting for, so a ring
 * page under conversion defers the pop (-EAGAIN) or the completion (kept in
 * the queue, published by vq_flush), never blocks.  The buffers of a request
 * are pinned when it is popped and stay pinned until its completion is
 * pushed: a conversion or punch of those pages waits for them (DESIGN.md I1,
 * I4).
 *
 * A queue has its own lock, a leaf held only across its own non-waiting
 * ring accesses: a transport's reset (QueueReady=0, device reset) and the
 * I/O thread's pops and pushes are serialized by it.  A reset starts a new
 * generation, and a request popped before it is stale: its push releases
 * its buffers and writes nothing into the re-initialised rings.
 *
 * Everything the guest wrote is validated: ring addresses and sizes, the
 * avail index, every descriptor's address, length, flags and next index,
 * chain length and loops, and the direction order (device-readable
 * descriptors first, then device-writable).
 *
 * Two ring features, once the driver accepted them (vq_set_features):
 * VIRTIO_RING_F_INDIRECT_DESC, a chain that ends in a table of descriptors
 * (virtio 1.2 §2.7.5.3), read once through a pin held only for the walk and
 * validated like the direct chain; and VIRTIO_RING_F_EVENT_IDX (§2.7.7,
 * §2.7.10): used_event decides whether a completion interrupts, and the
 * device asks for a kick (avail_event) only when it finds the ring empty.
 * Without them an INDIRECT flag is an error and NO_INTERRUPT is honoured.
 */
#ifndef VEIL_VIRTQUEUE_H
#define VEIL_VIRTQUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "gmem.h"

#define VQ_MAX_SIZE 1024 /* largest queue size a device offers */
#define VQ_MAX_SEGS 130  /* longest chain accepted: seg_max 128 + header + status */
#define VQ_MAX_SEG_LEN (1U << 20) /* longest single descriptor accepted */
#define VQ_MAX_INDIRECT 1024 /* most entries in an indirect table (16 KiB) */

/* Ring feature bits (virtio 1.2 §6): offered by every device, see virtio_dev_init. */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29

/* Descriptor flags (split ring). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* One descriptor's buffer, pinned. */
struct vq_seg {
	void *hva;
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable (VIRTQ_DESC_F_WRITE) */
};

/* A popped request: its chain, pinned.  Large: allocate, do not put on a small stack. */
struct vq_req {
	uint16_t head;        /* descriptor index to return in the used ring */
	unsigned int nr_segs;
	unsigned int nr_out;  /* the first nr_out segs are device-readable, the rest writable */
	uint64_t out_len;     /* bytes in readable segs */
	uint64_t in_len;      /* bytes in writable segs */
	struct vq_seg seg[VQ_MAX_SEGS];
	struct gmem_pin pin[VQ_MAX_SEGS];
	unsigned int nr_pins;
	uint32_t gen;         /* the queue's generation when popped */
};

/* A completion not yet in the used ring: the ring was under conversion. */
struct vq_used {
	uint32_t id;
	uint32_t len;
};

struct virtqueue {
	/*
	 * Every field below.  Writers of ready (vq_configure, vq_reset) also
	 * hold the device lock, so a transport may read ready under that alone.
	 */
	pthread_mutex_t lock;
	struct gmem *gm;
	const char *owner;   /* pin owner, e.g. "virtio-blk0 q0": names the culprit of a stuck conversion */
	uint16_t size;       /* queue size, a power of 2; 0 until configured */
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	bool ready;
	uint16_t last_avail; /* next avail ring entry to consume */
	uint16_t used_idx;   /* next used ring entry to fill (the used idx we publish) */
	uint64_t req_seq;    /* pin request ids */
	uint32_t gen;        /* bumped by vq_configure and vq_reset: older requests are stale */
	unsigned int outstanding; /* popped and not yet pushed, this generation */
	/* Completions waiting for the used ring (FIFO), oldest at pending[pend_head]. */
	unsigned int nr_pending, pend_head;
	uint64_t deferred;   /* completions that had to wait for the used ring */
	uint64_t stale;      /* completions dropped: their queue was reset since the pop */
	bool event_idx;      /* VIRTIO_RING_F_EVENT_IDX accepted (vq_set_features) */
	bool indirect;       /* VIRTIO_RING_F_INDIRECT_DESC accepted */
	/* EVENT_IDX: the used idx when the last interrupt decision was made, if valid. */
	uint16_t signalled_used;
	bool signalled_valid;
	/* EVENT_IDX: the avail_event last published, if any (for kick_asks). */
	uint16_t avail_event;
	bool avail_event_valid;
	/* Counters, written under lock, read relaxed (vq_stats). */
	struct vq_stats {
		uint64_t popped;     /* chains consumed, good or malformed */
		uint64_t interrupts; /* decisions to interrupt (vq_should_interrupt true) */
		uint64_t suppressed; /* ... not to: NO_INTERRUPT, or used_event not crossed */
		/*
		 * EVENT_IDX: avail_event moved (published on finding the ring
		 * empty, at a new value): the driver kicks at most once per move.
		 */
		uint64_t kick_asks;
		uint64_t indirect;   /* chains that went through an indirect table */
		uint64_t refused_private; /* buffers refused as private; the first is logged */
	} stats;
	char error[160];     /* why the last pop or push failed */
	struct vq_used pending[VQ_MAX_SIZE];
};

/* An unconfigured queue. */
void vq_init(struct virtqueue *vq, struct gmem *gm, const char *owner);

/*
 * The driver's accepted features (all 64 bits; only VIRTIO_RING_F_* matter
 * here), for the next vq_configure: called before it, as the transport's
 * queue enable does (virtio_dev_configure_queue).  vq_reset forgets them.
 */
void vq_set_features(struct virtqueue *vq, uint64_t features);

/*
 * Checks and takes the driver's ring layout: size a power of 2 from 1 to
 * VQ_MAX_SIZE, desc 16-byte, avail 2-byte and used 4-byte aligned, each
 * ring wholly inside RAM.  -EINVAL otherwise, with vq->error set.  Makes the
 * queue ready and resets its indices.
 */
int vq_configure(struct virtqueue *vq, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
		 uint64_t used_gpa) __must_check;

/*
 * Back to unconfigured (device reset, QueueReady=0).  Requests still popped
 * become stale: their vq_push releases them and reports -ESTALE.
 * Completions still deferred are dropped with the rings they were for.
 */
void vq_reset(struct virtqueue *vq);
/* Frees what vq_init set up; the queue must be unused. */
void vq_destroy(struct virtqueue *vq);

/*
 * Pops the next available request into *req and pins its buffers.
 *   1        a request, pinned;
 *   0        nothing available;
 *   -EPROTO  the ring itself is broken (avail idx ran more than size ahead,
 *            a head out of range, rings unreadable, or under EVENT_IDX
 *            avail_event unwritable): the device must go to NEEDS_RESET;
 *            nothing is pinned;
 *   -EAGAIN  a ring page, a buffer or an indirect table is being converted
 *            or punched right now, or the used ring has no room left for
 *            one more completion (completions are deferred, or the driver
 *            reused heads still out): nothing is consumed or pinned; the
 *            device tries again later.  vq_pop never waits for a
 *            conversion, because devices run on the thread that also
 *            completes the I/O a conversion may be waiting for;
 *   other -errno: this chain is malformed (-EINVAL bad flags, next,
 *            direction order or indirect table, -ELOOP a loop, -E2BIG too
 *            long, -EFAULT a buffer or table outside RAM, -EACCES one in
 *            private memory): nothing is pinned, req->head is set, and the
 *            caller returns it with vq_push(vq, req, 0) after failing it
 *            as its device can.  After -EACCES alone req->seg[] describes
 *            the chain (hva NULL, nothing pinned) for vq_fail_status().
 * vq->error says what was wrong.
 */
int vq_pop(struct virtqueue *vq, struct vq_req *req) __must_check;

/*
 * As vq_pop, but the buffers are not pinned and seg[].hva is NULL: for
 * chains that only describe guest memory (the balloon's page reports),
 * which the device then discards through gmem, synchronized there.  Only
 * the descriptors are validated, without VQ_MAX_SEG_LEN (free page reports
 * are 2 MiB and more); the ranges are the caller's to check.
 */
int vq_pop_unpinned(struct virtqueue *vq, struct vq_req *req) __must_check;

/*
 * After vq_pop's -EACCES (a buffer in private memory): writes status into the last byte of the
 * chain's last device-writable buffer, where virtio devices keep their status, if the guest
 * shared that byte.  No other buffer is touched.  0, -ENOENT if the chain has no writable
 * buffer (or could not be described), or the refusal of that byte (-EACCES, -EFAULT, -EAGAIN).
 */
int vq_fail_status(struct virtqueue *vq, const struct vq_req *req, uint8_t status) __must_check;

/*
 * Completes a request: unpins its buffers, then writes the used element
 * (head, written) and publishes the used idx, in that order (release
 * semantics for the guest).  Never waits.
 *   0        published;
 *   -EAGAIN  the used ring is being converted: the completion is kept and
 *            vq_flush publishes it later; the caller has the device run
 *            again (virtio_dev_defer);
 *   -ESTALE  the queue was reset since the pop: nothing written, the
 *            buffers released all the same;
 *   -EFAULT  the used ring is outside RAM or private: the device must go
 *            to NEEDS_RESET; the completion is dropped.
 */
int vq_push(struct virtqueue *vq, struct vq_req *req, uint32_t written) __must_check;
/*
 * As vq_push, and first writes status into *status_byte, a byte of the
 * request's (pinned) buffers, only if the request is not stale: a late
 * completion must not write into memory the reset driver took back.
 */
int vq_push_status(struct virtqueue *vq, struct vq_req *req, uint32_t written,
		   uint8_t *status_byte, uint8_t status) __must_check;
/*
 * Publishes deferred completions: 1 if the used idx moved, 0 if none were
 * waiting, -EAGAIN if some still wait (the ring is still under conversion),
 * -EFAULT as vq_push.
 */
int vq_flush(struct virtqueue *vq) __must_check;

/* Unpins a popped request's buffers without completing it (reset, teardown). */
void vq_release(struct vq_req *req);

/*
 * Whether the used ring's progress since the last call deserves an
 * interrupt.  Without EVENT_IDX: unless the driver set NO_INTERRUPT.  With
 * it: if the used idx crossed the driver's used_event since the last call
 * (vring_need_event), or on the first call of a generation.  Call it once
 * after completions are published; a call with no progress says false
 * under EVENT_IDX.  Unreadable ring fields say true: a spurious interrupt
 * is harmless, a lost one hangs the driver.
 */
bool vq_should_interrupt(struct virtqueue *vq);

/*
 * virtio 1.2 §2.7.10: whether moving an index from old to new_idx crosses
 * event, that is event is in [old, new_idx) modulo 2^16.
 */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* A snapshot of the queue's counters. */
struct vq_stats vq_stats(const struct virtqueue *vq);

/*
 * Copies between a request's segments and a flat buffer, starting at byte
 * offset off of the readable (vq_copy_from) or writable (vq_copy_to) part.
 * Returns the bytes copied, at most len.
 */
uint64_t vq_copy_from(const struct vq_req *req, uint64_t off, void *buf, uint64_t len);
uint64_t vq_copy_to(struct vq_req *req, uint64_t off, const void *buf, uint64_t len);

#endif
