/* The one builder: config -> VM (memory, vCPUs, devices, the guest loaded), with one unwind path. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "build.h"
#include "file.h"
#include "log.h"
#include "veil_internal.h"
#include "virtio_devs.h"
#include "vm.h"

#define BUILD_KERNEL_MAX (256ULL << 20)
#define BUILD_INITRD_MAX (2ULL << 30)
#define BUILD_CONVERSIONS_MIN_MEM (16ULL << 20)

__printf(3, 4) static int build_fail(struct veil_error *err, bool config_fault, const char *fmt, ...)
{
	va_list ap;

	err->config_fault = config_fault;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return config_fault ? -EINVAL : -EIO;
}

static const char *build_fw_name(const struct veil_config *cfg)
{
	if (cfg->boot.firmware)
		return cfg->boot.firmware;
	return cfg->boot.firmware_data ? "(firmware_data)" : "selftest";
}

static int build_check(const struct veil_config *cfg, struct veil_error *err)
{
	if (cfg->api_version != VEIL_API_VERSION)
		return build_fail(err, true, "api_version %u: this libveil speaks %u",
				  cfg->api_version, VEIL_API_VERSION);
	if (cfg->nr_cpus == 0)
		return build_fail(err, true, "cpus '0': a VM needs at least 1 vCPU");
	if (cfg->mem_size % GMEM_PAGE_SIZE || cfg->mem_size < GMEM_MIN_SIZE)
		return build_fail(err, true, "mem %llu bytes: not a multiple of 4K of at least 2M",
				  (unsigned long long)cfg->mem_size);
	if (cfg->vm_type != VEIL_VM_DEFAULT && cfg->vm_type != VEIL_VM_SW_PROTECTED)
		return build_fail(err, true, "vm-type %d: not default or sw-protected", cfg->vm_type);
	if (cfg->destructive && cfg->vm_type != VEIL_VM_DEFAULT)
		return build_fail(err, true, "destructive applies to default VMs only");
	if (cfg->nr_disks > VEIL_MAX_DISKS)
		return build_fail(err, true, "disk: at most %u disks", VEIL_MAX_DISKS);
	if ((cfg->boot.kernel || cfg->boot.kernel_data) && (cfg->boot.firmware || cfg->boot.firmware_data))
		return build_fail(err, true, "kernel and firmware '%s' exclude each other",
				  build_fw_name(cfg));
	if (!(cfg->boot.kernel || cfg->boot.kernel_data) &&
	    (cfg->boot.initrd || cfg->boot.initrd_data || cfg->boot.cmdline))
		return build_fail(err, true, "%s needs a kernel",
				  cfg->boot.cmdline ? "cmdline" : "initrd");
	if (cfg->confidential && strcmp(arch_name, "arm64"))
		return build_fail(err, true, "confidential: arm64 only; on %s no stock guest can "
				  "keep its RAM private (docs/confidential.md)", arch_name);
	if (cfg->launch_manifest && !cfg->confidential)
		return build_fail(err, true, "launch-manifest applies to the confidential mode only");
	if (cfg->boot.check_stride > 512)
		return build_fail(err, true, "check-stride '%u': not a number from 1 to 512",
				  cfg->boot.check_stride);
	if (cfg->kick_signal <= 0 || cfg->kick_signal >= NSIG || cfg->kick_signal == SIGKILL ||
	    cfg->kick_signal == SIGSTOP)
		return build_fail(err, true, "kick_signal %d: not a signal a handler can catch",
				  cfg->kick_signal);
	return 0;
}

/* Reads a file the caller named, unless it passed the contents. */
static int build_read(const char *what, const char *path, const void *data, size_t size,
		      uint64_t max, uint8_t **buf, const uint8_t **out, size_t *out_size,
		      struct veil_error *err)
{
	char why[200] = "";

	if (data) {
		*out = data;
		*out_size = size;
		return 0;
	}
	if (file_read_all(path, max, buf, out_size, why, sizeof(why)))
		return build_fail(err, true, "%s '%s': %s", what, path, why);
	*out = *buf;
	return 0;
}

static const char *build_kernel_name(const struct veil_config *cfg)
{
	return cfg->boot.kernel ? cfg->boot.kernel : "(kernel_data)";
}

/*
 * The confidential guest bounces all DMA through swiotlb, which Linux would shrink to 1 MiB per
 * GiB of RAM: the command line asks for 1/32 of RAM, at least 2 MiB and at most 64 MiB, in
 * 2 KiB slabs, unless it names a size itself.
 */
