/* vCPU exit handling: one function from a kvm_run to a result, unit-tested with made-up exits. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/kvm_para.h>

#include "arch.h"
#include "exit.h"
#include "kvm.h"
#include "log.h"
#include "vm.h" /* struct vcpu, struct vm and the exit codes; nothing of vm.c */

#define EXIT_GUEST_FAULTS_LOGGED 10

static struct vcpu_exit exit_continue(void)
{
	return (struct vcpu_exit){ .action = VCPU_CONTINUE };
}

static struct vcpu_exit exit_action(enum vcpu_action action)
{
	return (struct vcpu_exit){ .action = action };
}

/* A stop for the caller to request: action VCPU_STOP or VCPU_STOP_DUMP. */
static struct vcpu_exit __printf(3, 4) exit_stop(enum vcpu_action action, int code,
						 const char *fmt, ...)
{
	struct vcpu_exit r = { .action = action, .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.reason, sizeof(r.reason), fmt, ap);
	va_end(ap);
	return r;
}

/*
 * One of the vCPU's own counters, on its own thread: the only writer, so a
 * relaxed load and store, not a locked add on every exit; readers on other
 * threads load it relaxed (veil_vm_counters()).
 */
static inline void vcpu_stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void vcpu_stat_inc(uint64_t *c)
{
	vcpu_stat_add(c, 1);
}

/* A guest-caused problem: counted always, logged only the first few times. */
static void __printf(2, 3) exit_guest_fault(struct vcpu *vcpu, const char *fmt, ...)
{
	uint64_t n = __atomic_add_fetch(&vcpu->vm->stats.guest_faults, 1, __ATOMIC_RELAXED);
	char msg[256];
	va_list ap;

	if (n > EXIT_GUEST_FAULTS_LOGGED)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_warn("guest: %s%s", msg,
		n == EXIT_GUEST_FAULTS_LOGGED ? " (further guest faults are only counted)" : "");
}

enum vcpu_exit_kind vcpu_exit_kind(uint32_t exit_reason)
{
	switch (exit_reason) {
	case KVM_EXIT_IO:
		return VCPU_EXIT_IO;
	case KVM_EXIT_MMIO:
		return VCPU_EXIT_MMIO;
	case KVM_EXIT_HYPERCALL:
		return VCPU_EXIT_HYPERCALL;
	case KVM_EXIT_MEMORY_FAULT:
		return VCPU_EXIT_MEMORY_FAULT;
	case KVM_EXIT_INTR:
		return VCPU_EXIT_KICK;
	case KVM_EXIT_HLT:
		return VCPU_EXIT_HLT;
	default:
		return VCPU_EXIT_OTHER;
	}
}

const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind)
{
	static const char *const names[VCPU_EXIT_KINDS] = {
		[VCPU_EXIT_IO] = "port I/O", [VCPU_EXIT_MMIO] = "MMIO",
		[VCPU_EXIT_HYPERCALL] = "hypercall", [VCPU_EXIT_MEMORY_FAULT] = "memory fault",
		[VCPU_EXIT_KICK] = "kick", [VCPU_EXIT_HLT] = "HLT", [VCPU_EXIT_OTHER] = "other",
	};

	return (unsigned int)kind < VCPU_EXIT_KINDS ? names[kind] : "?";
}

/* The device slot of the exit being handled: found by name, or the last slot for the rest. */
static struct vcpu_prof_dev *profile_dev(struct vcpu_profile *p)
{
	unsigned int i, n = p->nr_dev;

	for (i = 0; i < n; i++)
		if (p->dev[i].name == p->cur_name && p->dev[i].space == p->cur_space)
			return &p->dev[i];
	if (n == VCPU_PROF_DEVS)
		return &p->dev[n - 1];
	p->dev[n].name = p->cur_name;
	p->dev[n].space = p->cur_space;
	__atomic_store_n(&p->nr_dev, n + 1, __ATOMIC_RELEASE);
	return &p->dev[n];
}

