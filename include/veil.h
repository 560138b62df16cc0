/*
 * libveil: a virtual machine monitor for KVM whose guest RAM comes entirely
 * from guest_memfd, as a library.
 *
 * A VM is built from one struct veil_config by veil_vm_create(), started by
 * veil_vm_start() (its threads run; the call returns), and watched with
 * veil_vm_wait().  While it runs it can be paused, resumed, stopped, its
 * memory converted between private and shared, discarded, and inspected.
 *
 * Rules libveil keeps, so it can live inside another program:
 * - It never exits the process, never writes to stderr unless no log
 *   callback is given, and has no global state: two VMs can live in one
 *   process, each with its own configuration and log callback.
 * - It never changes the process's signal dispositions or signal mask.  vCPU
 *   threads are taken out of KVM_RUN with a signal the configuration names
 *   (kick_signal); its handler must be installed before veil_vm_start(),
 *   by the embedder or with veil_install_kick_handler(), or the start
 *   fails with -EINVAL.  The threads libveil starts block every other signal.
 * - Every function returns 0 (or a count) on success and a negative errno
 *   on failure; where a struct veil_error is passed, its message says why in
 *   words and config_fault says whether the configuration was at fault (a
 *   program would report it as a usage error) or the host or the guest.
 *
 * Versioning: VEIL_API_VERSION is the version of this header; a program
 * sets struct veil_config's api_version to it (veil_config_init() does).
 * The shared library's SONAME is libveil.so.0 and changes whenever a
 * function's signature or a public struct's layout changes incompatibly.
 */
#ifndef VEIL_H
#define VEIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VEIL_API_VERSION 1

#if defined(__GNUC__) && defined(VEIL_BUILDING_LIB)
#define VEIL_EXPORT __attribute__((visibility("default")))
#else
#define VEIL_EXPORT
#endif

#define VEIL_MAX_DISKS 4
#define VEIL_ERROR_LEN 256

/* A VM: opaque; every call that takes one is safe from any thread unless it says otherwise. */
struct veil_vm;

/* Why a call failed, in words. */
struct veil_error {
	bool config_fault;           /* the configuration is at fault (a usage error), not the host */
	char msg[VEIL_ERROR_LEN];
};

enum veil_log_level { VEIL_LOG_ERR, VEIL_LOG_WARN, VEIL_LOG_INFO, VEIL_LOG_DEBUG };

/* Receives one message, without a trailing newline; called from any of the VM's threads. */
typedef void (*veil_log_fn)(void *opaque, enum veil_log_level level, const char *msg);

enum veil_vm_type {
	VEIL_VM_DEFAULT = 0,      /* KVM's default VM: veil enforces private memory itself */
	VEIL_VM_SW_PROTECTED = 1, /* KVM_X86_SW_PROTECTED_VM: the kernel enforces it */
};

enum veil_transport { VEIL_TRANSPORT_MMIO, VEIL_TRANSPORT_PCI };

struct veil_disk {
	const char *path;  /* opened by veil_vm_create() unless fd >= 0 */
	int fd;            /* >= 0: an open file or block device; veil takes a copy */
	bool read_only;
	bool direct;       /* O_DIRECT */
	unsigned int queues; /* virtio-blk request queues; 0: one per vCPU (at most 4) */
};

/* What the guest runs: one of a firmware image or a Linux kernel. */
struct veil_boot {
	/* A built-in firmware name ("selftest", "conversions", ...) or the path of a flat image. */
	const char *firmware;
	/* Or a Linux kernel (x86: bzImage or ELF vmlinux), by path or by contents. */
	const char *kernel;
	const void *kernel_data;   /* if set, used instead of reading kernel */
	size_t kernel_size;
	const char *initrd;
	const void *initrd_data;   /* if set, used instead of reading initrd */
	size_t initrd_size;
	const char *cmdline;       /* NULL: "console=ttyS0" */
	unsigned int check_stride; /* firmware "conversions": check one qword in N (1-512); 0: 1 */
	uint64_t seed;             /* firmware PRNG seed; 0: random */
	/* If set, a flat image's contents, used instead of reading firmware (which names it). */
	const void *firmware_data;
	size_t firmware_size;
};

