/*
 * veil-bench-startup: for a VMM running the smallest guest (1 vCPU, 256 MiB; one byte to the
 * UART, then 0 to a debug-exit port), the wall time from its start to the guest's byte and to
 * its own exit, its CPU time and peak RSS: veil against QEMU's microvm, in alternating rounds.
 * See bench/README.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 1000
#define MAX_ARGS 32
#define MAX_VEILS 3

struct variant {
	const char *name;
	const char *argv[MAX_ARGS];
	int want_exit;          /* the exit code of a run whose guest wrote 0 to the debug-exit port */
	const char *socket;     /* --api-socket: removed after each run */
	double out_ms[MAX_ROUNDS], wall_ms[MAX_ROUNDS], cpu_ms[MAX_ROUNDS], rss_mib[MAX_ROUNDS];
	unsigned int n, failed;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One run: fork, exec with stdout on a pipe (the guest's console), time the guest's first
 * byte there, then wait4 for the exit and the rusage. */
static int run_once(struct variant *v)
{
	double t0, t_out = 0, t1;
	struct rusage ru;
	int status, fd, p[2];
	char buf[256];
	ssize_t n;
	pid_t pid;

	if (v->socket)
		unlink(v->socket);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	t0 = now_ms();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(p[1], 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execvp(v->argv[0], (char *const *)v->argv);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (t_out == 0 && memchr(buf, '!', (size_t)n))
			t_out = now_ms();
	}
	close(p[0]);
	if (wait4(pid, &status, 0, &ru) < 0)
		return -errno;
	t1 = now_ms();
	if (v->socket)
		unlink(v->socket);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != v->want_exit) {
		fprintf(stderr, "startup: %s: %s %d, expected exit %d\n", v->name,
			WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), v->want_exit);
		v->failed++;
		return -EIO;
	}
	if (t_out == 0) {
		fprintf(stderr, "startup: %s: the guest's byte never reached stdout\n", v->name);
		v->failed++;
		return -EIO;
	}
	v->out_ms[v->n] = t_out - t0;
	v->wall_ms[v->n] = t1 - t0;
	v->cpu_ms[v->n] = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
			  ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
	v->rss_mib[v->n] = ru.ru_maxrss / 1024.0;
	v->n++;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct stats {
	double min, med, max;
};

static struct stats stats_of(const double *vals, unsigned int n)
{
	double sorted[MAX_ROUNDS];
	struct stats s = { 0, 0, 0 };

	if (n == 0)
		return s;
	memcpy(sorted, vals, n * sizeof(*vals));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	s.min = sorted[0];
	s.max = sorted[n - 1];
	s.med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	return s;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* A markdown table; the ratios are of medians, against the last variant (QEMU). */
static void report(struct variant *vs, unsigned int nr)
{
	const struct variant *q = &vs[nr - 1];
	struct stats o0 = stats_of(q->out_ms, q->n), w0 = stats_of(q->wall_ms, q->n);
	struct stats c0 = stats_of(q->cpu_ms, q->n), r0 = stats_of(q->rss_mib, q->n);
	unsigned int i;

	printf("| VMM | runs | to the guest's byte, ms | to the VMM's exit, ms | CPU ms | peak RSS, MiB |\n");
	printf("|---|---|---|---|---|---|\n");
	for (i = 0; i < nr; i++) {
		const struct variant *v = &vs[i];
		struct stats o = stats_of(v->out_ms, v->n), w = stats_of(v->wall_ms, v->n);
		struct stats c = stats_of(v->cpu_ms, v->n), r = stats_of(v->rss_mib, v->n);

		printf("| %s | %u%s | %.1f / **%.1f** / %.1f | %.1f / **%.1f** / %.1f | %.1f / **%.1f** / %.1f | %.2f / **%.2f** / %.2f |\n",
		       v->name, v->n, v->failed ? " (+failures)" : "", o.min, o.med, o.max,
		       w.min, w.med, w.max, c.min, c.med, c.max, r.min, r.med, r.max);
		if (v != q)
			printf("| %s / %s, medians | | **%.3f** | **%.3f** | **%.3f** | **%.3f** |\n",
			       v->name, q->name, ratio(o.med, o0.med), ratio(w.med, w0.med),
			       ratio(c.med, c0.med), ratio(r.med, r0.med));
	}
	printf("\n(min / **median** / max over the runs)\n");
}

/* Does this veil know --api-socket?  Its `run --help` says so. */
static bool veil_has_api_socket(const char *veil)
{
	char cmd[4096];
	int ret;

	snprintf(cmd, sizeof(cmd), "'%s' run --help 2>&1 | grep -q -- --api-socket", veil);
	ret = system(cmd);
	return ret == 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: veil-bench-startup [-n ROUNDS] [--veil [LABEL=]PATH]... [--firmware PATH]\n"
		"                          [--qemu PATH] [--pvh PATH] [--no-api-socket]\n"
		"Runs each VMM ROUNDS times (default 10), alternating, after one unrecorded warm-up run\n"
		"each, and prints a markdown table.  veil runs --firmware (an image that writes a byte\n"
		"to COM1 and 0 to the debug-exit port), also with --api-socket if that veil has it;\n"
		"QEMU runs -M microvm -accel kvm with the equivalent PVH ELF.  --veil may be given up\n"
		"to %d times to compare builds.\n", MAX_VEILS);
	exit(2);
}


