/* veil's command line: parse and validate, then hand over to the VM. Only here may we die. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "api/cli.h"
#include "caps.h"
#include "file.h"
#include "fw.h"
#include "kvm_uapi.h"
#include "log.h"
#include "outq.h"
#include "parse.h"
#include "convstress.h"
#include "fwsvc.h"
#include "jail.h"
#include "virtio_devs.h"
#include "stress.h"
#include "vm.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

#define DEFAULT_MEM (64ULL << 20)
#define OPT_CHECK_STRIDE 1000 /* long-only options */
#define OPT_DISK 1001
#define OPT_BALLOON 1002
#define OPT_CONVERT_STRESS 1003
#define OPT_RNG 1004
#define OPT_VCONSOLE 1005
#define OPT_TRANSPORT 1006
#define OPT_SECCOMP 1007
#define OUTPUT_DEADLINE_NS 1000000000ULL /* what stdout still owes at the end, at most */
#define OPT_JAIL 1008
#define OPT_USER 1009
#define KERNEL_MAX_SIZE (256ULL << 20)
#define INITRD_MAX_SIZE (2ULL << 30)

static const char usage_main[] =
	"usage: veil <command> [options]\n"
	"\n"
	"veil is a virtual machine monitor for KVM whose guest RAM comes entirely\n"
	"from guest_memfd.\n"
	"\n"
	"commands:\n"
	"  run    run a guest (see veil run --help)\n"
	"  stress run the conversion stress test (see veil stress --help)\n"
	"  caps   show what this host's KVM offers (see veil caps --help)\n"
	"  serve  start with no VM and serve the control API (see veil serve --help)\n"
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
	"Runs a guest whose RAM is all guest_memfd: a firmware payload on every\n"
	"vCPU, or a Linux kernel.\n"
	"\n"
	"options:\n"
	"  -f, --firmware NAME|PATH  built-in firmware (selftest, or conversions: the stages\n"
	"                            of the kernel's private_mem_conversions_test) or a\n"
	"                            flat x86-64 image loaded at 1 MiB; default: selftest\n"
	"  -k, --kernel PATH         boot a Linux bzImage (boot protocol 2.12+) or ELF vmlinux\n"
	"  -i, --initrd PATH         initramfs for --kernel\n"
	"  -a, --cmdline STR         kernel command line; default: console=ttyS0\n"
	"  -c, --cpus N              number of vCPUs, 1 to KVM's maximum; default: 1\n"
	"  -m, --mem SIZE            guest RAM in bytes, with optional K, M or G suffix;\n"
	"                            a multiple of 4K, at least 2M; default: 64M\n"
	"  -T, --vm-type TYPE        default or sw-protected; default: default\n"
	"  -t, --timing              report the time to the first KVM_RUN and serial byte\n"
	"      --disk PATH[,ro][,direct]\n"
	"                            a virtio-blk disk (on the --transport, declared in ACPI) backed\n"
	"                            by a file or block device through io_uring; ro refuses\n"
	"                            writes, direct opens it O_DIRECT; up to 4\n"
	"      --balloon             a virtio-balloon: pages the guest reports free (free\n"
	"                            page reporting) are punched out of guest_memfd\n"
	"      --transport mmio|pci  how virtio devices attach: virtio-mmio (default) or\n"
	"                            virtio-pci (modern, MSI-X); both declared in ACPI\n"
	"      --rng                 a virtio-rng fed by getrandom(2) (Linux: /dev/hwrng)\n"
	"      --console serial|virtio  serial (default): the UART only; virtio: also a\n"
	"                            virtio-console (Linux: hvc0) on stdout, which takes\n"
	"                            stdin once the guest has written to it; the UART\n"
	"                            keeps early boot output\n"
	"      --convert-stress      while the guest runs, round-trip its live disk buffers\n"
	"                            and unused reserved RAM shared -> private -> shared\n"
	"                            (needs --disk; models that keep contents only)\n"
	"      --check-stride N      conversions firmware: check one qword in N, 1 to 512;\n"
	"                            default: 1 (every byte); for slow, emulating KVMs\n"
	"      --seccomp on|off      on (default): vCPU and I/O threads load a seccomp\n"
	"                            filter before they start, the main thread right\n"
	"                            after; a forbidden system call ends veil with 1\n"
	"      --jail DIR            open /dev/kvm, the kernel, initrd and disks, then run in\n"
	"                            new mount, PID, IPC, UTS and network namespaces with DIR\n"
	"                            (may be empty) as /, no capabilities, no_new_privs\n"
	"                            and rlimits; a parent forwards INT, TERM, HUP and QUIT\n"
	"                            and exits with the jailed veil's code (needs root)\n"
	"      --user UID:GID        with --jail: run as UID:GID, no supplementary groups\n"
	"  -q, --quiet               print no summary after the VM stops\n"
	"  -v, --verbose             more log output (repeat for debug)\n"
	"  -h, --help                show this help\n"
	"\n"
	"\n"
	"The console is the guest's ttyS0 (COM1): veil's stdin and stdout.  On a\n"
	"terminal, keys go to the guest raw; Ctrl-A x quits veil.\n"
	"\n"
	"exit codes: 0 the guest stopped cleanly (poweroff), 1 the guest or the VM\n"
	"failed, 2 bad usage or configuration, 3 the guest reset (reboot, triple\n"
	"fault, panic with panic=-1), 128+N stopped by signal N.\n";

