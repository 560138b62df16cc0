/* The VM: creation, devices, the event loop that waits for a stop, and a stop that never hangs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "kvm.h"
#include "log.h"
#include "sandbox.h"
#include "vm.h"

#define VM_KICK_MS 25 /* a vCPU not yet out of KVM_RUN is kicked again this often */

uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vm_mark_time(struct vm *vm, uint64_t *slot)
{
	uint64_t zero = 0, t;

	if (__atomic_load_n(slot, __ATOMIC_RELAXED))
		return;
	t = vm_now_ns() - vm->cfg.t0_ns;
	__atomic_compare_exchange_n(slot, &zero, t ? t : 1, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

bool vm_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE);
}

void vm_request_stop(struct vm *vm, int exit_code, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stopping) {
		pthread_mutex_unlock(&vm->stop_lock);
		return;
	}
	vm->exit_code = exit_code;
	va_start(ap, fmt);
	vsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
	va_end(ap);
	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->stop_cond);
	pthread_mutex_unlock(&vm->stop_lock);
	if (vm->stop_efd >= 0 && write(vm->stop_efd, &one, sizeof(one)) < 0)
		pr_warn("waking the event loop: %s", strerror(errno));
}

bool vm_wait_stop(struct vm *vm, unsigned int ms)
{
	struct timespec ts;
	bool stopping;

	clock_gettime(CLOCK_REALTIME, &ts); /* stop_cond's clock */
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->stop_lock);
	while (!vm->stopping && pthread_cond_timedwait(&vm->stop_cond, &vm->stop_lock, &ts) == 0)
		;
	stopping = vm->stopping;
	pthread_mutex_unlock(&vm->stop_lock);
	return stopping;
}

struct outq *vm_console_queue(struct vm *vm, int fd)
{
	return fd == vm->cfg.console_fd ? &vm->console_out : NULL;
}

uint64_t vm_console_dropped(struct vm *vm)
{
	return outq_dropped(&vm->console_out) +
	       (vm->board ? arch_board_console_tx_dropped(vm->board) : 0);
}

uint64_t vm_console_unwritten(struct vm *vm)
{
	return outq_pending(&vm->console_out);
}

/* The UART's output, on a vCPU thread with its lock held: queued, never written here. */
static void vm_console_tx(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;

	vm_mark_time(vm, &vm->t_first_byte_ns);
	outq_put(&vm->console_out, &byte, 1);
}

static size_t vm_console_tx_room(void *opaque)
{
	struct vm *vm = opaque;

	return outq_room(&vm->console_out);
}

static void vm_board_stop(void *opaque, int exit_code, const char *why)
{
	vm_request_stop(opaque, exit_code, "%s", why);
}

static int vm_create_devices(struct vm *vm)
{
	struct arch_board_ops ops = {
		.console_tx = vm_console_tx, .console_tx_room = vm_console_tx_room,
		.stop = vm_board_stop, .opaque = vm,
	};
	int ret;

	ret = bus_create(&vm->bus);
	if (!ret)
		ret = arch_board_create(vm->arch, vm->bus, &ops, &vm->board);
	return ret;
}

/* The strongest conversion model this VM's kernel offers (DESIGN.md §2), and why. */
static int vm_choose_model(struct vm *vm, struct gmem_config *gc)
{
	struct caps_choice c;
	int ret;

	ret = caps_for_vm(vm->kvm_fd, vm->vm_fd, vm->cfg.vm_type, vm->cfg.destructive, &c);
	snprintf(vm->model_why, sizeof(vm->model_why), "%s", c.why);
	*gc = (struct gmem_config){ .vm_fd = vm->vm_fd, .destructive = c.destructive,
				    .model = c.gmem_model,
				    .revoke_host_mapping = c.revoke_host_mapping };
	vm->revoke_host_mapping = gc->revoke_host_mapping;
	return ret;
}

static int vm_create_memory(struct vm *vm)
{
	struct gmem_layout layout;
	struct gmem_config gc;
	uint64_t flags;
	int ret;

	ret = gmem_probe_flags(vm->vm_fd, &flags);
	if (ret) {
		pr_err("this kernel's KVM has no guest_memfd (KVM_CAP_GUEST_MEMFD)");
		return ret;
	}
	ret = vm_choose_model(vm, &gc);
	if (!ret)
		ret = gmem_layout_compute(arch_mem_map(), vm->cfg.mem_size, &layout);
	if (!ret)
		ret = gmem_create_cfg(&gc, &layout, &vm->gmem);
	if (!ret)
		pr_info("memory model: %s (%s)", gmem_model_name(gc.model), vm->model_why);
	return ret;
}

