/*
 * security: each thread kind's seccomp filter lets through what veil's thread
 * needs and stops a forbidden call with exit 1 and a line naming it.  Every
 * rule kind is tried both ways: the allowed use works, a forbidden call traps
 * (an ioctl of a number the kind does not use, a right number on the wrong
 * fd, fallocate with another mode or on another file, tgkill to another
 * process, tkill, path lookups, executable memory).  Each case runs in a child
 * process, since a filter cannot be taken back.  No KVM: the VM's, vCPU's and
 * terminal's fds are eventfds, whose ENOTTY shows an ioctl got past the filter.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "kvm_uapi.h"
#include "rtc_cmos.h"
#include "sandbox.h"
#include "test.h"

/* The sanitizer builds let their runtime map executable memory and stat (vmm/sandbox.c). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MAIN (1u << VMM_THREAD_MAIN)
#define VCPU (1u << VMM_THREAD_VCPU)
#define WORKER (1u << VMM_THREAD_WORKER)
#define ALL (MAIN | VCPU | WORKER)
#define NONE 0u

/* What a child has, opened before its filter loads. */
struct env {
	int vm, vcpu, other_vcpu, tty, mem, other_file, kvm;
	pid_t parent;
};

enum call {
	CALL_NONE,
	CALL_SOCKET, CALL_EXECVE, CALL_URING_SETUP, CALL_URING_ENTER,
	/* ioctl: the exact numbers, on the exact fds */
	CALL_KVM_RUN, CALL_KVM_RUN_OTHER_VCPU, CALL_GET_REGS, CALL_CREATE_VM_ON_VM,
	CALL_CREATE_VM_ON_KVM, CALL_CHECK_EXT_ON_KVM, CALL_IRQ_LINE, CALL_IRQ_LINE_OTHER_FD,
	CALL_IRQ_LINE_ON_VCPU, CALL_SET_ATTRS, CALL_SET_ATTRS2_MEM, CALL_SET_ATTRS2_OTHER,
	CALL_MEMORY_REGION2, CALL_IOEVENTFD, CALL_TCGETS_TTY, CALL_TCGETS_OTHER,
	CALL_TCSETS_TTY,
	/* fallocate */
	CALL_PUNCH_MEM, CALL_KEEP_SIZE_MEM, CALL_ALLOC_MEM, CALL_COLLAPSE_MEM,
	CALL_PUNCH_OTHER_FILE,
	/* signals */
	CALL_TGKILL_SELF, CALL_TGKILL_OTHER, CALL_TKILL,
	/* path lookups, and fstat as veil calls it */
	CALL_FILE_FSTAT, CALL_NEWFSTATAT, CALL_NEWFSTATAT_EMPTY, CALL_STATX,
	/* memory */
	CALL_MMAP_EXEC, CALL_MPROTECT_EXEC,
	/* time */
	CALL_RTC, CALL_TIME,
};

/* An ioctl the filter let through reaches an eventfd or memfd, which answers ENOTTY. */
static int passed(long ret)
{
	return ret == -1 && errno == ENOTTY ? 0 : 20;
}

static int rtc_read_seconds(void)
{
	struct rtc_cmos *rtc;
	uint8_t reg = 0, v = 0xff;
	int ret;

	if (rtc_cmos_create(NULL, &rtc))
		return 21;
	ret = rtc_cmos_bus_ops.write(rtc, 0, &reg, 1) || rtc_cmos_bus_ops.read(rtc, 1, &v, 1);
	rtc_cmos_destroy(rtc);
	return ret || (v & 0x0f) > 9 || v > 0x59 ? 22 : 0; /* BCD seconds */
}