void vcpu_profile_exit(struct vcpu *vcpu, enum vcpu_exit_kind kind, uint64_t run_ns,
		       uint64_t handle_ns)
{
	struct vcpu_profile *p = &vcpu->prof;
	struct vcpu_prof_dev *d;

	vcpu_stat_add(&p->run_ns, run_ns);
	vcpu_stat_add(&p->ns[kind], handle_ns);
	if ((kind != VCPU_EXIT_IO && kind != VCPU_EXIT_MMIO) || !p->cur_name)
		return;
	d = profile_dev(p);
	vcpu_stat_inc(&d->count);
	vcpu_stat_add(&d->ns, handle_ns);
	p->cur_name = NULL;
}

/* Marks the device an I/O exit went to, for vcpu_profile_exit(); only when profiling. */
static void profile_note_dev(struct vcpu *vcpu, enum bus_space space, uint64_t addr)
{
	const char *name;

	if (!vcpu->vm->profile)
		return;
	name = bus_device_name(vcpu->vm->bus, space, addr);
	vcpu->prof.cur_name = name ? name : "(none)";
	vcpu->prof.cur_space = space;
}

static uint64_t exit_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t vcpu_clock_read_cost(void)
{
	enum { BATCHES = 5, READS = 200 };
	uint64_t per[BATCHES];
	unsigned int b, i;

	for (b = 0; b < BATCHES; b++) {
		uint64_t t0 = exit_now_ns(), t = t0;

		for (i = 0; i < READS; i++)
			t = exit_now_ns();
		per[b] = (t - t0) / READS;
	}
	qsort(per, BATCHES, sizeof(per[0]), cmp_u64);
	return per[BATCHES / 2];
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception raised while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected hardware exit reason";
	default:
		return "unknown suberror";
	}
}

static void exit_unhandled_io(struct vcpu *vcpu, const char *space, uint64_t addr,
			      unsigned int len, bool is_write, int err)
{
	struct vm *vm = vcpu->vm;

	/*
	 * Guests probe for hardware that is not there (PCI config space, the
	 * floppy, VGA): that is normal, so it is counted and only logged at
	 * debug level.  A device refusing an access is a guest fault.
	 */
	__atomic_add_fetch(&vm->stats.unhandled_io, 1, __ATOMIC_RELAXED);
	if (err == -ENOENT)
		pr_debug("vCPU %u: %s %s of %u bytes at 0x%llx has no device", vcpu->index, space,
			 is_write ? "write" : "read", len, (unsigned long long)addr);
	else
		exit_guest_fault(vcpu, "vCPU %u: %s %s of %u bytes at 0x%llx was refused by its device",
			       vcpu->index, space, is_write ? "write" : "read", len,
			       (unsigned long long)addr);
}

static struct vcpu_exit exit_io(struct vcpu *vcpu)
{
	/*
	 * Copied once: the kernel fills these, but checked fields re-read later
	 * could have been overwritten by an IN landing on them, had the data
	 * offset pointed inside struct kvm_run (found by fuzz_exit).
	 */
	const struct kvm_run *run = vcpu->run;
	const uint8_t size = run->io.size, dir = run->io.direction;
	const uint16_t port = run->io.port;
	const uint32_t count = run->io.count;
	const uint64_t off = run->io.data_offset, bytes = (uint64_t)size * count;
	bool is_write = dir == KVM_EXIT_IO_OUT;
	uint8_t *data;
	uint32_t i;
	int ret;