static const char usage_stress[] =
	"usage: veil stress [options]\n"
	"\n"
	"Runs the convert-stress firmware on every vCPU: each converts its own\n"
	"pages and a shared pool between private and shared by hypercall and\n"
	"checks their contents.  Meanwhile veil converts and punches random host\n"
	"ranges, and a DMA device does real io_uring reads into guest pages, some\n"
	"through a registered buffer.  Progress is printed each second; the report\n"
	"gives conversions, retries, EAGAINs, latencies, lost writes and invariant\n"
	"violations.  The exit code is 0 only if every invariant held.\n"
	"\n"
	"options:\n"
	"  -c, --cpus N          vCPUs (at most 63); default: 2\n"
	"  -m, --mem SIZE        guest RAM; default: 64M\n"
	"  -s, --seconds S       how long to stress; default: 5\n"
	"  -T, --vm-type TYPE    default or sw-protected; default: default\n"
	"  -d, --destructive     default VMs: conversions punch, so contents read zeros\n"
	"      --no-dma          no DMA device\n"
	"      --foreign-pin     check that a pin veil does not hold (the kernel's GUP_TEST)\n"
	"                        makes a conversion fail cleanly, naming the offset\n"
	"                        (in-place model with CONFIG_GUP_TEST only)\n"
	"  -j, --json            progress to stderr; the last line of stdout is a JSON report\n"
	"      --seed N          the PRNG seed of the guest, host and DMA streams; default:\n"
	"                        random, printed in the report\n"
	"  -v, --verbose         more log output\n"
	"  -h, --help            show this help\n";

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
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	bool timing;
	uint64_t t0_ns;
	unsigned long vm_type;
	unsigned int nr_cpus;
	uint64_t mem_size;
	bool quiet;
	unsigned int check_stride;
	bool balloon;
	bool convert_stress;
	bool rng;
	bool vconsole;
	bool pci;
	bool no_seccomp;
	unsigned int nr_disks;
	struct vm_disk_cfg disks[VM_MAX_DISKS];
	struct jail_cfg jail;
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

static uint64_t opt_mem(const char *cmd, const char *arg)
{
	uint64_t v;
	int ret = parse_size(arg, &v);

	if (ret == -ERANGE)
		die_usage(cmd, "--mem '%s': too large", arg);
	if (ret)
		die_usage(cmd, "--mem '%s': not a size (bytes, or a number with K, M or G)", arg);
	if (v == 0)
		die_usage(cmd, "--mem '%s': must not be zero", arg);
	if (v % GMEM_PAGE_SIZE)
		die_usage(cmd, "--mem '%s': not a multiple of 4K", arg);
	if (v < GMEM_MIN_SIZE)
		die_usage(cmd, "--mem '%s': must be at least 2M", arg);
	if (v > host_mem_bytes())
		die_usage(cmd, "--mem '%s': more than this host's %llu MiB of memory", arg,
			  (unsigned long long)(host_mem_bytes() >> 20));
	return v;
}

