/*
 * The device registry's inside: what every virtio device of a VM has (its
 * transport, kick eventfd, retry timer), and the one ops table each device
 * type fills (dev_*.c).  Only the registry (devices.c, vdev_transport.c)
 * and the device types include this; the builder uses devices.h.
 */
#ifndef VEIL_VDEV_H
#define VEIL_VDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arch.h"
#include "compiler.h"
#include "devices.h"
#include "iothread.h"
#include "mmio.h"
#include "vpci.h"

#define VM_MAX_VDEVS 16 /* all kinds together */

struct vdev;

typedef void (*vdev_counter_fn)(void *opaque, const char *dev, const char *name, uint64_t v);

/*
 * A device type.  The registry allocates size bytes (the type's struct,
 * whose first member is its struct vdev), names it, calls attach, and then
 * puts the device on the transport; any failure after attach calls destroy.
 */
struct vdev_ops {
	const char *name;   /* "virtio-blk": an index is appended when max > 1 */
	unsigned int max;   /* per VM */
	size_t size;
	/* Builds the device model from cfg: sets v->vd and its kick; releases what it took on failure. */
	int (*attach)(struct vdev *v, const void *cfg, char *err, size_t errlen);
	void (*process)(struct vdev *v);  /* on the I/O thread, after a kick or a retry */
	/*
	 * If set, each queue gets its own kick eventfd (and ioeventfd), and a
	 * kick of queue q calls this instead of process.  May be NULL.
	 */
	void (*process_queue)(struct vdev *v, unsigned int q);
	void (*reset)(struct vdev *v);    /* the VM resets: before the transport's reset; may be NULL */
	void (*destroy)(struct vdev *v);  /* undoes attach, once nothing can reach the device */
	void (*summary)(struct vdev *v, FILE *f);
	void (*counters)(struct vdev *v, vdev_counter_fn fn, void *opaque);
};

extern const struct vdev_ops vdev_blk_ops, vdev_balloon_ops, vdev_rng_ops, vdev_vcon_ops;

/* What every device has: its transport, slot, kick eventfd, and what attaching it did. */
struct vdev {
	struct vm *vm;
	const struct vdev_ops *ops;
	enum vdev_kind kind;
	unsigned int index;         /* among its kind */
	char name[24];
	struct virtio_dev *vd;
	struct virtio_mmio mmio;
	struct arch_mmio_dev slot;  /* virtio-mmio; on virtio-pci only .irq: INTA#'s GSI */
	struct virtio_pci vp;       /* virtio-pci */
	bool pci;
	unsigned int pci_slot;      /* its function is 00:<pci_slot>.0 */
	int msi[VPCI_VECTORS];      /* vm_msi sources, -1 until a vector is first used */
	int kick_efd;               /* queue 0's kicks, or every queue's without process_queue */
	int queue_efd[VIRTIO_MAX_QUEUES]; /* [q] for 1 <= q < nr_queue_efds: queue q's kicks */
	unsigned int nr_queue_efds;
	struct vdev_queue_kick {    /* what queue q's watch hands the I/O thread */
		struct vdev *v;
		unsigned int q;
	} qkick[VIRTIO_MAX_QUEUES];
	bool ioeventfd;             /* every queue's notify goes to its kick eventfd */
	/* virtio-mmio where the arch wants it: the line as an irqfd with a resample eventfd. */
	int irq_efd, resample_efd;  /* -1 without */
	uint32_t irq_gsi;
	bool irqfd, resample_watched;
	/* What the attach did, so that one unwind (vdev_detach) undoes exactly that. */
	bool model_ready, on_bus, on_pci, watched;
	uint64_t ioeventfd_addr[VIRTIO_MAX_QUEUES];
	unsigned int ioeventfd_len, nr_ioeventfds;
	bool ioeventfd_match;       /* virtio-mmio with a kick eventfd per queue: DATAMATCH on q */
	unsigned int nr_queue_watches; /* queue watches after queue 0's */
	/* A deferred retry (a buffer was under conversion): a 1 ms io_uring timeout. */
	struct io_cb retry_cb;
	struct __kernel_timespec retry_ts;
	bool retry_armed;
	uint64_t retries;
};

/* A VM's devices in the order they were attached, and their I/O thread. */
struct vm_virtio {
	struct iothread io;
	bool io_ready;
	struct vdev *dev[VM_MAX_VDEVS];
	unsigned int nr;
	struct arch_mmio_dev mmio_devs[ARCH_MAX_MMIO_DEVS];
	unsigned int nr_mmio;
	bool use_pci;          /* new devices go on PCI */
	struct pci_host *pci;  /* the board's host bridge, once PCI is used */
	bool destroying;       /* the VM goes: a device undoes nothing the VM's end undoes anyway */
	unsigned int fail_at;  /* tests: the attach step that fails (1: the first); 0: none */
};

/* The next device of kind after prev (NULL: the first), in attach order; NULL past the last. */
struct vdev *vdev_next(struct vm *vm, enum vdev_kind kind, struct vdev *prev);
/* A step of an attach that tests can make fail (devices_inject_failure): -EIO with err set. */
int vdev_step(struct vdev *v, char *err, size_t errlen) __must_check;

/* Transport (vdev_transport.c). */
/* A kick that came through the bus, or from the device itself: wake the I/O thread. */
void vdev_kick(void *opaque);
/* The same for queue q of a device with process_queue. */
void vdev_kick_queue(void *opaque, unsigned int q);
/* On the I/O thread, after a device completed I/O: route MSIs, arm a retry if it asked. */
void vdev_after_io(struct vdev *v);
/* Moves the MSI routes that settled, with no device lock held. */
void vdev_settle_msi(struct vm *vm);
/* Puts v on the VM's current transport, recording each step in v for vdev_transport_detach(). */
int vdev_transport_attach(struct vdev *v, char *err, size_t errlen) __must_check;
/* Undoes whatever of vdev_transport_attach happened, in reverse. */
void vdev_transport_detach(struct vdev *v);
/* "; on virtio-pci with MSI-X" and the like, for summaries. */
const char *vdev_transport_note(const struct vdev *v);

#endif
