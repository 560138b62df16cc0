/* libveil: veil.h on the VM core; every call logs to its VM's sink and returns 0 or -errno. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_uapi.h"
#include "sandbox.h"
#include "veil_vm.h"
#include "virtio_devs.h"
#include "vm.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

static __thread int veil_fail_step; /* test hook: veil_build_fail_at() */

/* Every call runs with the VM's log sink, restored on the way out. */
#define SINK_ENTER(v) const struct log_sink *sink_old_ = log_set_sink(&(v)->sink)
#define SINK_LEAVE() log_set_sink(sink_old_)

static void veil_set_err(struct veil_error *err, bool config_fault, int ret, const char *what)
{
	if (!err)
		return;
	err->config_fault = config_fault;
	snprintf(err->msg, sizeof(err->msg), "%s: %s", what, strerror(-ret));
}

VEIL_EXPORT const char *veil_version(void)
{
	return VEIL_VERSION;
}

VEIL_EXPORT void veil_config_init(struct veil_config *cfg)
{
	*cfg = (struct veil_config){
		.api_version = VEIL_API_VERSION, .nr_cpus = 1, .mem_size = 64ULL << 20,
		.console_out_fd = -1, .console_in_fd = -1, .seccomp = true, .kick_signal = SIGUSR1,
		.kvm_fd = -1, .log_level = VEIL_LOG_WARN,
	};
	for (unsigned int i = 0; i < VEIL_MAX_DISKS; i++)
		cfg->disks[i].fd = -1;
}

static void veil_log_thunk(void *opaque, enum log_level level, const char *msg)
{
	struct veil_vm *v = opaque;

	v->log(v->log_opaque, (enum veil_log_level)level, msg);
}

void veil_build_fail_at(int step)
{
	veil_fail_step = step;
}

VEIL_EXPORT int veil_vm_create(const struct veil_config *cfg, struct veil_vm **out,
			       struct veil_error *err)
{
	return veil_vm_build(cfg, NULL, out, err);
}

int veil_vm_build(const struct veil_config *cfg, const struct veil_hooks *hooks,
		  struct veil_vm **out, struct veil_error *err)
{
	struct veil_error local;
	struct veil_vm *v;
	int ret;

	if (!err)
		err = &local;
	*err = (struct veil_error){ 0 };
	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v) {
		veil_set_err(err, false, -ENOMEM, "creating the VM");
		return -ENOMEM;
	}
	v->log = cfg->log;
	v->log_opaque = cfg->log_opaque;
	v->sink = (struct log_sink){ .fn = cfg->log ? veil_log_thunk : NULL, .opaque = v,
				     .level = (enum log_level)cfg->log_level };
	pthread_mutex_init(&v->lock, NULL);
	v->b.fail_at = (enum build_step)veil_fail_step;
	v->b.hooks = hooks;
	SINK_ENTER(v);
	ret = build_vm(&v->b, cfg, &v->sink, err);
	SINK_LEAVE();
	if (ret) {
		pthread_mutex_destroy(&v->lock);
		free(v);
		return ret;
	}
	v->vm = v->b.vm;
	*out = v;
	return 0;
}

static void veil_kick_handler(int signo)
{
	(void)signo; /* its only job: interrupt KVM_RUN with EINTR */
}

VEIL_EXPORT int veil_install_seccomp_reporter(void)
{
	return vmm_seccomp_reporter_install();
}

VEIL_EXPORT int veil_install_kick_handler(int signo)
{
	struct sigaction sa = { .sa_handler = veil_kick_handler };

	sigemptyset(&sa.sa_mask);
	return sigaction(signo, &sa, NULL) ? -errno : 0;
}

VEIL_EXPORT int veil_vm_start(struct veil_vm *v, struct veil_error *err)
{
	int ret;

	SINK_ENTER(v);
	pthread_mutex_lock(&v->lock);
	ret = vm_start(v->vm);
	pthread_mutex_unlock(&v->lock);
	SINK_LEAVE();
	if (ret == -EINVAL && err) {
		err->config_fault = true;
		snprintf(err->msg, sizeof(err->msg), "signal %d (%s), which kicks vCPUs out of "
			 "KVM_RUN, has no handler: install one (veil_install_kick_handler()) first",
			 v->vm->cfg.kick_signal, strsignal(v->vm->cfg.kick_signal));
	} else if (ret == -EBUSY && err) {
		veil_set_err(err, true, ret, "starting the VM: it was started before");
	} else if (ret) {
		veil_set_err(err, false, ret, "starting the VM");
	}
	return ret;
}