static unsigned int opt_cpus(const char *cmd, const char *arg)
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

static unsigned long opt_vm_type(const char *cmd, const char *arg)
{
	if (!strcmp(arg, "default"))
		return KVM_X86_DEFAULT_VM;
	if (!strcmp(arg, "sw-protected"))
		return KVM_X86_SW_PROTECTED_VM;
	die_usage(cmd, "--vm-type '%s': not default or sw-protected", arg);
}

/* Whether this KVM offers the VM type at all: a configuration question, so exit 2. */
static void check_vm_type(const char *cmd, int kvm_fd, unsigned long type)
{
	int types = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);

	if (types <= 0)
		types = 1 << KVM_X86_DEFAULT_VM;
	if (!(types & (1 << type)))
		die_usage(cmd, "--vm-type sw-protected: this KVM offers only VM types 0x%x "
			  "(KVM_CAP_VM_TYPES); it needs CONFIG_KVM_SW_PROTECTED_VM", types);
}

static void check_jail(struct run_opts *o)
{
	char err[160];

	if (o->jail.set_user && !o->jail.dir)
		die_usage("run", "--user needs --jail: veil drops to it only inside a jail");
	if (o->jail.dir && jail_check_dir(o->jail.dir, err, sizeof(err)))
		die_usage("run", "--jail '%s': %s", o->jail.dir, err);
	o->jail.nr_cpus = o->nr_cpus;
	o->jail.max_file_size = o->mem_size; /* the out-of-place model's memfds */
}

