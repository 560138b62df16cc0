/* veil run --jail: namespaces, pivot_root, rlimits and dropped privileges, in-process. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail.h"
#include "kvm.h"
#include "parse.h"

/* Descriptors veil holds beyond these per vCPU: KVM, devices, eventfds, the ring, stdio. */
#define JAIL_NOFILE_BASE 128
#define JAIL_NOFILE_PER_CPU 2
/* Threads beyond the vCPUs (main, I/O, convert stress) plus io_uring's bounded workers. */
#define JAIL_NPROC_BASE 32
#define JAIL_NPROC_PER_HOST_CPU 4
/* What veil's output files (the console, the summary) may grow by in a jail. */
#define JAIL_FSIZE_SLACK (1ULL << 30)

int jail_parse_user(const char *arg, uid_t *uid, gid_t *gid)
{
	const char *colon = strchr(arg, ':');
	char id[24];
	uint64_t u, g;
	size_t n;

	if (!colon || (n = (size_t)(colon - arg)) == 0 || n >= sizeof(id))
		return -EINVAL;
	memcpy(id, arg, n);
	id[n] = '\0';
	/* (uid_t)-1 means "unchanged" to setresuid(): not an id anyone can run as. */
	if (parse_uint(id, &u) || parse_uint(colon + 1, &g) || u >= UINT32_MAX || g >= UINT32_MAX)
		return -EINVAL;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

int jail_check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st, root;

	if (stat(dir, &st) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "not a directory");
		return -ENOTDIR;
	}
	if (stat("/", &root) == 0 && root.st_dev == st.st_dev && root.st_ino == st.st_ino) {
		snprintf(err, errlen, "the root directory itself is no jail");
		return -EINVAL;
	}
	return 0;
}

void jail_allow_file(struct jail_cfg *cfg, int fd)
{
	uint64_t size = 0;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return;
	if (S_ISBLK(st.st_mode) && __kvm_ioctl(fd, BLKGETSIZE64, &size) < 0)
		return;
	if (!S_ISBLK(st.st_mode))
		size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	if (size > cfg->max_file_size)
		cfg->max_file_size = size;
}

static int fail(char *err, size_t errlen, const char *what)
{
	int ret = -errno;

	snprintf(err, errlen, "%s: %s", what, strerror(errno));
	return ret;
}

/* The child's own mount namespace, whose root becomes dir and nothing else. */
static int jail_pivot(const char *dir, char *err, size_t errlen)
{
	if (unshare(CLONE_NEWNS) < 0)
		return fail(err, errlen, "unshare(CLONE_NEWNS)");
	/* Nothing we do below may propagate back to the host's mounts. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(err, errlen, "making mounts private");
	/* pivot_root() needs a mount point; a bind of dir onto itself is one, empty or not. */
	if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(err, errlen, "bind-mounting it onto itself");
	if (chdir(dir) < 0)
		return fail(err, errlen, "chdir");
	/* pivot_root(".", "."): the old root lands on top of the new, then goes; dir stays untouched. */
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return fail(err, errlen, "detaching the old root");
	} else if (errno == EINVAL) {
		/*
		 * The root is the initramfs (rootfs), which has no parent mount to
		 * pivot from (the nested platform's L1).  Do as switch_root does:
		 * move dir over / and chroot; without capabilities no chroot is left.
		 */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			return fail(err, errlen, "pivot_root refused (EINVAL), and moving it onto /");
		if (chroot(".") < 0)
			return fail(err, errlen, "chroot");
	} else {
		return fail(err, errlen, "pivot_root");
	}
	if (chdir("/") < 0)
		return fail(err, errlen, "chdir /");
	return 0;
}

static int jail_rlimit(int resource, rlim_t v, const char *what, char *err, size_t errlen)
{
	struct rlimit rl = { .rlim_cur = v, .rlim_max = v };

	return setrlimit(resource, &rl) < 0 ? fail(err, errlen, what) : 0;
}

/*
 * Set while still privileged, soft = hard, so the jailed veil cannot raise
 * them.  RLIMIT_FSIZE stops only writes past that size.  veil never grows a
 * disk, so the largest disk or memfd it sizes is enough for those; stdout
 * and stderr, when files, may grow by JAIL_FSIZE_SLACK: a guest cannot fill
 * the host's disk through the console.
 */
static int jail_limits(const struct jail_cfg *cfg, long host_cpus, char *err, size_t errlen)
{
	struct jail_cfg files = { .max_file_size = cfg->max_file_size };
	rlim_t nofile = JAIL_NOFILE_BASE + (rlim_t)JAIL_NOFILE_PER_CPU * cfg->nr_cpus;
	rlim_t nproc = JAIL_NPROC_BASE + cfg->nr_cpus +
		       (rlim_t)JAIL_NPROC_PER_HOST_CPU * (host_cpus > 0 ? (rlim_t)host_cpus : 64);
	int ret;

	jail_allow_file(&files, STDOUT_FILENO);
	jail_allow_file(&files, STDERR_FILENO);
	ret = jail_rlimit(RLIMIT_NOFILE, nofile, "RLIMIT_NOFILE", err, errlen);
	if (!ret)
		ret = jail_rlimit(RLIMIT_NPROC, nproc, "RLIMIT_NPROC", err, errlen);
	if (!ret)
		ret = jail_rlimit(RLIMIT_FSIZE, files.max_file_size + JAIL_FSIZE_SLACK, "RLIMIT_FSIZE",
				  err, errlen);
	return ret;
}

