/* MSI through irqfd and GSI routes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch.h"
#include "kvm_uapi.h"
#include "log.h"
#include "msi.h"
#include "vm.h"

int vm_msi_init(struct vm *vm)
{
	struct vm_msi *m = &vm->msi;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = -pthread_mutex_init(&m->lock, NULL);
	m->ready = ret == 0;
	return ret;
}

void vm_msi_destroy(struct vm *vm)
{
	struct vm_msi *m = &vm->msi;
	unsigned int i;

	if (!m->ready)
		return;
	for (i = 0; i < m->nr; i++)
		if (m->src[i].efd >= 0)
			close(m->src[i].efd);
	pthread_mutex_destroy(&m->lock);
	m->ready = false;
}

int vm_msi_source(struct vm *vm)
{
	struct vm_msi *m = &vm->msi;
	int h, efd;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -errno;
	pthread_mutex_lock(&m->lock);
	if (m->nr == VM_MSI_MAX) {
		pthread_mutex_unlock(&m->lock);
		close(efd);
		return -ENOSPC;
	}
	h = (int)m->nr++;
	m->src[h].gsi = VM_MSI_GSI_BASE + (uint32_t)h;
	m->src[h].efd = efd;
	m->src[h].routed = false;
	pthread_mutex_unlock(&m->lock);
	return h;
}

/* The whole table, with m->lock held: the irqchip's defaults, then every routed source. */
static int set_routes(struct vm *vm)
{
	struct vm_msi *m = &vm->msi;
	size_t max = ARCH_IRQ_DEFAULT_ROUTES + VM_MSI_MAX;
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
	unsigned int i, n;
	int ret;

	if (!r)
		return -ENOMEM;
	n = arch_irq_default_routes(r->entries, ARCH_IRQ_DEFAULT_ROUTES);
	for (i = 0; i < m->nr; i++) {
		if (!m->src[i].routed)
			continue;
		r->entries[n].gsi = m->src[i].gsi;
		r->entries[n].type = KVM_IRQ_ROUTING_MSI;
		r->entries[n].u.msi.address_lo = (uint32_t)m->src[i].addr;
		r->entries[n].u.msi.address_hi = (uint32_t)(m->src[i].addr >> 32);
		r->entries[n].u.msi.data = m->src[i].data;
		n++;
	}
	r->nr = n;
	ret = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	free(r);
	return ret;
}

int vm_msi_send(struct vm *vm, int h, uint64_t addr, uint32_t data)
{
	struct vm_msi *m = &vm->msi;
	uint64_t one = 1;
	bool first;
	int ret = 0;

	if (h < 0 || (unsigned int)h >= m->nr)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (!m->src[h].routed || m->src[h].addr != addr || m->src[h].data != data) {
		first = !m->src[h].routed;
		m->src[h].addr = addr;
		m->src[h].data = data;
		m->src[h].routed = true;
		ret = set_routes(vm);
		if (!ret && first) {
			struct kvm_irqfd irqfd = { .fd = (uint32_t)m->src[h].efd, .gsi = m->src[h].gsi };

			ret = ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
		}
		if (ret)
			m->src[h].routed = false;
		m->reroutes++;
	}
	if (!ret)
		m->sent++;
	pthread_mutex_unlock(&m->lock);
	if (!ret && write(m->src[h].efd, &one, sizeof(one)) < 0)
		ret = -errno;
	return ret;
}