	/* A bad offset would turn into a wild pointer, or data over the exit itself. */
	if ((size != 1 && size != 2 && size != 4) || off < sizeof(struct kvm_run) ||
	    off > vcpu->run_size || bytes > vcpu->run_size - off) {
		return exit_stop(VCPU_STOP, VM_EXIT_FAILURE,
				 "vCPU %u: malformed IO exit (size %u, count %u, offset %llu)",
				 vcpu->index, size, count, (unsigned long long)off);
	}
	data = (uint8_t *)vcpu->run + off;
	vcpu_stat_inc(&vcpu->stats.io);
	profile_note_dev(vcpu, BUS_PIO, port);
	for (i = 0; i < count; i++, data += size) {
		ret = bus_dispatch_vcpu(vcpu->vm->bus, BUS_PIO, port, data, size, is_write,
					vcpu->index);
		if (ret) {
			if (!is_write)
				memset(data, 0xff, size);
			exit_unhandled_io(vcpu, "port", port, size, is_write, ret);
		}
	}
	return exit_continue(); /* a device that stopped the VM did so itself */
}

static struct vcpu_exit exit_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int ret;

	if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
		return exit_stop(VCPU_STOP, VM_EXIT_FAILURE, "vCPU %u: malformed MMIO exit (len %u)",
				 vcpu->index, run->mmio.len);
	}
	vcpu_stat_inc(&vcpu->stats.mmio);
	profile_note_dev(vcpu, BUS_MMIO, run->mmio.phys_addr);
	ret = bus_dispatch_vcpu(vcpu->vm->bus, BUS_MMIO, run->mmio.phys_addr, run->mmio.data,
				run->mmio.len, run->mmio.is_write, vcpu->index);
	if (ret) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, run->mmio.len);
		exit_unhandled_io(vcpu, "MMIO", run->mmio.phys_addr, run->mmio.len,
				  run->mmio.is_write, ret);
	}
	return exit_continue(); /* a device that stopped the VM did so itself */
}

#define MAP_GPA_RANGE_PAGE_SZ_MASK 0xfULL
#define FAULT_REPEATS_MAX 4

int vcpu_check_map_gpa_range(uint64_t gpa, uint64_t npages, uint64_t attrs, uint64_t *len)
{
	uint64_t psz = attrs & MAP_GPA_RANGE_PAGE_SZ_MASK, align, end;

	if (attrs & ~(MAP_GPA_RANGE_PAGE_SZ_MASK | KVM_MAP_GPA_RANGE_ENCRYPTED))
		return -EINVAL;
	if (psz > KVM_MAP_GPA_RANGE_PAGE_SZ_1G || npages == 0 || npages > (UINT64_MAX >> 12))
		return -EINVAL;
	align = psz == KVM_MAP_GPA_RANGE_PAGE_SZ_1G ? SZ_1G :
		psz == KVM_MAP_GPA_RANGE_PAGE_SZ_2M ? SZ_2M : SZ_4K;
	*len = npages << 12;
	if (!IS_ALIGNED(gpa, align) || !IS_ALIGNED(*len, align) ||
	    __builtin_add_overflow(gpa, *len, &end))
		return -EINVAL;
	return 0;
}

/* The guest's error codes: what it can act on, not our internal reasons. */
static uint64_t hypercall_errno(int err)
{
	switch (err) {
	case -EINVAL:
	case -EFAULT:
		return (uint64_t)-KVM_EINVAL;
	default:
		return (uint64_t)-(int64_t)EAGAIN; /* transient: the guest may retry */
	}
}

/* A conversion the guest asked for, however it asked: timed and counted; the caller logs a failure. */
static int vcpu_guest_convert(struct vcpu *vcpu, uint64_t gpa, uint64_t len, bool to_private,
			      struct gmem_conv_result *res)
{
	uint64_t t0 = exit_now_ns();
	int ret = gmem_convert(vcpu->vm->gmem, gpa, len, to_private, res);

	if (ret) {
		vcpu_stat_inc(&vcpu->stats.conversion_fails);
		return ret;
	}
	if (vcpu->vm->guest_conv_lat)
		lat_add(vcpu->vm->guest_conv_lat, exit_now_ns() - t0);
	vcpu_stat_inc(&vcpu->stats.conversions);
	return 0;
}