static void parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "firmware", required_argument, NULL, 'f' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'a' },
		{ "timing", no_argument, NULL, 't' },
		{ "vm-type", required_argument, NULL, 'T' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "check-stride", required_argument, NULL, OPT_CHECK_STRIDE },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "balloon", no_argument, NULL, OPT_BALLOON },
		{ "convert-stress", no_argument, NULL, OPT_CONVERT_STRESS },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "console", required_argument, NULL, OPT_VCONSOLE },
		{ "transport", required_argument, NULL, OPT_TRANSPORT },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "jail", required_argument, NULL, OPT_JAIL },
		{ "user", required_argument, NULL, OPT_USER },
		{ 0 },
	};
	int c, verbose = 0;
	uint64_t t0 = o->t0_ns;

	*o = (struct run_opts){ .nr_cpus = 1, .mem_size = DEFAULT_MEM, .t0_ns = t0 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:k:i:a:tT:c:m:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->firmware = optarg; break;
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'a': o->cmdline = optarg; break;
		case 't': o->timing = true; break;
		case 'T': o->vm_type = opt_vm_type("run", optarg); break;
		case 'c': o->nr_cpus = opt_cpus("run", optarg); break;
		case 'm': o->mem_size = opt_mem("run", optarg); break;
		case 'q': o->quiet = true; break;
		case 'v': verbose++; break;
		case OPT_BALLOON: o->balloon = true; break;
		case OPT_CONVERT_STRESS: o->convert_stress = true; break;
		case OPT_RNG: o->rng = true; break;
		case OPT_TRANSPORT:
			if (strcmp(optarg, "mmio") && strcmp(optarg, "pci"))
				die_usage("run", "--transport '%s': mmio or pci", optarg);
			o->pci = !strcmp(optarg, "pci");
			break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				die_usage("run", "--seccomp '%s': on or off", optarg);
			o->no_seccomp = !strcmp(optarg, "off");
			break;
		case OPT_JAIL: o->jail.dir = optarg; break;
		case OPT_USER:
			if (jail_parse_user(optarg, &o->jail.uid, &o->jail.gid))
				die_usage("run", "--user '%s': not UID:GID (two numbers, e.g. 65534:65534)",
					  optarg);
			o->jail.set_user = true;
			break;
		case OPT_VCONSOLE:
			if (strcmp(optarg, "serial") && strcmp(optarg, "virtio"))
				die_usage("run", "--console '%s': serial or virtio", optarg);
			o->vconsole = !strcmp(optarg, "virtio");
			break;
		case OPT_DISK: {
			char err[160];

			if (o->nr_disks == VM_MAX_DISKS)
				die_usage("run", "--disk: at most %u disks", VM_MAX_DISKS);
			/* The copy lives as long as the options: the path points into it. */
			char *spec = strdup(optarg);

			if (!spec)
				die_usage("run", "--disk: out of memory");
			if (vm_disk_parse(spec, &o->disks[o->nr_disks], err, sizeof(err)))
				die_usage("run", "--disk '%s': %s", optarg, err);
			o->nr_disks++;
			break;
		}
		case OPT_CHECK_STRIDE: {
			uint64_t v;

			if (parse_uint(optarg, &v) || v < 1 || v > 512)
				die_usage("run", "--check-stride '%s': not a number from 1 to 512", optarg);
			o->check_stride = (unsigned int)v;
			break;
		}
		case 'h': fputs(usage_run, stdout); exit(0);
		case ':': die_usage("run", "option '%s' needs a value", argv[optind - 1]);
		default: die_usage("run", "unknown option '%s' (see veil run --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("run", "unexpected argument '%s' (see veil run --help)", argv[optind]);
	if (o->kernel && o->firmware)
		die_usage("run", "--kernel and --firmware '%s' exclude each other", o->firmware);
	if (!o->kernel && (o->initrd || o->cmdline))
		die_usage("run", "%s needs --kernel", o->initrd ? "--initrd" : "--cmdline");
	if (!o->kernel && !o->firmware)
		o->firmware = "selftest";
	if (o->convert_stress && !o->nr_disks)
		die_usage("run", "--convert-stress needs a --disk: it round-trips the disk's buffers");
	if (o->check_stride && strcmp(o->firmware ? o->firmware : "", "conversions"))
		die_usage("run", "--check-stride applies to --firmware conversions only");
	if (o->kernel && !o->cmdline)
		o->cmdline = "console=ttyS0";
	check_jail(o);
	log_set_level(verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN);
}

static uint64_t boot_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	return seed;
}

/* What the guest boots: a firmware image, or a Linux kernel with its initrd. */
struct boot_src {
	struct fw_image img;
	uint8_t *kernel;
	uint8_t *initrd;
	struct arch_linux_boot lb;
};

static void boot_src_free(struct boot_src *b)
{
	fw_image_close(&b->img);
	free(b->kernel);
	free(b->initrd);
}

/* Reads and checks everything the guest boots, before any KVM work; bad input exits 2. */
static void boot_src_load(const struct run_opts *o, struct boot_src *b)
{
	char err[200] = "";
	int ret;

	memset(b, 0, sizeof(*b));
	if (!o->kernel) {
		ret = fw_image_open(o->firmware, &b->img, err, sizeof(err));
		if (ret)
			die_usage("run", "--firmware '%s': %s", o->firmware, err[0] ? err : strerror(-ret));
		return;
	}
	if (file_read_all(o->kernel, KERNEL_MAX_SIZE, &b->kernel, &b->lb.kernel_size, err, sizeof(err)))
		die_usage("run", "--kernel '%s': %s", o->kernel, err);
	if (arch_linux_check(b->kernel, b->lb.kernel_size, err, sizeof(err)))
		die_usage("run", "--kernel '%s': %s", o->kernel, err);
	if (o->initrd && file_read_all(o->initrd, INITRD_MAX_SIZE, &b->initrd, &b->lb.initrd_size,
				       err, sizeof(err)))
		die_usage("run", "--initrd '%s': %s", o->initrd, err);
	b->lb.kernel = b->kernel;
	b->lb.initrd = b->initrd;
	b->lb.cmdline = o->cmdline;
}

