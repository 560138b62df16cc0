/* gmem: guest memory backed by guest_memfd — layout, memslots, accessors, attributes. */
#ifndef VEIL_GMEM_H
#define VEIL_GMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define GMEM_PAGE_SIZE 4096ULL
#define GMEM_MIN_SIZE (2ULL << 20)
#define GMEM_MAX_REGIONS 4

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

struct gmem_stats {
	uint64_t refused_private; /* host accesses refused because the page is private (I3) */
	uint64_t out_of_range;    /* accesses refused because they left RAM */
	uint64_t punches;
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
void gmem_destroy(struct gmem *gm);

/* Bounds- and attribute-checked GPA->HVA.  -EFAULT outside RAM, -EACCES if private. */
int gmem_translate(struct gmem *gm, uint64_t gpa, uint64_t len, void **hva) __must_check;
int gmem_read(struct gmem *gm, uint64_t gpa, void *buf, uint64_t len) __must_check;
int gmem_write(struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len) __must_check;

/* Frees the backing pages of [gpa, gpa+len); the next access reads zeros. */
int gmem_punch_hole(struct gmem *gm, uint64_t gpa, uint64_t len) __must_check;

/* Revokes (accessible=false) or restores the VMM's mapping of a range. */
int gmem_host_access(struct gmem *gm, uint64_t gpa, uint64_t len, bool accessible) __must_check;

/* The attribute map: veil's record of which pages are private. */
int gmem_attr_set_private(struct gmem *gm, uint64_t gpa, uint64_t len, bool private) __must_check;
int gmem_attr_is_private(struct gmem *gm, uint64_t gpa, bool *private) __must_check;

uint64_t gmem_flags(const struct gmem *gm);
uint64_t gmem_total_size(const struct gmem *gm);
const struct gmem_layout *gmem_get_layout(const struct gmem *gm);
void gmem_get_stats(struct gmem *gm, struct gmem_stats *out);

#endif