uint64_t vcpu_map_gpa_range(struct vcpu *vcpu, uint64_t gpa, uint64_t npages, uint64_t attrs)
{
	struct gmem_conv_result res = { .culprit = "" };
	uint64_t len = 0;
	int ret;

	ret = vcpu_check_map_gpa_range(gpa, npages, attrs, &len);
	if (ret)
		vcpu_stat_inc(&vcpu->stats.conversion_fails);
	else
		ret = vcpu_guest_convert(vcpu, gpa, len, attrs & KVM_MAP_GPA_RANGE_ENCRYPTED, &res);
	if (ret) {
		exit_guest_fault(vcpu, "vCPU %u: MAP_GPA_RANGE 0x%llx npages %llu attrs 0x%llx: %s%s%s",
			       vcpu->index, (unsigned long long)gpa, (unsigned long long)npages,
			       (unsigned long long)attrs, strerror(-ret), res.culprit[0] ? ": " : "",
			       res.culprit);
		return hypercall_errno(ret);
	}
	return 0;
}

static struct vcpu_exit exit_map_gpa_range(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->hypercall.ret = vcpu_map_gpa_range(vcpu, run->hypercall.args[0],
						run->hypercall.args[1], run->hypercall.args[2]);
	return exit_continue();
}

/* A conversion through the architecture's own call (arm64: MEM_SHARE, MEM_UNSHARE). */
static int exit_arch_convert(void *opaque, uint64_t gpa, uint64_t len, bool to_private)
{
	struct gmem_conv_result res = { .culprit = "" };
	struct vcpu *vcpu = opaque;
	int ret = vcpu_guest_convert(vcpu, gpa, len, to_private, &res);

	if (ret)
		exit_guest_fault(vcpu, "vCPU %u: converting 0x%llx (%llu bytes) to %s: %s%s%s",
			       vcpu->index, (unsigned long long)gpa, (unsigned long long)len,
			       to_private ? "private" : "shared", strerror(-ret),
			       res.culprit[0] ? ": " : "", res.culprit);
	return ret;
}

/*
 * The architecture's own calls (arm64: SMCCC, answered in the vCPU's registers).  Whatever
 * the guest sends gets an answer; only registers KVM will not give or take stop the VM.
 */
static bool exit_arch_hypercall(struct vcpu *vcpu, struct vcpu_exit *out)
{
	struct arch_hypercall_ops ops = { .convert = exit_arch_convert, .opaque = vcpu };
	const uint64_t nr = vcpu->run->hypercall.nr;
	const char *fault = NULL;
	int ret;

	if (vcpu->vm->gmem)
		ops.ram = gmem_get_layout(vcpu->vm->gmem);
	ret = arch_vcpu_hypercall(vcpu->fd, nr, &ops, &fault);
	if (ret == -ENOSYS)
		return false;
	if (ret)
		*out = exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE,
				 "vCPU %u: answering the guest's call 0x%llx: %s", vcpu->index,
				 (unsigned long long)nr, strerror(-ret));
	else
		*out = exit_continue();
	if (!ret && fault)
		exit_guest_fault(vcpu, "vCPU %u: call 0x%llx: %s", vcpu->index,
				 (unsigned long long)nr, fault);
	return true;
}

static struct vcpu_exit exit_hypercall(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vcpu_exit r;

	if (run->hypercall.nr == KVM_HC_MAP_GPA_RANGE && vcpu->vm->gmem)
		return exit_map_gpa_range(vcpu);
	if (exit_arch_hypercall(vcpu, &r))
		return r;
	exit_guest_fault(vcpu, "vCPU %u: hypercall %llu is not implemented", vcpu->index,
		       (unsigned long long)run->hypercall.nr);
	run->hypercall.ret = (uint64_t)-KVM_ENOSYS;
	return exit_continue();
}

/*
 * An implicit conversion request: the guest touched a page whose attribute
 * differs from the access.  Convert and let it retry; a fault that repeats
 * at the same place means the memslot cannot serve it at all.
 */