VEIL_EXPORT int veil_vm_wait(struct veil_vm *v, int timeout_ms, struct veil_exit *exit)
{
	struct vm *vm = v->vm;
	int ret = 0;

	SINK_ENTER(v);
	if (vm->started)
		ret = vm_join(vm, timeout_ms);
	else if (!vm_stopping(vm))
		ret = vm_wait_stop(vm, timeout_ms < 0 ? 0xffffffffu : (unsigned int)timeout_ms) ? 0 :
										   -ETIMEDOUT;
	SINK_LEAVE();
	if (ret)
		return ret;
	if (exit) {
		pthread_mutex_lock(&vm->stop_lock);
		exit->code = vm->exit_code;
		snprintf(exit->reason, sizeof(exit->reason), "%s", vm->stop_reason);
		pthread_mutex_unlock(&vm->stop_lock);
	}
	return 0;
}

VEIL_EXPORT int veil_vm_stop_fd(struct veil_vm *v)
{
	return v->vm->stop_efd;
}

VEIL_EXPORT int veil_vm_stop(struct veil_vm *v, int code, const char *reason)
{
	SINK_ENTER(v);
	vm_request_stop(v->vm, code, "%s", reason ? reason : "stopped by the embedder");
	SINK_LEAVE();
	return 0;
}

VEIL_EXPORT int veil_vm_pause(struct veil_vm *v)
{
	int ret;

	SINK_ENTER(v);
	pthread_mutex_lock(&v->lock);
	ret = vm_pause(v->vm);
	pthread_mutex_unlock(&v->lock);
	SINK_LEAVE();
	return ret;
}

VEIL_EXPORT int veil_vm_resume(struct veil_vm *v)
{
	int ret;

	SINK_ENTER(v);
	pthread_mutex_lock(&v->lock);
	ret = vm_resume(v->vm);
	pthread_mutex_unlock(&v->lock);
	SINK_LEAVE();
	return ret;
}

VEIL_EXPORT enum veil_state veil_vm_state(struct veil_vm *v)
{
	struct vm *vm = v->vm;
	enum veil_state st;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stopping)
		st = VEIL_STATE_STOPPED;
	else if (!vm->started)
		st = VEIL_STATE_CREATED;
	else if (vm->pause_req)
		st = VEIL_STATE_PAUSED;
	else
		st = VEIL_STATE_RUNNING;
	pthread_mutex_unlock(&vm->stop_lock);
	return st;
}

VEIL_EXPORT int veil_vm_confine_caller(struct veil_vm *v, struct veil_error *err)
{
	int ret;

	SINK_ENTER(v);
	ret = vm_confine_caller(v->vm);
	SINK_LEAVE();
	if (ret)
		veil_set_err(err, false, ret, "seccomp: loading the main thread's filter");
	return ret;
}

static int veil_range_check(struct veil_vm *v, uint64_t gpa, uint64_t size, struct veil_error *err)
{
	if (size && !(gpa % GMEM_PAGE_SIZE) && !(size % GMEM_PAGE_SIZE) && gpa + size > gpa &&
	    gmem_region_contains(gmem_get_layout(v->vm->gmem), gpa, size))
		return 0;
	if (err) {
		err->config_fault = true;
		snprintf(err->msg, sizeof(err->msg), "[0x%llx, +0x%llx): not 4 KiB-aligned inside one "
			 "RAM range", (unsigned long long)gpa, (unsigned long long)size);
	}
	return -EINVAL;
}

static void veil_conv_err(struct veil_error *err, const char *what, int ret,
			  const struct gmem_conv_result *res)
{
	if (!err)
		return;
	err->config_fault = ret == -EINVAL || ret == -EFAULT;
	snprintf(err->msg, sizeof(err->msg), "%s: %s%s%s", what, strerror(-ret),
		 res->culprit[0] ? "; held by " : "", res->culprit);
}

