/* Unit-test helpers: a test driver's register accesses over virtio-mmio, and its guest memory. */
#ifndef VEIL_TEST_VIRTIO_DRV_H
#define VEIL_TEST_VIRTIO_DRV_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gmem.h"
#include "mmio.h"
#include "test.h"

static inline uint32_t mmio_rd(struct virtio_mmio *m, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	CHECK_EQ(virtio_mmio_ops.read(m, off, &v, 4), 0);
	return v;
}

static inline void mmio_wr(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	CHECK_EQ(virtio_mmio_ops.write(m, off, &v, 4), 0);
}

/*
 * rd(t, off), wr(t, off, v) and put(t, gpa, buf, len) for a test's state
 * type T, which has a struct virtio_mmio mmio and a struct gmem *gm.
 */
#define VIRTIO_TEST_DRIVER(T)                                                          \
	static __attribute__((unused)) uint32_t rd(T *t, uint64_t off)                 \
	{                                                                              \
		return mmio_rd(&t->mmio, off);                                         \
	}                                                                              \
	static __attribute__((unused)) void wr(T *t, uint64_t off, uint32_t v)         \
	{                                                                              \
		mmio_wr(&t->mmio, off, v);                                             \
	}                                                                              \
	static __attribute__((unused)) void put(T *t, uint64_t gpa, const void *p,     \
						uint64_t len)                          \
	{                                                                              \
		CHECK_EQ(gmem_write(t->gm, gpa, p, len), 0);                           \
	}

/* A detached (memfd) gmem of size bytes from GPA 0, host model, conversions bounded by drain_ms. */
static inline struct gmem *test_gmem(uint64_t size, uint64_t drain_ms)
{
	static const struct gmem_arch_map map = {
		.ram_base = 0, .hole_start = 0xc0000000ULL, .hole_end = 0x100000000ULL,
	};
	struct gmem_config cfg = {
		.vm_fd = -1, .model = GMEM_MODEL_HOST, .drain_timeout_ns = drain_ms * 1000000ULL,
	};
	struct gmem_layout l;
	struct gmem *gm = NULL;

	if (gmem_layout_compute(&map, size, &l) || gmem_create_cfg(&cfg, &l, &gm)) {
		fprintf(stderr, "cannot create a detached gmem\n");
		exit(1);
	}
	return gm;
}

#endif
