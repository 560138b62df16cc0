/* veil's command line: parse and validate, then hand over to the VM. Only here may we die. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "caps.h"
#include "fw.h"
#include "kvm_uapi.h"
#include "log.h"
#include "parse.h"
#include "vm.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

#define DEFAULT_MEM (64ULL << 20)

static const char usage_main[] =
	"usage: veil <command> [options]\n"
	"\n"
	"veil is a virtual machine monitor for KVM whose guest RAM comes entirely\n"
	"from guest_memfd.\n"
	"\n"
	"commands:\n"
	"  run    run a guest (see veil run --help)\n"
	"  caps   show what this host's KVM offers (see veil caps --help)\n"
	"\n"
	"options:\n"
	"  -h, --help     show this help\n"
	"  -V, --version  show the version\n"
	"\n"
	"exit codes: 0 the guest stopped cleanly, 1 the guest or the VM failed,\n"
	"2 bad usage or configuration, 3 the guest reset, 128+N stopped by signal N.\n";

static const char usage_run[] =
	"usage: veil run [options]\n"
	"\n"
	"Runs a firmware guest on every vCPU, its RAM all guest_memfd.\n"
	"\n"
	"options:\n"
	"  -f, --firmware NAME|PATH  built-in firmware (selftest) or a flat x86-64 image\n"
	"                            loaded at 1 MiB; default: selftest\n"
	"  -c, --cpus N              number of vCPUs, 1 to KVM's maximum; default: 1\n"
	"  -m, --mem SIZE            guest RAM in bytes, with optional K, M or G suffix;\n"
	"                            a multiple of 4K, at least 2M; default: 64M\n"
	"  -q, --quiet               print no summary after the VM stops\n"
	"  -v, --verbose             more log output (repeat for debug)\n"
	"  -h, --help                show this help\n"
	"\n"
	"exit codes: 0 the guest stopped cleanly, 1 the guest or the VM failed,\n"
	"2 bad usage or configuration, 3 the guest reset, 128+N stopped by signal N.\n";

static const char usage_caps[] =
	"usage: veil caps [--json]\n"
	"\n"
	"Probes /dev/kvm: API version, guest_memfd flags, VM types, memory\n"
	"attributes, hypercall exits, memory-fault info, whether revoking the\n"
	"host mapping of guest_memfd is safe (tried with a tiny guest), and the\n"
	"conversion model each VM type would get.\n"
	"\n"
	"options:\n"
	"  --json      one JSON object instead of text\n"
	"  -h, --help  show this help\n";

struct run_opts {
	const char *firmware;
	unsigned int nr_cpus;
	uint64_t mem_size;
	bool quiet;
};

__attribute__((noreturn, format(printf, 2, 3))) static void die_usage(const char *cmd,
								       const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "veil%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(VM_EXIT_USAGE);
}

static uint64_t host_mem_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : UINT64_MAX;
}

static uint64_t opt_mem(const char *arg)
{
	uint64_t v;
	int ret = parse_size(arg, &v);

	if (ret == -ERANGE)
		die_usage("run", "--mem '%s': too large", arg);
	if (ret)
		die_usage("run", "--mem '%s': not a size (bytes, or a number with K, M or G)", arg);
	if (v == 0)
		die_usage("run", "--mem '%s': must not be zero", arg);
	if (v % GMEM_PAGE_SIZE)
		die_usage("run", "--mem '%s': not a multiple of 4K", arg);
	if (v < GMEM_MIN_SIZE)
		die_usage("run", "--mem '%s': must be at least 2M", arg);
	if (v > host_mem_bytes())
		die_usage("run", "--mem '%s': more than this host's %llu MiB of memory", arg,
			  (unsigned long long)(host_mem_bytes() >> 20));
	return v;
}

static unsigned int opt_cpus(const char *arg)
{
	uint64_t v;

	if (parse_uint(arg, &v))
		die_usage("run", "--cpus '%s': not a number", arg);
	if (v == 0)
		die_usage("run", "--cpus '%s': a VM needs at least 1 vCPU", arg);
	if (v > 65536)
		die_usage("run", "--cpus '%s': too many", arg);
	return (unsigned int)v;
}

static void parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "firmware", required_argument, NULL, 'f' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, verbose = 0;

	*o = (struct run_opts){ .firmware = "selftest", .nr_cpus = 1, .mem_size = DEFAULT_MEM };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:c:m:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->firmware = optarg; break;
		case 'c': o->nr_cpus = opt_cpus(optarg); break;
		case 'm': o->mem_size = opt_mem(optarg); break;
		case 'q': o->quiet = true; break;
		case 'v': verbose++; break;
		case 'h': fputs(usage_run, stdout); exit(0);
		case ':': die_usage("run", "option '%s' needs a value", argv[optind - 1]);
		default: die_usage("run", "unknown option '%s' (see veil run --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("run", "unexpected argument '%s' (see veil run --help)", argv[optind]);
	log_set_level(verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN);
}

static uint64_t boot_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	return seed;
}

static void print_summary(struct vm *vm, const struct run_opts *o, const char *verdict)
{
	struct gmem_stats gs;
	uint64_t exits = 0, io = 0;
	unsigned int i;

	if (o->quiet)
		return;
	gmem_get_stats(vm->gmem, &gs);
	for (i = 0; i < vm->nr_vcpus; i++) {
		exits += vm->vcpus[i].stats.exits;
		io += vm->vcpus[i].stats.io;
	}
	fprintf(stderr,
		"veil: %u vCPUs, %llu MiB of guest_memfd RAM (MMAP|INIT_SHARED), firmware '%s'\n"
		"veil: stopped: %s (exit code %d)\n"
		"veil: %llu exits (%llu port I/O), %llu unhandled device accesses, "
		"%llu refused private accesses\n",
		vm->nr_vcpus, (unsigned long long)(o->mem_size >> 20), o->firmware,
		vm->stop_reason, vm->exit_code, (unsigned long long)exits, (unsigned long long)io,
		(unsigned long long)vm->stats.unhandled_io, (unsigned long long)gs.refused_private);
	if (verdict)
		fprintf(stderr, "veil: %s\n", verdict);
}

static int run_vm(const struct run_opts *o, const struct fw_image *img)
{
	struct vm_config cfg = {
		.nr_cpus = o->nr_cpus, .mem_size = o->mem_size, .vm_type = KVM_X86_DEFAULT_VM,
		.console_fd = STDOUT_FILENO, .handle_signals = true,
	};
	char verdict[320] = "", why[256];
	struct fw_boot fb;
	struct vm *vm;
	int ret, code;

	ret = vm_create(&cfg, &vm);
	if (ret) {
		fprintf(stderr, "veil run: could not create the VM: %s\n", strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	ret = fw_boot(vm, img, boot_seed(), &fb);
	if (ret) {
		fprintf(stderr, "veil run: loading firmware '%s': %s\n", o->firmware, strerror(-ret));
		vm_destroy(vm);
		return VM_EXIT_FAILURE;
	}
	code = vm_run(vm);
	if (code == VM_EXIT_POWEROFF && img->selftest) {
		if (fw_selftest_verify(vm, &fb, why, sizeof(why))) {
			snprintf(verdict, sizeof(verdict), "selftest host check FAILED: %s", why);
			code = VM_EXIT_FAILURE;
		} else {
			snprintf(verdict, sizeof(verdict),
				 "selftest host check passed: %u result pages of 4 KiB match, read back "
				 "through the guest_memfd mapping", vm->nr_vcpus);
		}
	}
	print_summary(vm, o, verdict[0] ? verdict : NULL);
	if (code != VM_EXIT_POWEROFF && o->quiet)
		fprintf(stderr, "veil: stopped: %s\n", vm->stop_reason);
	vm_destroy(vm);
	return code;
}

static int cmd_run(int argc, char **argv)
{
	unsigned int max_vcpus;
	struct gmem_layout layout;
	struct fw_plan plan;
	struct run_opts o;
	struct fw_image img;
	char err[160] = "";
	int kvm_fd, ret;

	parse_run(argc, argv, &o);
	ret = fw_image_open(o.firmware, &img, err, sizeof(err));
	if (ret)
		die_usage("run", "--firmware '%s': %s", o.firmware, err[0] ? err : strerror(-ret));
	if (gmem_layout_compute(arch_mem_map(), o.mem_size, &layout) ||
	    fw_plan_compute(&layout, o.nr_cpus, img.size, &plan))
		die_usage("run", "--mem %llu MiB is too small for firmware '%s' (%zu bytes) on %u vCPUs: "
			  "needs at least %llu MiB", (unsigned long long)(o.mem_size >> 20), o.firmware,
			  img.size, o.nr_cpus,
			  (unsigned long long)(fw_plan_min_mem(o.nr_cpus, img.size) >> 20));
	ret = kvm_open(&kvm_fd, &max_vcpus);
	if (ret) {
		fprintf(stderr, "veil run: cannot use /dev/kvm: %s\n", strerror(-ret));
		fw_image_close(&img);
		return VM_EXIT_FAILURE;
	}
	close(kvm_fd);
	if (o.nr_cpus > max_vcpus)
		die_usage("run", "--cpus '%u': this KVM allows at most %u vCPUs", o.nr_cpus, max_vcpus);
	ret = run_vm(&o, &img);
	fw_image_close(&img);
	return ret;
}

static int cmd_caps(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false;
	struct caps c;
	int ch, ret;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else if (ch == 'h') {
			fputs(usage_caps, stdout);
			return 0;
		} else
			die_usage("caps", "unknown option '%s' (see veil caps --help)", argv[optind - 1]);
	}
	if (optind < argc)
		die_usage("caps", "unexpected argument '%s'", argv[optind]);
	ret = caps_probe(&c);
	if (ret) {
		fprintf(stderr, "veil caps: cannot use /dev/kvm: %s\n", strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	if (json)
		caps_print_json(&c, stdout);
	else
		caps_print(&c, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!cmd) {
		fputs(usage_main, stderr);
		return VM_EXIT_USAGE;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("veil %s\n", VEIL_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "caps"))
		return cmd_caps(argc - 1, argv + 1);
	die_usage(NULL, "unknown command '%s' (see veil --help)", cmd);
}
