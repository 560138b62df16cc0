/*
 * virtio-balloon (virtio 1.2 §5.5) for free page reporting: the guest
 * reports free pages, and the device discards them through gmem_discard(),
 * so every punch is synchronized with in-flight I/O pins (DESIGN.md I1,
 * I4).  The device never asks the guest to inflate (num_pages stays 0);
 * pages a guest inflates anyway are discarded the same way.
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
	uint32_t actual; /* pages the guest says it holds inflated */
	void (*kick)(void *opaque);
	void *kick_opaque;
	struct vq_req *req;
	struct {
		uint64_t reports;         /* report chains completed */
		uint64_t reported_bytes;  /* bytes the guest reported free */
		uint64_t discarded_bytes; /* bytes punched */
		uint64_t discard_errors;  /* ranges gmem refused: outside RAM, not whole pages */
		uint64_t discard_busy;    /* ranges pinned or converting right then: not punched */
		uint64_t inflated_pages;
		uint64_t malformed;
	} stats;
};

int virtio_balloon_init(struct virtio_balloon *b, struct gmem *gm, const char *name) __must_check;
void virtio_balloon_destroy(struct virtio_balloon *b);
/* Serves every queue: discards reported and inflated pages.  On the owner's I/O thread. */
void balloon_process(struct virtio_balloon *b);

#endif
