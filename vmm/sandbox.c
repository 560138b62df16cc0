/* The seccomp filters of veil's threads, and the thread start that loads them. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <seccomp.h>

#include "arch.h"
#include "kvm_uapi.h"
#include "log.h"
#include "gmem.h"
#include "sandbox.h"
#include "veil.h"

/*
 * Sanitizer runtimes report from inside the thread that failed: they read
 * /proc/self/maps and the binary to symbolize, and LeakSanitizer stops the
 * world with a ptrace()ing clone at exit.  Those builds are for tests, so
 * their filters let the runtime do that rather than lose its report.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VEIL_SANITIZED 1
#else
#define VEIL_SANITIZED 0
#endif

/*
 * A signal handler gets no context of ours, so the thread's name for the
 * diagnostic can only be thread-local.  It is a label, not state.
 */
static __thread const char *thread_label;

struct rule {
	int nr;
	const char *why;
};

#define R(name, why) { SCMP_SYS(name), why }

/*
 * Calls allowed whatever their arguments, for every kind of thread: the C
 * library, the stop protocol and logging.  A call whose arguments matter
 * (ioctl, fallocate, tgkill, mmap, mprotect) is not here but in the argument
 * rules further down.  To add a call: put it in the list of the kinds that
 * make it, with the reason, and extend tests/security/test_seccomp.c.
 */
static const struct rule common_rules[] = {
	R(read, "eventfds, and the I/O thread's stop eventfd"),
	R(write, "logging, the UART's output, eventfd kicks (stop, irqfd, ioeventfd)"),
	R(writev, "stdio may gather a line and its newline"),
	R(pread64, "the balloon's reading of /proc/meminfo, opened before the filter"),
	R(futex, "mutexes and condition variables: pins, conversions, the stop protocol"),
	R(munmap, "malloc, and gmem's revocation of its host mapping"),
	R(madvise, "malloc trimming, and glibc releasing a finished thread's stack"),
	R(brk, "malloc"),
	R(mremap, "realloc of large blocks"),
	R(clock_gettime, "latency counters, rate limits and the RTC when the vDSO is unavailable"),
	R(clock_nanosleep, "bounded waits and back-off in conversions and retries"),
	R(nanosleep, "bounded waits and back-off in conversions and retries"),
	R(gettimeofday, "libc time without the vDSO"),
	R(rt_sigprocmask, "pthread_sigmask around thread and stop handling"),
	R(rt_sigreturn, "returning from the vCPU kick handler"),
	R(restart_syscall, "a sleep interrupted by the kick"),
	R(sched_yield, "spinning briefly on a contended pin or lock"),
	R(getpid, "pthread_kill, and the logger's prefix"),
	R(gettid, "pthread_kill"),
	R(exit, "a thread's end"),
	R(exit_group, "the process's end"),
	/* Not newfstatat or statx: they look up a path.  file_fstat() is fstat itself. */
	R(fstat, "file_fstat(): the balloon measuring guest memory's blocks"),
	R(close, "a device or the I/O thread dropping an fd it owns"),
	R(eventfd2, "MSI-X: a vector's irqfd is made when the guest first uses the vector"),
};

/* The I/O thread and the host conversion stress. */
static const struct rule worker_rules[] = {
	R(io_uring_enter, "submitting and reaping the I/O thread's ring"),
	R(getrandom, "virtio-rng's entropy, on the I/O thread"),
};

/*
 * The control API's thread (vmm/api/server.c): its socket and clients only.
 * What a request does to the VM runs on the thread that owns the VM.
 */
static const struct rule api_rules[] = {
	R(poll, "serving the listening socket, the clients and the stop eventfd"),
	R(ppoll, "the same on architectures without poll()"),
	R(accept4, "a new client"),
	R(recvfrom, "a client's request (recv)"),
	R(sendto, "a reply (send with MSG_NOSIGNAL)"),
	R(getrandom, "json-c's hash seed, if it was not drawn before the filter"),
	R(unlink, "removing its socket at the end (the main thread's filter has no unlink)"),
	R(unlinkat, "the same where there is no unlink (arm64)"),
};