struct veil_config {
	unsigned int api_version;   /* VEIL_API_VERSION */
	unsigned int nr_cpus;       /* default 1 */
	uint64_t mem_size;          /* bytes, a multiple of 4 KiB, at least 2 MiB; default 64 MiB */
	enum veil_vm_type vm_type;
	bool destructive;           /* default VMs: conversions punch, so contents read as zeros */
	struct veil_boot boot;
	enum veil_transport transport;
	unsigned int nr_disks;
	struct veil_disk disks[VEIL_MAX_DISKS];
	bool balloon;               /* virtio-balloon: free page reporting and veil_vm_set_balloon() */
	bool rng;                   /* virtio-rng fed by getrandom(2) */
	bool virtio_console;        /* a virtio-console on console_out_fd, besides the UART */
	int console_out_fd;         /* guest console output; -1: discarded.  Never waited on. */
	int console_in_fd;          /* guest console input; -1: none */
	bool seccomp;               /* each thread libveil starts loads its seccomp filter */
	int kick_signal;            /* takes vCPUs out of KVM_RUN; default SIGUSR1 (see above) */
	int kvm_fd;                 /* >= 0: an open /dev/kvm veil takes a copy of; -1: open it */
	veil_log_fn log;            /* NULL: messages go to stderr */
	void *log_opaque;
	enum veil_log_level log_level; /* default VEIL_LOG_WARN */
	/*
	 * arm64, Linux kernels: all RAM private before the first vCPU runs, the guest told it
	 * may share (pKVM's calls), devices offered VIRTIO_F_ACCESS_PLATFORM, a bounce pool on
	 * the command line, a launch digest (docs/confidential.md).  Elsewhere a config fault.
	 */
	bool confidential;
	const char *launch_manifest; /* confidential: write the measured stream here; NULL: don't */
};

/* Fills cfg with the defaults above; a program then sets what it needs. */
VEIL_EXPORT void veil_config_init(struct veil_config *cfg);

/*
 * Builds a VM: opens /dev/kvm, creates the VM, its memory, vCPUs and
 * devices, and loads the guest.  Nothing runs yet.  On failure nothing is
 * left behind (no fd, thread, mapping or registration).
 */
VEIL_EXPORT int veil_vm_create(const struct veil_config *cfg, struct veil_vm **out,
			       struct veil_error *err);

/*
 * Installs an empty handler for signo (SA_RESTART unset), which is all a
 * kick signal needs.  For programs that do not use signo themselves.
 */
VEIL_EXPORT int veil_install_kick_handler(int signo);

/*
 * Installs a SIGSYS handler that, when a seccomp filter refuses a system
 * call, names the thread and the call on stderr and exits the process with
 * 1.  Without it, such a call kills the process with SIGSYS.  Optional, for
 * programs that do not handle SIGSYS themselves; veil's CLI installs it.
 */
VEIL_EXPORT int veil_install_seccomp_reporter(void);

/* Starts the VM's threads and returns.  -EINVAL if the kick signal has no handler. */
VEIL_EXPORT int veil_vm_start(struct veil_vm *vm, struct veil_error *err);

enum veil_state {
	VEIL_STATE_CREATED,  /* built, not started */
	VEIL_STATE_RUNNING,
	VEIL_STATE_PAUSED,
	VEIL_STATE_STOPPED,  /* the guest or a veil_vm_stop() ended it; veil_vm_wait() returns */
};

/* How a VM ended.  code follows veil's exit codes. */
enum veil_exit_code {
	VEIL_EXIT_POWEROFF = 0, /* the guest powered off, or veil_vm_stop() with 0 */
	VEIL_EXIT_FAILURE = 1,  /* the guest or the VM failed */
	VEIL_EXIT_USAGE = 2,    /* configuration */
	VEIL_EXIT_RESET = 3,    /* the guest asked for a reset */
};

struct veil_exit {
	int code;
	char reason[VEIL_ERROR_LEN];
};

/*
 * Waits up to timeout_ms (-1: forever) for the VM to stop; 0 with *exit
 * filled once it has (its threads joined), -ETIMEDOUT if it still runs.
 */