/*
 * Guests ask for conversions with KVM_HC_MAP_GPA_RANGE, or the architecture's own calls (arm64:
 * pKVM's MEM_SHARE/UNSHARE); KVM passes them on only if asked to.
 */
static void vm_enable_hypercall_exit(struct vm *vm)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL, .args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
	};
	int64_t have = kvm_check_extension(vm->kvm_fd, KVM_CAP_EXIT_HYPERCALL);
	int arch = arch_vm_hypercalls_enable(vm->vm_fd);

	if (arch > 0)
		vm->map_gpa_range_exits = true;
	else if (arch < 0)
		pr_info("the guest's conversion calls do not reach veil here (%s); guests cannot "
			"convert", strerror(-arch));
	else if ((have & (1 << KVM_HC_MAP_GPA_RANGE)) && _kvm_ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0)
		vm->map_gpa_range_exits = true;
	else
		pr_info("KVM_HC_MAP_GPA_RANGE does not exit to userspace here; guests cannot convert");
}

/*
 * Coalesced I/O for the registers arch_coalesced_zones() names: KVM queues
 * their writes in a ring page that every vCPU maps after its kvm_run, and
 * vcpu_handle_exit() applies them before it handles any exit.  Where KVM
 * lacks it, those writes exit as before.
 */
static void vm_coalesce_io(struct vm *vm)
{
	int64_t page = kvm_check_extension(vm->kvm_fd, KVM_CAP_COALESCED_MMIO);
	int64_t pio = kvm_check_extension(vm->kvm_fd, KVM_CAP_COALESCED_PIO);
	uint64_t psz = (uint64_t)sysconf(_SC_PAGESIZE);
	struct arch_io_zone z[4];
	unsigned int i, n = arch_coalesced_zones(z, ARRAY_SIZE(z)), done = 0;

	if (page <= 0 || !n || (uint64_t)(page + 1) * psz > vm->vcpus[0].run_size)
		return;
	for (i = 0; i < n; i++) {
		struct kvm_coalesced_mmio_zone zone = {
			.addr = z[i].addr, .size = z[i].size, .pio = z[i].pio,
		};

		if ((!z[i].pio || pio > 0) &&
		    _kvm_ioctl(vm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &zone) == 0)
			done++;
	}
	if (!done)
		return;
	vm->coalesced_max = (uint32_t)((psz - sizeof(struct kvm_coalesced_mmio_ring)) /
				       sizeof(struct kvm_coalesced_mmio));
	for (i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].coalesced = (void *)((uint8_t *)vm->vcpus[i].run + page * psz);
}

