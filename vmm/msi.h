/*
 * MSI delivery through irqfd and KVM's GSI routing: each message source (a
 * virtio-pci vector) gets a GSI above the irqchip's and an eventfd bound to
 * it with KVM_IRQFD; a message is an eventfd write, so the kernel injects
 * it without another ioctl.  When a source's address or data change, veil
 * rewrites the routing table: the irqchip's default routes (which
 * KVM_SET_GSI_ROUTING would otherwise drop) plus every MSI route.
 */
#ifndef VEIL_MSI_H
#define VEIL_MSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define VM_MSI_MAX 64
#define VM_MSI_GSI_BASE 24 /* after the IOAPIC's pins */

struct vm;

struct vm_msi {
	pthread_mutex_t lock;
	bool ready;
	unsigned int nr;
	struct {
		uint32_t gsi;
		int efd;
		uint64_t addr;
		uint32_t data;
		bool routed;
	} src[VM_MSI_MAX];
	uint64_t sent, reroutes;
};

int vm_msi_init(struct vm *vm) __must_check;
void vm_msi_destroy(struct vm *vm);
/* A new message source; its handle, or -errno (-ENOSPC past VM_MSI_MAX). */
int vm_msi_source(struct vm *vm) __must_check;
/* Sends the message (addr, data) from source h, rerouting first if it changed. */
int vm_msi_send(struct vm *vm, int h, uint64_t addr, uint32_t data) __must_check;

#endif