VEIL_EXPORT int veil_vm_wait(struct veil_vm *vm, int timeout_ms, struct veil_exit *exit);
/* An eventfd-like fd that becomes readable when the VM stops, for poll(2); owned by the VM. */
VEIL_EXPORT int veil_vm_stop_fd(struct veil_vm *vm);
/* Asks the VM to stop with code; the first request (the guest's or a caller's) wins. */
VEIL_EXPORT int veil_vm_stop(struct veil_vm *vm, int code, const char *reason);
/* Takes every vCPU out of KVM_RUN and keeps it out; returns once all are out. */
VEIL_EXPORT int veil_vm_pause(struct veil_vm *vm);
VEIL_EXPORT int veil_vm_resume(struct veil_vm *vm);
VEIL_EXPORT enum veil_state veil_vm_state(struct veil_vm *vm);

/*
 * Loads the filter of the calling thread ("main": poll, the console,
 * waiting) on it, if the configuration asks for seccomp.  For a program
 * whose thread only waits for the VM from here on, as veil's CLI does.
 */
VEIL_EXPORT int veil_vm_confine_caller(struct veil_vm *vm, struct veil_error *err);

/*
 * Converts [gpa, gpa + size) (4 KiB-aligned, inside one RAM range) to
 * private or shared while the guest runs, synchronized with every device
 * reference into it; all or nothing.
 */
VEIL_EXPORT int veil_vm_convert(struct veil_vm *vm, uint64_t gpa, uint64_t size, bool to_private,
				struct veil_error *err);
/* Frees the contents of [gpa, gpa + size); the guest reads zeros there next. */
VEIL_EXPORT int veil_vm_discard(struct veil_vm *vm, uint64_t gpa, uint64_t size,
				struct veil_error *err);
/* Asks the guest's balloon for bytes (a multiple of 4 KiB); -ENODEV without a balloon. */
VEIL_EXPORT int veil_vm_set_balloon(struct veil_vm *vm, uint64_t bytes);

struct veil_range {
	uint64_t gpa;
	uint64_t size;
};

#define VEIL_MAX_RANGES 4

struct veil_info {
	enum veil_state state;
	enum veil_vm_type vm_type;
	unsigned int nr_cpus;
	uint64_t mem_size;
	const char *model;           /* "host-enforced", "out-of-place" or "in-place" */
	bool keeps_contents;         /* conversions keep the page's contents */
	bool revokes_host_mapping;   /* private pages are unmapped from veil itself */
	unsigned int nr_ranges;      /* guest RAM */
	struct veil_range ranges[VEIL_MAX_RANGES];
	uint64_t first_run_ns;       /* CLOCK_MONOTONIC of the first KVM_RUN; 0 before it */
	uint64_t first_output_ns;    /* CLOCK_MONOTONIC of the guest's first console byte; 0 before */
};

VEIL_EXPORT int veil_vm_info(struct veil_vm *vm, struct veil_info *info);

/* Whole-VM counters, monotonic while the VM exists; they do not move while it is paused. */
struct veil_counters {
	uint64_t exits;               /* vCPU exits, all kinds */
	uint64_t io_exits;
	uint64_t mmio_exits;
	uint64_t guest_conversions;   /* asked by the guest (hypercall or memory fault) */
	uint64_t guest_conversion_fails;
	uint64_t host_conversions;    /* every conversion that completed, guest's or host's */
	uint64_t conversion_errors;
	uint64_t punches;
	uint64_t retries;
	uint64_t eagain;
	uint64_t refused_private;     /* host accesses refused because the page was private */
	uint64_t unhandled_io;        /* guest accesses no device claimed */
	uint64_t guest_faults;
	uint64_t console_dropped;     /* guest console bytes lost to a reader that did not keep up */
	/* The confidential mode (all 0 outside it): the guest's MEM_SHARE/MEM_UNSHARE that converted. */
	uint64_t guest_shares;
	uint64_t guest_unshares;
	uint64_t share_p50_ns, share_p99_ns;
	uint64_t unshare_p50_ns, unshare_p99_ns;
	uint64_t refused_device;      /* device accesses to private pages, refused (I3) */
	uint64_t ram_bytes;
	uint64_t private_bytes;       /* RAM private now */
	uint64_t private_at_launch;   /* RAM private when the first vCPU was let run */
};

VEIL_EXPORT int veil_vm_counters(struct veil_vm *vm, struct veil_counters *c);
/* The confidential mode's launch digest, 64 hex digits; NULL outside it. */
VEIL_EXPORT const char *veil_vm_launch_digest(struct veil_vm *vm);

