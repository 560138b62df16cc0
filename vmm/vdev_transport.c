/* The virtio transports of the registry: virtio-mmio slots and virtio-pci functions, kicks, interrupts. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvm.h"
#include "log.h"
#include "vdev.h"
#include "vm.h"

static void vdev_irqfd_raise(struct vdev *v)
{
	uint64_t one = 1;

	if (write(v->irq_efd, &one, sizeof(one)) < 0)
		pr_warn("%s: interrupt line %u (irqfd): %s", v->name, v->slot.irq, strerror(errno));
}

/*
 * The guest's interrupt line for a device: level, on the in-kernel irqchip (the arch numbers
 * it).  Through an irqfd with resample, raising is a write that KVM holds until the guest's
 * EOI; lowering is KVM's own at that EOI, and vdev_resample() raises it again if the device
 * still asks.  Otherwise KVM_IRQ_LINE, from whichever thread the device runs on.
 */
static void vdev_set_irq(void *opaque, bool level)
{
	struct vdev *v = opaque;
	int ret;

	if (v->irqfd) {
		if (level)
			vdev_irqfd_raise(v);
		return;
	}
	ret = arch_vm_irq_line(v->vm->arch, v->slot.irq, level);
	if (ret)
		pr_warn("%s: interrupt line %u: %s", v->name, v->slot.irq, strerror(-ret));
}

/* On the I/O thread: the guest EOId the line and KVM lowered it; up again while the ISR is set. */
static void vdev_resample(void *opaque)
{
	struct vdev *v = opaque;
	bool pending;

	pthread_mutex_lock(&v->vd->lock);
	pending = v->vd->isr != 0;
	pthread_mutex_unlock(&v->vd->lock);
	if (pending)
		vdev_irqfd_raise(v);
}

static int vdev_irqfd_ioctl(struct vdev *v, bool assign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)v->irq_efd, .gsi = v->irq_gsi, .resamplefd = (uint32_t)v->resample_efd,
		.flags = assign ? KVM_IRQFD_FLAG_RESAMPLE : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return _kvm_ioctl(v->vm->vm_fd, KVM_IRQFD, &f);
}

/*
 * A virtio-mmio line as an irqfd with a resample eventfd, where the arch wants it (arm64's
 * SPIs): the I/O thread and the vCPUs raise it with a write, not an ioctl.  A KVM that
 * refuses keeps the line on KVM_IRQ_LINE.
 */
static int vdev_irqfd_setup(struct vdev *v, char *err, size_t errlen)
{
	int ret;

	if (!arch_irq_line_irqfd(v->slot.irq, &v->irq_gsi))
		return 0;
	v->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	v->resample_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->irq_efd < 0 || v->resample_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	ret = vdev_irqfd_ioctl(v, true);
	if (ret) {
		pr_info("%s: KVM_IRQFD with resample on GSI %u: %s; the line stays KVM_IRQ_LINE",
			v->name, v->irq_gsi, strerror(-ret));
		return 0;
	}
	v->irqfd = true;
	ret = iothread_watch(&v->vm->virtio->io, v->resample_efd, vdev_resample, v);
	v->resample_watched = !ret;
	if (ret)
		snprintf(err, errlen, "watching its interrupt's resample eventfd: %s", strerror(-ret));
	return ret;
}

static void vdev_irqfd_teardown(struct vdev *v)
{
	if (v->resample_watched && iothread_unwatch(&v->vm->virtio->io, v->resample_efd) == 0)
		v->resample_watched = false;
	if (v->irqfd && vdev_irqfd_ioctl(v, false) == 0)
		v->irqfd = false;
	if (v->irq_efd >= 0)
		close(v->irq_efd);
	if (v->resample_efd >= 0)
		close(v->resample_efd);
	v->irq_efd = v->resample_efd = -1;
}

/* Queue q's kick eventfd. */
static int queue_efd(const struct vdev *v, unsigned int q)
{
	return q && q < v->nr_queue_efds ? v->queue_efd[q] : v->kick_efd;
}

void vdev_kick_queue(void *opaque, unsigned int q)
{
	struct vdev *v = opaque;
	uint64_t one = 1;

	if (write(queue_efd(v, q), &one, sizeof(one)) < 0)
		pr_warn("%s: kick: %s", v->name, strerror(errno));
}

void vdev_kick(void *opaque)
{
	vdev_kick_queue(opaque, 0);
}

static void vdev_run(struct vdev *v);

static void vdev_retry_fired(struct io_cb *cb, int res)
{
	struct vdev *v = (struct vdev *)((char *)cb - offsetof(struct vdev, retry_cb));

	(void)res; /* -ETIME: the timeout expired, as meant */
	v->retry_armed = false;
	vdev_run(v);
}

/*
 * A device that met a buffer or a ring under conversion asked to be run
 * again, which a 1 ms timeout on the ring does, so the I/O thread keeps
 * completing the requests that conversion may be waiting for.
 */
