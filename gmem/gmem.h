/* gmem: guest memory backed by guest_memfd — layout, memslots, accessors, attributes. */
#ifndef VEIL_GMEM_H
#define VEIL_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

#define GMEM_PAGE_SIZE 4096ULL
#define GMEM_MIN_SIZE (2ULL << 20)
#define GMEM_MAX_REGIONS 4

/*
 * The VMA budget of revocation (DESIGN.md §2c): at most this many revoked
 * extents (maximal runs of PROT_NONE pages) per gmem, so a gmem's mappings
 * are at most 2 * GMEM_REVOKE_MAX_EXTENTS + GMEM_MAX_REGIONS VMAs whatever
 * the guest does: 8196, about an eighth of the default vm.max_map_count (65530),
 * which leaves room for a second VM and for the process's own mappings.
 * A private conversion past the budget is kept by veil's map alone (its
 * accesses are still refused, -EACCES) and counted in revoke_skipped.
 */
#define GMEM_REVOKE_MAX_EXTENTS 4096U

/* Where RAM may go in an architecture's guest physical address space. */
struct gmem_arch_map {
	uint64_t ram_base;   /* first GPA of RAM */
	uint64_t hole_start; /* MMIO hole [hole_start, hole_end) that RAM skips */
	uint64_t hole_end;
};

struct gmem_range {
	uint64_t gpa;
	uint64_t size;
};

struct gmem_layout {
	unsigned int nr;
	struct gmem_range r[GMEM_MAX_REGIONS];
};

/* Splits mem_size bytes of RAM around the hole. -EINVAL for a bad size. */
int gmem_layout_compute(const struct gmem_arch_map *map, uint64_t mem_size,
			struct gmem_layout *out) __must_check;

struct gmem;

/* How private and shared memory are realised (DESIGN.md §2). */
enum gmem_model {
	GMEM_MODEL_HOST,        /* §2c: default VMs; veil keeps the map and enforces it */
	GMEM_MODEL_OUT_OF_PLACE, /* §2a: VM attributes; private guest_memfd + shared memfd */
	GMEM_MODEL_IN_PLACE,    /* §2b: per-guest_memfd attributes, contents kept */
};

struct gmem_config {
	int vm_fd;               /* -1: detached, memfd-backed, no memslots (tests, tools) */
	enum gmem_model model;
	bool revoke_host_mapping; /* §2c: mprotect private ranges; only where that is safe */
	bool destructive;         /* §2c: a conversion also punches, so the range reads zeros */
	uint64_t drain_timeout_ns; /* bound on waiting for pins or a conversion; 0: 2 s */
	unsigned int max_retries;  /* bound on kernel EAGAIN retries; 0: 16 */
	unsigned int max_revoked_extents; /* VMA budget; 0: GMEM_REVOKE_MAX_EXTENTS */
};

struct gmem_stats {
	uint64_t refused_private; /* host accesses refused because the page is private (I3) */
	uint64_t out_of_range;    /* accesses refused because they left RAM */
	uint64_t punches;
	uint64_t conversions;
	uint64_t conversion_errors;
	uint64_t retries;         /* kernel EAGAIN and pin-drain retries */
	uint64_t eagain;          /* EAGAIN from the kernel (§2b) */
	uint64_t spec_retries;    /* pins that raced a conversion and were retried */
	uint64_t pin_waits;       /* pins that waited for a conversion to finish */
	uint64_t drain_waits;     /* conversions that waited for pins to drain */
	uint64_t longterm_releases; /* long-term pins released for a conversion */
	uint64_t revoke_skipped;  /* private ranges left mapped (map-only): VMA budget or mprotect failed */
	uint64_t revoked_extents; /* now: runs of revoked (PROT_NONE) pages, <= the budget */
	uint64_t protect_calls;   /* mprotect() calls revoking or restoring veil's mapping */
	uint64_t protect_ns;      /* their time in all (CLOCK_MONOTONIC) */
};

/* A pin: the caller's storage, valid from gmem_pin() to gmem_unpin(). */
struct gmem_pin {
	void *hva;
	uint64_t gpa;
	uint64_t len;
	const char *owner; /* who holds it, for a stuck conversion's culprit */
	uint64_t req;
	uint64_t since_ns;
	/* gmem's */
	struct gmem *gm;
	void *region;
	struct gmem_pin *next, **pprev;
	unsigned int shard;
};

/* The outcome of a conversion or punch, for the requester and the stats. */
struct gmem_conv_result {
	uint64_t retries;
	uint64_t eagain;
	uint64_t wait_ns;
	char culprit[160]; /* set on failure: who still holds the range */
};

/*
 * A long-term pin (an io_uring registered buffer): the kernel sees it, veil
 * cannot drain it.  A conversion that needs its pages releases it, and
 * restores it when the pages are shared again.  A release that fails fails
 * the conversion or punch with -EBUSY, nothing changed, the pin named in the
 * culprit: going ahead would let a write through it land in an orphaned page.
 */