/* Called once per device counter: device ("virtio-blk0"), counter name ("reads"), value. */
typedef void (*veil_counter_fn)(void *opaque, const char *device, const char *name,
				uint64_t value);
VEIL_EXPORT int veil_vm_device_counters(struct veil_vm *vm, veil_counter_fn fn, void *opaque);

/* The attribute map as maximal runs: called once per extent, in GPA order. */
typedef void (*veil_extent_fn)(void *opaque, uint64_t gpa, uint64_t size, bool is_private);
struct veil_memory {
	uint64_t private_bytes;
	uint64_t pins;                /* references devices and veil hold now */
	uint64_t pinned_bytes;
	uint64_t converting_bytes;    /* conversions and punches in flight */
	uint64_t ram_bytes;           /* all of guest RAM */
};
VEIL_EXPORT int veil_vm_memory(struct veil_vm *vm, struct veil_memory *m, veil_extent_fn fn,
			       void *opaque);

/*
 * veil's own account of the VM in words, one line per call of fn (no
 * trailing newline): each device's counters, memory-fault retries, the
 * revocation budget, console output lost.  What `veil run` prints after its
 * summary; for logs and humans, not for parsing (use the counters).
 */
typedef void (*veil_line_fn)(void *opaque, const char *line);
VEIL_EXPORT int veil_vm_report(struct veil_vm *vm, veil_line_fn fn, void *opaque);

/* The kinds of vCPU exit veil_exit_profile counts. */
enum veil_exit_kind {
	VEIL_EXIT_KIND_IO,            /* port I/O */
	VEIL_EXIT_KIND_MMIO,
	VEIL_EXIT_KIND_HYPERCALL,
	VEIL_EXIT_KIND_MEMORY_FAULT,
	VEIL_EXIT_KIND_KICK,          /* KVM_RUN broken out by a kick (pause, stop, immediate exit) */
	VEIL_EXIT_KIND_HLT,
	VEIL_EXIT_KIND_OTHER,         /* system events, shutdown, errors */
	VEIL_EXIT_KINDS
};

/*
 * Where the vCPUs' time went, summed over them.  Counts always; times only
 * when veil_vm_set_profiling() turned profiling on before the start (it
 * costs two clock reads per exit, clock_read_ns each).
 */
struct veil_exit_profile {
	bool timed;                     /* the _ns fields below are filled */
	uint64_t clock_read_ns;         /* one CLOCK_MONOTONIC read, measured when turned on */
	uint64_t run_ns;                /* inside KVM_RUN: the guest, and KVM's own exit handling */
	uint64_t handle_ns;             /* in veil, from KVM_RUN's return to the exit handled */
	uint64_t count[VEIL_EXIT_KINDS];
	uint64_t ns[VEIL_EXIT_KINDS];   /* handle_ns by kind */
	uint64_t coalesced_writes;      /* writes KVM queued instead of exiting (not in count[]) */
};

/* Before veil_vm_start(): time every KVM_RUN and exit (on) or not; -EBUSY once started. */
VEIL_EXPORT int veil_vm_set_profiling(struct veil_vm *vm, bool on);
VEIL_EXPORT int veil_vm_exit_profile(struct veil_vm *vm, struct veil_exit_profile *p);
/*
 * The profile in words, one line per call of fn: the totals, each exit kind
 * seen, and with profiling on each device's share of the I/O exits.  For
 * logs and humans (`veil run --timing` prints it); programs use the struct.
 */
VEIL_EXPORT int veil_vm_profile_report(struct veil_vm *vm, veil_line_fn fn, void *opaque);

/*
 * For firmware with a host-side check (selftest): after the VM stopped,
 * 0 if the guest's results check out, -EIO with why set if not, -ENOENT if
 * the firmware has no such check.
 */
VEIL_EXPORT int veil_vm_verify(struct veil_vm *vm, char *why, size_t len);

/* Joins what still runs (stopping it first) and frees everything. */
VEIL_EXPORT void veil_vm_destroy(struct veil_vm *vm);

VEIL_EXPORT const char *veil_version(void);

#ifdef __cplusplus
}
#endif

#endif
