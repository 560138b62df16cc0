/* The VM: creation, devices, the event loop that waits for a stop, and a stop that never hangs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "veil_boot.h"
#include "kvm_uapi.h"
#include "log.h"
#include "vm.h"

#define VM_GUEST_FAULTS_LOGGED 10
#define VM_JOIN_ATTEMPTS 200 /* x 25 ms: a stop gives up after 5 s */

int kvm_open(int *kvm_fd, unsigned int *max_vcpus)
{
	int fd, ver, max;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		close(fd);
		return -EPROTO;
	}
	max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	*max_vcpus = max > 0 ? (unsigned int)max : 4;
	*kvm_fd = fd;
	return 0;
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

void vm_guest_fault(struct vm *vm, const char *fmt, ...)
{
	uint64_t n = __atomic_add_fetch(&vm->stats.guest_faults, 1, __ATOMIC_RELAXED);
	char msg[256];
	va_list ap;

	if (n > VM_GUEST_FAULTS_LOGGED)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_warn("guest: %s%s", msg,
		n == VM_GUEST_FAULTS_LOGGED ? " (further guest faults are only counted)" : "");
}

static void vm_console_flush(struct vm *vm)
{
	size_t off = 0;

	while (off < vm->console_len) {
		ssize_t n = write(vm->cfg.console_fd, vm->console_buf + off, vm->console_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* console gone: the guest must not notice */
		off += (size_t)n;
	}
	vm->console_len = 0;
}

/* Called with the UART's lock held, so one writer at a time. */
static void vm_console_tx(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;

	vm->console_buf[vm->console_len++] = (char)byte;
	if (byte == '\n' || vm->console_len == sizeof(vm->console_buf))
		vm_console_flush(vm);
}

static void vm_uart_irq(void *opaque, int level)
{
	struct vm *vm = opaque;

	if (arch_vm_irq_line(vm->arch, 4, level))
		pr_warn("raising the UART interrupt: %s", strerror(errno));
}

static void vm_debug_exit(void *opaque, uint32_t status)
{
	struct vm *vm = opaque;

	if (status == 0)
		vm_request_stop(vm, VM_EXIT_POWEROFF, "guest wrote status 0 to the debug-exit port");
	else
		vm_request_stop(vm, VM_EXIT_FAILURE,
				"guest wrote failure status %u to the debug-exit port", status);
}

static int vm_create_devices(struct vm *vm)
{
	struct uart8250_config uc = { .tx = vm_console_tx, .set_irq = vm_uart_irq, .opaque = vm };
	int ret;

	ret = bus_create(&vm->bus);
	if (!ret)
		ret = uart8250_create(&uc, &vm->uart);
	if (!ret)
		ret = bus_register(vm->bus, BUS_PIO, VEIL_PORT_UART, UART8250_NR_REGS,
				   &uart8250_bus_ops, vm->uart, "uart8250");
	vm->debug_exit = (struct debug_exit){ .exit = vm_debug_exit, .opaque = vm };
	if (!ret)
		ret = bus_register(vm->bus, BUS_PIO, VEIL_PORT_DEBUG_EXIT, 4, &debug_exit_bus_ops,
				   &vm->debug_exit, "debug-exit");
	return ret;
}

static int vm_create_memory(struct vm *vm)
{
	struct gmem_layout layout;
	uint64_t flags;
	int ret;

	ret = gmem_probe_flags(vm->vm_fd, &flags);
	if (ret) {
		pr_err("this kernel's KVM has no guest_memfd (KVM_CAP_GUEST_MEMFD)");
		return ret;
	}
	if ((flags & (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)) !=
	    (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)) {
		pr_err("guest_memfd flags 0x%llx lack MMAP|INIT_SHARED, which default VMs need",
		       (unsigned long long)flags);
		return -EOPNOTSUPP;
	}
	ret = gmem_layout_compute(arch_mem_map(), vm->cfg.mem_size, &layout);
	if (ret)
		return ret;
	return gmem_create(vm->vm_fd, &layout,
			   GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, &vm->gmem);
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
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);
	ret = kvm_open(&vm->kvm_fd, &max_vcpus);
	if (ret) {
		pr_err("opening /dev/kvm: %s", strerror(-ret));
		goto err;
	}
	if (cfg->nr_cpus == 0 || cfg->nr_cpus > max_vcpus) {
		ret = -E2BIG;
		goto err;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, cfg->vm_type);
	if (vm->vm_fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VM (type %lu): %s", cfg->vm_type, strerror(-ret));
		goto err;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		ret = -errno;
		goto err;
	}
	ret = vm_create_memory(vm);
	if (!ret)
		ret = arch_vm_create(vm->kvm_fd, vm->vm_fd, cfg->nr_cpus, &vm->arch);
	if (!ret)
		ret = vm_create_devices(vm);
	if (!ret)
		ret = vm_create_vcpus(vm);
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
	/* Threads that would not stop may still touch all of this: leave it to process exit. */
	if (vm->threads_stuck)
		return;
	if (vm->console_len)
		vm_console_flush(vm);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	bus_destroy(vm->bus);
	uart8250_destroy(vm->uart);
	arch_vm_destroy(vm->arch);
	gmem_destroy(vm->gmem);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
	free(vm);
}