static uint64_t build_swiotlb_bytes(uint64_t mem)
{
	uint64_t b = mem / 32;

	return b < (2ULL << 20) ? 2ULL << 20 : b > (64ULL << 20) ? 64ULL << 20 : b;
}

static int build_bounce_pool(struct build *b, const struct veil_config *cfg,
			     struct arch_linux_boot *lb, struct veil_error *err)
{
	const char *c = lb->cmdline ? lb->cmdline : "";
	uint64_t bytes = build_swiotlb_bytes(cfg->mem_size);

	if (strstr(c, "swiotlb="))
		return 0;
	if (asprintf(&b->cmdline_buf, "%s%sswiotlb=%llu", c, c[0] ? " " : "",
		     (unsigned long long)(bytes / 2048)) < 0) {
		b->cmdline_buf = NULL;
		return build_fail(err, false, "out of memory");
	}
	b->swiotlb_bytes = bytes;
	lb->cmdline = b->cmdline_buf;
	return 0;
}

/* The firmware image, or the kernel's and initrd's contents, checked before any KVM work. */
static int build_boot_src(struct build *b, const struct veil_config *cfg,
			  struct arch_linux_boot *lb, struct veil_error *err)
{
	const char *fw = build_fw_name(cfg);
	char why[200] = "";
	struct gmem_layout layout;
	struct fw_plan plan;
	int ret;

	if (cfg->boot.kernel || cfg->boot.kernel_data) {
		ret = build_read("kernel", cfg->boot.kernel, cfg->boot.kernel_data,
				 cfg->boot.kernel_size, BUILD_KERNEL_MAX, &b->kernel_buf, &lb->kernel,
				 &lb->kernel_size, err);
		if (!ret && arch_linux_check(lb->kernel, lb->kernel_size, why, sizeof(why)))
			return build_fail(err, true, "kernel '%s': %s", build_kernel_name(cfg), why);
		if (!ret && (cfg->boot.initrd || cfg->boot.initrd_data))
			ret = build_read("initrd", cfg->boot.initrd, cfg->boot.initrd_data,
					 cfg->boot.initrd_size, BUILD_INITRD_MAX, &b->initrd_buf,
					 &lb->initrd, &lb->initrd_size, err);
		lb->cmdline = cfg->boot.cmdline;
		if (!ret && cfg->confidential)
			ret = build_bounce_pool(b, cfg, lb, err);
		return ret;
	}
	if (cfg->boot.firmware_data)
		ret = fw_image_from_data(fw, cfg->boot.firmware_data, cfg->boot.firmware_size, &b->img);
	else
		ret = fw_image_open(fw, &b->img, why, sizeof(why));
	if (ret)
		return build_fail(err, true, "firmware '%s': %s", fw, why[0] ? why : strerror(-ret));
	b->firmware = true;
	/* veil reads these firmware's pages after (selftest) or during (conversions) the run. */
	if (cfg->confidential && (b->img.selftest || b->img.conversions))
		return build_fail(err, true, "confidential: firmware '%s' has veil read its memory, "
				  "which this mode keeps private (use a kernel or --firmware refusal)", fw);
	if (b->img.conversions && cfg->mem_size < BUILD_CONVERSIONS_MIN_MEM)
		return build_fail(err, true, "mem %llu MiB is too small for firmware 'conversions': "
				  "needs at least 16 MiB", (unsigned long long)(cfg->mem_size >> 20));
	if (gmem_layout_compute(arch_mem_map(), cfg->mem_size, &layout) ||
	    fw_plan_compute(&layout, cfg->nr_cpus, b->img.size, &plan))
		return build_fail(err, true, "mem %llu MiB is too small for firmware '%s' (%zu bytes) "
				  "on %u vCPUs: needs at least %llu MiB",
				  (unsigned long long)(cfg->mem_size >> 20), fw, b->img.size,
				  cfg->nr_cpus,
				  (unsigned long long)(fw_plan_min_mem(cfg->nr_cpus, b->img.size) >> 20));
	return 0;
}

/* What this KVM allows: configuration questions, answered before the VM is made. */
static int build_kvm(const struct veil_config *cfg, unsigned long *vm_type,
		     struct veil_error *err)
{
	unsigned int max_vcpus;
	char why[200] = "";
	int kvm_fd, ret;

