/* The one builder: a struct veil_config becomes a VM, ready to start, or nothing at all. */
#ifndef VEIL_BUILD_H
#define VEIL_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "fw.h"
#include "log.h"
#include "veil.h"

struct vm;
struct veil_hooks;

/* The steps of a build, in order; build.fail_at names one to fail (tests). */
enum build_step {
	BUILD_CHECK = 1,   /* the configuration alone */
	BUILD_BOOT_SRC,    /* firmware image, or kernel and initrd contents */
	BUILD_KVM,         /* /dev/kvm: vCPU limit, VM type */
	BUILD_VM,          /* the VM, its memory, vCPUs and board */
	BUILD_DEVICES,     /* virtio devices */
	BUILD_BOOT,        /* the guest in memory, every vCPU at its entry */
	BUILD_NR_STEPS = BUILD_BOOT,
};

struct build {
	struct vm *vm;
	struct fw_image img;      /* firmware (boot.kernel unset) */
	bool firmware;
	struct fw_boot fb;
	bool booted;
	const struct veil_hooks *hooks; /* veil_internal.h: run between devices and guest; or NULL */
	uint8_t *kernel_buf;      /* read from boot.kernel (not the caller's kernel_data) */
	uint8_t *initrd_buf;
	char *cmdline_buf;        /* the confidential mode's command line, with its bounce pool */
	uint64_t swiotlb_bytes;   /* the bounce pool it asks for */
	/* Test hook: the step that fails with -EIO as if it had failed itself (0: none). */
	enum build_step fail_at;
};

/*
 * Builds b->vm from cfg; threads are not started.  On failure everything
 * made so far is undone (b is as zeroed) and err says why; config_fault is
 * set when the configuration, not the host, is at fault.  log is the
 * VM's log sink, which must outlive the VM.
 */
int build_vm(struct build *b, const struct veil_config *cfg, const struct log_sink *log,
	     struct veil_error *err) __must_check;
/* Destroys the VM and frees what the build holds. */
void build_release(struct build *b);

#endif
