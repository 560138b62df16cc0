/*
 * bench: conversions per second through veil's gmem_convert() against a raw
 * loop of the same kernel operations in the same run, for 4 KiB and 2 MiB.
 * The ratio is the figure to report; absolute rates depend on the machine.
 *
 *   veil-bench-convert [default|sw-protected] [iterations]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "gmem.h"
#include "kvm_uapi.h"
#include "vm.h"

#define MEM (64ULL << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct raw {
	enum gmem_model model;
	int vm_fd;
	int gmem_fd;
	int shared_fd;
};

static int punch(int fd, uint64_t off, uint64_t len)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* What the model's backend asks of the kernel for one conversion, and nothing else. */
static int raw_convert(struct raw *r, uint64_t gpa, uint64_t len, bool to_private)
{
	struct kvm_memory_attributes a = { gpa, len, to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0, 0 };
	struct kvm_memory_attributes2 a2 = { .offset = gpa, .size = len,
					     .attributes = a.attributes };

	switch (r->model) {
	case GMEM_MODEL_HOST: /* destructive default VM: the punch */
		return punch(r->gmem_fd, gpa, len);
	case GMEM_MODEL_OUT_OF_PLACE:
		if (ioctl(r->vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &a))
			return -errno;
		return punch(to_private ? r->shared_fd : r->gmem_fd, gpa, len);
	default:
		return ioctl(r->gmem_fd, KVM_SET_MEMORY_ATTRIBUTES2, &a2) ? -errno : 0;
	}
}

static int raw_setup(struct raw *r, int kvm_fd, unsigned long type)
{
	struct kvm_create_guest_memfd g = { .size = MEM };
	struct kvm_userspace_memory_region2 slot = {
		.flags = KVM_MEM_GUEST_MEMFD, .memory_size = MEM,
	};
	void *hva;

	r->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, type);
	if (r->vm_fd < 0)
		return -errno;
	if (r->model != GMEM_MODEL_OUT_OF_PLACE)
		g.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	r->gmem_fd = ioctl(r->vm_fd, KVM_CREATE_GUEST_MEMFD, &g);
	r->shared_fd = memfd_create("bench", MFD_CLOEXEC);
	if (r->gmem_fd < 0 || r->shared_fd < 0 || ftruncate(r->shared_fd, MEM))
		return -errno;
	hva = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED,
		   r->model == GMEM_MODEL_OUT_OF_PLACE ? r->shared_fd : r->gmem_fd, 0);
	if (hva == MAP_FAILED)
		return -errno;
	slot.userspace_addr = (uint64_t)(uintptr_t)hva;
	slot.guest_memfd = (uint32_t)r->gmem_fd;
	return ioctl(r->vm_fd, KVM_SET_USER_MEMORY_REGION2, &slot) ? -errno : 0;
}

/* Round trips over distinct ranges; returns conversions per second, or -1. */
static double run(struct raw *r, struct gmem *gm, uint64_t size, unsigned int iters)
{
	uint64_t slots = MEM / size, i;
	struct gmem_conv_result res;
	double t0 = now_s();

	for (i = 0; i < iters; i++) {
		uint64_t gpa = (i % slots) * size;
		bool priv = (i / slots) % 2 == 0;
		int ret = gm ? gmem_convert(gm, gpa, size, priv, &res) : raw_convert(r, gpa, size, priv);

		if (ret) {
			fprintf(stderr, "conversion %llu failed: %s %s\n", (unsigned long long)i,
				strerror(ret < 0 ? -ret : errno), gm ? res.culprit : "");
			return -1;
		}
	}
	return iters / (now_s() - t0);
}

int main(int argc, char **argv)
{
	unsigned long type = argc > 1 && !strcmp(argv[1], "sw-protected") ? KVM_X86_SW_PROTECTED_VM : 0;
	unsigned int iters = argc > 2 ? (unsigned int)atoi(argv[2]) : 20000, max, i;
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct caps_vm_type t = { .type = type, .supported = true };
	static const uint64_t sizes[] = { 4096, 2ULL << 20 };
	struct gmem_config cfg = { .destructive = true };
	struct raw r = { 0 };
	struct gmem *gm;
	int kvm_fd;

	if (kvm_open(&kvm_fd, &max) || (cfg.vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, type)) < 0) {
		fprintf(stderr, "bench: no usable /dev/kvm for VM type %lu\n", type);
		return 77;
	}
	caps_probe_vm(cfg.vm_fd, &t);
	caps_choose_model(&t, 0);
	cfg.model = caps_gmem_model(t.model);
	r.model = cfg.model;
	if (t.model == CAPS_MODEL_NONE || raw_setup(&r, kvm_fd, type) || gmem_create_cfg(&cfg, &l, &gm)) {
		fprintf(stderr, "bench: cannot set up VM type %lu: %s\n", type, t.why);
		return 77;
	}
	printf("model %s%s, %u conversions per figure\n", gmem_model_name(cfg.model),
	       cfg.model == GMEM_MODEL_HOST ? " (destructive: each conversion punches)" : "", iters);
	for (i = 0; i < 2; i++) {
		double raw = run(&r, NULL, sizes[i], iters), veil = run(&r, gm, sizes[i], iters);

		if (raw < 0 || veil < 0)
			return 1;
		printf("%4llu KiB: raw kernel loop %10.0f/s, veil %10.0f/s, veil/raw %.2f\n",
		       (unsigned long long)(sizes[i] >> 10), raw, veil, veil / raw);
	}
	gmem_destroy(gm);
	return 0;
}
