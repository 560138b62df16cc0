/* Firmware payloads: built-in or from a file, placed in guest memory and entered on every vCPU. */
#ifndef VEIL_FW_H
#define VEIL_FW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "compiler.h"
#include "gmem.h"
#include "veil_boot.h"

struct vm;

struct fw_image {
	char name[64];
	const uint8_t *data;
	size_t size;
	bool selftest; /* veil checks the selftest's result pages after the VM stops */
	bool conversions; /* needs the conversions service (fwsvc.h) */
	void *owned;   /* file contents, when loaded from a file */
};

/* A built-in name, or a path.  -ENOENT: unknown name or missing file; -EINVAL: unusable file. */
int fw_image_open(const char *name_or_path, struct fw_image *img, char *err, size_t errlen)
	__must_check;
/* A flat image the caller holds (not copied: it must outlive img); -EINVAL if empty. */
int fw_image_from_data(const char *name, const void *data, size_t size, struct fw_image *img)
	__must_check;
void fw_image_close(struct fw_image *img);
/* Space-separated names of the built-in payloads. */
const char *fw_builtin_names(void);

/* Where the image, its scratch RAM and the per-vCPU stacks go in the first RAM range. */
struct fw_plan {
	uint64_t image_end;
	uint64_t scratch_base;
	uint64_t scratch_size;
	uint64_t stacks_base;
	uint64_t stacks_end;
};

/* -ENOSPC if the first RAM range cannot hold the image, nr_cpus stacks and result pages. */
int fw_plan_compute(const struct gmem_layout *layout, unsigned int nr_cpus, size_t image_size,
		    struct fw_plan *plan) __must_check;
/* The smallest --mem that fw_plan_compute() accepts, for error messages. */
uint64_t fw_plan_min_mem(unsigned int nr_cpus, size_t image_size);

struct fw_boot {
	struct fw_plan plan;
	struct arch_fw_boot arch;
	struct veil_boot_info info;
};

struct fw_boot_opts {
	uint64_t seed;
	/* Bytes right after the result pages kept free of probes, for the caller's use. */
	uint64_t reserve;
	/* Called before the boot info is written, to add the caller's fields. */
	void (*fill)(struct veil_boot_info *bi, const struct fw_plan *plan, void *opaque);
	void *opaque;
};

/* Loads the image, writes boot info and probes, sets every vCPU's entry state. */
int fw_boot(struct vm *vm, const struct fw_image *img, const struct fw_boot_opts *opts,
	    struct fw_boot *fb) __must_check;
/* The blobs and entry the confidential mode measures (after fw_boot). */
void fw_launch_state(const struct fw_boot *fb, const struct fw_image *img,
		     struct arch_boot_state *st);
/* After the VM stopped: checks every vCPU's result page through the host mapping. */
int fw_selftest_verify(struct vm *vm, const struct fw_boot *fb, char *why, size_t len)
	__must_check;

#endif