static struct vcpu_exit exit_memory_fault(struct vcpu *vcpu)
{
	const struct veil_kvm_memory_fault *mf = (const void *)vcpu->run->padding;
	bool to_private = mf->flags & KVM_MEMORY_EXIT_FLAG_PRIVATE;
	uint64_t gpa = ALIGN_DOWN(mf->gpa, SZ_4K), end = ALIGN_UP(mf->gpa + mf->size, SZ_4K);
	struct gmem_conv_result res = { .culprit = "" };
	int ret = -EFAULT;

	vcpu->fault_repeats = vcpu->fault_gpa == mf->gpa ? vcpu->fault_repeats + 1 : 0;
	vcpu->fault_gpa = mf->gpa;
	/*
	 * Neither VM type we run lets a guest ask for private or shared by the
	 * way it accesses memory (SNP's and TDX's do): for a default or
	 * SW_PROTECTED VM the kernel decides from the attributes, so a fault
	 * inside RAM means an attribute changed under the access, a host
	 * conversion racing it.  Running again lets KVM look at the attributes
	 * as they are now.  Converting would be wrong: the guest wanted nothing,
	 * and a page left private breaks its devices' I/O.  If the same fault
	 * comes back, the kernel's attributes disagree with the map (I5), and
	 * the map is the truth: veil applies the map's state to that range
	 * again.  A fault that still repeats stops the VM.
	 */
	if (vcpu->vm->gmem && vcpu->fault_repeats < FAULT_REPEATS_MAX && end > gpa &&
	    gmem_region_contains(gmem_get_layout(vcpu->vm->gmem), gpa, end - gpa)) {
		bool private = false;

		if (vcpu->vm->implicit_conversions) {
			ret = gmem_convert(vcpu->vm->gmem, gpa, end - gpa, to_private, &res);
		} else if (vcpu->fault_repeats == 0) {
			vcpu_stat_inc(&vcpu->stats.fault_retries);
			return exit_continue();
		} else if (gmem_attr_is_private(vcpu->vm->gmem, gpa, &private) == 0) {
			ret = gmem_convert(vcpu->vm->gmem, gpa, end - gpa, private, &res);
			if (!ret) {
				vcpu_stat_inc(&vcpu->stats.fault_resyncs);
				pr_warn("vCPU %u: KVM faulted GPA 0x%llx as %s while the map says %s; "
					"the map's state was applied again", vcpu->index,
					(unsigned long long)mf->gpa, to_private ? "private" : "shared",
					private ? "private" : "shared");
				return exit_continue();
			}
		}
	}
	if (!ret) {
		vcpu_stat_inc(&vcpu->stats.conversions);
		return exit_continue();
	}
	return exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE,
			"vCPU %u: memory fault at GPA 0x%llx, %llu bytes, guest wanted it %s: %s",
			vcpu->index, (unsigned long long)mf->gpa, (unsigned long long)mf->size,
			to_private ? "private" : "shared",
			vcpu->fault_repeats >= FAULT_REPEATS_MAX ?
				"it faulted again at the same GPA, so its memslot cannot serve that access" :
			res.culprit[0] ? res.culprit : "the range is not guest RAM");
}

static struct vcpu_exit exit_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return exit_stop(VCPU_STOP, VM_EXIT_POWEROFF, "vCPU %u: guest powered off",
				 vcpu->index);
	case KVM_SYSTEM_EVENT_RESET:
		return exit_stop(VCPU_STOP, VM_EXIT_RESET, "vCPU %u: guest reset (system event)",
				 vcpu->index);
	case KVM_SYSTEM_EVENT_CRASH:
		return exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE, "vCPU %u: guest crashed",
				 vcpu->index);
	default:
		return exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE,
				 "vCPU %u: unexpected system event %u", vcpu->index,
				 vcpu->run->system_event.type);
	}
}

