/*
 * A VM's virtio devices, behind one registry: disks (virtio-blk), the
 * balloon, rng and console, on virtio-mmio or virtio-pci, all served by one
 * I/O thread.  Every device type is attached, destroyed, summarised and
 * counted the same way (vdev.h); an attach that fails at any step leaves
 * nothing registered and nothing open.
 */
#ifndef VEIL_DEVICES_H
#define VEIL_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arch.h"
#include "compiler.h"
#include "vm.h" /* the registry implements what vm.h asks of devices */

#define VM_MAX_DISKS 4

struct vm;

enum vdev_kind {
	VDEV_BLK,      /* cfg: struct vm_disk_cfg */
	VDEV_BALLOON,  /* cfg: NULL */
	VDEV_RNG,      /* cfg: NULL */
	VDEV_VCON,     /* cfg: struct vm_vcon_cfg */
	VDEV_NR_KINDS,
};

struct vm_disk_cfg {
	const char *path;
	bool read_only;
	bool direct; /* O_DIRECT */
	unsigned int queues; /* request queues; 0: one per vCPU, at most VIRTIO_MAX_QUEUES */
	int fd;      /* opened by vm_disk_open(), or -1: the attach opens path */
};

struct vm_vcon_cfg {
	int out_fd;  /* must be the VM's console fd (vm_console_queue()) */
};

/*
 * Parses "PATH[,ro][,direct][,queues=N]".  -EINVAL with err set on a bad option.
 * cfg->path points into spec.
 */
int vm_disk_parse(char *spec, struct vm_disk_cfg *cfg, char *err, size_t errlen) __must_check;
/* Opens cfg->path into cfg->fd as the attach would (before a jail); 0 or -errno. */
int vm_disk_open(struct vm_disk_cfg *cfg) __must_check;

/* Puts the devices attached after this call on virtio-pci (true) or virtio-mmio. */
int vm_virtio_transport(struct vm *vm, bool pci) __must_check;
/*
 * Attaches a device of kind with its configuration (see enum vdev_kind) on
 * the current transport.  0, or -errno with err set; on failure nothing of
 * it stays registered (bus, PCI, I/O thread, ioeventfd) or open.
 * -ENOSPC/-EEXIST: too many of that kind.
 */
int vm_device_attach(struct vm *vm, enum vdev_kind kind, const void *kind_cfg, char *err,
		     size_t errlen) __must_check;
/* One line per device (and the MSI and INTx lines) for the run summary. */
void vm_devices_summary(struct vm *vm, FILE *f);
/*
 * Calls fn once per device counter: device ("virtio-blk0"), counter name
 * ("reads"), value.  Returns the number of counters reported.
 */
int vm_devices_counters(struct vm *vm,
			void (*fn)(void *opaque, const char *dev, const char *name, uint64_t v),
			void *opaque);
/* The VM resets: every device is reset as if its driver wrote status 0. */
void vm_devices_reset(struct vm *vm);
/* Devices of kind attached. */
unsigned int vm_devices_count(struct vm *vm, enum vdev_kind kind);

/*
 * Asks the balloon to hold bytes of guest RAM (veil_vm_set_balloon, the
 * API's vm.resize): -ENODEV without a balloon, -EINVAL unless bytes is a
 * multiple of 4 KiB and at most the RAM size.  Any thread.
 */
int vm_balloon_set_target(struct vm *vm, uint64_t bytes) __must_check;

/* True if a PCI root bridge must be declared. */
bool vm_virtio_has_pci(struct vm *vm);
/* The devices the firmware tables must declare. */
const struct arch_mmio_dev *vm_mmio_devs(struct vm *vm, unsigned int *nr);

/* The guest pages of disk (x modulo the disks)'s last request; false before any disk I/O. */
bool vm_disk_last_buffer(struct vm *vm, uint64_t x, uint64_t *gpa, uint64_t *pages);

/* Tests: the next attach fails at its step-th fallible step (1: the first); 0: none. */
int vm_devices_inject_failure(struct vm *vm, unsigned int step) __must_check;

#endif
