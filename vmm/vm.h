/* The VM: KVM fds, vCPU threads, devices, and the stop protocol. */
#ifndef VEIL_VM_H
#define VEIL_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "bus.h"
#include "compiler.h"
#include "confidential.h"
#include "console.h"
#include "msi.h"
#include "gmem.h"
#include "kvm.h"
#include "lat.h"
#include "log.h"
#include "outq.h"
#include "sandbox.h"

#define VM_KICK_SIGNAL SIGUSR1        /* the default of vm_config.kick_signal */
#define VM_CONSOLE_QUEUE (64 * 1024) /* guest output waiting for the console's reader */
#define VM_JOIN_MS 1000              /* a stop gives up on vCPUs still running after this */
#define VM_CONSOLE_FLUSH_MS 250      /* what the console still owes, at the stop */

/* veil's exit codes; documented in --help and the README. */
enum vm_exit_code {
	VM_EXIT_POWEROFF = 0, /* the guest stopped cleanly */
	VM_EXIT_FAILURE = 1,  /* the guest or the VM failed */
	VM_EXIT_USAGE = 2,    /* bad command line or configuration */
	VM_EXIT_RESET = 3,    /* the guest asked for a reset */
};

struct vm_config {
	unsigned int nr_cpus;
	uint64_t mem_size;
	unsigned long vm_type;
	int console_fd;      /* the UART's output (and a virtio-console's), never waited on */
	int console_in_fd;   /* the UART's input, or -1 */
	uint64_t t0_ns;      /* CLOCK_MONOTONIC when veil started, for timing */
	bool destructive;    /* default VMs: conversions punch, so contents read as zeros */
	bool seccomp;        /* vm_start() confines every thread it starts (sandbox.h) */
	int kvm_fd;          /* > 0: an open /dev/kvm that vm_create() copies (--jail); 0: open it */
	int kick_signal;     /* takes vCPUs out of KVM_RUN; 0: VM_KICK_SIGNAL */
	bool legacy_timer;   /* the board's legacy timer (x86: the PIT): Linux guests */
	bool confidential;   /* arm64: the confidential mode (confidential.h) */
	/* Where the VM's threads log (log.h); NULL: the creator's sink. Must outlive the VM. */
	const struct log_sink *log;
};

struct vcpu_stats {
	uint64_t exits;
	uint64_t io;
	uint64_t mmio;
	uint64_t conversions;      /* guest-requested, by hypercall or memory fault */
	uint64_t conversion_fails;
	uint64_t fault_retries;    /* memory faults that raced a host conversion: run again */
	uint64_t fault_resyncs;    /* repeated ones: the map's state applied to the kernel again */
};

/* What a vCPU's exits were, by kind: vcpu_exit_kind() sorts them; veil.h's VEIL_EXIT_KIND_* follow. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO,
	VCPU_EXIT_MMIO,
	VCPU_EXIT_HYPERCALL,
	VCPU_EXIT_MEMORY_FAULT,
	VCPU_EXIT_KICK,   /* KVM_EXIT_INTR, or KVM_RUN broken out by a signal */
	VCPU_EXIT_HLT,
	VCPU_EXIT_OTHER,  /* system events, shutdowns, errors: the last exit or close to it */
	VCPU_EXIT_KINDS
};

#define VCPU_PROF_DEVS 16 /* devices timed by name; more share the last slot */

/* One device's share of the exit handling (its bus name; "(none)": no device claimed it). */
struct vcpu_prof_dev {
	const char *name;
	unsigned int space; /* enum bus_space */
	uint64_t count;
	uint64_t ns;
};

/*
 * Where a vCPU's time went.  Single writer (its thread), relaxed loads by
 * readers.  count[] always; the times only when vm->profile is set, since
 * they cost two clock reads per exit.
 */
