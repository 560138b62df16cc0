/*
 * kvm: the device registry's one attach path and one unwind.  Every device
 * type, on virtio-mmio and on virtio-pci, is attached with each fallible
 * step made to fail in turn (vm_devices_inject_failure): a failed attach
 * leaves no fd open (/proc/self/fd), nothing on the bus (a dispatch to the
 * slot it took is -ENOENT), no PCI function (config space reads all ones,
 * the BAR decodes nothing), and no ioeventfd (the device attached next at
 * the same address gets its own); ASan finds no leak at exit.  Then the
 * balloon's target: -ENODEV without a balloon, -EINVAL off a page or above
 * RAM, num_pages in its config space, the counters and the summary.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pci.h"
#include "test.h"
#include "vdev.h"
#include "vm.h"

#define MiB (1ULL << 20)

static char disk_path[] = "/tmp/veil-devreg-XXXXXX";

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

static const void *kind_cfg(enum vdev_kind k, struct vm_disk_cfg *disk, struct vm_vcon_cfg *vcon)
{
	*disk = (struct vm_disk_cfg){ .path = disk_path, .fd = -1, .queues = 3 };
	*vcon = (struct vm_vcon_cfg){ .out_fd = STDOUT_FILENO };
	return k == VDEV_BLK ? (const void *)disk : k == VDEV_VCON ? (const void *)vcon : NULL;
}

/* Nothing answers where the failed device would have been. */
static void check_nothing_at(struct vm *vm, bool pci, unsigned int nth, uint64_t bar)
{
	uint32_t v = 0;

	if (!pci) {
		struct arch_mmio_dev slot;

		CHECK_EQ(arch_mmio_slot(vm->virtio->nr_mmio, &slot), 0);
		CHECK_EQ(bus_dispatch(vm->bus, BUS_MMIO, slot.base, &v, 4, false), -ENOENT);
		CHECK(bus_device_name(vm->bus, BUS_MMIO, slot.base) == NULL);
		return;
	}
	CHECK_EQ(pci_cfg_read(vm->virtio->pci, nth + 1, 0, 4), 0xffffffffu);
	CHECK_EQ(bus_dispatch(vm->bus, BUS_MMIO, bar, &v, 4, false), -ENOENT);
}

/*
 * A disk with three queues: an eventfd per queue, a kick of queue q lands on
 * queue q's, and KVM holds an ioeventfd per queue (the same one again is
 * EEXIST): on virtio-pci at each queue's notify address, on virtio-mmio on
 * QueueNotify matching the queue's index.
 */
static void check_queues(struct vm *vm, struct vdev *v, bool pci)
{
	uint64_t n = 0;

	CHECK_EQ(v->vd->nr_queues, 3);
	CHECK_EQ(v->nr_queue_efds, 3);
	CHECK_EQ(v->nr_ioeventfds, 3);
	CHECK_EQ(v->ioeventfd_match, !pci);
	vdev_kick_queue(v, 2);
	CHECK(read(v->queue_efd[1], &n, 8) < 0);
	CHECK(read(v->kick_efd, &n, 8) < 0);
	CHECK_EQ(read(v->queue_efd[2], &n, 8), 8);
	CHECK_EQ(n, 1);
	for (unsigned int q = 0; q < 3; q++) {
		struct kvm_ioeventfd ev = {
			.addr = v->ioeventfd_addr[q], .len = v->ioeventfd_len,
			.fd = q ? v->queue_efd[q] : v->kick_efd, .datamatch = q,
			.flags = pci ? 0 : KVM_IOEVENTFD_FLAG_DATAMATCH,
		};

		CHECK_EQ(v->ioeventfd_addr[q], pci ? pci_bar_addr(&v->vp.pci, 0) + VPCI_NOTIFY + 4 * q :
			 v->slot.base + VIRTIO_MMIO_QUEUE_NOTIFY);
		CHECK_EQ(ioctl(vm->vm_fd, KVM_IOEVENTFD, &ev), -1);
		CHECK_EQ(errno, EEXIST);
	}
}

/* Attaches kind with each step failing in turn; returns the steps there were. */
static unsigned int attach_failing(struct vm *vm, enum vdev_kind k, bool pci, unsigned int nth)
{
	struct pci_host *h = vm->virtio->pci;
	uint64_t bar = pci ? h->win_base + nth * VPCI_BAR_SIZE : 0;
	struct vm_disk_cfg disk;
	struct vm_vcon_cfg vcon;
	unsigned int step;
	char err[160];
	int fds, ret;

	for (step = 1; step < 32; step++) {
		fds = count_fds();
		CHECK_EQ(vm_devices_inject_failure(vm, step), 0);
		ret = vm_device_attach(vm, k, kind_cfg(k, &disk, &vcon), err, sizeof(err));
		if (!ret)
			break;
		CHECK_EQ(ret, -EIO);
		CHECK_STR_CONTAINS(err, "injected");
		CHECK_EQ(count_fds(), fds);
		CHECK_EQ(vm->virtio->nr, nth);
		check_nothing_at(vm, pci, nth, bar);
	}
	CHECK_EQ(vm->virtio->nr, nth + 1);
	if (vm->virtio->nr == nth + 1) {
		struct vdev *v = vm->virtio->dev[nth];

		/* It took the place the failed attempts gave back, and its own ioeventfds. */
		CHECK(v->ioeventfd);
		CHECK_EQ(v->pci, pci);
		if (k == VDEV_BLK)
			check_queues(vm, v, pci);
		if (pci) {
			CHECK_EQ(pci_bar_addr(&v->vp.pci, 0), bar);
			CHECK_EQ(pci_cfg_read(h, nth + 1, 0, 4) & 0xffff, 0x1af4);
		} else {
			struct arch_mmio_dev slot;

			CHECK_EQ(arch_mmio_slot(nth, &slot), 0);
			CHECK_EQ(v->slot.base, slot.base);
			CHECK_EQ(bus_dispatch(vm->bus, BUS_MMIO, slot.base, &(uint32_t){ 0 }, 4, false), 0);
		}
	}
	return step - 1;
}