static void vm_kick_handler(int sig)
{
	(void)sig;
}

static int vm_join_vcpus(struct vm *vm)
{
	unsigned int i, attempt;
	struct timespec ts;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];

		if (!vcpu->started)
			continue;
		for (attempt = 0; attempt < VM_JOIN_ATTEMPTS; attempt++) {
			vcpu_kick(vcpu);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 25 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(vcpu->thread, NULL, &ts) == 0)
				break;
		}
		if (attempt == VM_JOIN_ATTEMPTS) {
			pr_err("vCPU %u did not stop within 5 s; giving up on it", i);
			vm->threads_stuck = true;
			return -ETIMEDOUT;
		}
		vcpu->started = false;
	}
	return 0;
}

/* Serves events until a stop is requested.  sfd < 0: signals are not ours to handle. */
static void vm_event_loop(struct vm *vm, int sfd)
{
	struct pollfd pfd[2] = {
		{ .fd = vm->stop_efd, .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;

	while (!vm_stopping(vm)) {
		if (poll(pfd, sfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			vm_request_stop(vm, VM_EXIT_FAILURE, "event loop: poll: %s", strerror(errno));
			break;
		}
		if (sfd >= 0 && (pfd[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
			vm_request_stop(vm, 128 + (int)si.ssi_signo, "stopped by %s",
					strsignal((int)si.ssi_signo));
	}
}

int vm_run(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = vm_kick_handler };
	sigset_t all, old, stopsigs;
	unsigned int i;
	int sfd = -1;

	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	sigaction(VM_KICK_SIGNAL, &sa, NULL);
	/* vCPU threads inherit a full mask and unblock only the kick. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (vm->cfg.handle_signals) {
		/* An inherited SIG_IGN would discard them before signalfd sees them. */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sfd = signalfd(-1, &stopsigs, SFD_CLOEXEC);
		if (sfd < 0)
			pr_warn("signalfd: %s; SIGINT and SIGTERM will not stop the VM cleanly",
				strerror(errno));
	}
	for (i = 0; i < vm->nr_vcpus && !vm_stopping(vm); i++) {
		if (vcpu_start(&vm->vcpus[i]))
			vm_request_stop(vm, VM_EXIT_FAILURE, "could not start vCPU %u", i);
	}
	if (!vm->cfg.handle_signals)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	vm_event_loop(vm, sfd);
	vm_join_vcpus(vm);
	if (sfd >= 0)
		close(sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (vm->console_len)
		vm_console_flush(vm);
	return vm->exit_code;
}