static int vm_create_vcpus(struct vm *vm)
{
	unsigned int i;
	int ret;

	vm->vcpus = calloc(vm->cfg.nr_cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->cfg.nr_cpus; i++)
		vm->vcpus[i].fd = -1;
	for (i = 0; i < vm->cfg.nr_cpus; i++) {
		ret = vcpu_create(vm, i, &vm->vcpus[i]);
		vm->nr_vcpus = i + 1;
		if (!ret)
			ret = arch_vcpu_init(vm->arch, vm->vcpus[i].fd, i);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	unsigned int max_vcpus;
	struct vm *vm;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	if (!vm->cfg.kick_signal)
		vm->cfg.kick_signal = VM_KICK_SIGNAL;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->console_efd = -1;
	vm->console_in.fd = -1;
	if (!vm->cfg.t0_ns)
		vm->cfg.t0_ns = vm_now_ns();
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);
	pthread_mutex_init(&vm->coalesced_lock, NULL);
	ret = vm_msi_init(&vm->msi, &vm->vm_fd);
	if (!ret)
		ret = outq_init(&vm->console_out, cfg->console_fd, VM_CONSOLE_QUEUE);
	if (ret)
		goto err;
	ret = cfg->kvm_fd > 0 ? kvm_dup(cfg->kvm_fd, &vm->kvm_fd, &max_vcpus) :
				kvm_open(&vm->kvm_fd, &max_vcpus);
	if (ret) {
		pr_err("opening /dev/kvm: %s", strerror(-ret));
		goto err;
	}
	if (cfg->nr_cpus == 0 || cfg->nr_cpus > max_vcpus) {
		ret = -E2BIG;
		goto err;
	}
	vm->vm_fd = kvm_create_vm(vm->kvm_fd, cfg->vm_type, "VM");
	if (vm->vm_fd < 0) {
		ret = vm->vm_fd;
		pr_err("KVM_CREATE_VM (type %lu): %s", cfg->vm_type, strerror(-ret));
		goto err;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->console_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0 || vm->console_efd < 0) {
		ret = -errno;
		goto err;
	}
	outq_set_wake(&vm->console_out, vm->console_efd);
	ret = vm_create_memory(vm);
	if (!ret)
		vm_enable_hypercall_exit(vm);
	if (!ret)
		ret = arch_vm_create(vm->kvm_fd, vm->vm_fd, cfg->nr_cpus, cfg->legacy_timer, &vm->arch);
	if (!ret)
		ret = vm_create_devices(vm);
	if (!ret)
		ret = vm_create_vcpus(vm);
	if (!ret)
		vm_coalesce_io(vm);
	if (ret)
		goto err;
	*out = vm;
	return 0;
err:
	vm_destroy(vm);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (!vm)
		return;
	if (vm->started && !vm->ended) {
		vm_request_stop(vm, VM_EXIT_FAILURE, "destroyed while running");
		if (vm_join(vm, -1))
			vm->threads_stuck = true;
	} else if (vm->event_started && vm_join(vm, -1)) {
		vm->threads_stuck = true;
	}
	/* Threads that would not stop may still touch all of this: leave it to process exit. */
	if (vm->threads_stuck)
		return;
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm_devices_destroy(vm); /* before gmem: in-flight I/O targets guest memory */
	vm_msi_destroy(&vm->msi);
	arch_board_destroy(vm->board);
	bus_destroy(vm->bus);
	arch_vm_destroy(vm->arch);
	gmem_destroy(vm->gmem);
	if (vm->console_out.buf)
		outq_drain(&vm->console_out); /* a VM that never ran: what the fd takes now */
	outq_destroy(&vm->console_out);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->console_efd >= 0)
		close(vm->console_efd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
	pthread_mutex_destroy(&vm->coalesced_lock);
	free(vm);
}

/* Kicks and joins one vCPU until deadline_ns (CLOCK_MONOTONIC); false if it is still running. */
static bool vm_join_vcpu(struct vcpu *vcpu, uint64_t deadline_ns)
{
	struct timespec ts;

	do {
		vcpu_kick(vcpu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += VM_KICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(vcpu->thread, NULL, &ts) == 0)
			return true;
	} while (vm_now_ns() < deadline_ns);
	return false;
}

/* One deadline for all vCPUs: nothing a vCPU does (console output included) may wait on a reader. */
static int vm_join_vcpus(struct vm *vm)
{
	uint64_t deadline = vm_now_ns() + VM_JOIN_MS * 1000000ULL;
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];

		if (!vcpu->started)
			continue;
		if (!vm_join_vcpu(vcpu, deadline)) {
			pr_err("vCPU %u did not stop within %d ms; giving up on it", i, VM_JOIN_MS);
			vm->threads_stuck = true;
			return -ETIMEDOUT;
		}
		vcpu->started = false;
	}
	return 0;
}

static size_t vm_console_rx(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;
	long n = vm_vconsole_input(vm, buf, len);

	/* With a virtio-console, it has the keyboard; else the UART. */
	return n >= 0 ? (size_t)n : arch_board_console_rx(vm->board, buf, len);
}

static void vm_console_input(struct vm *vm, bool readable)
{
	if (readable && !console_in_read(&vm->console_in)) {
		vm_request_stop(vm, VM_EXIT_POWEROFF, "quit from the console (Ctrl-A x)");
		return;
	}
	console_in_flush(&vm->console_in, vm_console_rx, vm);
}

/* Writes out what the console's reader takes now; room made lets the devices go on. */
static void vm_console_output(struct vm *vm)
{
	size_t before = outq_pending(&vm->console_out);

	if (!before || outq_drain(&vm->console_out) == before)
		return;
	arch_board_console_tx_ready(vm->board);
	vm_vconsole_tx_ready(vm);
}