/* The main thread after the vCPUs started: the event loop, then teardown. */
static const struct rule main_rules[] = {
	R(poll, "the event loop: the stop eventfd, signalfd and the console's input"),
	R(ppoll, "the event loop on architectures without poll()"),
	R(io_uring_enter, "tearing down the I/O thread's ring"),
	R(lseek, "stdio on a redirected stdout"),
};

/*
 * What the sanitizer runtimes need to report, in test builds only.  The
 * release build's filters are the exact ones, and the security suite runs
 * on a release build too (scripts/test).
 */
static const struct rule sanitizer_rules[] = {
	R(open, "symbolizing a report"), R(openat, "symbolizing a report"),
	R(newfstatat, "symbolizing a report"), R(statx, "symbolizing a report"),
	R(readlink, "finding the binary"), R(readlinkat, "finding the binary"),
	R(lseek, "reading the binary"), R(getdents64, "LeakSanitizer listing threads"),
	R(getdents, "LeakSanitizer listing threads (x86-64 uses the old call)"),
	R(clone, "LeakSanitizer's tracer"), R(clone3, "LeakSanitizer's tracer"),
	R(ptrace, "LeakSanitizer suspending threads"), R(wait4, "LeakSanitizer's tracer"),
	R(prctl, "LeakSanitizer's tracer"), R(sched_getaffinity, "the runtime's thread count"),
	R(prlimit64, "the runtime's stack limits"), R(getrlimit, "the runtime's stack limits"),
	R(sigaltstack, "the runtime's signal stacks"), R(rt_sigaction, "the runtime's handlers"),
	R(mmap, "the runtime's own mappings, executable ones included"),
	R(mprotect, "the runtime's own mappings"), R(uname, "the runtime's kernel check"),
	R(getppid, "LeakSanitizer's tracer"), R(kill, "LeakSanitizer's tracer"),
	R(pipe2, "the runtime's symbolizer"), R(dup2, "the runtime's symbolizer"),
	R(fcntl, "TSan's report: FD_CLOEXEC on /proc/self/exe as it symbolizes"),
};

/* Which fd of struct vmm_sandbox_fds an ioctl is allowed on. */
enum fd_class { ON_VM, ON_VCPU, ON_MEM, ON_TTY };

#define K_MAIN (1u << VMM_THREAD_MAIN)
#define K_VCPU (1u << VMM_THREAD_VCPU)
#define K_WORKER (1u << VMM_THREAD_WORKER)
#define K_ALL (K_MAIN | K_VCPU | K_WORKER)

struct ioctl_rule {
	unsigned long req;
	enum fd_class on;
	unsigned int kinds;
	const char *why;
};

#define I(req, on, kinds, why) { req, on, kinds, why }

/*
 * Every ioctl a confined thread makes, by exact request number and the fd it
 * is made on.  Nothing may reach /dev/kvm (closed by vm_start() anyway), a
 * vCPU fd but its own thread's, or a request not listed.  Setup (KVM_CREATE_*,
 * KVM_SET_USER_MEMORY_REGION2 to add, KVM_IOEVENTFD, CPUID, registers) is
 * done before any filter loads.  To add one: a row here; if it is made on an
 * fd no class names yet, add that fd to struct vmm_sandbox_fds and fill it in
 * vmm_sandbox_fds_of().  tests/security/test_seccomp.c tries each row.
 */
static const struct ioctl_rule ioctl_rules[] = {
	I(KVM_RUN, ON_VCPU, K_VCPU, "running the guest"),
	I(KVM_IRQ_LINE, ON_VM, K_ALL, "a device's interrupt line: from an exit (vCPU), a "
	  "completion (I/O thread) or console input (main)"),
	I(KVM_SET_GSI_ROUTING, ON_VM, K_ALL, "MSI: routes that settled (vm_msi_settle), from "
	  "the I/O thread and the main thread"),
	I(KVM_IRQFD, ON_VM, K_ALL, "MSI: a vector's irqfd, attached on its first use"),
	I(KVM_SIGNAL_MSI, ON_VM, K_ALL, "MSI: a message sent directly while its route settles "
	  "(vm_msi_send), from the same three places"),
	I(KVM_SET_MEMORY_ATTRIBUTES, ON_VM, K_ALL, "conversions: the guest's (vCPU), the "
	  "balloon's discards and --convert-stress's (worker), the control API's vm.convert (main)"),
	I(KVM_SET_MEMORY_ATTRIBUTES2, ON_MEM, K_ALL, "conversions in place, on the guest_memfd, "
	  "from the same three places"),
	I(KVM_SET_USER_MEMORY_REGION2, ON_VM, K_MAIN, "teardown: gmem_destroy() deletes the "
	  "memslots"),
	I(TCSETS, ON_TTY, K_MAIN, "restoring the console terminal at the end (tcsetattr)"),
	I(TCGETS, ON_TTY, K_MAIN, "glibc's tcsetattr() reads the settings back to check them"),
};

