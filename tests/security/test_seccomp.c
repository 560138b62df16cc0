/*
 * security: each thread kind's seccomp filter lets through what veil's thread
 * needs and stops a forbidden call with exit 1 and a line naming it.  Each
 * case runs in a child process, since a filter cannot be taken back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "sandbox.h"
#include "test.h"

enum call { CALL_NONE, CALL_SOCKET, CALL_EXECVE, CALL_TTY_IOCTL, CALL_URING_SETUP,
	    CALL_URING_ENTER };

/* The child: load the filter, make the calls every thread needs, then the one under test. */
static int child(enum vmm_thread_kind kind, enum call call, int out_fd)
{
	struct termios t;
	char buf[8];
	int p[2], fd;

	dup2(out_fd, STDERR_FILENO);
	if (pipe(p))
		return 10;
	fd = open("/dev/null", O_RDONLY);
	if (vmm_seccomp_load(kind, "test") != 0)
		return 11;
	/* Allowed everywhere: I/O on fds opened before, KVM's ioctls (ENOTTY on a pipe), malloc. */
	if (write(p[1], "x", 1) != 1 || read(p[0], buf, 1) != 1)
		return 12;
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != -1 || errno != ENOTTY)
		return 13;
	free(malloc(1 << 20));
	close(fd);
	switch (call) {
	case CALL_NONE: break;
	case CALL_SOCKET: socket(AF_INET, SOCK_STREAM, 0); break;
	case CALL_EXECVE: execl("/bin/true", "true", (char *)NULL); break;
	case CALL_TTY_IOCTL: ioctl(p[0], TCGETS, &t); break;
	case CALL_URING_SETUP: syscall(__NR_io_uring_setup, 1, NULL); break;
	case CALL_URING_ENTER: syscall(__NR_io_uring_enter, -1, 0, 0, 0, NULL, 0); break;
	}
	return 0;
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
		fprintf(stderr, "%s thread, %s: exit %d, output: %s\n",
			vmm_thread_kind_name(kind), what, code, msg);
	CHECK_EQ(code, 0);
}

static void expect_trapped(enum vmm_thread_kind kind, enum call call, long nr, const char *what)
{
	char msg[512] = "", want[64];
	int code = run(kind, call, msg, sizeof(msg));

	snprintf(want, sizeof(want), "made system call %ld,", nr);
	if (code != 1 || !strstr(msg, want) || !strstr(msg, "the test thread"))
		fprintf(stderr, "%s thread, %s: exit %d, output: %s\n",
			vmm_thread_kind_name(kind), what, code, msg);
	CHECK_EQ(code, 1);
	CHECK_STR_CONTAINS(msg, want);
	CHECK_STR_CONTAINS(msg, "the test thread");
}

int main(void)
{
	static const enum vmm_thread_kind kinds[] = { VMM_THREAD_MAIN, VMM_THREAD_VCPU,
						      VMM_THREAD_WORKER };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		enum vmm_thread_kind k = kinds[i];

		expect_allowed(k, CALL_NONE, "the common calls");
		expect_trapped(k, CALL_SOCKET, SYS_socket, "socket()");
		expect_trapped(k, CALL_EXECVE, SYS_execve, "execve()");
		expect_trapped(k, CALL_URING_SETUP, __NR_io_uring_setup, "a new io_uring");
	}
	/* The terminal's ioctls belong to the main thread, which restores the console. */
	expect_allowed(VMM_THREAD_MAIN, CALL_TTY_IOCTL, "TCGETS");
	expect_trapped(VMM_THREAD_VCPU, CALL_TTY_IOCTL, SYS_ioctl, "TCGETS");
	expect_trapped(VMM_THREAD_WORKER, CALL_TTY_IOCTL, SYS_ioctl, "TCGETS");
	/* Only the I/O thread's kind drives a ring; a vCPU thread never does. */
	expect_allowed(VMM_THREAD_WORKER, CALL_URING_ENTER, "io_uring_enter");
	expect_trapped(VMM_THREAD_VCPU, CALL_URING_ENTER, __NR_io_uring_enter, "io_uring_enter");
	CHECK_EQ(vmm_seccomp_load((enum vmm_thread_kind)7, "bad"), -EINVAL);
	return test_done("test_seccomp");
}
