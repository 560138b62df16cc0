/* Internal to gmem/: the region and gmem structures its files share. */
#ifndef VEIL_GMEM_INTERNAL_H
#define VEIL_GMEM_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "gmem.h"

#define GMEM_PIN_SHARDS 16

/*
 * Per-page state, one 64-bit word so that a pin is a single compare-and-swap:
 * [63:32] generation, bumped when a conversion or punch of the page completes;
 * [31] converting; [30] private (the attribute map); [29:0] pins.
 */
#define PS_PINS_MASK 0x3fffffffULL
#define PS_PRIVATE (1ULL << 30)
#define PS_CONVERTING (1ULL << 31)
#define PS_GEN_ONE (1ULL << 32)

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;          /* the VMM's mapping of the shared side */
	int fd;                /* guest_memfd (the only fd, or the private side) */
	int shared_fd;         /* out-of-place model: the memfd behind hva; else -1 */
	uint32_t slot;
	bool bound;
	uint64_t *page_state;  /* see PS_* */
	/* Bitmap of pages whose mapping is (or, after a failed mprotect, may be) PROT_NONE. */
	uint64_t *revoked;     /* NULL unless cfg.revoke_host_mapping; under revoke_lock */
};

struct gmem_shard {
	pthread_mutex_t lock;
	struct gmem_pin *head;
};

struct gmem_longterm {
	uint64_t gpa;
	uint64_t len;
	const struct gmem_longterm_ops *ops;
	void *opaque;
	bool released;
	struct gmem_longterm *next;
};

struct gmem {
	struct gmem_config cfg;
	struct gmem_layout layout;
	unsigned int nr;
	struct gmem_region regions[GMEM_MAX_REGIONS];
	/* Converters wait here for pins to drain; pinners for conversions to finish. */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	struct gmem_shard shards[GMEM_PIN_SHARDS];
	pthread_mutex_t longterm_lock;
	struct gmem_longterm *longterm;
	gmem_attrs2_fn attrs2;       /* the §2b ioctl, or a fault-injection seam */
	void *attrs2_opaque;
	/* Revocation: the bitmaps, the extent count and the mprotects themselves. */
	pthread_mutex_t revoke_lock;
	uint64_t revoked_extents;
	bool budget_warned;
	gmem_mprotect_fn mprotect;   /* mprotect(2), or a fault-injection seam */
	void *mprotect_opaque;
	struct gmem_stats stats;
};

struct gmem_region *gmem_region_find(struct gmem *gm, uint64_t gpa, uint64_t len);
struct gmem_region *gmem_region_find_pages(struct gmem *gm, uint64_t gpa, uint64_t len);
bool gmem_range_has_private(struct gmem *gm, struct gmem_region *r, uint64_t gpa, uint64_t len);
void gmem_attr_update(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n, bool private);
void gmem_stat_add(uint64_t *counter, uint64_t n);

/* revoke.c: the host mapping of private pages, within the VMA budget. */
int gmem_revoke_init(struct gmem *gm, struct gmem_region *r) __must_check;
/* Revokes pages that became private, where the budget allows; never fails. */
void gmem_revoke_private(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n);
/* Restores access to pages becoming shared; on failure nothing else changed. */
int gmem_revoke_shared(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		       struct gmem_conv_result *res) __must_check;

/* pin.c: marking a range as converting and waiting for its pins to drain. */
int gmem_range_begin(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
		     struct gmem_conv_result *res) __must_check;
/* As gmem_range_begin, with its own bound (0: do not wait at all). */
int gmem_range_begin_within(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n,
			    uint64_t timeout_ns, struct gmem_conv_result *res) __must_check;
void gmem_range_end(struct gmem *gm, struct gmem_region *r, uint64_t first, uint64_t n, bool bump);
/* Names whoever pins a page of [gpa, gpa+len): a pin of ours, in res->culprit. */
bool gmem_pins_culprit(struct gmem *gm, uint64_t gpa, uint64_t len, char *buf, size_t size);

#endif