/* fallocate's modes on guest memory: gmem's punches and its allocation. */
static const int fallocate_modes[] = {
	FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_KEEP_SIZE,
};

static const char *const kind_names[] = {
	[VMM_THREAD_MAIN] = "main",
	[VMM_THREAD_VCPU] = "vCPU",
	[VMM_THREAD_WORKER] = "worker",
	[VMM_THREAD_API] = "api",
};

const char *vmm_thread_kind_name(enum vmm_thread_kind kind)
{
	return kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "?";
}

_Static_assert(VMM_SANDBOX_MAX_MEM_FDS >= 2 * GMEM_MAX_REGIONS,
	       "room for every region's guest_memfd and shared memfd");

/*
 * Makes stdout's buffer now, if it has none: glibc sizes it with fstat() on
 * first use, which is newfstatat, denied once a filter is in.  The buffering
 * mode stays what glibc would have chosen.  stderr is unbuffered: glibc never
 * sizes a buffer for it.
 */
static void prepare_stdio(void)
{
	bool tty;

	if (__fbufsize(stdout))
		return;
	tty = isatty(STDOUT_FILENO);
	/* glibc allocates a fully buffered stream's buffer at once, fstat() included. */
	setvbuf(stdout, NULL, _IOFBF, 0);
	if (tty)
		setvbuf(stdout, NULL, _IOLBF, 0); /* a terminal's default, on that buffer */
}

/* A filter under construction, and how many rules it has (for the tests' counts). */
struct filter {
	scmp_filter_ctx ctx; /* NULL: only count */
	int rules;
};

static int allow(struct filter *f, int nr, unsigned int n, const struct scmp_arg_cmp *cmp)
{
	f->rules++;
	if (!f->ctx)
		return 0;
	return seccomp_rule_add_array(f->ctx, SCMP_ACT_ALLOW, nr, n, cmp);
}

static int add_rules(struct filter *f, const struct rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ret;

		if (r[i].nr < 0)
			continue; /* not a system call on this architecture */
		ret = allow(f, r[i].nr, 0, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * An int argument as the kernel reads it: its low 32 bits (Firecracker's
 * "dword").  ioctl's request is an unsigned int to the kernel too.
 */
#define DWORD(a, v) ((struct scmp_arg_cmp){ .arg = (a), .op = SCMP_CMP_MASKED_EQ, \
					   .datum_a = 0xffffffffULL, .datum_b = (uint32_t)(v) })

/*
 * A vCPU thread's register access on its own vCPU fd, exactly the requests its
 * architecture names (arch_vcpu_ioctls(): x86 the dump's KVM_GET_REGS and
 * KVM_GET_SREGS, arm64 KVM_GET/SET_ONE_REG for forwarded SMCCC calls and the dump).
 */
static int add_vcpu_reg_rules(struct filter *f, enum vmm_thread_kind kind,
			      const struct vmm_sandbox_fds *fds)
{
	unsigned long req[8];
	unsigned int n = arch_vcpu_ioctls(req, ARRAY_SIZE(req));
	int ret = 0;

	if (kind != VMM_THREAD_VCPU || fds->vcpu_fd < 0)
		return 0;
	for (unsigned int i = 0; !ret && i < n; i++) {
		struct scmp_arg_cmp c[] = { DWORD(0, fds->vcpu_fd), DWORD(1, req[i]) };

		ret = allow(f, SCMP_SYS(ioctl), 2, c);
	}
	return ret;
}

