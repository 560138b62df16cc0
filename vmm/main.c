/* veil's command line: run and serve on veil.h; the dispatcher and main(). Only the command line may die. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

/* The run command: veil.h, the CLI's helpers, and the harness (--convert-stress, conversions). */
#include "veil.h"
#include "api/cli.h"
#include "cmdline.h"
#include "file.h"
#include "jail.h"
#include "outq.h"
#include "parse.h"
#include "convstress.h"
#include "fwsvc.h"
#include "run_json.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

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
#define OPT_API_SOCKET 1010
#define OPT_CONFIDENTIAL 1011
#define OPT_LAUNCH_MANIFEST 1012
#define OPT_JSON 1013
#define KERNEL_MAX_SIZE (256ULL << 20)
#define INITRD_MAX_SIZE (2ULL << 30)
#define FIRMWARE_MAX_SIZE (64ULL << 20)

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
	"  help   veil help COMMAND shows that command's help\n"
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
	"  -m, --mem SIZE            guest RAM in bytes, with optional K, M, G or T suffix;\n"
	"                            a multiple of 4K, at least 2M; default: 64M\n"
	"  -T, --vm-type TYPE        default or sw-protected; default: default\n"
	"  -t, --timing              report the time to the first KVM_RUN and serial byte, and\n"
	"                            where the vCPUs' time went: exits by kind and device, timed\n"
	"      --disk PATH[,ro][,direct][,queues=N]\n"
	"                            a virtio-blk disk (on the --transport, declared in ACPI) backed\n"
	"                            by a file or block device through io_uring; ro refuses\n"
	"                            writes, direct opens it O_DIRECT, queues=N sets its request\n"
	"                            queues (1 to 4; default one per vCPU); up to 4 disks\n"
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
	"      --api-socket PATH     serve the control API on a new Unix socket (docs/api.md)\n"
	"      --confidential        arm64: RAM private from the first instruction, the guest\n"
	"                            shares what it needs; prints a launch digest\n"
	"                            (docs/confidential.md)\n"
	"      --launch-manifest FILE  with --confidential: write what the digest covers\n"
	"      --json                after the VM stops, the summary as one line of JSON,\n"
	"                            the last line of stdout (docs/formats.md)\n"
	"  -q, --quiet               print no summary after the VM stops (with --json:\n"
	"                            errors and the JSON line only)\n"
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

/* A --disk: opened by the CLI before any jail, handed to libveil as an fd. */
struct cli_disk {
	const char *path;
	bool read_only;
	bool direct;
	unsigned int queues;
	int fd;
};

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
	int verbose;
	unsigned int nr_disks;
	struct cli_disk disks[VEIL_MAX_DISKS];
	struct jail_cfg jail;
	const char *api_socket;
	bool confidential;
	bool firmware_default; /* no --kernel or --firmware given: selftest */
	const char *launch_manifest;
	bool json;
};