/* Makes the call; 0 when an allowed call behaved as allowed (a forbidden one never returns). */
static int do_call(enum call call, const struct env *e)
{
	struct kvm_irq_level irq = { 0 };
	struct termios t;
	struct stat st;
	void *p;

	switch (call) {
	case CALL_NONE: return 0;
	case CALL_SOCKET: socket(AF_INET, SOCK_STREAM, 0); return 0;
	case CALL_EXECVE: execl("/bin/true", "true", (char *)NULL); return 0;
	case CALL_URING_SETUP: syscall(__NR_io_uring_setup, 1, NULL); return 0;
	case CALL_URING_ENTER: syscall(__NR_io_uring_enter, -1, 0, 0, 0, NULL, 0); return 0;
	case CALL_KVM_RUN: return passed(ioctl(e->vcpu, KVM_RUN, 0));
	case CALL_KVM_RUN_OTHER_VCPU: return passed(ioctl(e->other_vcpu, KVM_RUN, 0));
	case CALL_GET_REGS: return passed(ioctl(e->vcpu, KVM_GET_REGS, NULL));
	case CALL_CREATE_VM_ON_VM: return passed(ioctl(e->vm, KVM_CREATE_VM, 0));
	case CALL_CREATE_VM_ON_KVM: return passed(ioctl(e->kvm, KVM_CREATE_VM, 0));
	case CALL_CHECK_EXT_ON_KVM: return passed(ioctl(e->kvm, KVM_CHECK_EXTENSION, 0));
	case CALL_IRQ_LINE: return passed(ioctl(e->vm, KVM_IRQ_LINE, &irq));
	case CALL_IRQ_LINE_OTHER_FD: return passed(ioctl(e->other_file, KVM_IRQ_LINE, &irq));
	case CALL_IRQ_LINE_ON_VCPU: return passed(ioctl(e->vcpu, KVM_IRQ_LINE, &irq));
	case CALL_SET_ATTRS: return passed(ioctl(e->vm, KVM_SET_MEMORY_ATTRIBUTES, NULL));
	case CALL_SET_ATTRS2_MEM: return passed(ioctl(e->mem, KVM_SET_MEMORY_ATTRIBUTES2, NULL));
	case CALL_SET_ATTRS2_OTHER:
		return passed(ioctl(e->other_file, KVM_SET_MEMORY_ATTRIBUTES2, NULL));
	case CALL_MEMORY_REGION2: return passed(ioctl(e->vm, KVM_SET_USER_MEMORY_REGION2, NULL));
	case CALL_IOEVENTFD: return passed(ioctl(e->vm, KVM_IOEVENTFD, NULL));
	case CALL_TCGETS_TTY: return passed(ioctl(e->tty, TCGETS, &t));
	case CALL_TCGETS_OTHER: return passed(ioctl(e->vm, TCGETS, &t));
	case CALL_TCSETS_TTY: return passed(ioctl(e->tty, TCSETS, &t));
	case CALL_PUNCH_MEM:
		return fallocate(e->mem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) ? 23 : 0;
	case CALL_KEEP_SIZE_MEM: return fallocate(e->mem, FALLOC_FL_KEEP_SIZE, 0, 4096) ? 23 : 0;
	case CALL_ALLOC_MEM: fallocate(e->mem, 0, 0, 4096); return 0;
	case CALL_COLLAPSE_MEM: fallocate(e->mem, FALLOC_FL_COLLAPSE_RANGE, 0, 4096); return 0;
	case CALL_PUNCH_OTHER_FILE:
		fallocate(e->other_file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
		return 0;
	case CALL_TGKILL_SELF: return syscall(SYS_tgkill, getpid(), gettid(), 0) ? 24 : 0;
	case CALL_TGKILL_OTHER: syscall(SYS_tgkill, e->parent, e->parent, 0); return 0;
	case CALL_TKILL: syscall(SYS_tkill, gettid(), 0); return 0;
	case CALL_FILE_FSTAT: return file_fstat(e->mem, &st) || st.st_size != 1 << 20 ? 25 : 0;
	case CALL_NEWFSTATAT: syscall(SYS_newfstatat, AT_FDCWD, "/etc/shadow", &st, 0); return 0;
	case CALL_NEWFSTATAT_EMPTY:
		syscall(SYS_newfstatat, e->mem, "", &st, AT_EMPTY_PATH);
		return 0;
	case CALL_STATX: syscall(SYS_statx, AT_FDCWD, "/etc/shadow", 0, 0x7ff, &st); return 0;
	case CALL_MMAP_EXEC:
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? 26 : 0;
	case CALL_MPROTECT_EXEC:
		p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED || mprotect(p, 4096, PROT_READ | PROT_EXEC) ? 26 : 0;
	case CALL_RTC: return rtc_read_seconds();
	case CALL_TIME: syscall(SYS_time, NULL); return 0;
	}
	return 0;
}

static int open_env(struct env *e)
{
	e->vm = eventfd(0, 0);
	e->vcpu = eventfd(0, 0);
	e->other_vcpu = eventfd(0, 0);
	e->tty = eventfd(0, 0);
	e->kvm = eventfd(0, 0); /* stands for /dev/kvm: an fd no filter names */
	e->mem = memfd_create("guest", 0);
	e->other_file = memfd_create("unrelated", 0);
	e->parent = getppid();
	if (e->vm < 0 || e->vcpu < 0 || e->other_vcpu < 0 || e->tty < 0 || e->kvm < 0 ||
	    e->mem < 0 || e->other_file < 0 || ftruncate(e->mem, 1 << 20) ||
	    ftruncate(e->other_file, 1 << 20))
		return -1;
	return 0;
}

static void env_fds(const struct env *e, enum vmm_thread_kind kind, struct vmm_sandbox_fds *fds)
{
	*fds = (struct vmm_sandbox_fds){
		.vm_fd = e->vm,
		.vcpu_fd = kind == VMM_THREAD_VCPU ? e->vcpu : -1,
		.tty_fd = kind == VMM_THREAD_MAIN ? e->tty : -1,
		.nr_mem = 1,
		.mem_fds = { e->mem },
	};
}

/* Set in the child's copy only: load the filter without the SIGSYS reporter. */
static bool no_reporter;

/* The child: load the filter, make the calls every thread needs, then the one under test. */
static int child(enum vmm_thread_kind kind, enum call call, int out_fd)
{
	struct vmm_sandbox_fds fds;
	struct timespec ts;
	struct env e;
	char buf[8];
	int p[2];

	dup2(out_fd, STDERR_FILENO);
	dup2(out_fd, STDOUT_FILENO);
	if (pipe(p) || open_env(&e))
		return 10;
	env_fds(&e, kind, &fds);
	if ((!no_reporter && vmm_seccomp_reporter_install()) ||
	    vmm_seccomp_load(kind, "test", &fds) != 0)
		return 11;
	/* Allowed everywhere: I/O on fds opened before, malloc, stdio, the clock. */
	if (write(p[1], "x", 1) != 1 || read(p[0], buf, 1) != 1)
		return 12;
	free(malloc(1 << 20));
	printf("stdout, sized before the filter\n");
	fflush(stdout);
	if (clock_gettime(CLOCK_REALTIME, &ts) || ts.tv_sec < 1)
		return 13;
	close(p[0]);
	return do_call(call, &e);
}

/* Runs child(kind, call) and returns its exit code; its stderr goes to msg. */
static int run(enum vmm_thread_kind kind, enum call call, char *msg, size_t len)
{
	FILE *f = tmpfile();
	int status;
	pid_t pid;
	size_t n;

	if (!f)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(child(kind, call, fileno(f)));
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		fclose(f);
		return -1;
	}
	rewind(f);
	n = fread(msg, 1, len - 1, f);
	msg[n] = '\0';
	fclose(f);
	if (!WIFEXITED(status)) {
		fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
		return -1;
	}
	return WEXITSTATUS(status);
}

