/* MSI through irqfd and GSI routes, the routes moved lazily and with a backoff. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arch.h"
#include "kvm.h"
#include "log.h"
#include "msi.h"

/* ---- KVM's side ---- */

/* The whole table: the irqchip's defaults, then the given MSI routes. */
static int kvm_set_routes(void *ctx, const struct vm_msi_route *routes, unsigned int nr)
{
	const int *vm_fd = ctx;
	unsigned int defaults = arch_irq_default_routes(NULL, 0);
	size_t max = defaults + VM_MSI_MAX;
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
	unsigned int i, n;
	int ret;

	if (!r)
		return -ENOMEM;
	n = arch_irq_default_routes(r->entries, defaults);
	for (i = 0; i < nr && i < VM_MSI_MAX; i++, n++) {
		r->entries[n].gsi = routes[i].gsi;
		r->entries[n].type = KVM_IRQ_ROUTING_MSI;
		r->entries[n].u.msi.address_lo = (uint32_t)routes[i].addr;
		r->entries[n].u.msi.address_hi = (uint32_t)(routes[i].addr >> 32);
		r->entries[n].u.msi.data = routes[i].data;
	}
	r->nr = n;
	ret = _kvm_ioctl(*vm_fd, KVM_SET_GSI_ROUTING, r);
	free(r);
	return ret < 0 ? ret : 0;
}

static int kvm_bind(void *ctx, int efd, uint32_t gsi)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)efd, .gsi = gsi };

	return _kvm_ioctl(*(const int *)ctx, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int kvm_signal(void *ctx, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data,
	};

	/*
	 * 0, or -EPERM on x86: no APIC took it (the guest aimed it nowhere), which
	 * an irqfd route would drop as silently.
	 */
	if (__kvm_ioctl(*(const int *)ctx, KVM_SIGNAL_MSI, &msi) < 0 && errno != EPERM)
		return -errno;
	return 0;
}

static const struct vm_msi_ops kvm_msi_ops = {
	.set_routes = kvm_set_routes, .bind = kvm_bind, .signal = kvm_signal,
};

int vm_msi_init(struct vm_msi *m, const int *vm_fd)
{
	return vm_msi_init_ops(m, &kvm_msi_ops, (void *)vm_fd);
}

void vm_msi_destroy(struct vm_msi *m)
{
	vm_msi_destroy_ops(m);
}

/* ---- sources ---- */

int vm_msi_init_ops(struct vm_msi *m, const struct vm_msi_ops *ops, void *ctx)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->ops = ops;
	m->ctx = ctx;
	m->gsi_base = arch_irq_msi_gsi_base();
	ret = -pthread_mutex_init(&m->lock, NULL);
	if (ret)
		return ret;
	ret = -pthread_mutex_init(&m->route_lock, NULL);
	if (ret) {
		pthread_mutex_destroy(&m->lock);
		return ret;
	}
	m->ready = true;
	return 0;
}

void vm_msi_destroy_ops(struct vm_msi *m)
{
	unsigned int i;

	if (!m->ready)
		return;
	for (i = 0; i < m->nr; i++)
		if (m->src[i].efd >= 0)
			close(m->src[i].efd);
	pthread_mutex_destroy(&m->route_lock);
	pthread_mutex_destroy(&m->lock);
	m->ready = false;
}

int vm_msi_source(struct vm_msi *m)
{
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
	memset(&m->src[h], 0, sizeof(m->src[h]));
	m->src[h].gsi = m->gsi_base + (uint32_t)h;
	m->src[h].efd = efd;
	pthread_mutex_unlock(&m->lock);
	return h;
}

/* Steady messages a source needs before its next route: 1, 2, 4 ... 4096. */
static uint32_t settle_after(uint32_t moves)
{
	return 1u << (moves < VM_MSI_BACKOFF_MAX ? moves : VM_MSI_BACKOFF_MAX);
}

/* A message off the route, with m->lock held: counts it toward settling. */
static void note_unrouted(struct vm_msi *m, int h, uint64_t addr, uint32_t data)
{
	typeof(m->src[0]) *s = &m->src[h];

	if (!s->want || s->want_addr != addr || s->want_data != data) {
		/* A route that served its worth through the irqfd earns a quick move. */
		if (s->served >= settle_after(VM_MSI_BACKOFF_MAX))
			s->moves = 1;
		s->served = 0;
		s->want = true;
		s->want_addr = addr;
		s->want_data = data;
		s->steady = 0;
	}
	if (s->steady < UINT32_MAX)
		s->steady++;
	if (s->steady >= settle_after(s->moves))
		__atomic_store_n(&m->dirty, true, __ATOMIC_RELEASE);
}