/* "PATH[,ro][,direct][,queues=N]"; d->path points into spec.  -EINVAL with err set on a bad option. */
static int disk_parse(char *spec, struct cli_disk *d, char *err, size_t errlen)
{
	char *opt;

	*d = (struct cli_disk){ .fd = -1 };
	d->path = strsep(&spec, ",");
	if (!d->path[0]) {
		snprintf(err, errlen, "no file name");
		return -EINVAL;
	}
	while ((opt = strsep(&spec, ","))) {
		if (!strcmp(opt, "ro")) {
			d->read_only = true;
		} else if (!strcmp(opt, "direct")) {
			d->direct = true;
		} else if (!strncmp(opt, "queues=", 7)) {
			char *end;
			unsigned long n = strtoul(opt + 7, &end, 10);

			if (!opt[7] || *end || !n || n > 4) {
				snprintf(err, errlen, "queues: 1 to 4");
				return -EINVAL;
			}
			d->queues = (unsigned int)n;
		} else {
			snprintf(err, errlen, "unknown option '%s' (ro, direct, queues=N)", opt);
			return -EINVAL;
		}
	}
	return 0;
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
		{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
		{ "confidential", no_argument, NULL, OPT_CONFIDENTIAL },
		{ "launch-manifest", required_argument, NULL, OPT_LAUNCH_MANIFEST },
		{ "json", no_argument, NULL, OPT_JSON },
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
		case OPT_API_SOCKET: o->api_socket = optarg; break;
		case OPT_CONFIDENTIAL: o->confidential = true; break;
		case OPT_LAUNCH_MANIFEST: o->launch_manifest = optarg; break;
		case OPT_JSON: o->json = true; break;
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

			if (o->nr_disks == VEIL_MAX_DISKS)
				die_usage("run", "--disk: at most %u disks", VEIL_MAX_DISKS);
			/* The copy lives as long as the options: the path points into it. */
			char *spec = strdup(optarg);

			if (!spec)
				die_usage("run", "--disk: out of memory");
			if (disk_parse(spec, &o->disks[o->nr_disks], err, sizeof(err)))
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
	if (!o->kernel && !o->firmware) {
		o->firmware = "selftest";
		o->firmware_default = true;
	}
	if (o->convert_stress && !o->nr_disks)
		die_usage("run", "--convert-stress needs a --disk: it round-trips the disk's buffers");
	if (o->check_stride && strcmp(o->firmware ? o->firmware : "", "conversions"))
		die_usage("run", "--check-stride applies to --firmware conversions only");
	if (o->kernel && !o->cmdline)
		o->cmdline = "console=ttyS0";
	check_jail(o);
	if (o->launch_manifest && !o->confidential)
		die_usage("run", "--launch-manifest needs --confidential");
	if (o->confidential && !o->kernel && o->firmware_default)
		die_usage("run", "--confidential needs --kernel or --firmware NAME: it measures what it boots");
	if (o->api_socket && o->jail.dir)
		die_usage("run", "--api-socket and --jail exclude each other (for now)");
	o->verbose = verbose;
}


/* What the guest boots, read before any jail: a jailed veil can open nothing by path. */
struct boot_files {
	uint8_t *firmware;
	size_t firmware_size;
	uint8_t *kernel;
	size_t kernel_size;
	uint8_t *initrd;
	size_t initrd_size;
};

static void boot_files_free(struct boot_files *f)
{
	free(f->firmware);
	free(f->kernel);
	free(f->initrd);
}

/* A --firmware that names a file rather than a built-in (libveil's rule: a '/' or an existing file). */
static bool firmware_is_file(const char *fw)
{
	return strchr(fw, '/') || access(fw, F_OK) == 0;
}

static void boot_files_read(const struct run_opts *o, struct boot_files *f)
{
	char err[200] = "";

	memset(f, 0, sizeof(*f));
	if (o->kernel) {
		if (file_read_all(o->kernel, KERNEL_MAX_SIZE, &f->kernel, &f->kernel_size, err,
				  sizeof(err)))
			die_usage("run", "--kernel '%s': %s", o->kernel, err);
		if (o->initrd && file_read_all(o->initrd, INITRD_MAX_SIZE, &f->initrd,
					       &f->initrd_size, err, sizeof(err)))
			die_usage("run", "--initrd '%s': %s", o->initrd, err);
	} else if (o->jail.dir && firmware_is_file(o->firmware)) {
		if (file_read_all(o->firmware, FIRMWARE_MAX_SIZE, &f->firmware, &f->firmware_size,
				  err, sizeof(err)))
			die_usage("run", "--firmware '%s': %s", o->firmware, err);
	}
}

/* Before any jail: the disks, and /dev/kvm when jailed (libveil takes copies). */
static void open_files(struct run_opts *o, int *kvm_fd)
{
	*kvm_fd = -1;
	for (unsigned int i = 0; i < o->nr_disks; i++) {
		struct cli_disk *d = &o->disks[i];

		d->fd = open(d->path, (d->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC |
				      (d->direct ? O_DIRECT : 0));
		if (d->fd < 0 && !d->read_only && (errno == EACCES || errno == EPERM || errno == EROFS))
			die_usage("run", "--disk '%s': %s: veil opens a disk for writing; to give the "
				  "guest a read-only disk, add ',ro' (--disk '%s,ro')", d->path,
				  strerror(errno), d->path);
		if (d->fd < 0)
			die_usage("run", "--disk '%s': %s", d->path, strerror(errno));
		jail_allow_file(&o->jail, d->fd);
	}
	if (!o->jail.dir)
		return;
	*kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm_fd < 0) {
		cli_check_kvm("run");
		fprintf(stderr, "veil run: cannot use /dev/kvm: %s\n", strerror(errno));
		exit(VEIL_EXIT_FAILURE);
	}
}

static void run_config(const struct run_opts *o, const struct boot_files *f, int kvm_fd,
		       struct veil_config *cfg)
{
	veil_config_init(cfg);
	cfg->nr_cpus = o->nr_cpus;
	cfg->mem_size = o->mem_size;
	cfg->vm_type = o->vm_type ? VEIL_VM_SW_PROTECTED : VEIL_VM_DEFAULT;
	cfg->boot = (struct veil_boot){
		.firmware = o->kernel ? NULL : o->firmware,
		.firmware_data = f->firmware, .firmware_size = f->firmware_size,
		.kernel = o->kernel, .kernel_data = f->kernel, .kernel_size = f->kernel_size,
		.initrd = o->initrd, .initrd_data = f->initrd, .initrd_size = f->initrd_size,
		.cmdline = o->cmdline, .check_stride = o->check_stride, .seed = boot_seed(),
	};
	cfg->transport = o->pci ? VEIL_TRANSPORT_PCI : VEIL_TRANSPORT_MMIO;
	cfg->nr_disks = o->nr_disks;
	for (unsigned int i = 0; i < o->nr_disks; i++)
		cfg->disks[i] = (struct veil_disk){ .path = o->disks[i].path, .fd = o->disks[i].fd,
						    .read_only = o->disks[i].read_only,
						    .direct = o->disks[i].direct,
						    .queues = o->disks[i].queues };
	cfg->confidential = o->confidential;
	cfg->launch_manifest = o->launch_manifest;
	cfg->balloon = o->balloon;
	cfg->rng = o->rng;
	cfg->virtio_console = o->vconsole;
	cfg->console_out_fd = STDOUT_FILENO;
	cfg->console_in_fd = STDIN_FILENO;
	cfg->seccomp = !o->no_seccomp;
	cfg->kick_signal = SIGUSR1;
	cfg->kvm_fd = kvm_fd;
	cfg->log_level = o->verbose >= 2 ? VEIL_LOG_DEBUG : o->verbose ? VEIL_LOG_INFO : VEIL_LOG_WARN;
}

static void print_veil_error(const struct veil_error *err)
{
	print_veil_error_of("run", err);
}

/* What a conversion does to contents, as the summary has always said it. */
static const char *content_semantics(const struct veil_info *info)
{
	if (!strcmp(info->model, "host-enforced"))
		return info->keeps_contents ? "preserved: the pages stay where they are" :
					      "zeroed: every conversion punches the range";
	if (!strcmp(info->model, "out-of-place"))
		return "zeroed: each conversion discards the side that lost";
	return "preserved: the kernel converts the pages in place";
}

static void print_line(void *opaque, const char *line)
{
	fprintf(opaque, "%s\n", line);
}

static void print_summary(struct veil_vm *vm, const struct run_opts *o, const struct veil_exit *ex,
			  const char *verdict)
{
	struct veil_counters c;
	struct veil_info info;

	veil_vm_info(vm, &info);
	if (o->timing) {
		uint64_t run_ns = info.first_run_ns, byte_ns = info.first_output_ns;

		fprintf(stderr, "veil: timing: first KVM_RUN %.3f ms, first serial byte %.3f ms "
			"after veil started\n", run_ns ? (run_ns - o->t0_ns) / 1e6 : 0.0,
			byte_ns ? (byte_ns - o->t0_ns) / 1e6 : 0.0);
		veil_vm_profile_report(vm, print_line, stderr);
	}
	if (o->quiet)
		return;
	veil_vm_counters(vm, &c);
	fprintf(stderr,
		"veil: %u vCPU%s, %llu MiB of guest_memfd RAM (MMAP|INIT_SHARED), %s '%s'\n"
		"veil: memory model: %s; conversions: contents %s\n"
		"veil: stopped: %s (exit code %d)\n"
		"veil: %llu exits (%llu port I/O), %llu unhandled device accesses, "
		"%llu refused private accesses\n",
		info.nr_cpus, info.nr_cpus == 1 ? "" : "s", (unsigned long long)(o->mem_size >> 20),
		o->kernel ? "kernel" : "firmware", o->kernel ? o->kernel : o->firmware, info.model,
		content_semantics(&info), ex->reason, ex->code, (unsigned long long)c.exits,
		(unsigned long long)c.io_exits, (unsigned long long)c.unhandled_io,
		(unsigned long long)c.refused_private);
	veil_vm_report(vm, print_line, stderr);
	if (verdict)
		fprintf(stderr, "veil: %s\n", verdict);
}

/* The signals that stop the VM, each with exit code 128 + its number: the CLI's, not libveil's. */
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Blocks the stop signals and returns a signalfd for them (-1 if none could be made). */
static int stop_signals_open(sigset_t *old)
{
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	for (unsigned int i = 0; i < ARRAY_SIZE(stop_signals); i++) {
		/* An inherited SIG_IGN would discard them before signalfd sees them. */
		signal(stop_signals[i], SIG_DFL);
		sigaddset(&set, stop_signals[i]);
	}
	pthread_sigmask(SIG_BLOCK, &set, old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fprintf(stderr, "veil: warning: signalfd: %s; SIGINT, SIGTERM, SIGHUP and SIGQUIT "
			"will not stop the VM cleanly\n", strerror(errno));
	return sfd;
}

/* Reads stop signals still pending, so restoring the mask does not kill veil with them. */
static void stop_signals_close(int sfd, const sigset_t *old)
{
	struct signalfd_siginfo si;

	while (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si))
		;
	if (sfd >= 0)
		close(sfd);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Until the VM stops: a stop signal asks it to, with 128 + N. */
static void wait_stop(struct veil_vm *vm, int sfd)
{
	struct pollfd pfd[2] = {
		{ .fd = veil_vm_stop_fd(vm), .events = POLLIN }, { .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	char reason[64];

	while (veil_vm_state(vm) != VEIL_STATE_STOPPED) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(reason, sizeof(reason), "poll: %s", strerror(errno));
			veil_vm_stop(vm, VEIL_EXIT_FAILURE, reason);
			break;
		}
		if (sfd >= 0 && (pfd[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			snprintf(reason, sizeof(reason), "stopped by %s", cli_signal_name((int)si.ssi_signo));
			veil_vm_stop(vm, 128 + (int)si.ssi_signo, reason);
		}
	}
}

/* Starts the VM and waits for it; the exit code, with *ex filled. */
static int run_started(struct veil_vm *vm, struct veil_exit *ex, const char *api_socket,
		       const struct veil_config *cfg)
{
	struct veil_error err = { 0 };
	struct api_cli *api = NULL;
	sigset_t old;
	int sfd = stop_signals_open(&old);
	int ret = veil_vm_start(vm, &err);

	if (ret == -EINVAL || ret == -EBUSY) {
		fprintf(stderr, "veil run: %s\n", err.msg);
		stop_signals_close(sfd, &old);
		return VEIL_EXIT_FAILURE;
	}
	if (!ret && api_socket && api_cli_open(&api, api_socket, vm, cfg, err.msg, sizeof(err.msg))) {
		fprintf(stderr, "veil run: --api-socket '%s': %s\n", api_socket, err.msg);
		veil_vm_stop(vm, VEIL_EXIT_USAGE, "--api-socket: the socket could not be served");
	}
	/* Last: everything the main thread opens or starts is in place by now. */
	if (!ret && veil_vm_confine_caller(vm, &err)) {
		char reason[VEIL_ERROR_LEN + 16];

		snprintf(reason, sizeof(reason), "%s", err.msg);
		veil_vm_stop(vm, VEIL_EXIT_FAILURE, reason);
	}
	if (api)
		api_cli_wait(api, sfd);
	else
		wait_stop(vm, sfd);
	ret = veil_vm_wait(vm, -1, ex);
	api_cli_close(api);
	stop_signals_close(sfd, &old);
	return ret ? VEIL_EXIT_FAILURE : ex->code;
}

static int selftest_verdict(struct veil_vm *vm, const struct run_opts *o, char *verdict, size_t len)
{
	char why[256] = "";
	int ret = veil_vm_verify(vm, why, sizeof(why));

	if (ret == -ENOENT)
		return VEIL_EXIT_POWEROFF;
	if (ret) {
		snprintf(verdict, len, "selftest host check FAILED: %s", why);
		return VEIL_EXIT_FAILURE;
	}
	snprintf(verdict, len, "selftest host check passed: %u result pages of 4 KiB match, read "
		 "back through the guest_memfd mapping", o->nr_cpus);
	return VEIL_EXIT_POWEROFF;
}

static int run_vm(const struct run_opts *o, const struct boot_files *f, int kvm_fd)
{
	struct veil_error err = { 0 };
	struct veil_exit ex = { 0 };
	struct convstress cs = { 0 };
	struct veil_config cfg;
	struct fwsvc svc;
	char verdict[320] = "";
	struct veil_vm *vm;
	int ret, code;

	run_config(o, f, kvm_fd, &cfg);
	/* The conversions firmware's host side is the harness's (fwsvc.h). */
	ret = o->firmware && !strcmp(o->firmware, "conversions") ?
	      fwsvc_vm_create(&svc, &cfg, &vm, &err) : veil_vm_create(&cfg, &vm, &err);
	/* The VM holds its own copy, closed when it starts: no /dev/kvm while the guest runs. */
	if (kvm_fd >= 0)
		close(kvm_fd);
	if (ret) {
		if (!err.config_fault)
			cli_check_kvm("run"); /* a failure for want of /dev/kvm says what to do */
		print_veil_error(&err);
		return err.config_fault ? VEIL_EXIT_USAGE : VEIL_EXIT_FAILURE;
	}
	if (veil_vm_launch_digest(vm))
		fprintf(stderr, "veil: launch digest: sha256:%s\n", veil_vm_launch_digest(vm));
	if (o->timing && veil_vm_set_profiling(vm, true))
		fprintf(stderr, "veil run: --timing: the exits cannot be timed\n");
	if (o->convert_stress) {
		ret = convstress_start(&cs, vm, boot_seed());
		if (ret) {
			fprintf(stderr, "veil run: --convert-stress: %s\n", ret == -EOPNOTSUPP ?
				"the memory model does not keep contents across conversions "
				"(out-of-place, or destructive)" : strerror(-ret));
			veil_vm_destroy(vm);
			return ret == -EOPNOTSUPP ? VEIL_EXIT_USAGE : VEIL_EXIT_FAILURE;
		}
	}
	if (o->json)
		run_json_prepare();
	code = run_started(vm, &ex, o->api_socket, &cfg);
	if (code && !ex.reason[0]) { /* it did not start: say so in the summary */
		ex.code = code;
		snprintf(ex.reason, sizeof(ex.reason), "the VM did not start");
	}
	convstress_stop(&cs);
	if (o->convert_stress && cs.failures && code == VEIL_EXIT_POWEROFF)
		code = VEIL_EXIT_FAILURE; /* the guest survived, but an invariant was at risk */
	if (code == VEIL_EXIT_POWEROFF)
		code = selftest_verdict(vm, o, verdict, sizeof(verdict));
	print_summary(vm, o, &ex, verdict[0] ? verdict : NULL);
	/* With -q only errors are printed: the round trips' summary only if one failed. */
	if (o->convert_stress && (!o->quiet || cs.failures))
		convstress_summary(&cs, stderr);
	if (code != VEIL_EXIT_POWEROFF && o->quiet)
		fprintf(stderr, "veil: stopped: %s\n", ex.reason);
	/* Last: nothing may follow it on stdout. */
	if (o->json) {
		struct run_json_facts jf = {
			.ex = &ex, .code = code, .kernel = o->kernel, .firmware = o->firmware,
			.mem_size = o->mem_size, .verdict = verdict[0] ? verdict : NULL,
			.verdict_failed = verdict[0] && code != VEIL_EXIT_POWEROFF,
			.cs = o->convert_stress ? &cs : NULL, .t0_ns = o->t0_ns,
		};
		int jret = run_json_print(stdout, vm, &jf);

		if (jret) {
			fprintf(stderr, "veil run: --json: %s\n", strerror(-jret));
			if (!code)
				code = VEIL_EXIT_FAILURE;
		}
	}
	veil_vm_destroy(vm);
	return code;
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
		exit(VEIL_EXIT_FAILURE);
	}
}

static int cmd_run(int argc, char **argv, uint64_t t0_ns)
{
	struct run_opts o = { .t0_ns = t0_ns };
	struct boot_files f;
	int kvm_fd, ret;

	parse_run(argc, argv, &o);
	boot_files_read(&o, &f);
	open_files(&o, &kvm_fd);
	if (o.jail.dir)
		enter_jail(&o);
	/* SIGUSR1 kicks vCPUs; veil itself has no other use for it. */
	ret = veil_install_kick_handler(SIGUSR1);
	if (ret) {
		fprintf(stderr, "veil run: installing the vCPU kick handler: %s\n", strerror(-ret));
		return VEIL_EXIT_FAILURE;
	}
	ret = run_vm(&o, &f, kvm_fd);
	boot_files_free(&f);
	for (unsigned int i = 0; i < o.nr_disks; i++) {
		close(o.disks[i].fd);
		free((char *)o.disks[i].path); /* the strdup'd --disk spec starts with its path */
	}
	return ret;
}




static const char *const commands[] = { "run", "stress", "caps", "serve", "help" };

/* Levenshtein distance of two short words, capped: only "did you mean" needs it. */
static unsigned int edit_distance(const char *a, const char *b)
{
	unsigned int row[32], la = (unsigned int)strlen(a), lb = (unsigned int)strlen(b);

	if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return ~0u;
	for (unsigned int j = 0; j <= lb; j++)
		row[j] = j;
	for (unsigned int i = 1; i <= la; i++) {
		unsigned int diag = row[0];

		row[0] = i;
		for (unsigned int j = 1; j <= lb; j++) {
			unsigned int up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static __attribute__((noreturn)) void unknown_command(const char *cmd)
{
	const char *best = NULL;
	unsigned int best_d = 3; /* more than two edits away is no suggestion */

	for (unsigned int i = 0; i < ARRAY_SIZE(commands); i++) {
		unsigned int d = edit_distance(cmd, commands[i]);

		if (d < best_d) {
			best_d = d;
			best = commands[i];
		}
	}
	if (best)
		die_usage(NULL, "unknown command '%s'; did you mean '%s'? (see veil --help)", cmd, best);
	die_usage(NULL, "unknown command '%s' (see veil --help)", cmd);
}

static int veil_main(int argc, char **argv, uint64_t t0_ns)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	char *help_argv[] = { argv[0], NULL, (char *)"--help", NULL };

	if (!cmd) {
		fputs(usage_main, stderr);
		return VEIL_EXIT_USAGE;
	}
	/* "veil help CMD" is "veil CMD --help". */
	if (!strcmp(cmd, "help") && argc > 2) {
		if (argc > 3)
			die_usage("help", "unexpected argument '%s' (veil help COMMAND)", argv[3]);
		cmd = help_argv[1] = argv[2];
		argc = 3;
		argv = help_argv;
		if (!strcmp(cmd, "help"))
			cmd = "--help";
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
	unknown_command(cmd);
}

/* CLOCK_MONOTONIC in ns: when veil started, for --timing. */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t t0_ns = mono_ns();
	/* stdout never blocks veil: a reader that stalls costs output, not a stop. */
	struct outq_stdio *out = outq_stdio_wrap();
	int code;

	/* A system call a filter forbids is named on stderr, then veil exits 1. */
	if (veil_install_seccomp_reporter())
		fprintf(stderr, "veil: SIGSYS handler: %s; a forbidden system call will kill veil "
			"unnamed\n", strerror(errno));
	code = veil_main(argc, argv, t0_ns);

	outq_stdio_finish(out, OUTPUT_DEADLINE_NS);
	return code;
}