static void add_veil(struct variant *vs, unsigned int *nr, const char *label, const char *veil,
		     const char *fw, bool api)
{
	static char sock[MAX_VEILS][64], name[MAX_VEILS][64];
	unsigned int k = *nr;

	vs[(*nr)++] = (struct variant){ .name = label, .want_exit = 0,
		.argv = { veil, "run", "--firmware", fw, "--cpus", "1", "--mem", "256M", NULL } };
	if (!api || !veil_has_api_socket(veil))
		return;
	snprintf(sock[k % MAX_VEILS], sizeof(sock[0]), "/tmp/veil-bench-startup.%d.%u.sock",
		 (int)getpid(), k);
	snprintf(name[k % MAX_VEILS], sizeof(name[0]), "%s --api-socket", label);
	vs[(*nr)++] = (struct variant){ .name = name[k % MAX_VEILS], .want_exit = 0,
		.socket = sock[k % MAX_VEILS],
		.argv = { veil, "run", "--firmware", fw, "--cpus", "1", "--mem", "256M",
			  "--api-socket", sock[k % MAX_VEILS], NULL } };
}

int main(int argc, char **argv)
{
	static struct variant vs[2 * MAX_VEILS + 1];
	const char *fw = BENCH_FW, *qemu = "qemu-system-x86_64", *pvh = BENCH_PVH;
	const char *veils[MAX_VEILS], *labels[MAX_VEILS];
	static const struct option longopts[] = {
		{ "veil", required_argument, NULL, 'v' }, { "firmware", required_argument, NULL, 'f' },
		{ "qemu", required_argument, NULL, 'q' }, { "pvh", required_argument, NULL, 'p' },
		{ "no-api-socket", no_argument, NULL, 'A' }, { NULL, 0, NULL, 0 },
	};
	unsigned int rounds = 10, nr = 0, nr_veils = 0, i, r;
	bool api = true;
	char *eq;
	int c;

	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': rounds = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'v':
			if (nr_veils == MAX_VEILS)
				usage();
			eq = strchr(optarg, '=');
			labels[nr_veils] = eq ? optarg : "veil";
			veils[nr_veils++] = eq ? eq + 1 : optarg;
			if (eq)
				*eq = 0;
			break;
		case 'f': fw = optarg; break;
		case 'q': qemu = optarg; break;
		case 'p': pvh = optarg; break;
		case 'A': api = false; break;
		default: usage();
		}
	}
	if (optind != argc || rounds == 0 || rounds > MAX_ROUNDS)
		usage();
	if (nr_veils == 0) {
		labels[0] = "veil";
		veils[nr_veils++] = BENCH_VEIL;
	}
	for (i = 0; i < nr_veils; i++)
		add_veil(vs, &nr, labels[i], veils[i], fw, api);
	/* isa-debug-exit at veil's port; it exits with (value << 1) | 1, so 1 for the guest's 0. */
	vs[nr++] = (struct variant){ .name = "QEMU microvm", .want_exit = 1,
		.argv = { qemu, "-M", "microvm", "-accel", "kvm", "-m", "256M", "-smp", "1",
			  "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
			  "-device", "isa-debug-exit,iobase=0x501,iosize=4", "-kernel", pvh, NULL } };

	for (r = 0; r <= rounds; r++) {
		for (i = 0; i < nr; i++) {
			run_once(&vs[i]);
			if (r == 0) /* round 0 warms the page cache and is not kept */
				vs[i].n = 0;
		}
	}
	report(vs, nr);
	for (i = 0; i < nr; i++)
		if (vs[i].failed)
			return 1;
	return 0;
}