static void count_cb(void *opaque, const char *dev, const char *name, uint64_t v)
{
	char *buf = opaque;
	size_t n = strlen(buf);

	snprintf(buf + n, 4096 - n, "%s.%s=%llu\n", dev, name, (unsigned long long)v);
}

static void check_balloon(struct vm *vm, bool pci)
{
	char buf[4096] = "", *sum = NULL;
	size_t sum_len = 0;
	FILE *f;
	struct vdev *b = vdev_next(vm, VDEV_BALLOON, NULL);

	CHECK_EQ(vm_balloon_set_target(vm, 4097), -EINVAL);
	CHECK_EQ(vm_balloon_set_target(vm, vm->cfg.mem_size + 4096), -EINVAL);
	CHECK_EQ(vm_balloon_set_target(vm, vm->cfg.mem_size), 0);
	CHECK_EQ(vm_balloon_set_target(vm, 3 * MiB), 0);
	if (b && !pci) {
		uint32_t pages = 0;

		CHECK_EQ(bus_dispatch(vm->bus, BUS_MMIO, b->slot.base + 0x100, &pages, 4, false), 0);
		CHECK_EQ(pages, 3 * MiB / 4096);
	}
	CHECK(vm_devices_counters(vm, count_cb, buf) > 20);
	CHECK_STR_CONTAINS(buf, "virtio-balloon.target_pages=768\n");
	CHECK_STR_CONTAINS(buf, "virtio-balloon.inflated_pages=0\n");
	CHECK_STR_CONTAINS(buf, "virtio-blk0.reads=0\n");
	CHECK_STR_CONTAINS(buf, "virtio-rng.requests=0\n");
	CHECK_STR_CONTAINS(buf, "virtio-console.tx_bytes=0\n");
	f = open_memstream(&sum, &sum_len);
	vm_devices_summary(vm, f);
	fclose(f);
	{
		const char *s = sum ? sum : "";

		CHECK_STR_CONTAINS(s, "veil: virtio-blk0: 0 reads");
		CHECK_STR_CONTAINS(s, "target 768 pages, the guest holds 0");
		CHECK_STR_CONTAINS(s, "veil: virtio-rng: 0 requests");
		CHECK_STR_CONTAINS(s, "veil: virtio-console: 0 bytes");
	}
	free(sum);
}

static void run(bool pci)
{
	struct vm_config cfg = { .nr_cpus = 1, .mem_size = 16 * MiB, .console_fd = STDOUT_FILENO };
	static const enum vdev_kind kinds[] = { VDEV_BLK, VDEV_BALLOON, VDEV_RNG, VDEV_VCON };
	unsigned int i, steps;
	struct vm_disk_cfg disk;
	struct vm_vcon_cfg vcon;
	struct vm *vm;
	char err[160];

	if (vm_create(&cfg, &vm))
		SKIP("no VM");
	if (vm_virtio_transport(vm, pci)) {
		vm_destroy(vm);
		SKIP("no PCI host on this board");
	}
	CHECK_EQ(vm_balloon_set_target(vm, 0), -ENODEV);
	for (i = 0; i < 4; i++) {
		steps = attach_failing(vm, kinds[i], pci, i);
		fprintf(stderr, "%s %s: %u steps failed in turn\n", pci ? "pci" : "mmio",
			vm->virtio->dev[vm->virtio->nr - 1]->name, steps);
		CHECK(steps >= (kinds[i] == VDEV_BLK ? 7u : 5u));
	}
	/* One of a kind: refused before anything is taken. */
	CHECK_EQ(vm_device_attach(vm, VDEV_BALLOON, kind_cfg(VDEV_BALLOON, &disk, &vcon), err,
				  sizeof(err)), -EEXIST);
	CHECK_EQ(vm_devices_count(vm, VDEV_BLK), 1);
	check_balloon(vm, pci);
	/* A VM reset resets every device; the balloon's target stays. */
	vm_devices_reset(vm);
	{
		char buf[4096] = "";

		CHECK(vm_devices_counters(vm, count_cb, buf) > 20);
		CHECK_STR_CONTAINS(buf, "virtio-balloon.target_pages=768\n");
	}
	vm_destroy(vm);
}

int main(void)
{
	int kvm_fd, fd, fds;
	unsigned int max;

	if (kvm_open(&kvm_fd, &max))
		SKIP("no usable /dev/kvm");
	close(kvm_fd);
	fd = mkstemp(disk_path);
	if (fd < 0 || ftruncate(fd, MiB))
		SKIP("no temporary disk image");
	close(fd);
	fds = count_fds();
	run(false);
	run(true);
	CHECK_EQ(count_fds(), fds); /* and ASan's leak check at exit */
	unlink(disk_path);
	return test_done("devreg");
}
