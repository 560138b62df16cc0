/*
 * MSI delivery through irqfd and KVM's GSI routing: each message source (a
 * virtio-pci vector) gets a GSI above the irqchip's and an eventfd bound to
 * it with KVM_IRQFD; a message whose (address, data) KVM's table already
 * holds is an eventfd write, so the kernel injects it without an ioctl.
 *
 * A message the table does not hold yet (a vector's first, or one the guest
 * reprogrammed) is sent directly (KVM_SIGNAL_MSI) and marks the table dirty;
 * vm_msi_settle(), called by the I/O thread outside every device lock,
 * rewrites it once for all the sources that settled.  A source must send
 * 1, 2, 4 ... (at most 4096) messages in a row with the same (address, data)
 * before its route moves again, so a guest that reprograms a vector between
 * interrupts gets its messages delivered but cannot force a routing update
 * (KVM_SET_GSI_ROUTING, which waits for an SRCU grace period) per interrupt:
 * n messages cost at most about log2(n) + n / 4096 updates per source (a
 * route that carried 4096 messages through its irqfd moves again after 2).
 */
#ifndef VEIL_MSI_H
#define VEIL_MSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define VM_MSI_MAX 64
#define VM_MSI_BACKOFF_MAX 12 /* a route's move waits for at most 1 << 12 steady messages */

struct vm_msi_route {
	uint32_t gsi;
	uint64_t addr;
	uint32_t data;
};

/* The kernel's side, replaceable by tests: KVM's by default (vm_msi_init). */
struct vm_msi_ops {
	/* Installs exactly these MSI routes (plus the irqchip's defaults). */
	int (*set_routes)(void *ctx, const struct vm_msi_route *r, unsigned int n);
	/* Binds eventfd efd to gsi (KVM_IRQFD). */
	int (*bind)(void *ctx, int efd, uint32_t gsi);
	/* Sends one message without a route (KVM_SIGNAL_MSI). */
	int (*signal)(void *ctx, uint64_t addr, uint32_t data);
};

struct vm_msi_stats {
	uint64_t sent;     /* through irqfd */
	uint64_t direct;   /* sent directly while the source's route was missing or stale */
	uint64_t reroutes; /* routing table updates */
	uint64_t errors;   /* failed updates, binds or direct sends */
};

struct vm_msi {
	pthread_mutex_t lock;       /* the sources; never held across a routing update */
	pthread_mutex_t route_lock; /* one routing update at a time */
	bool ready;
	bool dirty;                 /* a source settled on a message its route does not hold */
	const struct vm_msi_ops *ops;
	void *ctx;
	uint32_t gsi_base;          /* the sources' GSIs follow the irqchip's (arch_irq_msi_gsi_base) */
	unsigned int nr;
	struct {
		uint32_t gsi;
		int efd;
		bool bound;         /* efd is KVM's irqfd for gsi */
		bool routed;        /* KVM's table holds (addr, data) for gsi */
		bool moving;        /* a routing update is installing (want_addr, want_data) */
		uint64_t addr;
		uint32_t data;
		bool want;          /* the last message differed from the route: */
		uint64_t want_addr; /* that message */
		uint32_t want_data;
		uint32_t steady;    /* messages in a row with it */
		uint32_t moves;     /* routes installed, for the backoff */
		uint32_t served;    /* messages through the irqfd since the last move began */
	} src[VM_MSI_MAX];
	struct vm_msi_stats stats;
};

/* KVM's ops on the VM fd at *vm_fd (opened later: read only once messages flow). */
int vm_msi_init(struct vm_msi *m, const int *vm_fd) __must_check;
void vm_msi_destroy(struct vm_msi *m);
int vm_msi_init_ops(struct vm_msi *m, const struct vm_msi_ops *ops, void *ctx) __must_check;
void vm_msi_destroy_ops(struct vm_msi *m);
/* A new message source; its handle, or -errno (-ENOSPC past VM_MSI_MAX). */
int vm_msi_source(struct vm_msi *m) __must_check;
/*
 * Sends the message (addr, data) from source h: through its irqfd if the
 * route holds it, else directly (and the table may become dirty).  Never
 * updates the routing table: safe under a device's lock.
 */
int vm_msi_send(struct vm_msi *m, int h, uint64_t addr, uint32_t data) __must_check;
/* If the table is dirty, one routing update for every settled source.  No device lock held. */
int vm_msi_settle(struct vm_msi *m) __must_check;
/* A snapshot of the counters. */
struct vm_msi_stats vm_msi_stats(struct vm_msi *m);

#endif