	ret = cfg->kvm_fd >= 0 ? kvm_dup(cfg->kvm_fd, &kvm_fd, &max_vcpus) :
				 kvm_open(&kvm_fd, &max_vcpus);
	if (ret)
		return build_fail(err, false, "cannot use /dev/kvm: %s", strerror(-ret));
	ret = arch_vm_type(kvm_fd, cfg->vm_type == VEIL_VM_SW_PROTECTED, cfg->mem_size, vm_type, why,
			   sizeof(why));
	close(kvm_fd);
	if (ret == -E2BIG)
		return build_fail(err, true, "mem '%llu MiB': %s",
				  (unsigned long long)(cfg->mem_size >> 20), why);
	if (ret)
		return build_fail(err, true, "vm-type sw-protected: %s", why);
	if (cfg->nr_cpus > max_vcpus)
		return build_fail(err, true, "cpus '%u': this KVM allows at most %u vCPUs",
				  cfg->nr_cpus, max_vcpus);
	return 0;
}

static int build_create_vm(struct build *b, const struct veil_config *cfg, unsigned long vm_type,
			   const struct log_sink *log, struct veil_error *err)
{
	struct vm_config vc = {
		.nr_cpus = cfg->nr_cpus, .mem_size = cfg->mem_size, .vm_type = vm_type,
		.console_fd = cfg->console_out_fd, .console_in_fd = cfg->console_in_fd,
		.destructive = cfg->destructive, .seccomp = cfg->seccomp,
		.kvm_fd = cfg->kvm_fd >= 0 ? cfg->kvm_fd : 0, .kick_signal = cfg->kick_signal,
		.log = log,
		/* Linux calibrates its clocks with the PIT; veil's firmware payloads use none. */
		.legacy_timer = cfg->boot.kernel || cfg->boot.kernel_data,
		.confidential = cfg->confidential,
	};
	int ret = vm_create(&vc, &b->vm);

	if (ret)
		return build_fail(err, false, "could not create the VM: %s", strerror(-ret));
	return 0;
}

/*
 * Every device the configuration asks for.  The one place devices are
 * attached: the device registry replaces the vm_add_* calls here.
 */
/* Every device of the configuration, through the registry's one attach path. */
static int build_devices(struct build *b, const struct veil_config *cfg, struct veil_error *err)
{
	struct vm_disk_cfg dc[VEIL_MAX_DISKS];
	struct vm_vcon_cfg vc = { .out_fd = cfg->console_out_fd };
	struct { enum vdev_kind kind; const void *cfg; const char *what; } att[VEIL_MAX_DISKS + 3];
	unsigned int i, n = 0;
	char why[200] = "";
	int ret;

	if (cfg->transport == VEIL_TRANSPORT_PCI && vm_virtio_transport(b->vm, true))
		return build_fail(err, true, "transport pci: this architecture has no PCI host yet");
	for (i = 0; i < cfg->nr_disks && i < VEIL_MAX_DISKS; i++) {
		const struct veil_disk *d = &cfg->disks[i];

		dc[i] = (struct vm_disk_cfg){ .path = d->path ? d->path : "(fd)",
					      .read_only = d->read_only, .direct = d->direct,
					      .queues = d->queues, .fd = d->fd };
		att[n++] = (__typeof__(att[0])){ VDEV_BLK, &dc[i], "disk" };
	}
	if (cfg->balloon)
		att[n++] = (__typeof__(att[0])){ VDEV_BALLOON, NULL, "balloon" };
	if (cfg->rng)
		att[n++] = (__typeof__(att[0])){ VDEV_RNG, NULL, "rng" };
	if (cfg->virtio_console)
		att[n++] = (__typeof__(att[0])){ VDEV_VCON, &vc, "console virtio" };
	for (i = 0; i < n; i++) {
		ret = vm_device_attach(b->vm, att[i].kind, att[i].cfg, why, sizeof(why));
		if (ret && att[i].kind == VDEV_BLK)
			return build_fail(err, ret != -ENOMEM, "disk '%s': %s",
					  ((const struct vm_disk_cfg *)att[i].cfg)->path, why);
		if (ret)
			return build_fail(err, false, "%s: %s", att[i].what, why);
	}
	return 0;
}

/* Puts the guest in memory and sets every vCPU's entry state. */
static int build_boot(struct build *b, const struct veil_config *cfg, struct arch_linux_boot *lb,
		      struct veil_error *err)
{
	struct arch_boot_state st;
	struct vm *vm = b->vm;
	char why[200] = "";
	unsigned int i;
	int ret;