static void boot_src_check_mem(const struct run_opts *o, const struct boot_src *b)
{
	struct gmem_layout layout;
	struct fw_plan plan;

	if (o->kernel)
		return; /* the kernel's needs are checked against the layout when it is placed */
	if (b->img.conversions && o->mem_size < (16ULL << 20))
		die_usage("run", "--mem %llu MiB is too small for firmware 'conversions': needs at "
			  "least 16 MiB", (unsigned long long)(o->mem_size >> 20));
	if (gmem_layout_compute(arch_mem_map(), o->mem_size, &layout) ||
	    fw_plan_compute(&layout, o->nr_cpus, b->img.size, &plan))
		die_usage("run", "--mem %llu MiB is too small for firmware '%s' (%zu bytes) on %u vCPUs: "
			  "needs at least %llu MiB", (unsigned long long)(o->mem_size >> 20), o->firmware,
			  b->img.size, o->nr_cpus,
			  (unsigned long long)(fw_plan_min_mem(o->nr_cpus, b->img.size) >> 20));
}

/* Puts the guest in memory and sets every vCPU's entry state; an exit code on failure. */
static int boot_guest(struct vm *vm, const struct run_opts *o, struct boot_src *b, struct fw_boot *fb,
		      struct fwsvc *svc)
{
	struct arch_boot_state st;
	char err[200] = "";
	unsigned int i;
	int ret;

	if (!o->kernel) {
		struct fw_boot_opts opts = { .seed = boot_seed() };

		ret = b->img.conversions ? fwsvc_prepare(svc, vm, o->check_stride, &opts) : 0;
		if (!ret)
			ret = fw_boot(vm, &b->img, &opts, fb);
		if (ret)
			fprintf(stderr, "veil run: loading firmware '%s': %s\n", o->firmware, strerror(-ret));
		return ret ? VM_EXIT_FAILURE : 0;
	}
	ret = arch_linux_load(vm->gmem, &b->lb, vm->nr_vcpus, &st, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "veil run: --kernel '%s': %s\n", o->kernel, err);
		return ret == -ENOMEM || ret == -EFAULT ? VM_EXIT_FAILURE : VM_EXIT_USAGE;
	}
	for (i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = arch_linux_vcpu_entry(vm->vcpus[i].fd, &st, i);
	if (ret)
		fprintf(stderr, "veil run: setting up vCPU entry: %s\n", strerror(-ret));
	return ret ? VM_EXIT_FAILURE : 0;
}