static void expect_allowed(enum vmm_thread_kind kind, enum call call, const char *what)
{
	char msg[512] = "";
	int code = run(kind, call, msg, sizeof(msg));

	if (code != 0)
		fprintf(stderr, "%s thread, %s: expected allowed, exit %d, output: %s\n",
			vmm_thread_kind_name(kind), what, code, msg);
	CHECK_EQ(code, 0);
}

static void expect_trapped(enum vmm_thread_kind kind, enum call call, long nr, const char *what)
{
	char msg[512] = "", want[64];
	int code = run(kind, call, msg, sizeof(msg));

	snprintf(want, sizeof(want), "made system call %ld,", nr);
	if (code != 1 || !strstr(msg, want) || !strstr(msg, "the test thread"))
		fprintf(stderr, "%s thread, %s: expected a trap on %ld, exit %d, output: %s\n",
			vmm_thread_kind_name(kind), what, nr, code, msg);
	CHECK_EQ(code, 1);
	CHECK_STR_CONTAINS(msg, want);
	CHECK_STR_CONTAINS(msg, "the test thread");
}

struct rule_case {
	enum call call;
	unsigned int allowed; /* the thread kinds that may make it */
	long nr;              /* the system call that traps elsewhere */
	const char *what;
};

static const struct rule_case cases[] = {
	{ CALL_NONE, ALL, 0, "the common calls" },
	{ CALL_SOCKET, NONE, SYS_socket, "socket()" },
	{ CALL_EXECVE, NONE, SYS_execve, "execve()" },
	{ CALL_URING_SETUP, NONE, __NR_io_uring_setup, "a new io_uring" },
	{ CALL_URING_ENTER, MAIN | WORKER, __NR_io_uring_enter, "io_uring_enter" },
	/* ioctl: only the numbers a kind uses, only on the fd they belong to */
	{ CALL_KVM_RUN, VCPU, SYS_ioctl, "KVM_RUN on its own vCPU fd" },
	{ CALL_KVM_RUN_OTHER_VCPU, NONE, SYS_ioctl, "KVM_RUN on another vCPU's fd" },
	{ CALL_GET_REGS, VCPU, SYS_ioctl, "KVM_GET_REGS on its vCPU fd" },
	{ CALL_CREATE_VM_ON_VM, NONE, SYS_ioctl, "KVM_CREATE_VM on the VM fd" },
	{ CALL_CREATE_VM_ON_KVM, NONE, SYS_ioctl, "KVM_CREATE_VM on /dev/kvm" },
	{ CALL_CHECK_EXT_ON_KVM, NONE, SYS_ioctl, "KVM_CHECK_EXTENSION on /dev/kvm" },
	{ CALL_IRQ_LINE, ALL, SYS_ioctl, "KVM_IRQ_LINE on the VM fd" },
	{ CALL_IRQ_LINE_OTHER_FD, NONE, SYS_ioctl, "KVM_IRQ_LINE on an unrelated fd" },
	{ CALL_IRQ_LINE_ON_VCPU, NONE, SYS_ioctl, "KVM_IRQ_LINE on the vCPU fd" },
	{ CALL_SET_ATTRS, ALL, SYS_ioctl, "KVM_SET_MEMORY_ATTRIBUTES on the VM fd" },
	{ CALL_SET_ATTRS2_MEM, ALL, SYS_ioctl, "KVM_SET_MEMORY_ATTRIBUTES2 on guest memory" },
	{ CALL_SET_ATTRS2_OTHER, NONE, SYS_ioctl, "KVM_SET_MEMORY_ATTRIBUTES2 on an unrelated fd" },
	{ CALL_MEMORY_REGION2, MAIN, SYS_ioctl, "KVM_SET_USER_MEMORY_REGION2 (teardown)" },
	{ CALL_IOEVENTFD, NONE, SYS_ioctl, "KVM_IOEVENTFD (setup only)" },
	{ CALL_TCGETS_TTY, MAIN, SYS_ioctl, "TCGETS on the console (tcsetattr's check)" },
	{ CALL_TCSETS_TTY, MAIN, SYS_ioctl, "TCSETS on the console" },
	{ CALL_TCGETS_OTHER, NONE, SYS_ioctl, "TCGETS on another fd" },
	/* fallocate: gmem's two modes, on guest memory only */
	{ CALL_PUNCH_MEM, ALL, SYS_fallocate, "fallocate(PUNCH_HOLE|KEEP_SIZE) on guest memory" },
	{ CALL_KEEP_SIZE_MEM, ALL, SYS_fallocate, "fallocate(KEEP_SIZE) on guest memory" },
	{ CALL_ALLOC_MEM, NONE, SYS_fallocate, "fallocate(0) on guest memory" },
	{ CALL_COLLAPSE_MEM, NONE, SYS_fallocate, "fallocate(COLLAPSE_RANGE) on guest memory" },
	{ CALL_PUNCH_OTHER_FILE, NONE, SYS_fallocate, "fallocate(PUNCH_HOLE) on an unrelated file" },
	/* signals: only to veil's own threads */
	{ CALL_TGKILL_SELF, ALL, SYS_tgkill, "tgkill to its own process" },
	{ CALL_TGKILL_OTHER, NONE, SYS_tgkill, "tgkill to another process" },
	{ CALL_TKILL, NONE, SYS_tkill, "tkill" },
	/* no path lookups; fstat itself */
	{ CALL_FILE_FSTAT, ALL, SYS_fstat, "file_fstat()" },
	/* time: the RTC reads the host's clock without the time system call */
	{ CALL_RTC, ALL, 0, "the RTC's seconds" },
	{ CALL_TIME, NONE, SYS_time, "the time system call" },
};