VEIL_EXPORT int veil_vm_convert(struct veil_vm *v, uint64_t gpa, uint64_t size, bool to_private,
				struct veil_error *err)
{
	struct gmem_conv_result res = { 0 };
	int ret = veil_range_check(v, gpa, size, err);

	if (ret)
		return ret;
	SINK_ENTER(v);
	ret = gmem_convert(v->vm->gmem, gpa, size, to_private, &res);
	SINK_LEAVE();
	if (ret)
		veil_conv_err(err, to_private ? "converting to private" : "converting to shared", ret,
			      &res);
	return ret;
}

VEIL_EXPORT int veil_vm_discard(struct veil_vm *v, uint64_t gpa, uint64_t size,
				struct veil_error *err)
{
	struct gmem_conv_result res = { 0 };
	int ret = veil_range_check(v, gpa, size, err);

	if (ret)
		return ret;
	SINK_ENTER(v);
	ret = gmem_discard(v->vm->gmem, gpa, size, &res);
	SINK_LEAVE();
	if (ret)
		veil_conv_err(err, "discarding", ret, &res);
	return ret;
}

VEIL_EXPORT int veil_vm_set_balloon(struct veil_vm *v, uint64_t bytes)
{
	int ret;

	SINK_ENTER(v);
	ret = vm_balloon_set_target(v->vm, bytes);
	SINK_LEAVE();
	return ret;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

VEIL_EXPORT int veil_vm_info(struct veil_vm *v, struct veil_info *info)
{
	const struct gmem_layout *l = gmem_get_layout(v->vm->gmem);
	unsigned int i;

	memset(info, 0, sizeof(*info));
	info->state = veil_vm_state(v);
	info->vm_type = v->vm->cfg.vm_type == KVM_X86_SW_PROTECTED_VM ? VEIL_VM_SW_PROTECTED :
									 VEIL_VM_DEFAULT;
	info->nr_cpus = v->vm->nr_vcpus;
	info->mem_size = v->vm->cfg.mem_size;
	info->model = gmem_model_name(gmem_model(v->vm->gmem));
	info->keeps_contents = gmem_keeps_contents(v->vm->gmem);
	info->revokes_host_mapping = v->vm->revoke_host_mapping;
	for (i = 0; i < l->nr && i < VEIL_MAX_RANGES; i++)
		info->ranges[i] = (struct veil_range){ .gpa = l->r[i].gpa, .size = l->r[i].size };
	info->nr_ranges = i;
	info->first_run_ns = LOAD(v->vm->t_first_run_ns);
	info->first_output_ns = LOAD(v->vm->t_first_byte_ns);
	if (info->first_run_ns)
		info->first_run_ns += v->vm->cfg.t0_ns;
	if (info->first_output_ns)
		info->first_output_ns += v->vm->cfg.t0_ns;
	return 0;
}


VEIL_EXPORT int veil_vm_counters(struct veil_vm *v, struct veil_counters *c)
{
	struct vm *vm = v->vm;
	struct gmem_stats gs;
	unsigned int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct vcpu_stats *s = &vm->vcpus[i].stats;

		c->exits += LOAD(s->exits);
		c->io_exits += LOAD(s->io);
		c->mmio_exits += LOAD(s->mmio);
		c->guest_conversions += LOAD(s->conversions);
		c->guest_conversion_fails += LOAD(s->conversion_fails);
	}
	gmem_get_stats(vm->gmem, &gs);
	c->host_conversions = gs.conversions;
	c->conversion_errors = gs.conversion_errors;
	c->punches = gs.punches;
	c->retries = gs.retries;
	c->eagain = gs.eagain;
	c->refused_private = gs.refused_private;
	c->unhandled_io = LOAD(vm->stats.unhandled_io);
	c->guest_faults = LOAD(vm->stats.guest_faults);
	c->console_dropped = vm_console_dropped(vm);
	if (vm->coco.on) {
		c->guest_shares = lat_count(&vm->coco.share_lat);
		c->guest_unshares = lat_count(&vm->coco.unshare_lat);
		c->share_p50_ns = lat_percentile(&vm->coco.share_lat, 50);
		c->share_p99_ns = lat_percentile(&vm->coco.share_lat, 99);
		c->unshare_p50_ns = lat_percentile(&vm->coco.unshare_lat, 50);
		c->unshare_p99_ns = lat_percentile(&vm->coco.unshare_lat, 99);
		/* Only devices reach guest memory once the guest runs; veil itself does not. */
		c->refused_device = gs.refused_private;
		c->ram_bytes = gmem_total_size(vm->gmem);
		c->private_bytes = coco_private_bytes(vm->gmem);
		c->private_at_launch = vm->coco.private_at_launch;
	}
	return 0;
}