static void print_summary(struct vm *vm, const struct run_opts *o, const char *verdict)
{
	struct gmem_stats gs;
	uint64_t exits = 0, io = 0, fretry = 0, fresync = 0;
	unsigned int i;

	if (o->timing)
		fprintf(stderr, "veil: timing: first KVM_RUN %.3f ms, first serial byte %.3f ms "
			"after veil started\n", vm->t_first_run_ns / 1e6, vm->t_first_byte_ns / 1e6);
	if (o->quiet)
		return;
	gmem_get_stats(vm->gmem, &gs);
	for (i = 0; i < vm->nr_vcpus; i++) {
		exits += vm->vcpus[i].stats.exits;
		io += vm->vcpus[i].stats.io;
		fretry += vm->vcpus[i].stats.fault_retries;
		fresync += vm->vcpus[i].stats.fault_resyncs;
	}
	fprintf(stderr,
		"veil: %u vCPUs, %llu MiB of guest_memfd RAM (MMAP|INIT_SHARED), %s '%s'\n"
		"veil: memory model: %s; conversions: contents %s\n"
		"veil: stopped: %s (exit code %d)\n"
		"veil: %llu exits (%llu port I/O), %llu unhandled device accesses, "
		"%llu refused private accesses\n",
		vm->nr_vcpus, (unsigned long long)(o->mem_size >> 20),
		o->kernel ? "kernel" : "firmware", o->kernel ? o->kernel : o->firmware,
		gmem_model_name(gmem_model(vm->gmem)), gmem_content_semantics(vm->gmem),
		vm->stop_reason, vm->exit_code, (unsigned long long)exits, (unsigned long long)io,
		(unsigned long long)vm->stats.unhandled_io, (unsigned long long)gs.refused_private);
	if (fretry || fresync)
		fprintf(stderr, "veil: memory faults inside RAM: %llu run again, %llu with the map's "
			"state applied again\n", (unsigned long long)fretry,
			(unsigned long long)fresync);
	if (gs.revoke_skipped)
		fprintf(stderr, "veil: %llu private ranges kept by veil's map alone: past the budget of "
			"%u revoked extents (VMAs), or mprotect failed\n",
			(unsigned long long)gs.revoke_skipped, GMEM_REVOKE_MAX_EXTENTS);
	vm_virtio_summary(vm, stderr);
	if (vm_console_dropped(vm) || vm_console_unwritten(vm))
		fprintf(stderr, "veil: console: %llu bytes of guest output dropped while its reader "
			"did not keep up, %llu still unwritten at the stop\n",
			(unsigned long long)vm_console_dropped(vm),
			(unsigned long long)vm_console_unwritten(vm));
	if (verdict)
		fprintf(stderr, "veil: %s\n", verdict);
}

static int selftest_verdict(struct vm *vm, const struct fw_boot *fb, char *verdict, size_t len)
{
	char why[256];

	if (fw_selftest_verify(vm, fb, why, sizeof(why))) {
		snprintf(verdict, len, "selftest host check FAILED: %s", why);
		return VM_EXIT_FAILURE;
	}
	snprintf(verdict, len, "selftest host check passed: %u result pages of 4 KiB match, read "
		 "back through the guest_memfd mapping", vm->nr_vcpus);
	return VM_EXIT_POWEROFF;
}

