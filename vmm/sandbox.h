/*
 * veil's seccomp filters: one per kind of thread, loaded by the thread itself
 * just before it handles anything a guest controls (Firecracker's model).
 */
#ifndef VEIL_SANDBOX_H
#define VEIL_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>

#include "compiler.h"

enum vmm_thread_kind {
	VMM_THREAD_MAIN,   /* the event loop, the stop protocol and teardown */
	VMM_THREAD_VCPU,   /* KVM_RUN and the exit handler, with the devices it calls */
	VMM_THREAD_WORKER, /* the I/O thread and the host conversion stress */
	VMM_THREAD_API,    /* the control API's socket (vmm/api/): no fd of the VM at all */
};

#define VMM_SANDBOX_MAX_MEM_FDS 8

/*
 * The fds a filter names: ioctls are allowed only on these, each only with
 * the request numbers its thread kind uses, and fallocate only on mem_fds.
 * -1 (or nr_mem 0): none.  Every fd must exist before the filter loads.
 */
struct vmm_sandbox_fds {
	int vm_fd;    /* the VM's fd */
	int vcpu_fd;  /* a vCPU thread's own vCPU fd */
	int tty_fd;   /* the main thread: the console terminal it restores */
	unsigned int nr_mem;
	int mem_fds[VMM_SANDBOX_MAX_MEM_FDS]; /* guest memory: guest_memfds, shared memfds */
};


const char *vmm_thread_kind_name(enum vmm_thread_kind kind);

/* How many allow rules kind's filter for fds has (build-dependent: see VEIL_SANITIZED). */
int vmm_seccomp_rule_count(enum vmm_thread_kind kind, const struct vmm_sandbox_fds *fds);

/*
 * Loads kind's filter on the calling thread.  A forbidden call then ends
 * the process: with the reporter installed, through its SIGSYS handler,
 * which names the thread and the call and exits 1; without it, killed by
 * SIGSYS.  label is a string that outlives the thread.  Irreversible.
 */
/*
 * What the C library does once per process and a filter would forbid, done
 * now: glibc's malloc reads /proc/sys/vm/overcommit_memory the first time a
 * thread's arena gives memory back (seen killing the API thread of a release
 * build on openat).  A throwaway thread frees 1 MiB of small blocks.  Call
 * before starting filtered threads.
 */
void vmm_sandbox_warm_up(void);

/*
 * Installs the SIGSYS handler that names a forbidden call (process-wide: a
 * program's choice, veil_install_seccomp_reporter()).  0 or -errno.
 */
int vmm_seccomp_reporter_install(void) __must_check;
int vmm_seccomp_load(enum vmm_thread_kind kind, const char *label,
		     const struct vmm_sandbox_fds *fds) __must_check;

/*
 * pthread_create() with every signal blocked, whose new thread loads kind's
 * filter for fds (when fds is not NULL) before it runs fn(arg).  Returns 0
 * only once the filter is in place; if it could not be loaded, fn never runs.
 */
int vmm_thread_start(pthread_t *thread, enum vmm_thread_kind kind,
		     const struct vmm_sandbox_fds *fds, const char *label,
		     void *(*fn)(void *), void *arg) __must_check;

#endif
