/* The stress DMA device: real io_uring reads from a file into pinned guest pages, some registered. */
#ifndef VEIL_STRESS_DMA_H
#define VEIL_STRESS_DMA_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "gmem.h"
#include "lat.h"

struct stress_dma_stats {
	uint64_t ops;            /* reads completed and checked */
	uint64_t fixed_ops;      /* of those, through the registered buffer */
	uint64_t refused;        /* pins refused because the page was private (I3) */
	uint64_t pin_timeouts;   /* pins that waited out a conversion's bound */
	uint64_t io_errors;      /* reads the kernel failed (e.g. buffer unregistered under us) */
	uint64_t lost_writes;    /* completed reads whose data the guest's view does not show (I1) */
	uint64_t violations;     /* a pin granted on a page the map says is private */
};

struct stress_dma;

struct stress_dma_config {
	struct gmem *gm;
	uint64_t host_gpa;  /* pages only the host touches */
	uint32_t host_pages;
	uint64_t pool_gpa;  /* the guest's conversion pool: DMA there must be refused while private */
	uint32_t pool_pages;
	uint32_t win_pages; /* the first pages of the host area, registered as a fixed buffer */
	uint64_t seed;
	struct lat *lat;
};

int stress_dma_create(const struct stress_dma_config *cfg, struct stress_dma **out) __must_check;
void stress_dma_destroy(struct stress_dma *d);
/* Runs until *stop; call from its own thread. */
void stress_dma_run(struct stress_dma *d, const volatile bool *stop);
void stress_dma_get_stats(struct stress_dma *d, struct stress_dma_stats *out);

#endif