/* Serves the console until a stop is requested. */
static void vm_event_loop(struct vm *vm)
{
	struct pollfd pfd[4] = {
		{ .fd = vm->stop_efd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
		{ .fd = -1, .events = POLLOUT },
		{ .fd = vm->console_efd, .events = POLLIN },
	};
	uint64_t v;
	int timeout;

	while (!vm_stopping(vm)) {
		/* While the UART's FIFO is full, retry every 10 ms instead of reading more. */
		pfd[1].fd = console_in_poll_fd(&vm->console_in);
		timeout = pfd[1].fd < 0 && vm->console_in.off < vm->console_in.len ? 10 : -1;
		/* Guest output: console_efd says it arrived, POLLOUT that the reader takes more. */
		pfd[2].fd = outq_pending(&vm->console_out) ? outq_poll_fd(&vm->console_out) : -1;
		if (poll(pfd, 4, timeout) < 0) {
			if (errno == EINTR)
				continue;
			vm_request_stop(vm, VM_EXIT_FAILURE, "event loop: poll: %s", strerror(errno));
			break;
		}
		vm_console_input(vm, pfd[1].fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)));
		if ((pfd[3].revents & POLLIN) && read(vm->console_efd, &v, sizeof(v)) < 0 &&
		    errno != EAGAIN)
			pr_warn("reading the console's eventfd: %s", strerror(errno));
		vm_console_output(vm);
	}
}

/* What the console still owes, for a short while; the rest is counted as dropped. */
static void vm_console_final(struct vm *vm)
{
	outq_flush(&vm->console_out, vm_now_ns() + VM_CONSOLE_FLUSH_MS * 1000000ULL);
}

/* After a stop request: joins the vCPUs and the I/O thread, flushes the console. */
static void vm_finish(struct vm *vm)
{
	console_in_close(&vm->console_in);
	if (!vm_join_vcpus(vm) && vm_virtio_stop(vm))
		vm->threads_stuck = true;
	vm_console_final(vm);
	pthread_mutex_lock(&vm->stop_lock);
	vm->ended = true;
	pthread_cond_broadcast(&vm->stop_cond);
	pthread_mutex_unlock(&vm->stop_lock);
}

static void *vm_event_thread(void *arg)
{
	struct vm *vm = arg;

	vm_event_loop(vm);
	vm_finish(vm);
	return NULL;
}

/* The kick must have a handler: a default action would kill, an ignored one never interrupts. */
static int vm_check_kick(struct vm *vm)
{
	struct sigaction sa;

	if (sigaction(vm->cfg.kick_signal, NULL, &sa) < 0)
		return -errno;
	/* The caller says why in words (veil_vm_start()'s struct veil_error). */
	if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
		return -EINVAL;
	return 0;
}

static int vm_start_event_thread(struct vm *vm)
{
	int ret;

	/*
	 * The main kind's fds, taken once while the console is open: the event
	 * thread closes it at the stop, and a caller confining itself later
	 * (vm_confine_caller()) must get the same filter.
	 */
	vm->main_fds_ret = vmm_sandbox_fds_of(vm, NULL, &vm->main_fds);
	ret = vm->main_fds_ret;
	if (!ret)
		ret = vmm_thread_start(&vm->event_thread, VMM_THREAD_MAIN,
				       vm->cfg.seccomp ? &vm->main_fds : NULL, "veil-event",
				       vm_event_thread, vm);
	if (ret)
		return ret;
	pthread_mutex_lock(&vm->stop_lock);
	vm->event_started = true;
	pthread_mutex_unlock(&vm->stop_lock);
	return 0;
}