VEIL_EXPORT const char *veil_vm_launch_digest(struct veil_vm *v)
{
	return v->vm->coco.on && v->vm->coco.digest[0] ? v->vm->coco.digest : NULL;
}

VEIL_EXPORT int veil_vm_device_counters(struct veil_vm *v, veil_counter_fn fn, void *opaque)
{
	int n;

	SINK_ENTER(v);
	n = vm_devices_counters(v->vm, fn, opaque);
	SINK_LEAVE();
	return n < 0 ? n : 0;
}

struct memory_walk {
	veil_extent_fn fn;
	void *opaque;
	uint64_t private_bytes;
};

static void memory_extent(void *opaque, uint64_t gpa, uint64_t len, bool priv)
{
	struct memory_walk *w = opaque;

	if (priv)
		w->private_bytes += len;
	if (w->fn)
		w->fn(w->opaque, gpa, len, priv);
}

VEIL_EXPORT int veil_vm_memory(struct veil_vm *v, struct veil_memory *m, veil_extent_fn fn,
			       void *opaque)
{
	struct memory_walk w = { .fn = fn, .opaque = opaque };
	int ret;

	ret = gmem_attr_extents(v->vm->gmem, memory_extent, &w);
	if (ret < 0)
		return ret;
	*m = (struct veil_memory){ .private_bytes = w.private_bytes,
				   .ram_bytes = gmem_total_size(v->vm->gmem) };
	gmem_pin_summary(v->vm->gmem, &m->pins, &m->pinned_bytes, &m->converting_bytes);
	return 0;
}

VEIL_EXPORT int veil_vm_verify(struct veil_vm *v, char *why, size_t len)
{
	int ret;

	if (!v->b.firmware || !v->b.img.selftest || !v->b.booted)
		return -ENOENT;
	if (v->vm->started && !v->vm->ended)
		return -EBUSY;
	SINK_ENTER(v);
	ret = fw_selftest_verify(v->vm, &v->b.fb, why, len);
	SINK_LEAVE();
	return ret ? -EIO : 0;
}

VEIL_EXPORT void veil_vm_destroy(struct veil_vm *v)
{
	if (!v)
		return;
	SINK_ENTER(v);
	if (v->vm->started && !v->vm->ended) {
		vm_request_stop(v->vm, VM_EXIT_FAILURE, "destroyed while running");
		if (vm_join(v->vm, -1))
			v->vm->threads_stuck = true;
	}
	if (v->vm->threads_stuck) {
		/* Threads that would not stop may still use the VM and log to v->sink: both stay. */
		pr_err("threads of this VM did not stop; its memory is left to the process's exit");
		SINK_LEAVE();
		return;
	}
	build_release(&v->b);
	SINK_LEAVE();
	pthread_mutex_destroy(&v->lock);
	free(v);
}

struct vm *veil_vm_core(struct veil_vm *v)
{
	return v->vm;
}

static uint64_t guest_conversions(struct vm *vm)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		n += LOAD(vm->vcpus[i].stats.conversions);
	return n;
}