struct vcpu_profile {
	uint64_t count[VCPU_EXIT_KINDS];
	uint64_t ns[VCPU_EXIT_KINDS];   /* from KVM_RUN's return to the exit handled */
	uint64_t run_ns;                /* inside KVM_RUN */
	unsigned int nr_dev;            /* published with release after the slot's name */
	struct vcpu_prof_dev dev[VCPU_PROF_DEVS];
	const char *cur_name;           /* the exit being handled: its device, for the loop */
	unsigned int cur_space;
};

struct vcpu {
	struct vm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	char label[16];          /* "vCPU 3": names the thread in diagnostics */
	struct vcpu_stats stats;
	struct vcpu_profile prof;
	/* KVM's coalesced I/O ring, in this vCPU's mapping (vm_coalesce_io()), or NULL. */
	struct kvm_coalesced_mmio_ring *coalesced;
	uint64_t fault_gpa;      /* the last memory fault, to stop a loop of them */
	unsigned int fault_repeats;
};

struct vm_stats {
	uint64_t unhandled_io;   /* guest accesses no device claimed */
	uint64_t guest_faults;   /* guest-caused problems, logged with a rate limit */
};

struct vm {
	struct vm_config cfg;
	int kvm_fd;          /* /dev/kvm: vm_start() closes it before any thread starts */
	int vm_fd;
	struct arch_vm *arch;
	struct gmem *gmem;
	struct bus *bus;
	struct arch_board *board;
	struct vcpu *vcpus;
	unsigned int nr_vcpus;

	/* Stop protocol: the first request wins; the event thread then kicks and joins. */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;
	int exit_code;
	char stop_reason[256];
	int stop_efd;
	bool threads_stuck;
	bool map_gpa_range_exits; /* KVM_HC_MAP_GPA_RANGE reaches vcpu_handle_exit() */
	/*
	 * The VM type lets a guest choose private or shared by how it accesses
	 * memory, so a memory fault is a conversion request.  False for every
	 * type veil runs today (default, SW_PROTECTED).
	 */
	bool implicit_conversions;
	char model_why[200];
	bool revoke_host_mapping; /* private pages are unmapped from veil itself */
	struct lat *guest_conv_lat; /* if set, guest conversions are timed into it */
	struct vm_coco coco;        /* the confidential mode; coco.on only in it */
	bool profile;              /* vCPUs time KVM_RUN and each exit (vcpu_profile); set before start */
	/* Coalesced writes (arch_coalesced_zones()): applied in order, one vCPU at a time. */
	pthread_mutex_t coalesced_lock;
	uint32_t coalesced_max;    /* entries in the ring */
	uint64_t coalesced_writes; /* applied so far, each an exit saved */
	uint64_t prof_clock_ns;    /* what one clock read cost when profiling was turned on */

	struct vm_virtio *virtio;  /* virtio devices and their I/O thread; NULL without any */
	struct vm_msi msi;         /* irqfd-routed MSI sources */
	struct console_in console_in;
	uint64_t t_first_run_ns;  /* first KVM_RUN, since cfg.t0_ns; 0 before */
	uint64_t t_first_byte_ns; /* first console byte, since cfg.t0_ns; 0 before */
	/*
	 * Guest console output, from the UART (vCPU threads) and a
	 * virtio-console (the I/O thread), on its way to cfg.console_fd.  Only
	 * the event loop writes it out, never waiting: a reader that stalls
	 * fills it, and then the devices hold back (back-pressure) or drop.
	 */
	struct outq console_out;
	int console_efd;          /* console_out went from empty to not: the event loop drains */
	struct vm_stats stats;