/*
 * Compiled in only where no sanitizer runtime needs them relaxed: W^X, and no
 * path lookups (the runtime stats files to symbolize a report).
 */
static const struct rule_case exact_cases[] = {
	{ CALL_NEWFSTATAT, NONE, SYS_newfstatat, "newfstatat(\"/etc/shadow\")" },
	{ CALL_NEWFSTATAT_EMPTY, NONE, SYS_newfstatat, "newfstatat(fd, \"\") (glibc's fstat)" },
	{ CALL_STATX, NONE, SYS_statx, "statx(\"/etc/shadow\")" },
	{ CALL_MMAP_EXEC, NONE, SYS_mmap, "mmap(PROT_EXEC)" },
	{ CALL_MPROTECT_EXEC, NONE, SYS_mprotect, "mprotect(PROT_EXEC)" },
};

static void run_cases(const struct rule_case *c, size_t n)
{
	static const enum vmm_thread_kind kinds[] = { VMM_THREAD_MAIN, VMM_THREAD_VCPU,
						      VMM_THREAD_WORKER };

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			if (c[i].allowed & (1u << kinds[k]))
				expect_allowed(kinds[k], c[i].call, c[i].what);
			else
				expect_trapped(kinds[k], c[i].call, c[i].nr, c[i].what);
		}
	}
}

