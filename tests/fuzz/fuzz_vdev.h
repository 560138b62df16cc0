/* Fuzz helpers: what a virtio device may do to RAM and its registers, checked; a virtio-mmio bring-up. */
#ifndef VEIL_FUZZ_VDEV_H
#define VEIL_FUZZ_VDEV_H

#include <stdint.h>
#include <string.h>

#include "fuzz_vq.h"
#include "mmio.h"
#include "virtio.h"

/* Marks bytes the device may write; true if some already were (two writers: order unknown). */
static inline bool drv_allow(struct vq_drv *d, uint64_t gpa, uint64_t len)
{
	bool again = false;

	for (uint64_t i = gpa; i < gpa + len && i < MEM; i++) {
		again |= d->allowed[i / 8] >> (i % 8) & 1;
		d->allowed[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	return again;
}

static inline bool drv_allowed_any(const struct vq_drv *d, uint64_t gpa, uint64_t len)
{
	for (uint64_t i = gpa; i < gpa + len && i < MEM; i++)
		if (d->allowed[i / 8] >> (i % 8) & 1)
			return true;
	return false;
}

/*
 * After the device ran: with strict, every byte it changed must be one it
 * was allowed to write; always, the guard is untouched.  The shadow then
 * takes what the device wrote, and nothing is allowed any more.
 */
static inline void drv_sync(struct vq_drv *d, bool strict)
{
	for (uint64_t p = 0; p < MEM; p += 4096) {
		if (!memcmp(d->ram + p, d->shadow + p, 4096))
			continue;
		for (uint64_t i = p; i < p + 4096 && strict; i++)
			if (d->ram[i] != d->shadow[i] && !(d->allowed[i / 8] >> (i % 8) & 1)) {
				CHECK(!"the device wrote outside its writable buffers and used ring");
				fprintf(stderr, "stray write at GPA 0x%llx\n", (unsigned long long)i);
				break;
			}
		memcpy(d->shadow + p, d->ram + p, 4096);
	}
	for (uint64_t i = GUARD; i < GUARD + GUARD_LEN; i++)
		if (d->ram[i] != 0xa5) {
			CHECK(!"the device wrote to private memory");
			break;
		}
	memset(d->allowed, 0, MEM / 8);
}

/* What no register access may break in a virtio device; *gen: its last config generation. */
static inline void drv_check_vdev(const struct virtio_dev *vd, uint32_t *gen)
{
	CHECK(!(vd->status & VIRTIO_STATUS_DRIVER_OK) || (vd->status & VIRTIO_STATUS_FEATURES_OK));
	CHECK(!(vd->status & VIRTIO_STATUS_FEATURES_OK) ||
	      (!(vd->driver_features & ~vd->features) && (vd->driver_features >> VIRTIO_F_VERSION_1 & 1)));
	CHECK(!(vd->isr & ~3u));
	CHECK(vd->config_generation >= *gen);
	*gen = vd->config_generation;
	for (unsigned int q = 0; q < vd->nr_queues; q++)
		if (vd->vq[q].ready)
			CHECK(drv_layout_ok(vd->vq[q].size, vd->vq[q].desc_gpa, vd->vq[q].avail_gpa,
					    vd->vq[q].used_gpa));
}

/* Whether the three rings are disjoint, so a device's ring writes never change what it reads. */
static inline bool drv_rings_apart(const struct vq_drv *d)
{
	uint64_t de = d->desc + 16ULL * d->size, ae = d->avail + 6 + 2ULL * d->size;
	uint64_t ue = d->used + 6 + 8ULL * d->size;

	return (d->desc >= ae || d->avail >= de) && (d->desc >= ue || d->used >= de) &&
	       (d->avail >= ue || d->used >= ae);
}

/*
 * The driver's bring-up over virtio-mmio (virtio 1.2 §3.1.1) of queue 0 with
 * this layout, which takes effect in d; true if the queue is ready.  A
 * layout vq_configure refuses, or a size above QueueNumMax, must mean
 * NEEDS_RESET at once.
 */
static inline bool drv_mmio_up(struct vq_drv *d, struct virtio_mmio *m, uint64_t feat,
			       uint16_t size, uint64_t dt, uint64_t a, uint64_t u)
{
	const uint32_t ad = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	/* A size above QueueNumMax is refused too, however good the rings. */
	bool ok = drv_layout_ok(size, dt, a, u) && size <= mmio_rd(m, 0x034);

	feat |= 1ULL << VIRTIO_F_VERSION_1;
	mmio_wr(m, 0x070, ad);
	for (uint32_t sel = 0; sel < 2; sel++) {
		mmio_wr(m, 0x024, sel);
		mmio_wr(m, 0x020, (uint32_t)(feat >> (32 * sel)));
	}
	mmio_wr(m, 0x070, ad | VIRTIO_STATUS_FEATURES_OK);
	CHECK(mmio_rd(m, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	mmio_wr(m, 0x030, 0);
	mmio_wr(m, 0x038, size);
	for (unsigned int k = 0; k < 3; k++) {
		uint64_t gpa = k == 0 ? dt : k == 1 ? a : u;

		mmio_wr(m, 0x080 + 0x10 * k, (uint32_t)gpa);
		mmio_wr(m, 0x084 + 0x10 * k, (uint32_t)(gpa >> 32));
	}
	mmio_wr(m, 0x044, 1);
	CHECK_EQ(mmio_rd(m, 0x044), ok);
	CHECK_EQ(!!(mmio_rd(m, 0x070) & VIRTIO_STATUS_NEEDS_RESET), !ok);
	mmio_wr(m, 0x070, ad | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	d->size = size, d->desc = dt, d->avail = a, d->used = u, d->avail_idx = 0;
	d->indirect = feat >> VIRTIO_RING_F_INDIRECT_DESC & 1;
	d->event_idx = feat >> VIRTIO_RING_F_EVENT_IDX & 1;
	return ok;
}

#endif