struct gmem_longterm_ops {
	int (*release)(void *opaque);
	int (*restore)(void *opaque);
	const char *name;
};

/*
 * guest_memfd flags the VM accepts (KVM_CAP_GUEST_MEMFD_FLAGS on the VM fd);
 * 0 if the kernel has guest_memfd but no flags, -EOPNOTSUPP without guest_memfd.
 */
int gmem_probe_flags(int vm_fd, uint64_t *flags) __must_check;
/* 1 if vm_fd's guest_memfds convert in place (DESIGN.md §2b), 0 if not, -errno if refused. */
int gmem_probe_inplace(int vm_fd, uint64_t gmem_flags) __must_check;

/*
 * Creates one guest_memfd per layout range, mmaps it shared and binds it as a
 * memslot of vm_fd.  vm_fd < 0 makes a detached gmem backed by memfds with no
 * memslots: host-only memory for tools and tests that need no KVM.
 */
int gmem_create(int vm_fd, const struct gmem_layout *layout, uint64_t gmem_flags,
		struct gmem **out) __must_check;
/* As gmem_create, for a conversion model: the backing follows cfg->model. */
int gmem_create_cfg(const struct gmem_config *cfg, const struct gmem_layout *layout,
		    struct gmem **out) __must_check;
void gmem_destroy(struct gmem *gm);

/*
 * Pins [gpa, gpa+len) for a device or the VMM: the range is shared and stays
 * so, and unpunched, until gmem_unpin().  Waits (bounded) while a conversion
 * of the range is under way.  -EFAULT outside RAM, -EACCES if private,
 * -ETIMEDOUT if a conversion would not finish, -EBUSY if a page already
 * holds 65535 pins (nothing taken).
 */
int gmem_pin(struct gmem *gm, uint64_t gpa, uint64_t len, const char *owner, uint64_t req,
	     struct gmem_pin *pin) __must_check;
/*
 * As gmem_pin, but never waits: -EAGAIN if a page is being converted or
 * punched.  For threads that must not block on a conversion, because the
 * conversion may be waiting for a pin only they can release (an I/O thread
 * that also completes requests).
 */
int gmem_pin_try(struct gmem *gm, uint64_t gpa, uint64_t len, const char *owner, uint64_t req,
		 struct gmem_pin *pin) __must_check;
void gmem_unpin(struct gmem_pin *pin);

/*
 * Converts [gpa, gpa+len) (page-aligned, one RAM range) to private or shared:
 * waits for pins to drain, performs the kernel operation with bounded
 * retries, then updates the attribute map and the generation.  All or
 * nothing: on error nothing changed, and res->culprit names what held it.
 */
int gmem_convert(struct gmem *gm, uint64_t gpa, uint64_t len, bool to_private,
		 struct gmem_conv_result *res) __must_check;
/*
 * Converts shared [gpa, gpa+len) to private and back to shared as one
 * operation: the range stays marked converting throughout, so pins that
 * arrive meanwhile wait (bounded) instead of finding it private.  For host
 * stress of the models that keep contents (in-place, non-destructive
 * host-enforced); -EOPNOTSUPP otherwise, -EBUSY if a page is private.  If
 * the way back fails, the range stays private and the map says so (I5).
 */
int gmem_roundtrip(struct gmem *gm, uint64_t gpa, uint64_t len, struct gmem_conv_result *res)
	__must_check;
/* Frees the pages' contents, synchronized with pins like a conversion (I1). */
int gmem_discard(struct gmem *gm, uint64_t gpa, uint64_t len, struct gmem_conv_result *res)
	__must_check;
/* As gmem_discard, but never waits: -EAGAIN if a page is pinned or being converted. */
int gmem_discard_try(struct gmem *gm, uint64_t gpa, uint64_t len, struct gmem_conv_result *res)
	__must_check;

/*
 * Allocates the guest_memfd backing of [gpa, gpa+len) (page-aligned, one
 * RAM range) ahead of use (fallocate(2) with KEEP_SIZE); contents are unchanged.
 */
int gmem_allocate(struct gmem *gm, uint64_t gpa, uint64_t len) __must_check;
int gmem_longterm_register(struct gmem *gm, uint64_t gpa, uint64_t len,
			   const struct gmem_longterm_ops *ops, void *opaque) __must_check;
void gmem_longterm_unregister(struct gmem *gm, void *opaque);

/* The §2b ioctl, replaceable for fault injection in tests (not a kernel test). */
typedef int (*gmem_attrs2_fn)(int fd, uint64_t offset, uint64_t size, uint64_t attrs,
			      uint64_t *error_offset, void *opaque);
