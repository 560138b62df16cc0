/* What veil's commands share: option parsing that exits 2 with a message, and error printing. */
#ifndef VEIL_CMDLINE_H
#define VEIL_CMDLINE_H

#include <stdint.h>

#include "veil.h"

#define CLI_PAGE_SIZE 4096ULL        /* guest RAM's granule (veil.h: struct veil_config) */
#define CLI_MIN_MEM (2ULL << 20)     /* the smallest guest RAM veil.h accepts */
#define DEFAULT_MEM (64ULL << 20)
#define CLI_MAX_CPUS 65536U          /* without /dev/kvm to ask */

/* "veil CMD: message" on stderr, then exit 2.  Only the command line may end veil so. */
__attribute__((noreturn, format(printf, 2, 3))) void die_usage(const char *cmd, const char *fmt, ...);
/* --mem, --cpus and --vm-type, checked; a bad value dies with a message. */
uint64_t opt_mem(const char *cmd, const char *arg);
unsigned int opt_cpus(const char *cmd, const char *arg);
unsigned long opt_vm_type(const char *cmd, const char *arg);
/* After a failure: if /dev/kvm cannot be opened for want of permission or of KVM, dies (2) saying what to do. */
void cli_check_kvm(const char *cmd);
/* "SIGTERM": what a user passes to kill(1), not strsignal()'s "Terminated". */
const char *cli_signal_name(int sig);
/* A random seed for the guest's PRNG streams. */
uint64_t boot_seed(void);
/* libveil's error for command cmd, with the option's dashes where it names one. */
void print_veil_error_of(const char *cmd, const struct veil_error *err);

/* The stress and caps commands (cmd_probe.c). */
int cmd_stress(int argc, char **argv, uint64_t t0_ns);
int cmd_caps(int argc, char **argv);

#endif