/* Raw syscalls, no libcap: the bounding set, the ids, then every capability set. */
static int jail_drop_privileges(const struct jail_cfg *cfg, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	int cap;

	/* Needs CAP_SETPCAP, so first; EINVAL marks the end of the kernel's capabilities. */
	for (cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break;
		return fail(err, errlen, "dropping the capability bounding set");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(err, errlen, "clearing the ambient capabilities");
	if (setgroups(0, NULL) < 0)
		return fail(err, errlen, "setgroups");
	if (cfg->set_user && setresgid(cfg->gid, cfg->gid, cfg->gid) < 0)
		return fail(err, errlen, "setresgid");
	if (cfg->set_user && setresuid(cfg->uid, cfg->uid, cfg->uid) < 0)
		return fail(err, errlen, "setresuid");
	memset(data, 0, sizeof(data)); /* effective, permitted and inheritable: none */
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(err, errlen, "capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_NO_NEW_PRIVS");
	return 0;
}

/*
 * The parent's death kills the child.  Set last: a change of ids clears it.
 * Its write end of the pipe closes when the parent dies, even if that was
 * before the prctl.
 */
static int jail_tie_to_parent(int parent_pipe, char *err, size_t errlen)
{
	struct pollfd p = { .fd = parent_pipe, .events = POLLIN };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_PDEATHSIG");
	if (poll(&p, 1, 0) != 0) {
		snprintf(err, errlen, "veil's parent process went away");
		return -ESRCH;
	}
	return 0;
}

/*
 * The parent: forward the stop signals, reap the child, exit with its code.
 * It needs no file but its end of the pipe, kept open until it exits.
 */
static __attribute__((noreturn)) void jail_parent(pid_t child, const sigset_t *waitset,
						  int pipe_w)
{
	siginfo_t si;
	int status, sig;

	if (pipe_w > 3)
		close_range(3, (unsigned int)pipe_w - 1, 0);
	close_range((unsigned int)pipe_w + 1, ~0U, 0);
	for (;;) {
		sig = sigwaitinfo(waitset, &si);
		if (sig < 0)
			continue; /* EINTR: nothing of ours */
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		if (waitpid(child, &status, WNOHANG) == child)
			break;
	}
	/* _exit: LeakSanitizer's check would clone into the PID namespace its init has left. */
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Which namespace the kernel refused, for the message. */
static int jail_unshare_outer(char *err, size_t errlen)
{
	static const struct { int flag; const char *name; } ns[] = {
		{ CLONE_NEWPID, "PID" }, { CLONE_NEWIPC, "IPC" },
		{ CLONE_NEWUTS, "UTS" }, { CLONE_NEWNET, "network" },
	};
	char what[64];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ns); i++) {
		if (unshare(ns[i].flag) == 0)
			continue;
		snprintf(what, sizeof(what), "entering a new %s namespace", ns[i].name);
		return fail(err, errlen, what);
	}
	return 0;
}

static int jail_child(const struct jail_cfg *cfg, long host_cpus, int parent_pipe, char *err,
		      size_t errlen)
{
	int ret = jail_pivot(cfg->dir, err, errlen);

	/*
	 * No probe cache in a jail (caps_cache.h): what a jailed veil would read
	 * there, the jail's previous occupant could have written.  It probes.
	 */
	unsetenv("VEIL_CACHE_DIR");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	if (!ret)
		ret = jail_limits(cfg, host_cpus, err, errlen);
	if (!ret)
		ret = jail_drop_privileges(cfg, err, errlen);
	if (!ret)
		ret = jail_tie_to_parent(parent_pipe, err, errlen);
	return ret;
}

int jail_enter(const struct jail_cfg *cfg, char *err, size_t errlen)
{
	long host_cpus = sysconf(_SC_NPROCESSORS_ONLN); /* reads /sys: before the pivot */
	sigset_t fwd, waitset, old;
	int pipefd[2], ret;
	pid_t child;

	/* PID, IPC, UTS and network here: the parent may share them; not the mounts it pivots. */
	ret = jail_unshare_outer(err, errlen);
	if (ret)
		return ret;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail(err, errlen, "pipe2");
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGHUP);
	sigaddset(&fwd, SIGQUIT);
	waitset = fwd;
	sigaddset(&waitset, SIGCHLD);
	/* Blocked before the fork: none is lost in between, and none is ignored by PID 1. */
	sigprocmask(SIG_BLOCK, &waitset, &old);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		ret = fail(err, errlen, "fork");
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(pipefd[0]);
		close(pipefd[1]);
		return ret;
	}
	if (child > 0)
		jail_parent(child, &waitset, pipefd[1]);
	close(pipefd[1]);
	sigorset(&old, &old, &fwd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	ret = jail_child(cfg, host_cpus, pipefd[0], err, errlen);
	close(pipefd[0]);
	return ret;
}

#if defined(__SANITIZE_ADDRESS__)
/*
 * LeakSanitizer stops the world through /proc/self/task, which a jail has
 * not; without it the check would fail and turn veil's exit code into 1.
 * open(), not access(): the sanitized builds' seccomp filters allow the
 * runtime's own open() and nothing more.
 */
int __lsan_is_turned_off(void);
/* Default visibility: the sanitizer runtime (a shared library) must find it in veil's executable. */
__attribute__((visibility("default"))) int __lsan_is_turned_off(void)
{
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return 1;
	close(fd);
	return 0;
}
#endif