static void vdev_retry(struct vdev *v)
{
	struct io_uring_sqe *sqe;

	if (!virtio_dev_take_retry(v->vd) || v->retry_armed)
		return;
	sqe = iothread_sqe(&v->vm->virtio->io);
	if (!sqe) {
		pr_warn("%s: no room on the ring to retry; the next kick will", v->name);
		return;
	}
	v->retry_ts = (struct __kernel_timespec){ .tv_sec = 0, .tv_nsec = 1000000 };
	v->retry_cb.fn = vdev_retry_fired;
	io_uring_prep_timeout(sqe, &v->retry_ts, 0, 0);
	io_uring_sqe_set_data(sqe, &v->retry_cb);
	v->retry_armed = true;
	v->retries++;
}

void vdev_after_io(struct vdev *v)
{
	/* A completion the used ring could not take yet (under conversion) is retried. */
	vdev_retry(v);
	vdev_settle_msi(v->vm);
}

static void vdev_run(struct vdev *v)
{
	v->ops->process(v);
	vdev_settle_msi(v->vm);
	vdev_retry(v);
}

static void vdev_kicked(void *opaque)
{
	vdev_run(opaque);
}

/* A kick of one queue of a device with process_queue. */
static void vdev_queue_kicked(void *opaque)
{
	struct vdev_queue_kick *k = opaque;
	struct vdev *v = k->v;

	v->ops->process_queue(v, k->q);
	vdev_settle_msi(v->vm);
	vdev_retry(v);
}

/*
 * An MSI from a virtio-pci device, with the device's lock held: an eventfd
 * write on the vector's irqfd, routed to the LAPICs by KVM's GSI table
 * (msi.c), or a direct message while the vector's route is missing or stale.
 */
static void vdev_signal_msi(void *opaque, unsigned int vector, uint64_t addr, uint32_t data)
{
	struct vdev *v = opaque;
	int ret;

	if (vector >= VPCI_VECTORS)
		return;
	if (v->msi[vector] < 0)
		v->msi[vector] = vm_msi_source(&v->vm->msi);
	ret = v->msi[vector] < 0 ? v->msi[vector] :
	      vm_msi_send(&v->vm->msi, v->msi[vector], addr, data);
	if (ret)
		pr_warn("%s: MSI vector %u: %s", v->name, vector, strerror(-ret));
}

void vdev_settle_msi(struct vm *vm)
{
	int ret = vm_msi_settle(&vm->msi);

	if (ret)
		pr_warn("MSI: KVM_SET_GSI_ROUTING: %s; messages go directly", strerror(-ret));
}

static uint32_t pci_class(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK: return 0x010000;   /* mass storage */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* communication, other */
	default: return 0xff0000;                /* unassigned class */
	}
}

/* Queue q's ioeventfd (the q-th one the attach made). */
static int ioeventfd(struct vdev *v, unsigned int q, bool assign)
{
	struct kvm_ioeventfd ev = {
		.addr = v->ioeventfd_addr[q], .len = v->ioeventfd_len, .fd = queue_efd(v, q),
		.flags = (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN) |
			 (v->ioeventfd_match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
		.datamatch = q,
	};

	return _kvm_ioctl(v->vm->vm_fd, KVM_IOEVENTFD, &ev);
}

/*
 * Kicks straight to the queues' kick eventfds: an ioeventfd on each queue's
 * notify register (virtio-pci: one per queue, 16 bits wide, as Linux writes
 * a queue's index; virtio-mmio: the one QueueNotify, any value, or one per
 * queue index written when each queue has its own eventfd).  Without them
 * the kick still arrives, through a vCPU exit and the bus, so a refusal is
 * not an error; only a step a test made fail is.
 */
static int vdev_ioeventfds(struct vdev *v, char *err, size_t errlen)
{
	unsigned int q, n = v->pci || v->nr_queue_efds ? v->vd->nr_queues : 1;
	uint64_t base = v->pci ? pci_bar_addr(&v->vp.pci, 0) + VPCI_NOTIFY :
			v->slot.base + VIRTIO_MMIO_QUEUE_NOTIFY;
	int ret = 0;

	v->ioeventfd_len = v->pci ? 2 : 4;
	v->ioeventfd_match = !v->pci && v->nr_queue_efds;
	for (q = 0; q < n && !ret; q++) {
		v->ioeventfd_addr[q] = v->pci ? base + q * VPCI_NOTIFY_MULT : base;
		ret = ioeventfd(v, q, true);
		v->nr_ioeventfds += !ret;
	}
	v->ioeventfd = !ret;
	if (ret)
		pr_info("%s: no ioeventfd (%s); kicks go through the bus", v->name, strerror(-ret));
	return vdev_step(v, err, errlen);
}

/* virtio-pci: a function on the root bus; INTA# for drivers without MSI-X. */
static int vdev_attach_pci(struct vdev *v, char *err, size_t errlen)
{
	struct vm_virtio *vv = v->vm->virtio;
	unsigned int slot = 0, q;
	int ret;

	v->pci = true;
	for (q = 0; q < VPCI_VECTORS; q++)
		v->msi[q] = -1;
	virtio_pci_init(&v->vp, v->vd, pci_class(v->vd->device_id));
	v->vp.signal_msi = vdev_signal_msi;
	v->vp.msi_opaque = v;
	ret = vdev_step(v, err, errlen);
	if (!ret)
		ret = pci_host_add(vv->pci, &v->vp.pci, &slot);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "adding the PCI function: %s", strerror(-ret));
		return ret;
	}
	v->on_pci = true;
	v->pci_slot = slot;
	v->slot.irq = arch_board_pci_intx_gsi(v->vm->board, slot);
	v->vp.pci.cfg[PCI_INTERRUPT_LINE] = (uint8_t)v->slot.irq;
	v->vp.set_intx = vdev_set_irq;
	v->vp.intx_opaque = v;
	return 0;
}