static int add_ioctl_rules(struct filter *f, enum vmm_thread_kind kind,
			   const struct vmm_sandbox_fds *fds)
{
	int ret = add_vcpu_reg_rules(f, kind, fds);

	for (size_t i = 0; !ret && i < ARRAY_SIZE(ioctl_rules); i++) {
		const struct ioctl_rule *r = &ioctl_rules[i];
		int one = -1;

		if (!(r->kinds & (1u << kind)))
			continue;
		switch (r->on) {
		case ON_VM: one = fds->vm_fd; break;
		case ON_VCPU: one = fds->vcpu_fd; break;
		case ON_TTY: one = fds->tty_fd; break;
		case ON_MEM:
			for (unsigned int m = 0; !ret && m < fds->nr_mem; m++) {
				struct scmp_arg_cmp c[] = { DWORD(0, fds->mem_fds[m]), DWORD(1, r->req) };

				ret = allow(f, SCMP_SYS(ioctl), 2, c);
			}
			continue;
		}
		if (one >= 0) {
			struct scmp_arg_cmp c[] = { DWORD(0, one), DWORD(1, r->req) };

			ret = allow(f, SCMP_SYS(ioctl), 2, c);
		}
	}
	return ret;
}

/*
 * Calls allowed only with certain arguments: ioctl (above), fallocate only
 * gmem's two modes and only on guest memory, tgkill only to a thread of
 * veil's own (tkill, which names no process, not at all), and no new
 * executable memory, so a compromised device model cannot map code.
 */
static int add_arg_rules(struct filter *f, enum vmm_thread_kind kind,
			 const struct vmm_sandbox_fds *fds)
{
	struct scmp_arg_cmp tg[] = { DWORD(0, getpid()) };
	struct scmp_arg_cmp noexec[] = { SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0) };
	int ret = add_ioctl_rules(f, kind, fds);

	for (unsigned int m = 0; !ret && m < fds->nr_mem; m++) {
		for (size_t i = 0; !ret && i < ARRAY_SIZE(fallocate_modes); i++) {
			struct scmp_arg_cmp c[] = { DWORD(0, fds->mem_fds[m]),
						    DWORD(1, fallocate_modes[i]) };

			ret = allow(f, SCMP_SYS(fallocate), 2, c);
		}
	}
	if (!ret)
		ret = allow(f, SCMP_SYS(tgkill), 1, tg); /* pthread_kill: kicking a vCPU */
	if (!ret && !VEIL_SANITIZED)
		ret = allow(f, SCMP_SYS(mmap), 1, noexec);
	if (!ret && !VEIL_SANITIZED)
		ret = allow(f, SCMP_SYS(mprotect), 1, noexec);
	return ret;
}

static int build_filter(struct filter *f, enum vmm_thread_kind kind,
			const struct vmm_sandbox_fds *fds)
{
	int ret = add_rules(f, common_rules, ARRAY_SIZE(common_rules));

	/* vCPU threads get nothing beyond the common set and the argument rules. */
	if (!ret && kind == VMM_THREAD_WORKER)
		ret = add_rules(f, worker_rules, ARRAY_SIZE(worker_rules));
	if (!ret && kind == VMM_THREAD_MAIN)
		ret = add_rules(f, main_rules, ARRAY_SIZE(main_rules));
	if (!ret && kind == VMM_THREAD_API)
		ret = add_rules(f, api_rules, ARRAY_SIZE(api_rules));
	if (!ret && VEIL_SANITIZED)
		ret = add_rules(f, sanitizer_rules, ARRAY_SIZE(sanitizer_rules));
	if (!ret)
		ret = add_arg_rules(f, kind, fds);
	return ret;
}

int vmm_seccomp_rule_count(enum vmm_thread_kind kind, const struct vmm_sandbox_fds *fds)
{
	struct filter f = { 0 };

	if (kind >= ARRAY_SIZE(kind_names) || !fds || fds->nr_mem > VMM_SANDBOX_MAX_MEM_FDS)
		return -EINVAL;
	build_filter(&f, kind, fds);
	return f.rules;
}

static char *put_str(char *p, const char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *put_uint(char *p, const char *end, unsigned long v)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(digits));
	while (n && p < end)
		*p++ = digits[--n];
	return p;
}

