/* What veil's commands share: option values checked against veil.h's rules, and error messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cmdline.h"
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
		die_usage(cmd, "--mem '%s': not a size (bytes, or a number with K, M or G)", arg);
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

unsigned int opt_cpus(const char *cmd, const char *arg)
{
	uint64_t v;

	if (parse_uint(arg, &v))
		die_usage(cmd, "--cpus '%s': not a number", arg);
	if (v == 0)
		die_usage(cmd, "--cpus '%s': a VM needs at least 1 vCPU", arg);
	if (v > 65536)
		die_usage(cmd, "--cpus '%s': too many", arg);
	return (unsigned int)v;
}

unsigned long opt_vm_type(const char *cmd, const char *arg)
{
	if (!strcmp(arg, "default"))
		return VEIL_VM_DEFAULT;
	if (!strcmp(arg, "sw-protected"))
		return VEIL_VM_SW_PROTECTED;
	die_usage(cmd, "--vm-type '%s': not default or sw-protected", arg);
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