/* The confidential mode's account: what the guest shared, what devices were refused. */
static void coco_summary(struct veil_vm *v, FILE *f)
{
	const struct vm_coco *co = &v->vm->coco;
	struct gmem_stats gs = { 0 };
	struct veil_counters c;

	veil_vm_counters(v, &c);
	fprintf(f, "veil: confidential: launch digest sha256:%s; bounce pool swiotlb %llu MiB; "
		"veil's mapping of private pages %s\n", v->vm->coco.digest,
		(unsigned long long)(v->vm->coco.swiotlb_bytes >> 20),
		v->vm->revoke_host_mapping ? "revoked (PROT_NONE)" :
					     "kept, refused by veil's map (revocation not safe here)");
	fprintf(f, "veil: confidential: guest shares %llu (p50 %.1f us, p99 %.1f us), unshares %llu "
		"(p50 %.1f us, p99 %.1f us); refused device accesses %llu\n",
		(unsigned long long)c.guest_shares, c.share_p50_ns / 1e3, c.share_p99_ns / 1e3,
		(unsigned long long)c.guest_unshares, c.unshare_p50_ns / 1e3, c.unshare_p99_ns / 1e3,
		(unsigned long long)c.refused_device);
	if (v->vm->gmem)
		gmem_get_stats(v->vm->gmem, &gs);
	/* Where the mode's time goes: the launch, and the guest's conversions as veil saw them. */
	fprintf(f, "veil: confidential: launch digest of %llu KiB in %.1f ms, RAM private in %.1f ms; "
		"guest conversions %.1f ms in all; mprotect %llu calls, %.1f ms\n",
		(unsigned long long)(co->measured_bytes >> 10), co->digest_ns / 1e6,
		co->private_ns / 1e6, (co->share_lat.sum + co->unshare_lat.sum) / 1e6,
		(unsigned long long)gs.protect_calls, gs.protect_ns / 1e6);
	fprintf(f, "veil: confidential: RAM private %.1f%% now (%llu of %llu MiB), %.1f%% at launch\n",
		c.ram_bytes ? 100.0 * (double)c.private_bytes / (double)c.ram_bytes : 0.0,
		(unsigned long long)(c.private_bytes >> 20), (unsigned long long)(c.ram_bytes >> 20),
		c.ram_bytes ? 100.0 * (double)c.private_at_launch / (double)c.ram_bytes : 0.0);
}

static void veil_vm_summary_extra(struct veil_vm *v, FILE *f)
{
	struct vm *vm = v->vm;
	uint64_t fretry = 0, fresync = 0;
	struct gmem_stats gs;
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		fretry += LOAD(vm->vcpus[i].stats.fault_retries);
		fresync += LOAD(vm->vcpus[i].stats.fault_resyncs);
	}
	gmem_get_stats(vm->gmem, &gs);
	if (fretry || fresync)
		fprintf(f, "veil: memory faults inside RAM: %llu run again, %llu with the map's "
			"state applied again\n", (unsigned long long)fretry,
			(unsigned long long)fresync);
	if (gs.revoke_skipped)
		fprintf(f, "veil: %llu private ranges kept by veil's map alone: past the budget of "
			"%u revoked extents (VMAs), or mprotect failed\n",
			(unsigned long long)gs.revoke_skipped, GMEM_REVOKE_MAX_EXTENTS);
	if (vm->coco.on)
		coco_summary(v, f);
	else if (guest_conversions(vm))
		fprintf(f, "veil: guest conversions: %llu\n", (unsigned long long)guest_conversions(vm));
	vm_virtio_summary(vm, f);
	if (vm_console_dropped(vm) || vm_console_unwritten(vm))
		fprintf(f, "veil: console: %llu bytes of guest output dropped while its reader "
			"did not keep up, %llu still unwritten at the stop\n",
			(unsigned long long)vm_console_dropped(vm),
			(unsigned long long)vm_console_unwritten(vm));
}

VEIL_EXPORT int veil_vm_report(struct veil_vm *v, veil_line_fn fn, void *opaque)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f;

	SINK_ENTER(v);
	f = open_memstream(&buf, &len);
	if (f) {
		veil_vm_summary_extra(v, f);
		fclose(f);
	}
	SINK_LEAVE();
	if (!f || !buf) {
		free(buf);
		return -ENOMEM;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fn(opaque, line);
	free(buf);
	return 0;
}
