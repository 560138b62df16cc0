/*
 * virtio-blk (virtio 1.2 §5.2): one or several request queues
 * (VIRTIO_BLK_F_MQ), requests parsed and validated here, I/O done by a
 * backend the owner provides (vmm/: io_uring on the I/O thread).  A
 * request's buffers stay pinned from parse to completion, so a conversion
 * or punch of them waits (DESIGN.md I1).  Completions are batched: each
 * queue whose used ring moved is signalled once per batch.
 */
#ifndef VEIL_VIRTIO_BLK_H
#define VEIL_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define BLK_SECTOR 512ULL
#define BLK_SEG_MAX 128
#define BLK_ID_BYTES 20
#define BLK_QUEUE_SIZE 256
#define BLK_MAX_INFLIGHT BLK_QUEUE_SIZE

enum blk_op { BLK_OP_READ, BLK_OP_WRITE, BLK_OP_FLUSH, BLK_OP_DISCARD, BLK_OP_WRITE_ZEROES };

/* A parsed request, pure data: what blk_parse() found in a chain. */
struct blk_parsed {
	uint32_t type;
	uint64_t sector;
	uint8_t status;         /* VIRTIO_BLK_S_OK, or why the request fails without I/O */
	enum blk_op op;
	uint64_t offset, len;   /* bytes, for read/write/discard/write-zeroes */
	unsigned int niov;      /* data buffers (read/write) */
	struct iovec iov[BLK_SEG_MAX];
	uint8_t *status_byte;   /* the last writable byte of the chain */
	uint64_t written;       /* bytes the device writes into the chain, status included */
	const char *error;      /* what was malformed, when status != OK */
};

/*
 * Parses and validates a popped, pinned chain against a disk of capacity
 * sectors.  Returns 0 with p->status OK when the request needs I/O or a
 * local answer (GET_ID), 0 with p->status an error code when it fails
 * cleanly (p->status_byte set), or -EINVAL when the chain has no room for a
 * status byte at all (the caller returns it with 0 bytes written).
 */
int blk_parse(const struct vq_req *req, uint64_t capacity, bool read_only, struct blk_parsed *p)
	__must_check;

struct virtio_blk;

/* One I/O in flight: the backend performs it and calls blk_io_done(). */
struct blk_io {
	struct virtio_blk *blk;
	enum blk_op op;
	uint64_t offset, len;
	struct iovec *iov;
	unsigned int niov;
	int result;      /* the backend's: bytes done, or -errno */
	/* the device's */
	unsigned int q;  /* the queue it came from and completes on */
	struct vq_req *req;
	struct blk_parsed parsed;
	bool busy;
	uint64_t buf_word; /* what this I/O put in last_buf */
};

struct blk_backend_ops {
	/* Starts io; 0 if it will complete through blk_io_done(), -errno if it cannot start. */
	int (*submit)(void *opaque, struct blk_io *io);
};

struct virtio_blk {
	struct virtio_dev vdev;
	pthread_mutex_t lock;  /* io slots, inflight, and the queue while popping or pushing */
	pthread_cond_t idle;   /* inflight reached 0 */
	uint64_t capacity;     /* sectors */
	bool read_only;
	char id[BLK_ID_BYTES];
	const struct blk_backend_ops *backend;
	void *backend_opaque;
	/* Called when the guest kicks: the owner schedules blk_process() on its I/O thread. */
	void (*kick)(void *opaque);
	/* Or, if set, with the queue kicked: the owner schedules blk_process_queue(). */
	void (*kick_queue)(void *opaque, unsigned int q);
	void *kick_opaque;
	/*
	 * If set, called when a batch of work (pops, completions) left queues to
	 * signal: the owner calls blk_batch_end() once its batch is over (vmm/:
	 * after every completion the ring had).  If NULL, blk_batch_end() runs
	 * at once.
	 */
	void (*batch)(void *opaque);
	void *batch_opaque;
	struct blk_io io[BLK_MAX_INFLIGHT]; /* shared by the queues */
	uint16_t free_io[BLK_MAX_INFLIGHT]; /* a stack of the free slots */
	unsigned int nr_free;
	unsigned int inflight;
	uint32_t signal;       /* queues whose used ring moved since the last batch end */
	uint32_t refill;       /* queues to pop again at the batch end (slots freed, or none were) */
	bool starved;          /* a pop found no free slot */
	uint64_t last_buf;     /* an in-flight request's first data buffer: gpa | pages - 1; 0 if none */
	struct {
		uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
		uint64_t bytes_read, bytes_written;
		uint64_t errors;   /* requests answered IOERR or UNSUPP */
		uint64_t malformed; /* chains refused by virtqueue or blk_parse */
		uint64_t batches;  /* batch ends that signalled at least one queue */
		uint64_t signals;  /* queue interrupts asked for (at most one per queue per batch) */
		uint64_t queue_reqs[VIRTIO_MAX_QUEUES]; /* requests popped, per queue */
	} stats;
};

/*
 * Sets up the device for a disk of size bytes (a multiple of 512), with one
 * request queue.  The owner sets backend, kick and vdev.set_irq before the
 * guest runs.
 */
int virtio_blk_init(struct virtio_blk *blk, struct gmem *gm, const char *name, uint64_t size,
		    bool read_only, const char *id) __must_check;
/* As virtio_blk_init, with nr_queues (1 to VIRTIO_MAX_QUEUES; above 1 offers VIRTIO_BLK_F_MQ). */
int virtio_blk_init_mq(struct virtio_blk *blk, struct gmem *gm, const char *name, uint64_t size,
		       bool read_only, const char *id, unsigned int nr_queues) __must_check;
void virtio_blk_destroy(struct virtio_blk *blk);

/*
 * The pages of an in-flight read or write request's first data buffer (the
 * latest started), for host stress that aims at live I/O: false if none is
 * in flight.  Cleared when that request completes, so the pages are never
 * aimed at once the guest may reuse them.
 */
bool virtio_blk_last_buffer(struct virtio_blk *blk, uint64_t *gpa, uint64_t *pages);
/* Pops and starts every available request of every queue.  On the I/O thread. */
void blk_process(struct virtio_blk *blk);
/* Pops and starts every available request of queue q.  On the I/O thread. */
void blk_process_queue(struct virtio_blk *blk, unsigned int q);
/*
 * A backend finished io: writes the status and completes the request on its
 * queue; the queue is signalled at the batch end.
 */
void blk_io_done(struct blk_io *io);
/*
 * The end of a batch: pops again the queues that completed requests (or
 * every queue if slots ran out), then raises each moved queue's interrupt
 * once.  On the I/O thread.
 */
void blk_batch_end(struct virtio_blk *blk);

#endif
