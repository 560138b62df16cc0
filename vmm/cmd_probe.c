/* `veil stress` (the harness's conversion stress) and `veil caps` (what this host's KVM offers). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "cmdline.h"
#include "log.h"
#include "parse.h"
#include "stress.h"
#include "veil_boot.h"

#define GUP_TEST_PATH "/sys/kernel/debug/gup_test"

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
	"                        (needs --vm-type sw-protected, the in-place model and\n"
	"                        /sys/kernel/debug/gup_test; exit 2 if it cannot run)\n"
	"  -j, --json            progress to stderr; the last line of stdout is a JSON report\n"
	"      --report FILE     also write the report as an SVG image to FILE: each kind's\n"
	"                        latency distribution and conversions per second\n"
	"      --seed N          the PRNG seed of the guest, host and DMA streams; default:\n"
	"                        random, printed in the report\n"
	"  -v, --verbose         more log output\n"
	"  -h, --help            show this help\n";

static const char usage_caps[] =
	"usage: veil caps [--json] [--refresh | --no-cache]\n"
	"\n"
	"Probes /dev/kvm: API version, guest_memfd flags, VM types, memory\n"
	"attributes, hypercall exits, memory-fault info, whether revoking the\n"
	"host mapping of guest_memfd is safe (tried with a tiny guest), and the\n"
	"conversion model each VM type would get.\n"
	"\n"
	"The two results that need a guest are cached per host kernel boot in\n"
	"$VEIL_CACHE_DIR, else $XDG_CACHE_HOME/veil, else ~/.cache/veil; each\n"
	"line says whether its result was cached or probed.\n"
	"\n"
	"options:\n"
	"  -j, --json  one JSON object instead of text\n"
	"  --refresh   probe again and store the results in the cache\n"
	"  --no-cache  probe again; neither read nor write the cache\n"
	"  -h, --help  show this help\n";

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
		{ "report", required_argument, NULL, 'R' },
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
		case 'R': o->report_path = optarg; break;
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
		die_usage("stress", "unexpected argument '%s' (see veil stress --help)", argv[optind]);
	if (o->nr_cpus > VEIL_STRESS_MAX_CPUS)
		die_usage("stress", "--cpus '%u': the stress firmware runs on at most %u vCPUs",
			  o->nr_cpus, VEIL_STRESS_MAX_CPUS);
	if (o->destructive && o->vm_type != VEIL_VM_DEFAULT)
		die_usage("stress", "--destructive applies to default VMs only");
	/* A check the user asked for runs, or veil says why it cannot: it never passes unrun. */
	if (o->foreign_pin && o->vm_type != VEIL_VM_SW_PROTECTED)
		die_usage("stress", "--foreign-pin needs --vm-type sw-protected on a kernel whose "
			  "guest_memfd converts in place: only that model sees a pin veil does not hold");
	if (o->foreign_pin && access(GUP_TEST_PATH, R_OK | W_OK))
		die_usage("stress", "--foreign-pin: cannot use %s: %s (it needs root, debugfs and a "
			  "kernel built with CONFIG_GUP_TEST)", GUP_TEST_PATH, strerror(errno));
	if (o->mem_size < 16ULL << 20)
		die_usage("stress", "--mem: the stress needs at least 16M");
	/* Opened once the options are good, so that a path veil cannot write fails before the run. */
	if (o->report_path && !(o->report = fopen(o->report_path, "we")))
		die_usage("stress", "--report '%s': cannot write: %s", o->report_path, strerror(errno));
}

int cmd_stress(int argc, char **argv, uint64_t t0_ns)
{
	struct stress_opts o = { .nr_cpus = 2, .mem_size = DEFAULT_MEM, .seconds = 5, .t0_ns = t0_ns };
	struct veil_error err = { 0 };
	int code;

	o.seed = boot_seed(); /* unless --seed sets it */
	parse_stress(argc, argv, &o);
	/* libveil checks the VM type and vCPU count against this KVM, as for run. */
	code = stress_run(&o, &err);
	/* A write error stress_run did not see (it flushed): only now, on closing. */
	if (o.report && fclose(o.report) && code == 0) {
		fprintf(stderr, "veil stress: --report '%s': cannot write: %s\n", o.report_path,
			strerror(errno));
		code = VEIL_EXIT_USAGE;
	}
	if (code >= 0)
		return code;
	if (!err.config_fault)
		cli_check_kvm("stress"); /* a failure for want of /dev/kvm says what to do */
	print_veil_error_of("stress", &err);
	return err.config_fault ? VEIL_EXIT_USAGE : VEIL_EXIT_FAILURE;
}

int cmd_caps(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "refresh", no_argument, NULL, 'r' },
		{ "no-cache", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	enum caps_cache_mode mode = CAPS_CACHE_USE;
	bool json = false;
	struct caps c;
	int ch, ret;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+jh", longopts, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else if (ch == 'r' || ch == 'n')
			mode = ch == 'r' ? CAPS_CACHE_REFRESH : CAPS_CACHE_OFF;
		else if (ch == 'h') {
			fputs(usage_caps, stdout);
			return 0;
		} else
			die_usage("caps", "unknown option '%s' (see veil caps --help)", argv[optind - 1]);
	}
	if (optind < argc)
		die_usage("caps", "unexpected argument '%s' (see veil caps --help)", argv[optind]);
	ret = caps_probe(&c, mode);
	if (ret) {
		cli_check_kvm("caps");
		fprintf(stderr, "veil caps: cannot use /dev/kvm: %s\n", strerror(-ret));
		return VEIL_EXIT_FAILURE;
	}
	if (json)
		caps_print_json(&c, stdout);
	else
		caps_print(&c, stdout);
	return 0;
}
