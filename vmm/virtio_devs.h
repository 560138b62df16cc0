/*
 * A VM's virtio devices on virtio-mmio: disks (virtio-blk), the balloon,
 * and (as they land) rng and console, all served by one I/O thread.
 */
#ifndef VEIL_VIRTIO_DEVS_H
#define VEIL_VIRTIO_DEVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "arch.h"
#include "balloon.h"
#include "blk.h"
#include "rng.h"
#include "virtio/console.h" /* not vmm's console.h */
#include "compiler.h"
#include "iothread.h"
#include "mmio.h"
#include "outq.h"
#include "pci.h"
#include "vpci.h"

#define VM_MAX_DISKS 4

struct vm;

struct vm_disk_cfg {
	const char *path;
	bool read_only;
	bool direct; /* O_DIRECT */
	int fd;      /* opened by vm_disk_open(), or -1: vm_add_disk() opens path */
};

/* What every device has: its transport, slot, kick eventfd, and a process call. */
struct vm_vdev {
	struct vm *vm;
	char name[24];
	struct virtio_dev *vd;
	struct virtio_mmio mmio;
	struct arch_mmio_dev slot;  /* virtio-mmio; on virtio-pci only .irq: INTA#'s GSI */
	struct virtio_pci vp;       /* virtio-pci */
	bool pci;
	int msi[VPCI_VECTORS];      /* vm_msi sources, -1 until a vector is first used */
	int kick_efd;
	bool ioeventfd;
	void (*process)(struct vm_vdev *v); /* on the I/O thread, after a kick */
	/* A deferred retry (a buffer was under conversion): a 1 ms io_uring timeout. */
	struct io_cb retry_cb;
	struct __kernel_timespec retry_ts;
	bool retry_armed;
	uint64_t retries;
};

/* An I/O's completion, as the ring sees it. */
struct blk_cb {
	struct io_cb cb;
	struct blk_io *io;
};

struct vm_blk {
	struct vm_vdev v;
	struct virtio_blk blk;
	int fd;
	dev_t dev;       /* the image's, to find it attached twice */
	ino_t ino;
	bool locked;     /* fd holds the image's OFD lock (in this VM, one disk per image does) */
	bool lock_write;
	struct blk_cb cbs[BLK_MAX_INFLIGHT];
};

struct vm_balloon {
	struct vm_vdev v;
	struct virtio_balloon b;
	uint64_t alloc_drop;   /* guest_memfd bytes freed across report batches, by fstat */
	uint64_t memfree_rise; /* the host's MemFree gain across report batches */
	int meminfo_fd;        /* /proc/meminfo, opened up front: the I/O thread may not open */
};

struct vm_rng {
	struct vm_vdev v;
	struct virtio_rng r;
};

struct vm_vcon {
	struct vm_vdev v;
	struct virtio_console c;
	struct outq *out;   /* the VM's console queue (vm_console_queue()) */
};

struct vm_virtio {
	struct iothread io;
	bool io_ready;
	unsigned int nr_blk;
	struct vm_blk *blk[VM_MAX_DISKS];
	struct vm_balloon *balloon;
	struct vm_rng *rng;
	struct vm_vcon *vcon;
	struct arch_mmio_dev mmio_devs[ARCH_MAX_MMIO_DEVS];
	unsigned int nr_mmio;
	bool use_pci;          /* new devices go on PCI */
	struct pci_host *pci;  /* the board's host bridge, once PCI is used */
};

/*
 * Parses "PATH[,ro][,direct]".  -EINVAL with err set on a bad option.
 * cfg->path points into spec.
 */
int vm_disk_parse(char *spec, struct vm_disk_cfg *cfg, char *err, size_t errlen) __must_check;
/* Opens cfg->path into cfg->fd as vm_add_disk() would (before a jail); 0 or -errno. */
int vm_disk_open(struct vm_disk_cfg *cfg) __must_check;
/*
 * Opens the disk (or takes a copy of cfg->fd) and adds a virtio-blk device on the next virtio-mmio slot.
 * -errno with err set: a missing or unusable file, a size not a multiple
 * of 512, too many devices.
 */
int vm_add_disk(struct vm *vm, const struct vm_disk_cfg *cfg, char *err, size_t errlen)
	__must_check;
/* Adds a virtio-balloon whose free page reports punch guest_memfd (gmem_discard). */
int vm_add_balloon(struct vm *vm, char *err, size_t errlen) __must_check;
/* Adds a virtio-rng fed by getrandom(2). */
int vm_add_rng(struct vm *vm, char *err, size_t errlen) __must_check;
/* Adds a virtio-console (hvc0 in Linux) whose output goes to out_fd. */
int vm_add_vconsole(struct vm *vm, int out_fd, char *err, size_t errlen) __must_check;
/*
 * Console input for the virtio-console, if the VM has one: the bytes the
 * guest had receive buffers for (the caller keeps the rest and tries again).
 * Returns -1 without a virtio-console.
 */
long vm_vconsole_input(struct vm *vm, const uint8_t *buf, size_t len);
/* Puts the devices added after this call on virtio-pci (true) or virtio-mmio. */
int vm_virtio_transport(struct vm *vm, bool pci) __must_check;
/* True if a PCI root bridge must be declared. */
bool vm_virtio_has_pci(struct vm *vm);
/* The devices the firmware tables must declare. */
const struct arch_mmio_dev *vm_mmio_devs(struct vm *vm, unsigned int *nr);
/* vm_run()'s: start the I/O thread before the vCPUs, stop it after they joined. */
int vm_virtio_start(struct vm *vm) __must_check;
int vm_virtio_stop(struct vm *vm) __must_check; /* -ETIMEDOUT: the I/O thread is stuck */
/* Output has room again: a virtio-console that stopped transmitting for want of it goes on. */
void vm_vconsole_tx_ready(struct vm *vm);
void vm_virtio_destroy(struct vm *vm);
/* One line per device for the run summary. */
void vm_virtio_summary(struct vm *vm, FILE *f);

#endif
