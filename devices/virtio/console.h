/*
 * virtio-console (virtio 1.2 §5.3) with a single port and no
 * VIRTIO_CONSOLE_F_MULTIPORT: receiveq0 carries host input into buffers the
 * guest posted, transmitq0 the guest's output, and the config space's
 * emerg_wr takes one character at a time, even before the driver is up
 * (early console).  Every request completes synchronously on the owner's
 * I/O thread, so none is ever left popped.
 *
 * Included from outside devices/virtio as "virtio/console.h": vmm/ has a
 * console.h of its own, first on the include path.
 */
#ifndef VEIL_VIRTIO_CONSOLE_H
#define VEIL_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

#define VIRTIO_CONSOLE_F_SIZE 0
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

#define CONSOLE_Q_RX 0 /* receiveq0: the device writes to the guest */
#define CONSOLE_Q_TX 1 /* transmitq0: the guest writes to the device */
#define CONSOLE_QUEUE_SIZE 64
/* Transmit waits for this much output room: Linux's hvc sends at most a page per chain. */
#define CONSOLE_TX_MIN_ROOM 4096

struct virtio_console {
	struct virtio_dev vdev;
	pthread_mutex_t lock;  /* both queues while popping or pushing, output, and the stats */
	/*
	 * Where the guest's output goes, in order: transmitted buffers and
	 * emergency writes.  Called with lock held, from the I/O thread or (for
	 * emerg_wr) a vCPU thread: it must never wait for the reader, nor call
	 * back into the device; what it cannot take it drops (and counts).  buf
	 * may point into guest memory, valid only for the call.  NULL: the output
	 * is discarded (still counted).
	 */
	void (*output)(void *opaque, const void *buf, size_t len);
	/*
	 * How many bytes output takes now; NULL: unbounded.  Below
	 * CONSOLE_TX_MIN_ROOM the device leaves transmit buffers in the queue
	 * (back-pressure: the guest sees its queue not consumed) and sets
	 * tx_waiting; the owner kicks it once there is room.
	 */
	size_t (*output_room)(void *opaque);
	void *output_opaque;
	bool tx_waiting;       /* under lock: transmit stopped for want of output room */
	/*
	 * Called when the guest kicks either queue: the owner schedules, on its
	 * I/O thread, console_process_tx() and, if it holds input the device
	 * did not take, console_input() again (a receive kick means new buffers).
	 */
	void (*kick)(void *opaque);
	void *kick_opaque;
	struct vq_req *req;    /* heap: a vq_req is too large for the stack */
	struct {
		uint64_t tx_bytes;   /* guest output, emergency writes included */
		uint64_t rx_bytes;   /* host input delivered into the guest's buffers */
		/*
		 * Host input thrown away.  Never counted by the device (console_input
		 * does not drop, it returns what it took): an owner that discards
		 * the rest adds it here, on its I/O thread.
		 */
		uint64_t rx_dropped;
		uint64_t malformed;  /* chains refused: by the virtqueue, or wrong direction */
		uint64_t tx_waits;   /* times transmit stopped for want of output room */
	} stats;
};

/* Sets up the device.  The owner sets output, kick and vdev.set_irq before the guest runs. */
int virtio_console_init(struct virtio_console *c, struct gmem *gm, const char *name)
	__must_check;
void virtio_console_destroy(struct virtio_console *c);

/* Passes every available transmit request to output, then signals the guest.  I/O thread. */
void console_process_tx(struct virtio_console *c);

/*
 * Delivers host input into the receive buffers the guest posted, as many as
 * it takes, and signals the guest once.  Returns the bytes taken: 0 when
 * the device is not running or no buffer is posted, less than len when the
 * buffers ran out.  The rest stays the caller's, to offer again after the
 * next kick or to drop.  On the I/O thread.
 */
size_t console_input(struct virtio_console *c, const void *buf, size_t len);

/*
 * True once the guest has written to the console.  Input should wait for
 * it: without the multiport feature there is no "port open" message, and
 * Linux discards what arrives between posting its receive buffers and
 * attaching hvc0 (seen: a line sent then was never read).
 */
bool console_guest_attached(struct virtio_console *c);

/* True once, if transmit stopped for want of room since the last call: kick it again. */
bool console_tx_take_waiting(struct virtio_console *c);

#endif
