/* The stress's VM runs as veil run's does: veil.h, a signalfd for the stop signals, 128 + N. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "log.h"
#include "stress_vm.h"

#define POLL_MS 200 /* the state is looked at this often too: it is what says stopped */

static const int stop_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void stop_sigset(sigset_t *set)
{
	unsigned int i;

	sigemptyset(set);
	for (i = 0; i < ARRAY_SIZE(stop_sigs); i++)
		sigaddset(set, stop_sigs[i]);
}

/*
 * The stop signals stay blocked from the run to the end of the report: a
 * second signal pending then (timeout(1) signals the child and then its
 * process group; a user presses Ctrl-C twice) used to kill veil before the
 * report was out.  Any such signal is the same interruption.
 */
void stress_vm_signals_block(sigset_t *old)
{
	sigset_t stop;
	unsigned int i;

	/* An inherited SIG_IGN would discard them before the signalfd sees them. */
	for (i = 0; i < ARRAY_SIZE(stop_sigs); i++)
		signal(stop_sigs[i], SIG_DFL);
	stop_sigset(&stop);
	pthread_sigmask(SIG_BLOCK, &stop, old);
}

void stress_vm_signals_restore(const sigset_t *old)
{
	struct timespec zero = { 0, 0 };
	sigset_t stop;

	stop_sigset(&stop);
	while (sigtimedwait(&stop, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

bool stress_vm_stopping(struct veil_vm *vm)
{
	return veil_vm_state(vm) == VEIL_STATE_STOPPED;
}

bool stress_vm_wait_stop(struct veil_vm *vm, int ms)
{
	struct pollfd pfd = { .fd = veil_vm_stop_fd(vm), .events = POLLIN };

	return (poll(&pfd, 1, ms) > 0 && (pfd.revents & POLLIN)) || stress_vm_stopping(vm);
}

static void serve_signals(struct veil_vm *vm, int sfd)
{
	struct pollfd pfd[2] = {
		{ .fd = veil_vm_stop_fd(vm), .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	char why[64];

	while (!stress_vm_stopping(vm)) {
		if (poll(pfd, 2, POLL_MS) < 0 && errno != EINTR)
			return;
		if ((pfd[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			snprintf(why, sizeof(why), "stopped by SIG%s", sigabbrev_np((int)si.ssi_signo) ?: "?");
			veil_vm_stop(vm, 128 + (int)si.ssi_signo, why);
		}
	}
}

int stress_vm_run(struct veil_vm *vm, int kick_signal, char *reason, size_t len)
{
	struct veil_error err = { 0 };
	struct veil_exit ex = { 0 };
	sigset_t stop;
	int sfd, ret;

	stop_sigset(&stop);
	sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		pr_warn("signalfd: %s; stop signals will not end the run cleanly", strerror(errno));
	ret = veil_install_kick_handler(kick_signal);
	if (!ret)
		ret = veil_vm_start(vm, &err);
	if (ret) {
		snprintf(reason, len, "could not start the VM: %s",
			 err.msg[0] ? err.msg : strerror(-ret));
		veil_vm_stop(vm, VEIL_EXIT_FAILURE, reason);
	} else {
		serve_signals(vm, sfd);
		ret = veil_vm_wait(vm, -1, &ex);
		snprintf(reason, len, "%s", ex.reason);
	}
	if (sfd >= 0)
		close(sfd);
	return ret ? VEIL_EXIT_FAILURE : ex.code;
}
