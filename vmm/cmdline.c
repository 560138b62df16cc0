/* What veil's commands share: option values checked against veil.h's rules, and error messages. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cmdline.h"
#include "kvm.h"
#include "parse.h"

void die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "veil%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(VEIL_EXIT_USAGE);
}

static uint64_t host_mem_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : UINT64_MAX;
}

uint64_t opt_mem(const char *cmd, const char *arg)
{
	uint64_t v;
	int ret = parse_size(arg, &v);

	if (ret == -ERANGE)
		die_usage(cmd, "--mem '%s': too large", arg);
	if (ret)
		die_usage(cmd, "--mem '%s': not a size (bytes, or a number with K, M, G or T)", arg);
	if (v == 0)
		die_usage(cmd, "--mem '%s': must not be zero", arg);
	if (v % CLI_PAGE_SIZE)
		die_usage(cmd, "--mem '%s': not a multiple of 4K", arg);
	if (v < CLI_MIN_MEM)
		die_usage(cmd, "--mem '%s': must be at least 2M", arg);
	if (v > host_mem_bytes())
		die_usage(cmd, "--mem '%s': more than this host's %llu MiB of memory", arg,
			  (unsigned long long)(host_mem_bytes() >> 20));
	return v;
}

/* KVM's most vCPUs per VM, or 0 when /dev/kvm cannot be asked. */
static unsigned int host_max_vcpus(void)
{
	unsigned int max;
	int fd;

	if (kvm_open(&fd, &max))
		return 0;
	close(fd);
	return max;
}

unsigned int opt_cpus(const char *cmd, const char *arg)
{
	unsigned int max = host_max_vcpus();
	uint64_t v;
	int ret = parse_uint(arg, &v);

	if (ret == -EINVAL && arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9')
		die_usage(cmd, "--cpus '%s': must be at least 1", arg);
	if (ret == -EINVAL)
		die_usage(cmd, "--cpus '%s': not a number (a count of vCPUs, at least 1)", arg);
	if (!ret && v == 0)
		die_usage(cmd, "--cpus '%s': a VM needs at least 1 vCPU", arg);
	if (max && (ret || v > max))
		die_usage(cmd, "--cpus '%s': too many: this host's KVM runs at most %u vCPUs per VM",
			  arg, max);
	if (ret || v > CLI_MAX_CPUS)
		die_usage(cmd, "--cpus '%s': too many: veil runs at most %u vCPUs", arg, CLI_MAX_CPUS);
	return (unsigned int)v;
}

/*
 * /dev/kvm, opened once to see that it can be: a user outside the kvm group
 * is told what to do (exit 2, a configuration problem), not just EACCES.
 */
void cli_check_kvm(const char *cmd)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return;
	}
	if (errno == EACCES || errno == EPERM)
		die_usage(cmd, "cannot use /dev/kvm: %s; add your user to the 'kvm' group "
			  "(sudo usermod -aG kvm $USER, then log in again)", strerror(errno));
	if (errno == ENOENT)
		die_usage(cmd, "cannot use /dev/kvm: %s: this host has no KVM (load kvm_intel or "
			  "kvm_amd, or enable virtualization in the firmware)", strerror(errno));
}

unsigned long opt_vm_type(const char *cmd, const char *arg)
{
	if (!strcmp(arg, "default"))
		return VEIL_VM_DEFAULT;
	if (!strcmp(arg, "sw-protected"))
		return VEIL_VM_SW_PROTECTED;
	die_usage(cmd, "--vm-type '%s': not default or sw-protected", arg);
}

const char *cli_signal_name(int sig)
{
	static __thread char name[16];
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(name, sizeof(name), "SIG%s", abbrev);
	else
		snprintf(name, sizeof(name), "signal %d", sig);
	return name;
}

uint64_t boot_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	return seed;
}

/*
 * libveil names the configuration field at fault ("firmware 'x': ..."); the
 * CLI's users know it as an option, so it gets its dashes back.
 */
void print_veil_error_of(const char *cmd, const struct veil_error *err)
{
	static const char *const fields[] = {
		"firmware '", "kernel '", "initrd '", "disk '", "disk:", "mem ", "cpus '",
		"vm-type ", "transport ", "balloon:", "rng:", "console virtio:", "check-stride ",
	};
	const char *dashes = "";

	for (unsigned int i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!strncmp(err->msg, fields[i], strlen(fields[i])))
			dashes = "--";
	}
	fprintf(stderr, "veil %s: %s%s\n", cmd, dashes, err->msg);
}
