/*
 * virtio-balloon (virtio 1.2 §5.5) for free page reporting: the guest
 * reports free pages, and the device discards them through gmem_discard(),
 * so every punch is synchronized with in-flight I/O pins (DESIGN.md I1,
 * I4).  The owner sets a target (num_pages) to ask the guest to inflate;
 * the PFNs the guest then gives up are discarded the same way, and those
 * it takes back (deflate) come back zeroed when touched.
 */
#ifndef VEIL_VIRTIO_BALLOON_H
#define VEIL_VIRTIO_BALLOON_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_BALLOON_F_REPORTING 5
#define BALLOON_Q_INFLATE 0
#define BALLOON_Q_DEFLATE 1
#define BALLOON_Q_REPORTING 2 /* the third queue the driver sets up, with only REPORTING */

struct virtio_balloon {
	struct virtio_dev vdev;
	struct gmem *gm;
	pthread_mutex_t lock;
	uint32_t num_pages; /* the target: 4 KiB pages the guest is asked to give up */
	uint32_t actual;    /* pages the guest says it holds inflated */
	void (*kick)(void *opaque);
	void *kick_opaque;
	struct vq_req *req;
	struct {
		uint64_t reports;         /* report chains completed */
		uint64_t reported_bytes;  /* bytes the guest reported free */
		uint64_t discarded_bytes; /* bytes punched */
		uint64_t discard_errors;  /* ranges gmem refused: outside RAM, not whole pages */
		uint64_t discard_busy;    /* ranges pinned or converting right then: not punched */
		uint64_t inflated_pages;  /* PFNs the guest gave up (inflate queue) */
		uint64_t deflated_pages;  /* PFNs it took back (deflate queue) */
		uint64_t targets;         /* times the owner set num_pages */
		uint64_t malformed;
	} stats;
};

int virtio_balloon_init(struct virtio_balloon *b, struct gmem *gm, const char *name) __must_check;
void virtio_balloon_destroy(struct virtio_balloon *b);
/*
 * Asks the guest to hold pages 4 KiB pages in the balloon: num_pages, and a
 * configuration interrupt on either transport.  Any thread.
 */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* What the guest last wrote to actual: the pages it holds inflated. */
uint32_t virtio_balloon_actual(struct virtio_balloon *b);
/* Serves every queue: discards reported and inflated pages.  On the owner's I/O thread. */
void balloon_process(struct virtio_balloon *b);

#endif