/* virtio-mmio: the next slot, claimed on the bus, and its interrupt line. */
static int vdev_attach_mmio(struct vdev *v, char *err, size_t errlen)
{
	struct vm_virtio *vv = v->vm->virtio;
	int ret;

	ret = arch_mmio_slot(vv->nr_mmio, &v->slot);
	if (ret) {
		snprintf(err, errlen, "no virtio-mmio slot left on this architecture");
		return ret;
	}
	v->vd->set_irq = vdev_set_irq;
	v->vd->irq_opaque = v;
	virtio_mmio_init(&v->mmio, v->vd);
	ret = vdev_irqfd_setup(v, err, errlen);
	if (!ret)
		ret = vdev_step(v, err, errlen);
	if (!ret)
		ret = bus_register(v->vm->bus, BUS_MMIO, v->slot.base, v->slot.size,
				   &virtio_mmio_ops, &v->mmio, v->name);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "registering the device: %s", strerror(-ret));
		return ret;
	}
	v->on_bus = true;
	return 0;
}

/* A device with process_queue and several queues: an eventfd for each queue after queue 0. */
static int vdev_queue_efds(struct vdev *v, char *err, size_t errlen)
{
	unsigned int q;

	if (!v->ops->process_queue || v->vd->nr_queues < 2)
		return 0;
	for (q = 1; q < v->vd->nr_queues; q++) {
		v->queue_efd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->queue_efd[q] < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			return -errno;
		}
		v->nr_queue_efds = q + 1;
	}
	return 0;
}

/* The I/O thread's watches on the kick eventfds: one per queue with process_queue. */
static int vdev_watch(struct vdev *v, char *err, size_t errlen)
{
	struct iothread *io = &v->vm->virtio->io;
	unsigned int q;
	int ret;

	for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
		v->qkick[q] = (struct vdev_queue_kick){ .v = v, .q = q };
	ret = v->ops->process_queue ? iothread_watch(io, v->kick_efd, vdev_queue_kicked, &v->qkick[0]) :
	      iothread_watch(io, v->kick_efd, vdev_kicked, v);
	v->watched = !ret;
	for (q = 1; q < v->nr_queue_efds && !ret; q++) {
		ret = iothread_watch(io, v->queue_efd[q], vdev_queue_kicked, &v->qkick[q]);
		v->nr_queue_watches += !ret;
	}
	if (ret)
		snprintf(err, errlen, "watching its kicks: %s", strerror(-ret));
	return ret;
}

int vdev_transport_attach(struct vdev *v, char *err, size_t errlen)
{
	struct vm_virtio *vv = v->vm->virtio;
	int ret = vdev_step(v, err, errlen);

	if (ret)
		return ret;
	v->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->kick_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	ret = vdev_queue_efds(v, err, errlen);
	if (!ret)
		ret = vv->use_pci ? vdev_attach_pci(v, err, errlen) : vdev_attach_mmio(v, err, errlen);
	if (!ret)
		ret = vdev_step(v, err, errlen);
	if (!ret)
		ret = vdev_watch(v, err, errlen);
	if (ret)
		return ret;
	return vdev_ioeventfds(v, err, errlen);
}

void vdev_transport_detach(struct vdev *v)
{
	struct vm_virtio *vv = v->vm->virtio;

	while (v->nr_ioeventfds) {
		v->nr_ioeventfds--;
		if (ioeventfd(v, v->nr_ioeventfds, false))
			pr_warn("%s: removing an ioeventfd: %s", v->name, strerror(errno));
	}
	while (v->nr_queue_watches &&
	       iothread_unwatch(&vv->io, v->queue_efd[v->nr_queue_watches]) == 0)
		v->nr_queue_watches--;
	if (v->watched && iothread_unwatch(&vv->io, v->kick_efd) == 0)
		v->watched = false;
	if (v->on_bus && bus_unregister(v->vm->bus, BUS_MMIO, v->slot.base) == 0)
		v->on_bus = false;
	vdev_irqfd_teardown(v);
	if (v->on_pci && pci_host_remove(vv->pci, &v->vp.pci) == 0)
		v->on_pci = false;
	if (v->kick_efd >= 0)
		close(v->kick_efd);
	v->kick_efd = -1;
	while (v->nr_queue_efds > 1)
		close(v->queue_efd[--v->nr_queue_efds]);
	v->nr_queue_efds = 0;
}

const char *vdev_transport_note(const struct vdev *v)
{
	if (!v->pci)
		return "";
	return v->vp.intx_raised ? "; on virtio-pci with INTx" : "; on virtio-pci with MSI-X";
}