/*
 * libveil installs no signal handler by itself: without the reporter
 * (veil_install_seccomp_reporter()), a forbidden call kills the process
 * with SIGSYS instead of trapping into a handler libveil would have had to
 * install, and SIGSYS's disposition is still the default after the load.
 */
static void test_no_reporter_kills(void)
{
	struct sigaction sa;
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		no_reporter = true;
		signal(SIGSYS, SIG_DFL);
		if (child(VMM_THREAD_VCPU, CALL_NONE, devnull) != 0)
			_exit(20);
		if (sigaction(SIGSYS, NULL, &sa) || sa.sa_handler != SIG_DFL)
			_exit(21);
		_exit(child(VMM_THREAD_VCPU, CALL_SOCKET, devnull) == 0 ? 22 : 23);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	if (!WIFSIGNALED(status))
		fprintf(stderr, "no reporter: child exited %d, expected killed by SIGSYS\n",
			WEXITSTATUS(status));
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);
}

int main(void)
{
	struct vmm_sandbox_fds fds = { .vm_fd = 3, .vcpu_fd = 4, .tty_fd = 5, .nr_mem = 1,
				       .mem_fds = { 6 } };

	run_cases(cases, sizeof(cases) / sizeof(cases[0]));
	test_no_reporter_kills();
	if (SANITIZED)
		printf("# sanitizer build: executable mappings and stat are allowed; they are "
		       "tested on the release build (scripts/test)\n");
	else
		run_cases(exact_cases, sizeof(exact_cases) / sizeof(exact_cases[0]));
	/* The counts the README quotes, with one vCPU fd and one guest-memory fd. */
	for (unsigned int k = VMM_THREAD_MAIN; k <= VMM_THREAD_WORKER; k++) {
		int n = vmm_seccomp_rule_count(k, &fds);

		printf("# %s filter: %d rules\n", vmm_thread_kind_name(k), n);
		CHECK(n > 0);
	}
	CHECK_EQ(vmm_seccomp_load((enum vmm_thread_kind)7, "bad", &fds), -EINVAL);
	CHECK_EQ(vmm_seccomp_load(VMM_THREAD_VCPU, "bad", NULL), -EINVAL);
	return test_done("test_seccomp");
}