void gmem_set_attrs2_fn(struct gmem *gm, gmem_attrs2_fn fn, void *opaque);
/* mprotect(2) of revocation, replaceable for fault injection in tests; returns 0 or -errno. */
typedef int (*gmem_mprotect_fn)(void *addr, size_t len, int prot, void *opaque);
void gmem_set_mprotect_fn(struct gmem *gm, gmem_mprotect_fn fn, void *opaque);
/*
 * With revocation: a conversion to shared leaves veil's mapping of the pages PROT_NONE, and
 * the first host access (a pin, gmem_translate) restores the whole run of shared revoked pages
 * around it in one mprotect.  For guests that share one granule per call (arm64 pKVM's ABI).
 */
void gmem_set_lazy_restore(struct gmem *gm, bool on);

enum gmem_model gmem_model(const struct gmem *gm);
const char *gmem_model_name(enum gmem_model m);
/*
 * Whether a conversion keeps the pages' contents under this gmem's model and
 * destructive flag: the one answer to that question.  True for in-place and
 * for non-destructive host-enforced; false for out-of-place and destructive.
 */
bool gmem_keeps_contents(const struct gmem *gm);
/*
 * Whether the kernel itself refuses to convert a page it holds an extra
 * reference to (in-place, §2b), so that a foreign pin shows as EAGAIN.
 */
bool gmem_kernel_sees_pins(const struct gmem *gm);
/* What a conversion does to contents under this gmem's model, in words. */
const char *gmem_content_semantics(const struct gmem *gm);

/* Bounds- and attribute-checked GPA->HVA, unpinned: for boot-time setup only. */
int gmem_translate(struct gmem *gm, uint64_t gpa, uint64_t len, void **hva) __must_check;
int gmem_read(struct gmem *gm, uint64_t gpa, void *buf, uint64_t len) __must_check;
int gmem_write(struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len) __must_check;

/* Frees the backing pages of [gpa, gpa+len); the next access reads zeros.  Synchronized. */
int gmem_punch_hole(struct gmem *gm, uint64_t gpa, uint64_t len) __must_check;

/*
 * Revokes (accessible=false) or restores the VMM's mapping of a range, for
 * probes only: nothing refuses later accesses, so the caller must not touch
 * the range until it restores it.  Conversions revoke through their backend.
 */
int gmem_host_access(struct gmem *gm, uint64_t gpa, uint64_t len, bool accessible) __must_check;

/* The attribute map: veil's record of which pages are private. */
int gmem_attr_set_private(struct gmem *gm, uint64_t gpa, uint64_t len, bool private) __must_check;
int gmem_attr_is_private(struct gmem *gm, uint64_t gpa, bool *private) __must_check;
/*
 * The page's generation: it moves whenever a conversion or punch of the page
 * completes, and never when one fails.  It is kept per 64-page chunk, so a
 * completed conversion of another page of the chunk moves it too (once per
 * conversion): a reader that saw it move may retry for nothing, never miss
 * a conversion.  -EFAULT outside RAM.
 */
int gmem_generation(struct gmem *gm, uint64_t gpa, uint64_t *gen) __must_check;
/*
 * Calls fn once per maximal run of pages with the same attribute, in GPA
 * order, over all of RAM (runs do not span the gaps between RAM ranges);
 * fn may be NULL.  Returns the number of runs.  Takes no lock: each page is
 * read once, so a conversion in flight may show as done for some pages and
 * not yet for others.
 */
typedef void (*gmem_extent_fn)(void *opaque, uint64_t gpa, uint64_t len, bool priv);
int gmem_attr_extents(struct gmem *gm, gmem_extent_fn fn, void *opaque);
/*
 * The references held now and what they cover: *pins counts gmem_pin()s not
 * yet unpinned plus long-term pins not released; *pinned_bytes is the size
 * of the pages they cover, each page once; *converting_bytes the size of the
 * pages a conversion or punch is working on.  A snapshot, page by page.
 */
void gmem_pin_summary(struct gmem *gm, uint64_t *pins, uint64_t *pinned_bytes,
		      uint64_t *converting_bytes);

uint64_t gmem_flags(const struct gmem *gm);
/*
 * The fds behind guest memory (each region's guest_memfd, and its shared memfd
 * in the out-of-place model), all made by gmem_create*(): the count, or
 * -ENOSPC if there are more than max.  For the seccomp filters.
 */
int gmem_fds(const struct gmem *gm, int *fds, unsigned int max) __must_check;
uint64_t gmem_total_size(const struct gmem *gm);
/* True if [gpa, gpa+len) lies inside one range of the layout. */
bool gmem_region_contains(const struct gmem_layout *l, uint64_t gpa, uint64_t len);
/* Bytes of backing the kernel holds for guest memory (st_blocks of every fd); -errno. */
int gmem_allocated_bytes(const struct gmem *gm, uint64_t *bytes) __must_check;
const struct gmem_layout *gmem_get_layout(const struct gmem *gm);
void gmem_get_stats(struct gmem *gm, struct gmem_stats *out);

#endif
