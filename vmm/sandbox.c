/* The seccomp filters of veil's threads, and the thread start that loads them. */
#include <errno.h>
#include <linux/kvm.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <seccomp.h>

#include "log.h"
#include "sandbox.h"
#include "vm.h"

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

/* Every kind of thread: the C library, the stop protocol and logging. */
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
	R(clock_gettime, "latency counters and rate limits when the vDSO is unavailable"),
	R(clock_nanosleep, "bounded waits and back-off in conversions and retries"),
	R(nanosleep, "bounded waits and back-off in conversions and retries"),
	R(gettimeofday, "libc time without the vDSO"),
	R(rt_sigprocmask, "pthread_sigmask around thread and stop handling"),
	R(rt_sigreturn, "returning from the vCPU kick handler"),
	R(restart_syscall, "a sleep interrupted by the kick"),
	R(sched_yield, "spinning briefly on a contended pin or lock"),
	R(getpid, "pthread_kill, and the logger's prefix"),
	R(gettid, "pthread_kill"),
	R(tgkill, "kicking a vCPU out of KVM_RUN (pthread_kill)"),
	R(exit, "a thread's end"),
	R(exit_group, "the process's end"),
	R(fstat, "stdio sizing its buffer on first use"),
	R(newfstatat, "stdio sizing its buffer on first use"),
	R(fallocate, "gmem's conversions and punches (PUNCH_HOLE, allocation)"),
	R(close, "a device or the I/O thread dropping an fd it owns"),
	R(eventfd2, "MSI-X: a vector's irqfd is made when the guest first uses the vector"),
};

/* The I/O thread and the host conversion stress. */
static const struct rule worker_rules[] = {
	R(io_uring_enter, "submitting and reaping the I/O thread's ring"),
	R(getrandom, "virtio-rng's entropy, on the I/O thread"),
};

/* The main thread after the vCPUs started: the event loop, then teardown. */
static const struct rule main_rules[] = {
	R(poll, "the event loop: the stop eventfd, signalfd and the console's input"),
	R(ppoll, "the event loop on architectures without poll()"),
	R(io_uring_enter, "tearing down the I/O thread's ring"),
	R(lseek, "stdio on a redirected stdout"),
};

/* What the sanitizer runtimes need to report, in test builds only. */
static const struct rule sanitizer_rules[] = {
	R(open, "symbolizing a report"), R(openat, "symbolizing a report"),
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
};

static const char *const kind_names[] = {
	[VMM_THREAD_MAIN] = "main",
	[VMM_THREAD_VCPU] = "vCPU",
	[VMM_THREAD_WORKER] = "worker",
};

const char *vmm_thread_kind_name(enum vmm_thread_kind kind)
{
	return kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "?";
}

static int add_rules(scmp_filter_ctx ctx, const struct rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ret;

		if (r[i].nr < 0)
			continue; /* not a system call on this architecture */
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r[i].nr, 0);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Arguments that are checked, not just the call: ioctls only of KVM's type
 * (plus the terminal's on the main thread, to restore the console), and no
 * new executable memory, so a compromised device model cannot map code.
 */
static int add_arg_rules(scmp_filter_ctx ctx, enum vmm_thread_kind kind)
{
	static const unsigned long tty_ioctls[] = { TCGETS, TCSETS, TCSETSW, TCSETSF };
	int ret;

	ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, KVMIO << 8));
	for (size_t i = 0; !ret && kind == VMM_THREAD_MAIN && i < ARRAY_SIZE(tty_ioctls); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_EQ, tty_ioctls[i]));
	if (!ret && !VEIL_SANITIZED)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!ret && !VEIL_SANITIZED)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return ret;
}

static int build_filter(scmp_filter_ctx ctx, enum vmm_thread_kind kind)
{
	int ret = add_rules(ctx, common_rules, ARRAY_SIZE(common_rules));

	/* vCPU threads get nothing beyond the common set and KVM's own ioctls. */
	if (!ret && kind == VMM_THREAD_WORKER)
		ret = add_rules(ctx, worker_rules, ARRAY_SIZE(worker_rules));
	if (!ret && kind == VMM_THREAD_MAIN)
		ret = add_rules(ctx, main_rules, ARRAY_SIZE(main_rules));
	if (!ret && VEIL_SANITIZED)
		ret = add_rules(ctx, sanitizer_rules, ARRAY_SIZE(sanitizer_rules));
	if (!ret)
		ret = add_arg_rules(ctx, kind);
	return ret;
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
		_exit(VM_EXIT_FAILURE);
	_exit(VM_EXIT_FAILURE);
}

static int sigsys_prepare(void)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

	sigfillset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) ? -errno : 0;
}

int vmm_seccomp_load(enum vmm_thread_kind kind, const char *label)
{
	scmp_filter_ctx ctx;
	sigset_t sys;
	int ret;

	if (kind >= ARRAY_SIZE(kind_names))
		return -EINVAL;
	ret = sigsys_prepare();
	if (ret)
		return ret;
	/* TRAP, not KILL: the SIGSYS handler names the call before veil exits. */
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	ret = build_filter(ctx, kind);
	if (!ret) {
		thread_label = label;
		ret = seccomp_load(ctx);
	}
	seccomp_release(ctx);
	if (ret)
		return ret < 0 ? ret : -EINVAL;
	/* A blocked SIGSYS would be forced to its default action: a silent kill. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	return 0;
}

struct thread_start {
	enum vmm_thread_kind kind;
	bool filter;
	const char *label;
	void *(*fn)(void *);
	void *arg;
	sem_t loaded;
	int ret;
};

static void *thread_trampoline(void *p)
{
	struct thread_start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;
	int ret;

	/* The thread's name in ps and /proc (truncated to 15 bytes). */
	prctl(PR_SET_NAME, s->label, 0, 0, 0);
	ret = s->filter ? vmm_seccomp_load(s->kind, s->label) : 0;

	s->ret = ret;
	sem_post(&s->loaded); /* s lives on the creator's stack: not touched after this */
	return ret ? NULL : fn(arg);
}

int vmm_thread_start(pthread_t *thread, enum vmm_thread_kind kind, bool filter,
		     const char *label, void *(*fn)(void *), void *arg)
{
	struct thread_start s = { .kind = kind, .filter = filter, .label = label,
				  .fn = fn, .arg = arg };
	sigset_t all, old;
	int ret;

	if (sem_init(&s.loaded, 0, 0))
		return -errno;
	/* Signals belong to vm_run()'s signalfd and the vCPU kick, not to new threads. */
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