static int run_vm(const struct run_opts *o, struct boot_src *b, int kvm_fd)
{
	struct vm_config cfg = {
		.nr_cpus = o->nr_cpus, .mem_size = o->mem_size, .vm_type = o->vm_type,
		.console_fd = STDOUT_FILENO, .console_in_fd = STDIN_FILENO, .handle_signals = true,
		.t0_ns = o->t0_ns, .seccomp = !o->no_seccomp, .kvm_fd = kvm_fd,
	};
	char verdict[320] = "";
	struct fw_boot fb;
	struct convstress cs = { 0 };
	struct fwsvc svc;
	struct vm *vm;
	int ret, code;

	ret = vm_create(&cfg, &vm);
	/* The VM holds its own copy, which vm_run() closes: no /dev/kvm while the guest runs. */
	close(kvm_fd);
	if (ret) {
		fprintf(stderr, "veil run: could not create the VM: %s\n", strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	if (o->pci && vm_virtio_transport(vm, true)) {
		fprintf(stderr, "veil run: --transport pci: this architecture has no PCI host yet\n");
		vm_destroy(vm);
		return VM_EXIT_USAGE;
	}
	for (unsigned int i = 0; i < o->nr_disks; i++) {
		char err[200] = "";

		ret = vm_add_disk(vm, &o->disks[i], err, sizeof(err));
		if (ret) {
			fprintf(stderr, "veil run: --disk '%s': %s\n", o->disks[i].path, err);
			vm_destroy(vm);
			return ret == -ENOMEM ? VM_EXIT_FAILURE : VM_EXIT_USAGE;
		}
	}
	if (o->balloon || o->rng || o->vconsole) {
		char err[200] = "";
		const char *what = "--balloon";

		ret = o->balloon ? vm_add_balloon(vm, err, sizeof(err)) : 0;
		if (!ret && o->rng) {
			what = "--rng";
			ret = vm_add_rng(vm, err, sizeof(err));
		}
		if (!ret && o->vconsole) {
			what = "--console virtio";
			ret = vm_add_vconsole(vm, STDOUT_FILENO, err, sizeof(err));
		}
		if (ret) {
			fprintf(stderr, "veil run: %s: %s\n", what, err);
			vm_destroy(vm);
			return VM_EXIT_FAILURE;
		}
	}
	b->lb.mmio_devs = vm_mmio_devs(vm, &b->lb.nr_mmio_devs);
	b->lb.pci = vm_virtio_has_pci(vm);
	code = boot_guest(vm, o, b, &fb, &svc);
	if (code) {
		vm_destroy(vm);
		return code;
	}
	if (o->convert_stress) {
		ret = convstress_start(&cs, vm, boot_seed());
		if (ret) {
			fprintf(stderr, "veil run: --convert-stress: %s\n", ret == -EOPNOTSUPP ?
				"the memory model does not keep contents across conversions "
				"(out-of-place, or destructive)" : strerror(-ret));
			vm_destroy(vm);
			return ret == -EOPNOTSUPP ? VM_EXIT_USAGE : VM_EXIT_FAILURE;
		}
	}
	code = vm_run(vm);
	convstress_stop(&cs);
	if (o->convert_stress && cs.failures && code == VM_EXIT_POWEROFF)
		code = VM_EXIT_FAILURE; /* the guest survived, but an invariant was at risk */
	if (code == VM_EXIT_POWEROFF && !o->kernel && b->img.selftest)
		code = selftest_verdict(vm, &fb, verdict, sizeof(verdict));
	print_summary(vm, o, verdict[0] ? verdict : NULL);
	if (o->convert_stress)
		convstress_summary(&cs, stderr);
	if (code != VM_EXIT_POWEROFF && o->quiet)
		fprintf(stderr, "veil: stopped: %s\n", vm->stop_reason);
	vm_destroy(vm);
	return code;
}

/* Before any jail: a jailed veil can open nothing by path. */
static void open_disks(struct run_opts *o)
{
	for (unsigned int i = 0; i < o->nr_disks; i++) {
		int ret = vm_disk_open(&o->disks[i]);

		if (ret)
			die_usage("run", "--disk '%s': %s", o->disks[i].path, strerror(-ret));
		jail_allow_file(&o->jail, o->disks[i].fd);
	}
}

/* Returns in the jailed child only; the parent exits with the child's code. */
static void enter_jail(struct run_opts *o)
{
	char err[200] = "";
	int ret = jail_enter(&o->jail, err, sizeof(err));

	if (ret == -EPERM)
		die_usage("run", "--jail '%s': %s (a jail needs root)", o->jail.dir, err);
	if (ret) {
		fprintf(stderr, "veil run: --jail '%s': %s\n", o->jail.dir, err);
		exit(VM_EXIT_FAILURE);
	}
}

static int cmd_run(int argc, char **argv, uint64_t t0_ns)
{
	unsigned int max_vcpus;
	struct boot_src b;
	struct run_opts o = { .t0_ns = t0_ns };
	int kvm_fd, ret;

	parse_run(argc, argv, &o);
	boot_src_load(&o, &b);
	boot_src_check_mem(&o, &b);
	ret = kvm_open(&kvm_fd, &max_vcpus);
	if (ret) {
		fprintf(stderr, "veil run: cannot use /dev/kvm: %s\n", strerror(-ret));
		boot_src_free(&b);
		return VM_EXIT_FAILURE;
	}
	check_vm_type("run", kvm_fd, o.vm_type);
	if (o.nr_cpus > max_vcpus)
		die_usage("run", "--cpus '%u': this KVM allows at most %u vCPUs", o.nr_cpus, max_vcpus);
	open_disks(&o);
	if (o.jail.dir)
		enter_jail(&o);
	ret = run_vm(&o, &b, kvm_fd); /* closes kvm_fd */
	boot_src_free(&b);
	for (unsigned int i = 0; i < o.nr_disks; i++) {
		close(o.disks[i].fd);
		free((char *)o.disks[i].path); /* the strdup'd --disk spec starts with its path */
	}
	return ret;
}

static void parse_stress(int argc, char **argv, struct stress_opts *o)
{
	static const struct option longopts[] = {
		{ "cpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "seconds", required_argument, NULL, 's' },
		{ "vm-type", required_argument, NULL, 'T' },
		{ "destructive", no_argument, NULL, 'd' },
		{ "no-dma", no_argument, NULL, 'D' },
		{ "foreign-pin", no_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:m:s:T:djvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->nr_cpus = opt_cpus("stress", optarg); break;
		case 'm': o->mem_size = opt_mem("stress", optarg); break;
		case 's':
			if (parse_uint(optarg, &v) || v == 0 || v > 86400)
				die_usage("stress", "--seconds '%s': not a number from 1 to 86400", optarg);
			o->seconds = (unsigned int)v;
			break;
		case 'T': o->vm_type = opt_vm_type("stress", optarg); break;
		case 'd': o->destructive = true; break;
		case 'D': o->no_dma = true; break;
		case 'F': o->foreign_pin = true; break;
		case 'j': o->json = true; break;
		case 'S':
			if (parse_uint(optarg, &o->seed))
				die_usage("stress", "--seed '%s': not a number from 0 to 2^64-1", optarg);
			break;
		case 'v': log_set_level(LOG_INFO); break;
		case 'h': fputs(usage_stress, stdout); exit(0);
		case ':': die_usage("stress", "option '%s' needs a value", argv[optind - 1]);
		default: die_usage("stress", "unknown option '%s' (see veil stress --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("stress", "unexpected argument '%s'", argv[optind]);
	if (o->nr_cpus > VEIL_STRESS_MAX_CPUS)
		die_usage("stress", "--cpus '%u': the stress firmware runs on at most %u vCPUs",
			  o->nr_cpus, VEIL_STRESS_MAX_CPUS);
	if (o->destructive && o->vm_type != KVM_X86_DEFAULT_VM)
		die_usage("stress", "--destructive applies to default VMs only");
}

static int cmd_stress(int argc, char **argv, uint64_t t0_ns)
{
	struct stress_opts o = { .nr_cpus = 2, .mem_size = DEFAULT_MEM, .seconds = 5, .t0_ns = t0_ns };
	unsigned int max_vcpus;
	int kvm_fd, ret;

	o.seed = boot_seed(); /* unless --seed sets it */
	parse_stress(argc, argv, &o);
	ret = kvm_open(&kvm_fd, &max_vcpus);
	if (ret) {
		fprintf(stderr, "veil stress: cannot use /dev/kvm: %s\n", strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	check_vm_type("stress", kvm_fd, o.vm_type);
	close(kvm_fd);
	if (o.nr_cpus > max_vcpus)
		die_usage("stress", "--cpus '%u': this KVM allows at most %u vCPUs", o.nr_cpus, max_vcpus);
	if (o.mem_size < 16ULL << 20)
		die_usage("stress", "--mem: the stress needs at least 16M");
	return stress_run(&o);
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

static int veil_main(int argc, char **argv, uint64_t t0_ns)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

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
		return cmd_run(argc - 1, argv + 1, t0_ns);
	if (!strcmp(cmd, "stress"))
		return cmd_stress(argc - 1, argv + 1, t0_ns);
	if (!strcmp(cmd, "caps"))
		return cmd_caps(argc - 1, argv + 1);
	if (!strcmp(cmd, "serve"))
		return api_cli_serve(argc - 1, argv + 1);
	die_usage(NULL, "unknown command '%s' (see veil --help)", cmd);
}

int main(int argc, char **argv)
{
	uint64_t t0_ns = vm_now_ns();
	/* stdout never blocks veil: a reader that stalls costs output, not a stop. */
	struct outq_stdio *out = outq_stdio_wrap();
	int code = veil_main(argc, argv, t0_ns);

	outq_stdio_finish(out, OUTPUT_DEADLINE_NS);
	return code;
}