	/*
	 * Running (vm_start() to vm_join()): the event thread serves the
	 * console and, once a stop is requested, joins the vCPUs and the I/O
	 * thread, then sets ended.
	 */
	pthread_t event_thread;
	bool event_started;
	bool started;
	bool ended;               /* under stop_lock: every thread vm_start() started is joined */
	/* Pause: vCPUs park at pause_req (under stop_lock, stop_cond) until it clears. */
	bool pause_req;
	unsigned int vcpus_active; /* vCPU threads that may still enter KVM_RUN */
	unsigned int vcpus_parked;
	/* The main thread kind's seccomp fds, taken by vm_start() (sandbox.h). */
	struct vmm_sandbox_fds main_fds;
	int main_fds_ret;
};

int vm_create(const struct vm_config *cfg, struct vm **out) __must_check;
void vm_destroy(struct vm *vm);

/*
 * Starts the I/O thread, every vCPU and the event thread, and returns.
 * -EINVAL if the kick signal has no handler (the process's dispositions are
 * its owner's); other errors leave the VM stopping with VM_EXIT_FAILURE,
 * and vm_join() still must be called.
 */
int vm_start(struct vm *vm) __must_check;
/* Waits up to ms (-1: forever) for every thread to be joined; 0, or -ETIMEDOUT. */
int vm_join(struct vm *vm, int ms) __must_check;
/* Parks every vCPU outside KVM_RUN; returns once all are parked.  -EINVAL if not running. */
int vm_pause(struct vm *vm) __must_check;
int vm_resume(struct vm *vm) __must_check;
/* Loads the main thread's seccomp filter on the caller, after vm_start() (cfg.seccomp only). */
int vm_confine_caller(struct vm *vm) __must_check;

/* Waits up to ms for a stop request; returns vm_stopping(). */
bool vm_wait_stop(struct vm *vm, unsigned int ms);
/* The console queue in front of fd, which must be cfg.console_fd; NULL otherwise. */
struct outq *vm_console_queue(struct vm *vm, int fd);
/* Guest console bytes lost while it ran: written with no room (the reader did not keep up). */
uint64_t vm_console_dropped(struct vm *vm);
/* Guest console bytes the reader had not taken when the VM stopped. */
uint64_t vm_console_unwritten(struct vm *vm);

/* Asks the VM to stop with an exit code; only the first request counts. Thread-safe. */
void vm_request_stop(struct vm *vm, int exit_code, const char *fmt, ...) __printf(3, 4);
bool vm_stopping(struct vm *vm);

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t vm_now_ns(void);
/* Records *slot = now - t0 once, the first time it is called for that slot. */
void vm_mark_time(struct vm *vm, uint64_t *slot);


/* vCPU side (vcpu.c; exit.h declares what exit.c answers). */
int vcpu_create(struct vm *vm, unsigned int index, struct vcpu *vcpu) __must_check;
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu) __must_check;
/* Makes a vCPU leave KVM_RUN now and never re-enter it. */
void vcpu_kick(struct vcpu *vcpu);

/* The fds of vm (vcpu's own when vcpu is not NULL) for the seccomp filters; -ENOSPC if guest memory has too many. */
int vmm_sandbox_fds_of(struct vm *vm, const struct vcpu *vcpu, struct vmm_sandbox_fds *fds)
	__must_check;

/*
 * What the VM needs of its devices (the registry, devices.c): it declares
 * them, the registry implements them, so the dependency points one way.
 */
int vm_virtio_start(struct vm *vm) __must_check; /* the I/O thread, before the vCPUs */
int vm_virtio_stop(struct vm *vm) __must_check;  /* after they joined; -ETIMEDOUT: stuck */
/* Destroys every device (the I/O thread's ring first), in reverse attach order. */
void vm_devices_destroy(struct vm *vm);
/*
 * Console input for the virtio-console, if the VM has one: the bytes the
 * guest had receive buffers for (the caller keeps the rest and tries again).
 * Returns -1 without a virtio-console.
 */
long vm_vconsole_input(struct vm *vm, const uint8_t *buf, size_t len);
/* Output has room again: a virtio-console that stopped transmitting for want of it goes on. */
void vm_vconsole_tx_ready(struct vm *vm);

#endif