	if (b->firmware) {
		struct fw_boot_opts opts = { .seed = cfg->boot.seed };

		/* Measured in the boot info: the confidential mode's digest must not vary by run. */
		if (!opts.seed && vm->coco.on)
			opts.seed = 1;
		if (!opts.seed && getrandom(&opts.seed, sizeof(opts.seed), 0) != sizeof(opts.seed))
			opts.seed = vm_now_ns() ^ ((uint64_t)getpid() * 0x9e3779b97f4a7c15ULL);
		if (b->img.conversions && !b->hooks)
			return build_fail(err, true, "firmware 'conversions' needs its host-side "
					  "service, which only veil run (the harness) attaches");
		ret = veil_hooks_run(b->hooks, vm, &opts);
		if (!ret)
			ret = fw_boot(vm, &b->img, &opts, &b->fb);
		if (ret)
			return build_fail(err, false, "loading firmware '%s': %s", b->img.name,
					  strerror(-ret));
		if (vm->coco.on) {
			fw_launch_state(&b->fb, &b->img, &st);
			ret = coco_launch(&vm->coco, vm->gmem, &st, vm->nr_vcpus, cfg->launch_manifest,
					  why, sizeof(why));
			if (ret)
				return build_fail(err, false, "confidential launch: %s", why);
		}
		b->booted = true;
		return 0;
	}
	ret = veil_hooks_run(b->hooks, vm, NULL);
	if (ret)
		return build_fail(err, false, "build hooks: %s", strerror(-ret));
	lb->mmio_devs = vm_mmio_devs(vm, &lb->nr_mmio_devs);
	lb->pci = vm_virtio_has_pci(vm);
	ret = arch_linux_load(vm->gmem, lb, vm->nr_vcpus, &st, why, sizeof(why));
	if (ret)
		return build_fail(err, ret != -ENOMEM && ret != -EFAULT, "kernel '%s': %s",
				  build_kernel_name(cfg), why);
	for (i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = arch_linux_vcpu_entry(vm->vcpus[i].fd, &st, i);
	if (ret)
		return build_fail(err, false, "setting up vCPU entry: %s", strerror(-ret));
	if (vm->coco.on) {
		vm->coco.swiotlb_bytes = b->swiotlb_bytes;
		ret = coco_launch(&vm->coco, vm->gmem, &st, vm->nr_vcpus, cfg->launch_manifest, why, sizeof(why));
		if (ret)
			return build_fail(err, false, "confidential launch: %s", why);
	}
	b->booted = true;
	return 0;
}

static int build_step(struct build *b, enum build_step step, struct veil_error *err)
{
	if (b->fail_at != step)
		return 0;
	return build_fail(err, false, "build step %d failed (injected)", step);
}

int build_vm(struct build *b, const struct veil_config *cfg, const struct log_sink *log,
	     struct veil_error *err)
{
	struct arch_linux_boot lb = { 0 };
	unsigned long vm_type = 0;
	int ret;

	*err = (struct veil_error){ 0 };
	ret = build_check(cfg, err);
	if (!ret)
		ret = build_step(b, BUILD_CHECK, err);
	if (!ret)
		ret = build_boot_src(b, cfg, &lb, err);
	if (!ret)
		ret = build_step(b, BUILD_BOOT_SRC, err);
	if (!ret)
		ret = build_kvm(cfg, &vm_type, err);
	if (!ret)
		ret = build_step(b, BUILD_KVM, err);
	if (!ret)
		ret = build_create_vm(b, cfg, vm_type, log, err);
	if (!ret)
		ret = build_step(b, BUILD_VM, err);
	if (!ret)
		ret = build_devices(b, cfg, err);
	if (!ret)
		ret = build_step(b, BUILD_DEVICES, err);
	if (!ret)
		ret = build_boot(b, cfg, &lb, err);
	if (!ret)
		ret = build_step(b, BUILD_BOOT, err);
	if (ret)
		build_release(b);
	return ret;
}

void build_release(struct build *b)
{
	enum build_step fail_at = b->fail_at;

	vm_destroy(b->vm);
	fw_image_close(&b->img);
	free(b->kernel_buf);
	free(b->initrd_buf);
	free(b->cmdline_buf);
	memset(b, 0, sizeof(*b));
	b->fail_at = fail_at;
}