int vm_msi_send(struct vm_msi *m, int h, uint64_t addr, uint32_t data)
{
	uint64_t one = 1;
	bool fast;
	int ret;

	if (h < 0 || (unsigned int)h >= m->nr)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	fast = m->src[h].routed && m->src[h].bound && m->src[h].addr == addr &&
	       m->src[h].data == data;
	if (fast) {
		m->src[h].want = false; /* back on its route: nothing to move */
		if (m->src[h].served < UINT32_MAX)
			m->src[h].served++;
		m->stats.sent++;
	} else {
		note_unrouted(m, h, addr, data);
		m->stats.direct++;
	}
	pthread_mutex_unlock(&m->lock);
	if (fast)
		ret = write(m->src[h].efd, &one, sizeof(one)) < 0 ? -errno : 0;
	else
		ret = m->ops->signal(m->ctx, addr, data);
	if (ret) {
		pthread_mutex_lock(&m->lock);
		m->stats.errors++;
		pthread_mutex_unlock(&m->lock);
	}
	return ret;
}

/*
 * With m->lock held: the table to install (every routed source, and every
 * settled one with its new message, marked moving and off its old route so
 * no message goes through an irqfd while KVM's entry changes); how many.
 */
static unsigned int plan_routes(struct vm_msi *m, struct vm_msi_route *r, unsigned int *moving)
{
	unsigned int i, n = 0;

	*moving = 0;
	for (i = 0; i < m->nr; i++) {
		typeof(m->src[0]) *s = &m->src[i];

		if (s->want && s->steady >= settle_after(s->moves)) {
			s->moving = true;
			s->routed = false;
			++*moving;
			r[n++] = (struct vm_msi_route){ s->gsi, s->want_addr, s->want_data };
		} else if (s->routed) {
			r[n++] = (struct vm_msi_route){ s->gsi, s->addr, s->data };
		}
	}
	return n;
}

/* With m->lock held: the update's outcome for the sources it moved. */
static void commit_routes(struct vm_msi *m, const struct vm_msi_route *r, unsigned int n,
			  const bool *bound, int ret)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		typeof(m->src[0]) *s = &m->src[r[i].gsi - m->gsi_base];

		if (!s->moving)
			continue;
		s->moving = false;
		s->moves++; /* a failed update backs off too, or it would be retried per message */
		if (ret)
			continue;
		s->bound |= bound[i];
		s->routed = true;
		s->addr = r[i].addr;
		s->data = r[i].data;
		if (s->want && s->want_addr == s->addr && s->want_data == s->data)
			s->want = false; /* else the guest moved it again meanwhile */
	}
}

int vm_msi_settle(struct vm_msi *m)
{
	struct vm_msi_route r[VM_MSI_MAX];
	bool bound[VM_MSI_MAX] = { false };
	unsigned int i, n, moving;
	int ret, err;

	if (!__atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&m->route_lock);
	pthread_mutex_lock(&m->lock);
	__atomic_store_n(&m->dirty, false, __ATOMIC_RELAXED);
	n = plan_routes(m, r, &moving);
	pthread_mutex_unlock(&m->lock);
	if (!moving) { /* the sources went back to their routes meanwhile */
		pthread_mutex_unlock(&m->route_lock);
		return 0;
	}
	ret = m->ops->set_routes(m->ctx, r, n);
	for (i = 0; !ret && i < n; i++) {
		typeof(m->src[0]) *s = &m->src[r[i].gsi - m->gsi_base];

		/* bound and efd change only here, under route_lock. */
		if (s->bound)
			continue;
		err = m->ops->bind(m->ctx, s->efd, s->gsi);
		bound[i] = err == 0;
		if (err)
			pr_warn("MSI GSI %u: KVM_IRQFD: %s; its messages go directly", s->gsi,
				strerror(-err));
	}
	pthread_mutex_lock(&m->lock);
	commit_routes(m, r, n, bound, ret);
	m->stats.reroutes++;
	if (ret)
		m->stats.errors++;
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&m->route_lock);
	return ret;
}

struct vm_msi_stats vm_msi_stats(struct vm_msi *m)
{
	struct vm_msi_stats st;

	pthread_mutex_lock(&m->lock);
	st = m->stats;
	pthread_mutex_unlock(&m->lock);
	return st;
}