static struct vcpu_exit exit_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char extra[96] = "";
	uint32_t i, n = run->internal.ndata;

	if (n > ARRAY_SIZE(run->internal.data))
		n = ARRAY_SIZE(run->internal.data);
	for (i = 0; i < n && i < 4; i++) {
		size_t len = strlen(extra);

		snprintf(extra + len, sizeof(extra) - len, " %llx",
			 (unsigned long long)run->internal.data[i]);
	}
	return exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE,
			 "vCPU %u: KVM internal error, suberror %u (%s)%s%s", vcpu->index,
			 run->internal.suberror, internal_error_name(run->internal.suberror),
			 n ? ", data:" : "", extra);
}

/*
 * The writes KVM queued instead of exiting (arch_coalesced_zones()), applied
 * in the order the guest made them, before the exit that may read what they
 * selected.  The ring is the VM's: one vCPU applies at a time.
 */
static void exit_apply_coalesced(struct vcpu *vcpu)
{
	struct kvm_coalesced_mmio_ring *ring = vcpu->coalesced;
	struct vm *vm = vcpu->vm;
	uint32_t first;

	if (!ring || __atomic_load_n(&ring->first, __ATOMIC_RELAXED) ==
			     __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&vm->coalesced_lock);
	while ((first = __atomic_load_n(&ring->first, __ATOMIC_RELAXED)) !=
	       __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE) && first < vm->coalesced_max) {
		struct kvm_coalesced_mmio e = ring->coalesced_mmio[first];

		/*
		 * The kernel writes these; bounded anyway, as every exit's fields are.  A
		 * write nothing claims is dropped, as the bus drops it for a real exit.
		 */
		if (e.len && e.len <= sizeof(e.data)) {
			int unclaimed = bus_dispatch_vcpu(vm->bus, e.pio ? BUS_PIO : BUS_MMIO, e.phys_addr,
							  e.data, e.len, true, BUS_NO_VCPU);

			(void)unclaimed;
		}
		__atomic_store_n(&ring->first, (first + 1) % vm->coalesced_max, __ATOMIC_RELEASE);
		__atomic_store_n(&vm->coalesced_writes, vm->coalesced_writes + 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&vm->coalesced_lock);
}

struct vcpu_exit vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	exit_apply_coalesced(vcpu);

	vcpu_stat_inc(&vcpu->stats.exits);
	vcpu_stat_inc(&vcpu->prof.count[vcpu_exit_kind(run->exit_reason)]);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return exit_io(vcpu);
	case KVM_EXIT_MMIO:
		return exit_mmio(vcpu);
	case KVM_EXIT_INTR:
		return exit_continue(); /* a kick: the loop looks at the VM's state */
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC: nothing can wake this vCPU again. */
		return exit_action(VCPU_PARK);
	case KVM_EXIT_SHUTDOWN:
		return exit_stop(VCPU_STOP_DUMP, VM_EXIT_RESET, "vCPU %u: guest reset (triple fault)",
				 vcpu->index);
	case KVM_EXIT_SYSTEM_EVENT:
		return exit_system_event(vcpu);
	case KVM_EXIT_INTERNAL_ERROR:
		return exit_internal_error(vcpu);
	case KVM_EXIT_FAIL_ENTRY:
		return exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE,
				 "vCPU %u: VM entry failed, hardware reason 0x%llx on host CPU %u",
				 vcpu->index,
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
				 run->fail_entry.cpu);
	case KVM_EXIT_HYPERCALL:
		return exit_hypercall(vcpu);
	case KVM_EXIT_MEMORY_FAULT:
		return exit_memory_fault(vcpu);
	default:
		return exit_stop(VCPU_STOP_DUMP, VM_EXIT_FAILURE, "vCPU %u: unexpected exit %u (%s)",
				 vcpu->index, run->exit_reason, kvm_exit_reason_name(run->exit_reason));
	}
}