/* Async-signal-safe: formats by hand, writes once, exits without cleanup. */
static void sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	char msg[200], *p = msg, *end = msg + sizeof(msg);

	(void)sig;
	(void)uc;
	p = put_str(p, end, "veil: seccomp: the ");
	p = put_str(p, end, thread_label ? thread_label : "unnamed");
	p = put_str(p, end, " thread made system call ");
	p = put_uint(p, end, (unsigned long)si->si_syscall);
	p = put_str(p, end, ", which its filter forbids; stopping (exit 1)\n");
	if (write(STDERR_FILENO, msg, (size_t)(p - msg)) < 0)
		_exit(VEIL_EXIT_FAILURE);
	_exit(VEIL_EXIT_FAILURE);
}

int vmm_seccomp_reporter_install(void)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

	sigfillset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) ? -errno : 0;
}

/* True if the program installed the reporter: filters then trap, and it names the call. */
static bool sigsys_reporter_installed(void)
{
	struct sigaction cur;

	return sigaction(SIGSYS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
	       cur.sa_sigaction == sigsys_handler;
}

int vmm_seccomp_load(enum vmm_thread_kind kind, const char *label,
		     const struct vmm_sandbox_fds *fds)
{
	struct filter f = { 0 };
	scmp_filter_ctx ctx;
	sigset_t sys;
	bool trap;
	int ret;

	if (kind >= ARRAY_SIZE(kind_names) || !fds || fds->nr_mem > VMM_SANDBOX_MAX_MEM_FDS)
		return -EINVAL;
	/*
	 * With the reporter (vmm_seccomp_reporter_install(), which veil's CLI
	 * installs) a forbidden call traps and is named before veil exits 1;
	 * without it, the process is killed by SIGSYS.  Either way it ends:
	 * libveil never installs a signal handler of its own accord.
	 */
	trap = sigsys_reporter_installed();
	prepare_stdio();
	ctx = seccomp_init(trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	f.ctx = ctx;
	ret = build_filter(&f, kind, fds);
	if (!ret) {
		thread_label = label;
		ret = seccomp_load(ctx);
	}
	seccomp_release(ctx);
	if (ret)
		return ret < 0 ? ret : -EINVAL;
	/* A blocked SIGSYS would be forced to its default action: a silent kill. */
	if (trap) {
		sigemptyset(&sys);
		sigaddset(&sys, SIGSYS);
		pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	}
	return 0;
}

static void *malloc_churn(void *arg)
{
	enum { N = 64, SIZE = 16 << 10 };
	void *p[N];

	(void)arg;
	for (int i = 0; i < N; i++)
		p[i] = malloc(SIZE);
	for (int i = N - 1; i >= 0; i--)
		free(p[i]);
	return NULL;
}

void vmm_sandbox_warm_up(void)
{
	sigset_t all, old;
	pthread_t t;
	int ret;

	/* Like every thread libveil starts, it takes none of the program's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&t, NULL, malloc_churn, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret)
		pthread_join(t, NULL);
}

struct thread_start {
	enum vmm_thread_kind kind;
	const struct vmm_sandbox_fds *fds;
	const char *label;
	void *(*fn)(void *);
	void *arg;
	const struct log_sink *log; /* the creator's: the new thread logs where it does */
	sem_t loaded;
	int ret;
};

static void *thread_trampoline(void *p)
{
	struct thread_start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;
	int ret;

	log_set_sink(s->log);
	/* The thread's name in ps and /proc (truncated to 15 bytes). */
	prctl(PR_SET_NAME, s->label, 0, 0, 0);
	ret = s->fds ? vmm_seccomp_load(s->kind, s->label, s->fds) : 0;

	s->ret = ret;
	sem_post(&s->loaded); /* s lives on the creator's stack: not touched after this */
	return ret ? NULL : fn(arg);
}

int vmm_thread_start(pthread_t *thread, enum vmm_thread_kind kind,
		     const struct vmm_sandbox_fds *fds, const char *label,
		     void *(*fn)(void *), void *arg)
{
	struct thread_start s = { .kind = kind, .fds = fds, .label = label,
				  .fn = fn, .arg = arg, .log = log_get_sink() };
	sigset_t all, old;
	int ret;

	if (sem_init(&s.loaded, 0, 0))
		return -errno;
	/* Signals belong to the program's threads and the vCPU kick, not to new threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(thread, NULL, thread_trampoline, &s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret) {
		while (sem_wait(&s.loaded) && errno == EINTR)
			;
		ret = s.ret;
		if (ret)
			pthread_join(*thread, NULL);
	}
	sem_destroy(&s.loaded);
	return ret;
}
