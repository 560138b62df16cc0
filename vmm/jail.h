/*
 * veil run --jail: new namespaces, a pivot_root into an empty directory, no
 * privileges (Firecracker's jailer, done in-process).  Everything veil reads
 * by path must be open before jail_enter(): /dev/kvm, the kernel, initrd and
 * disks.
 */
#ifndef VEIL_JAIL_H
#define VEIL_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compiler.h"

struct jail_cfg {
	const char *dir;        /* the new root; NULL: no jail */
	bool set_user;          /* --user given: drop to uid:gid, else stay uid 0 */
	uid_t uid;
	gid_t gid;
	unsigned int nr_cpus;   /* sizes RLIMIT_NPROC and RLIMIT_NOFILE */
	uint64_t max_file_size; /* the largest file veil writes or sizes; RLIMIT_FSIZE adds 1 GiB */
};

/* --user UID:GID: two decimal numbers, neither -1; 0 or -EINVAL. */
int jail_parse_user(const char *arg, uid_t *uid, gid_t *gid) __must_check;

/* DIR must be an existing directory other than /; 0 or -errno with err set. */
int jail_check_dir(const char *dir, char *err, size_t errlen) __must_check;

/* Raises cfg->max_file_size to the size of fd's file or block device, which veil writes. */
void jail_allow_file(struct jail_cfg *cfg, int fd);

/*
 * Enters new PID, IPC, UTS and network namespaces and forks.  The parent
 * never returns: it forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the
 * child and exits with the child's code (128+N if signal N killed it).  The
 * child (PID 1 of its namespace, those four signals blocked so that they
 * wait for the CLI's signalfd) enters a new mount namespace, pivots into
 * cfg->dir, sets its rlimits, drops every capability, its groups and, with
 * set_user, its ids, sets no_new_privs and returns 0.  The process must be
 * single-threaded.  -errno with err set on failure: -EPERM before the fork
 * means the caller may not create namespaces.
 */
int jail_enter(const struct jail_cfg *cfg, char *err, size_t errlen) __must_check;

#endif