int vm_start(struct vm *vm)
{
	const struct log_sink *old = log_set_sink(vm->cfg.log ? vm->cfg.log : log_get_sink());
	unsigned int i;
	int ret;

	ret = vm->started ? -EBUSY : vm_check_kick(vm);
	if (ret)
		goto out;
	pthread_mutex_lock(&vm->stop_lock);
	vm->started = true;
	pthread_mutex_unlock(&vm->stop_lock);
	/* The VM is built: nothing needs /dev/kvm now, so no thread can reach it. */
	if (vm->kvm_fd >= 0) {
		close(vm->kvm_fd);
		vm->kvm_fd = -1;
	}
	if (vm->cfg.seccomp)
		vmm_sandbox_warm_up();
	ret = vm_virtio_start(vm);
	if (ret)
		vm_request_stop(vm, VM_EXIT_FAILURE, "could not start the I/O thread");
	for (i = 0; i < vm->nr_vcpus && !vm_stopping(vm); i++) {
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret)
			vm_request_stop(vm, VM_EXIT_FAILURE, "could not start vCPU %u", i);
	}
	console_in_open(&vm->console_in, vm->cfg.console_in_fd);
	if (vm_start_event_thread(vm)) {
		vm_request_stop(vm, VM_EXIT_FAILURE, "could not start the event thread");
		vm_finish(vm);
		ret = ret ? ret : -EAGAIN;
	}
out:
	log_set_sink(old);
	return ret;
}

int vm_confine_caller(struct vm *vm)
{
	if (!vm->cfg.seccomp)
		return 0;
	if (!vm->event_started && !vm->ended)
		return -EINVAL; /* not started: its fds are not settled */
	return vm->main_fds_ret ? vm->main_fds_ret :
				  vmm_seccomp_load(VMM_THREAD_MAIN, "main", &vm->main_fds);
}

int vm_join(struct vm *vm, int ms)
{
	struct timespec ts;
	bool join;
	int ret = 0;

	if (!vm->started)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts); /* stop_cond's clock */
	if (ms > 0) {
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&vm->stop_lock);
	while (!vm->ended && ret == 0) {
		if (ms < 0)
			pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
		else
			ret = pthread_cond_timedwait(&vm->stop_cond, &vm->stop_lock, &ts);
	}
	ret = vm->ended ? 0 : -ETIMEDOUT;
	/* One waiter joins the event thread (its work is done: it set ended); others need not. */
	join = !ret && vm->event_started;
	if (join)
		vm->event_started = false;
	pthread_mutex_unlock(&vm->stop_lock);
	if (join)
		pthread_join(vm->event_thread, NULL);
	return ret;
}

/* Waits up to ms for every vCPU that may still run to be parked; true once they are. */
static bool vm_wait_parked(struct vm *vm, unsigned int ms)
{
	struct timespec ts;
	bool done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->stop_lock);
	while (!vm->stopping && vm->vcpus_parked < vm->vcpus_active &&
	       pthread_cond_timedwait(&vm->stop_cond, &vm->stop_lock, &ts) == 0)
		;
	done = vm->stopping || vm->vcpus_parked >= vm->vcpus_active;
	pthread_mutex_unlock(&vm->stop_lock);
	return done;
}

int vm_pause(struct vm *vm)
{
	unsigned int i;

	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->started || vm->stopping) {
		pthread_mutex_unlock(&vm->stop_lock);
		return -EINVAL;
	}
	__atomic_store_n(&vm->pause_req, true, __ATOMIC_RELEASE); /* vCPUs check it unlocked */
	pthread_mutex_unlock(&vm->stop_lock);
	for (;;) {
		for (i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		if (vm_wait_parked(vm, VM_KICK_MS))
			break;
	}
	return vm_stopping(vm) ? -ESRCH : 0;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->pause_req) {
		pthread_mutex_unlock(&vm->stop_lock);
		return -EINVAL;
	}
	__atomic_store_n(&vm->pause_req, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->stop_cond);
	pthread_mutex_unlock(&vm->stop_lock);
	return 0;
}

/* The fds of vm the seccomp filters name: sandbox.h knows filters, not VMs. */
int vmm_sandbox_fds_of(struct vm *vm, const struct vcpu *vcpu, struct vmm_sandbox_fds *fds)
{
	int n = 0;

	*fds = (struct vmm_sandbox_fds){
		.vm_fd = vm->vm_fd, .vcpu_fd = vcpu ? vcpu->fd : -1, .tty_fd = -1,
	};
	if (vm->console_in.raw)
		fds->tty_fd = vm->console_in.fd;
	if (vm->gmem)
		n = gmem_fds(vm->gmem, fds->mem_fds, VMM_SANDBOX_MAX_MEM_FDS);
	if (n < 0)
		return n;
	fds->nr_mem = (unsigned int)n;
	return 0;
}
