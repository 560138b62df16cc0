/*
 * `veil stress`: the convert-stress firmware converts pages by hypercall on
 * every vCPU while, on the host, one thread converts and punches random
 * ranges and another does real io_uring DMA into guest pages.  A monitor
 * prints progress each second and stops the guest when the time is up.  The
 * report counts conversions, retries, lost writes and invariant violations.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "fw.h"
#include "fw_blobs.h"
#include "fwsvc.h"
#include "kvm.h"
#include "log.h"
#include "report_svg.h"
#include "stress.h"
#include "stress_dma.h"
#include "stress_vm.h"
#include "veil.h"
#include "veil_internal.h"

#define OWN_PAGES 8
#define SHARED_PAGES 32
#define HOST_PAGES 256
#define WIN_PAGES 16
#define FOREIGN_PAGES 4 /* the last host pages: the foreign-pin check's, nobody else's */
#define HOST_RANDOM_PAGES (HOST_PAGES - FOREIGN_PAGES)

/* The kernel's GUP_TEST long-term pin (mm/gup_test.h), a reference veil does not hold. */
struct pin_longterm_test {
	uint64_t addr;
	uint64_t size;
	uint32_t flags;
};
#define PIN_LONGTERM_TEST_START _IOW('g', 7, struct pin_longterm_test)
#define PIN_LONGTERM_TEST_STOP _IO('g', 8)
#define PIN_LONGTERM_TEST_FLAG_USE_WRITE 1
#define STOP_GRACE_S 30
#define SV_KICK_SIGNAL SIGUSR1


enum { LAT_GUEST, LAT_HOST, LAT_PUNCH, LAT_DMA, LAT_NR };
static const char *const lat_names[LAT_NR] = { "guest_convert", "host_convert", "punch", "dma" };
static const char *const lat_labels[LAT_NR] = { "guest conversions", "host conversions",
						"punches", "DMA reads" };
enum { SEC_GUEST, SEC_HOST, SEC_NR };

struct stress {
	const struct stress_opts *o;
	struct veil_vm *veil;
	struct vm *vm;       /* for the hooks of veil_internal.h only */
	struct gmem *gm;
	unsigned int nr_vcpus;
	struct stress_dma *dma;
	uint64_t ctl_gpa, pool_gpa, host_gpa;
	uint32_t pool_pages;
	uint32_t conv_port; /* 0: the guest converts by hypercall */
	char conv_why[200];
	struct lat lat[LAT_NR];
	volatile bool stop;
	uint64_t t_start_ns, t_end_ns; /* the guest's run, for the actual duration */
	bool interrupted;              /* a signal stopped the run */
	char stop_reason[VEIL_ERROR_LEN + 32];
	/* host thread counters */
	uint64_t host_conversions, host_punches, host_failures, violations;
	char first_failure[200];
	FILE *progress;
	char foreign[320];       /* what the foreign-pin check saw */
	bool foreign_ok;
	/* --report: conversions so far at the end of each second (monitor thread only) */
	uint64_t *sec_conv[SEC_NR];
	unsigned int nr_secs;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void inc(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static unsigned long long rd(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Places the control page, the guest's pool and the host's pages after the result pages. */
static void stress_fill(struct veil_boot_info *bi, const struct fw_plan *plan, void *opaque)
{
	struct stress *s = opaque;
	uint64_t base = plan->scratch_base + (uint64_t)s->nr_vcpus * GMEM_PAGE_SIZE;

	s->ctl_gpa = base;
	s->pool_gpa = base + GMEM_PAGE_SIZE;
	s->pool_pages = s->nr_vcpus * OWN_PAGES + SHARED_PAGES;
	s->host_gpa = s->pool_gpa + (uint64_t)s->pool_pages * GMEM_PAGE_SIZE;
	bi->ctl_gpa = s->ctl_gpa;
	bi->pool_gpa = s->pool_gpa;
	bi->pool_pages = s->pool_pages;
	bi->own_pages = OWN_PAGES;
	bi->conv_port = s->conv_port;
	bi->semantics = veil_internal_keeps_contents(s->vm) ? VEIL_CONTENT_PRESERVED
							    : VEIL_CONTENT_ZEROED;
}

static uint64_t stress_reserve(unsigned int nr_cpus)
{
	return (1 + (uint64_t)nr_cpus * OWN_PAGES + SHARED_PAGES + HOST_PAGES) * GMEM_PAGE_SIZE;
}

static void host_failure(struct stress *s, int ret, const struct gmem_conv_result *res, uint64_t gpa)
{
	if (__atomic_add_fetch(&s->host_failures, 1, __ATOMIC_RELAXED) == 1)
		snprintf(s->first_failure, sizeof(s->first_failure), "GPA 0x%llx: %s%s%s",
			 (unsigned long long)gpa, strerror(-ret), res->culprit[0] ? ": " : "",
			 res->culprit);
}

/* One random host operation: convert a range either way, or punch it. */
static void host_op(struct stress *s, uint64_t x)
{
	uint64_t n = 1 + x % 8;
	uint64_t gpa = s->host_gpa + ((x >> 8) % (HOST_RANDOM_PAGES - n + 1)) * GMEM_PAGE_SIZE;
	unsigned int op = (unsigned int)((x >> 32) % 3);
	struct gmem_conv_result res;
	uint64_t t0 = now_ns(), probe;
	int ret;

	if (op == 0) {
		ret = gmem_discard(s->gm, gpa, n * GMEM_PAGE_SIZE, &res);
		if (!ret) {
			inc(&s->host_punches);
			lat_add(&s->lat[LAT_PUNCH], now_ns() - t0);
		}
	} else {
		ret = gmem_convert(s->gm, gpa, n * GMEM_PAGE_SIZE, op == 1, &res);
		if (!ret) {
			inc(&s->host_conversions);
			lat_add(&s->lat[LAT_HOST], now_ns() - t0);
		}
		/* I3: the VMM itself must be refused a private page. */
		if (!ret && op == 1 && gmem_read(s->gm, gpa, &probe, sizeof(probe)) != -EACCES)
			inc(&s->violations);
	}
	if (ret)
		host_failure(s, ret, &res, gpa);
}

static void *host_thread(void *arg)
{
	struct stress *s = arg;
	uint64_t x = s->o->seed ^ 0x5bd1e995;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		x = veil_mix64(x + 1);
		host_op(s, x);
	}
	return NULL;
}

static void *dma_thread(void *arg)
{
	struct stress *s = arg;

	stress_dma_run(s->dma, &s->stop);
	return NULL;
}

static void guest_totals(struct stress *s, struct veil_stress_cpu *t)
{
	struct veil_stress_ctl ctl;
	unsigned int i;

	memset(t, 0, sizeof(*t));
	if (gmem_read(s->gm, s->ctl_gpa, &ctl, sizeof(ctl)))
		return;
	for (i = 0; i < s->nr_vcpus; i++) {
		t->iterations += ctl.cpu[i].iterations;
		t->conversions += ctl.cpu[i].conversions;
		t->hc_errors += ctl.cpu[i].hc_errors;
		t->verify_errors += ctl.cpu[i].verify_errors;
	}
}

static void progress(struct stress *s, unsigned int sec)
{
	struct stress_dma_stats d = { 0 };
	struct veil_stress_cpu g;

	guest_totals(s, &g);
	if (s->dma)
		stress_dma_get_stats(s->dma, &d);
	fprintf(s->progress, "stress: %3u s: guest %llu conversions (%llu refused), host %llu "
		"conversions %llu punches, DMA %llu (%llu refused), lost %llu, violations %llu\n",
		sec, (unsigned long long)g.conversions, (unsigned long long)g.hc_errors,
		rd(&s->host_conversions), rd(&s->host_punches),
		(unsigned long long)d.ops, (unsigned long long)d.refused,
		(unsigned long long)d.lost_writes, rd(&s->violations) + d.violations + g.verify_errors);
	fflush(s->progress);
	/* The counts progress just read, kept for --report's conversions per second. */
	if (s->sec_conv[SEC_GUEST] && sec >= 1 && sec <= s->o->seconds) {
		s->sec_conv[SEC_GUEST][sec - 1] = g.conversions;
		s->sec_conv[SEC_HOST][sec - 1] = rd(&s->host_conversions);
		s->nr_secs = sec;
	}
}

static int gup_pin(int fd, void *hva)
{
	struct pin_longterm_test t = {
		.addr = (uint64_t)(uintptr_t)hva, .size = GMEM_PAGE_SIZE,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};

	return __kvm_ioctl(fd, PIN_LONGTERM_TEST_START, &t) ? -errno : 0;
}

static bool range_shared(struct gmem *gm, uint64_t gpa, unsigned int pages)
{
	bool private = true;
	unsigned int i;

	for (i = 0; i < pages; i++)
		if (gmem_attr_is_private(gm, gpa + i * GMEM_PAGE_SIZE, &private) || private)
			return false;
	return true;
}

/*
 * I6 with a reference veil does not hold: GUP_TEST pins the second of four
 * pages.  Converting the four to private must fail after the bounded
 * retries, naming that page's offset, and convert nothing; once unpinned it
 * must succeed.  Only the in-place kernel sees such a pin.
 */
static void foreign_pin_check(struct stress *s)
{
	uint64_t gpa = s->host_gpa + (uint64_t)HOST_RANDOM_PAGES * GMEM_PAGE_SIZE, pinned;
	struct gmem *gm = s->gm;
	struct gmem_conv_result res;
	void *hva;
	int fd, ret;

	pinned = gpa + GMEM_PAGE_SIZE;
	fd = open("/sys/kernel/debug/gup_test", O_RDWR | O_CLOEXEC);
	if (gmem_model(gm) != GMEM_MODEL_IN_PLACE || fd < 0) {
		/* Asked for and not run: the verdict says so and the exit code is 2. */
		snprintf(s->foreign, sizeof(s->foreign), "not run: %s",
			 fd < 0 ? "no /sys/kernel/debug/gup_test" : "needs the in-place model");
		s->foreign_ok = false;
		if (fd >= 0)
			close(fd);
		return;
	}
	ret = gmem_translate(gm, pinned, GMEM_PAGE_SIZE, &hva);
	if (!ret)
		ret = gup_pin(fd, hva);
	if (ret) {
		snprintf(s->foreign, sizeof(s->foreign), "FAILED: could not pin: %s", strerror(-ret));
		close(fd);
		return;
	}
	ret = gmem_convert(gm, gpa, FOREIGN_PAGES * GMEM_PAGE_SIZE, true, &res);
	s->foreign_ok = ret == -EAGAIN && range_shared(gm, gpa, FOREIGN_PAGES) &&
			strstr(res.culprit, "GPA 0x") && res.eagain > 0;
	snprintf(s->foreign, sizeof(s->foreign), "%s: %s after %llu EAGAINs: %s%s",
		 s->foreign_ok ? "refused" : "FAILED", ret ? strerror(-ret) : "converted",
		 (unsigned long long)res.eagain, res.culprit,
		 range_shared(gm, gpa, FOREIGN_PAGES) ? "; nothing converted" : "; HALF CONVERTED");
	if (__kvm_ioctl_val(fd, PIN_LONGTERM_TEST_STOP, 0))
		s->foreign_ok = false;
	close(fd);
	if (gmem_convert(gm, gpa, FOREIGN_PAGES * GMEM_PAGE_SIZE, true, &res) ||
	    gmem_convert(gm, gpa, FOREIGN_PAGES * GMEM_PAGE_SIZE, false, &res)) {
		s->foreign_ok = false;
		strncat(s->foreign, "; still refused after unpinning", sizeof(s->foreign) -
			strlen(s->foreign) - 1);
	}
	if (!s->foreign_ok)
		inc(&s->violations);
}

static int stress_build(void *opaque, struct vm *vm, struct fw_boot_opts *fw);

/*
 * The VM, driven as any program drives one: created from a configuration
 * (with build hooks), started, watched through its stop fd, stopped.
 */
static int sv_create(struct stress *s, struct veil_error *err)
{
	const struct veil_hooks hooks = { .build = stress_build, .opaque = s };
	struct veil_config cfg;
	int ret;

	veil_config_init(&cfg);
	cfg.nr_cpus = s->o->nr_cpus;
	cfg.mem_size = s->o->mem_size;
	cfg.vm_type = s->o->vm_type ? VEIL_VM_SW_PROTECTED : VEIL_VM_DEFAULT;
	cfg.destructive = s->o->destructive;
	cfg.boot.seed = s->o->seed;
	cfg.boot.firmware = "convert-stress"; /* its name, in messages */
	cfg.boot.firmware_data = fw_blob_stress;
	cfg.boot.firmware_size = fw_blob_stress_size;
	cfg.console_out_fd = s->o->json ? STDERR_FILENO : STDOUT_FILENO;
	cfg.console_in_fd = -1;
	cfg.seccomp = false;
	cfg.kick_signal = SV_KICK_SIGNAL;
	cfg.log_level = (enum veil_log_level)log_get_level(); /* -v */
	ret = veil_vm_create_hooked(&cfg, &hooks, &s->veil, err);
	if (!ret)
		s->vm = veil_internal_vm(s->veil);
	else if (!err->msg[0])
		snprintf(err->msg, sizeof(err->msg), "creating the VM: %s", strerror(-ret));
	return ret;
}

/* Runs until the VM stops; returns its exit code, 128 + N for stop signal N. */
static int sv_run(struct stress *s)
{
	return stress_vm_run(s->veil, SV_KICK_SIGNAL, s->stop_reason, sizeof(s->stop_reason));
}

static bool sv_stopping(struct stress *s)
{
	return stress_vm_stopping(s->veil);
}

static bool sv_wait_stop(struct stress *s, int ms)
{
	return stress_vm_wait_stop(s->veil, ms);
}

static void sv_stop(struct stress *s, int code, const char *why)
{
	veil_vm_stop(s->veil, code, why);
}

static void sv_destroy(struct stress *s)
{
	if (s->veil)
		veil_vm_destroy(s->veil);
	s->veil = NULL;
	s->vm = NULL;
}

/* Progress each second; at the deadline, tells the firmware to stop; never waits forever. */
static void *monitor_thread(void *arg)
{
	struct stress *s = arg;
	uint64_t one = 1;
	unsigned int sec;

	for (sec = 1; !sv_stopping(s) && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) &&
		      sec <= s->o->seconds + STOP_GRACE_S; sec++) {
		/* Woken by a stop at once: a signal must end the stress within 2 s. */
		if (sv_wait_stop(s, 1000))
			break;
		if (sec <= s->o->seconds)
			progress(s, sec);
		if (sec == 1 && s->o->foreign_pin)
			foreign_pin_check(s);
		if (sec == s->o->seconds && gmem_write(s->gm, s->ctl_gpa, &one, sizeof(one)))
			sv_stop(s, VEIL_EXIT_FAILURE, "could not tell the firmware to stop");
	}
	if (!sv_stopping(s)) {
		char why[80];

		snprintf(why, sizeof(why), "the stress firmware did not stop within %u s",
			 STOP_GRACE_S);
		sv_stop(s, VEIL_EXIT_FAILURE, why);
	}
	return NULL;
}

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int ret;

	/* The stop signals belong to the main thread's signalfd, not to these threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/*
 * Where the guest's conversion hypercalls do not reach veil (probed), the
 * firmware makes the same request through this port (arm64: MMIO register);
 * both end in vcpu_map_gpa_range().
 */
static int conv_port_write(void *opaque, unsigned int vcpu, uint64_t offset, const void *data,
			   unsigned int len)
{
	struct stress *s = opaque;
	int cpu = fwsvc_port_vcpu(s->vm, vcpu, offset, data, len);
	struct veil_stress_cpu slot;
	uint64_t slot_gpa, ret;

	if (cpu < 0)
		return cpu;
	slot_gpa = s->ctl_gpa + offsetof(struct veil_stress_ctl, cpu) + (uint64_t)cpu * sizeof(slot);
	if (gmem_read(s->gm, slot_gpa, &slot, sizeof(slot)))
		return -EFAULT;
	ret = veil_internal_map_gpa_range(s->vm, (unsigned int)cpu, slot.req_gpa,
					  slot.req_args & 0xffffffffu, slot.req_args >> 32);
	return gmem_write(s->gm, slot_gpa + offsetof(struct veil_stress_cpu, req_ret), &ret,
			  sizeof(ret));
}

static const struct bus_device_ops conv_port_ops = { .write_vcpu = conv_port_write };

static int stress_conv_route(struct stress *s)
{
	if (veil_internal_map_gpa_range_exits(s->vm, s->conv_why, sizeof(s->conv_why)) == 1)
		return 0;
	s->conv_port = VEIL_PORT_CONVERT;
	fprintf(s->progress, "stress: the guest converts through %s 0x%x: %s\n",
		VEIL_FW_REGS_MMIO ? "register" : "port", s->conv_port, s->conv_why);
	return veil_internal_add_port(s->vm, VEIL_PORT_CONVERT, 4, &conv_port_ops, s,
				      "stress-convert-port");
}

/*
 * Build time, between the devices and the firmware: the conversion route
 * (its port if need be), the guest-conversion timer and where the firmware
 * finds its control page, pool and the host's pages.
 */
static int stress_build(void *opaque, struct vm *vm, struct fw_boot_opts *fw)
{
	struct stress *s = opaque;
	int ret;

	if (!fw)
		return -EINVAL;
	s->vm = vm;
	s->gm = veil_internal_gmem(vm);
	ret = stress_conv_route(s);
	if (ret)
		return ret;
	veil_internal_set_guest_conv_lat(vm, &s->lat[LAT_GUEST]);
	*fw = (struct fw_boot_opts){ .seed = s->o->seed, .reserve = stress_reserve(s->nr_vcpus),
				     .fill = stress_fill, .opaque = s };
	return 0;
}

static int stress_setup(struct stress *s, struct veil_error *err)
{
	unsigned int i;

	s->nr_vcpus = s->o->nr_cpus;
	for (i = 0; s->o->report && i < SEC_NR; i++) {
		s->sec_conv[i] = calloc(s->o->seconds, sizeof(*s->sec_conv[i]));
		if (!s->sec_conv[i]) {
			snprintf(err->msg, sizeof(err->msg), "--report: %s", strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	for (i = 0; i < LAT_NR; i++) {
		if (lat_init(&s->lat[i])) {
			snprintf(err->msg, sizeof(err->msg), "latency histograms: %s",
				 strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	return sv_create(s, err);
}

static int stress_dma_setup(struct stress *s)
{
	struct stress_dma_config dc = {
		.gm = s->gm, .host_gpa = s->host_gpa, .host_pages = HOST_RANDOM_PAGES,
		.pool_gpa = s->pool_gpa, .pool_pages = s->pool_pages, .win_pages = WIN_PAGES,
		.seed = s->o->seed, .lat = &s->lat[LAT_DMA],
	};

	if (s->o->no_dma)
		return 0;
	return stress_dma_create(&dc, &s->dma);
}

/* The percentiles every report gives, and their JSON keys. */
static const double lat_ps[] = { 50, 90, 99, 99.9 };
static const char *const lat_pkeys[] = { "p50", "p90", "p99", "p99.9" };
#define STRESS_JSON_SCHEMA 2

static void lat_json(FILE *f, const struct lat *l, const char *name, bool last)
{
	unsigned int i;

	fprintf(f, "\"%s\":{\"n\":%llu", name, (unsigned long long)lat_count(l));
	for (i = 0; i < ARRAY_SIZE(lat_ps); i++)
		fprintf(f, ",\"%s\":%.3f", lat_pkeys[i], lat_percentile(l, lat_ps[i]) / 1e3);
	fprintf(f, ",\"max\":%.3f,\"mean\":%.3f}%s", lat_max(l) / 1e3, lat_mean(l) / 1e3,
		last ? "" : ",");
}

static void lat_text(FILE *f, const struct lat *l, const char *name)
{
	unsigned int i;

	fprintf(f, "  latency %-13s", name);
	for (i = 0; i < ARRAY_SIZE(lat_ps); i++)
		fprintf(f, " %s %8.1f", lat_pkeys[i], lat_percentile(l, lat_ps[i]) / 1e3);
	fprintf(f, " max %8.1f us  (%llu)\n", lat_max(l) / 1e3, (unsigned long long)lat_count(l));
}

struct stress_totals {
	struct veil_stress_cpu guest;
	struct stress_dma_stats dma;
	struct gmem_stats gm;
	uint64_t violations;
	bool pass;
};

static double stress_seconds(const struct stress *s)
{
	return s->t_end_ns > s->t_start_ns ? (s->t_end_ns - s->t_start_ns) / 1e9 : 0;
}

static const char *vm_type_name(const struct stress *s)
{
	return s->o->vm_type ? "sw-protected" : "default";
}

static void report_text(struct stress *s, const struct stress_totals *t, FILE *f)
{
	unsigned int i;

	fprintf(f, "stress report: %u vCPU%s, %u s (ran %.2f s%s), %s VM, model %s (contents %s), "
		"seed %llu\n", s->nr_vcpus, s->nr_vcpus == 1 ? "" : "s", s->o->seconds, stress_seconds(s),
		s->interrupted ? ", interrupted" : "", vm_type_name(s),
		gmem_model_name(gmem_model(s->gm)), gmem_content_semantics(s->gm),
		(unsigned long long)s->o->seed);
	fprintf(f, "  conversions: %llu by the guest (%llu refused), %llu by the host, %llu punches\n",
		(unsigned long long)t->guest.conversions, (unsigned long long)t->guest.hc_errors,
		(unsigned long long)s->host_conversions, (unsigned long long)s->host_punches);
	fprintf(f, "  retries %llu, EAGAIN %llu, speculative pin retries %llu, pin waits %llu, "
		"drain waits %llu, long-term releases %llu, map-only private ranges %llu, "
		"host failures %llu%s%s\n",
		(unsigned long long)t->gm.retries, (unsigned long long)t->gm.eagain,
		(unsigned long long)t->gm.spec_retries, (unsigned long long)t->gm.pin_waits,
		(unsigned long long)t->gm.drain_waits, (unsigned long long)t->gm.longterm_releases,
		(unsigned long long)t->gm.revoke_skipped,
		(unsigned long long)s->host_failures, s->first_failure[0] ? " (first: " : "",
		s->first_failure[0] ? s->first_failure : "");
	if (s->first_failure[0])
		fprintf(f, ")\n");
	fprintf(f, "  DMA: %llu reads (%llu registered), %llu refused as private, %llu errors, "
		"%llu pin timeouts\n", (unsigned long long)t->dma.ops,
		(unsigned long long)t->dma.fixed_ops, (unsigned long long)t->dma.refused,
		(unsigned long long)t->dma.io_errors, (unsigned long long)t->dma.pin_timeouts);
	for (i = 0; i < LAT_NR; i++)
		lat_text(f, &s->lat[i], lat_names[i]);
	if (s->foreign[0])
		fprintf(f, "  foreign pin: %s\n", s->foreign);
	fprintf(f, "  lost writes %llu, invariant violations %llu\n",
		(unsigned long long)t->dma.lost_writes, (unsigned long long)t->violations);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_str(FILE *f, const char *key, const char *v)
{
	fprintf(f, ",\"%s\":\"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*v);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void json_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, ",\"%s\":%llu", key, (unsigned long long)v);
}

static const char *foreign_verdict(const struct stress *s)
{
	if (!s->o->foreign_pin)
		return "not run";
	if (!s->foreign[0])
		return "did not run";
	if (strncmp(s->foreign, "not run", 7) == 0)
		return "not run";
	return s->foreign_ok ? "refused" : "failed";
}

/* What the run was: "model" first, as tests/nested/nested.sh finds the line by it. */
static void json_run(FILE *f, const struct stress *s, const struct stress_totals *t)
{
	fprintf(f, "{\"model\":\"%s\",\"schema\":%d,\"verdict\":\"%s\",\"interrupted\":%s",
		gmem_model_name(gmem_model(s->gm)), STRESS_JSON_SCHEMA,
		t->pass ? "pass" : "fail", s->interrupted ? "true" : "false");
	json_u64(f, "seed", s->o->seed);
	json_str(f, "vm_type", vm_type_name(s));
	json_str(f, "contents", gmem_content_semantics(s->gm));
	json_u64(f, "vcpus", s->nr_vcpus);
	json_u64(f, "seconds_requested", s->o->seconds);
	fprintf(f, ",\"seconds_actual\":%.3f", stress_seconds(s));
	json_str(f, "stop_reason", s->stop_reason);
}

static void json_counters(FILE *f, const struct stress *s, const struct stress_totals *t)
{
	json_u64(f, "conversions", t->guest.conversions + s->host_conversions);
	json_u64(f, "guest_conversions", t->guest.conversions);
	json_u64(f, "guest_refused", t->guest.hc_errors);
	json_u64(f, "host_conversions", s->host_conversions);
	json_u64(f, "punches", s->host_punches);
	json_u64(f, "retries", t->gm.retries);
	json_u64(f, "eagain", t->gm.eagain);
	json_u64(f, "spec_retries", t->gm.spec_retries);
	json_u64(f, "pin_waits", t->gm.pin_waits);
	json_u64(f, "drain_waits", t->gm.drain_waits);
	json_u64(f, "longterm_releases", t->gm.longterm_releases);
	json_u64(f, "revoke_skipped", t->gm.revoke_skipped);
	json_u64(f, "host_failures", s->host_failures);
	json_str(f, "first_host_failure", s->first_failure);
	json_u64(f, "dma", t->dma.ops);
	json_u64(f, "dma_registered", t->dma.fixed_ops);
	json_u64(f, "dma_refused_private", t->dma.refused);
	json_u64(f, "dma_errors", t->dma.io_errors);
	json_u64(f, "dma_pin_timeouts", t->dma.pin_timeouts);
	json_u64(f, "lost_writes", t->dma.lost_writes);
	json_u64(f, "violations", t->violations);
	json_str(f, "foreign_pin", foreign_verdict(s));
}

/* One object on one line, the last of stdout; README's stress section lists the keys. */
static void report_json(struct stress *s, const struct stress_totals *t)
{
	unsigned int i;

	json_run(stdout, s, t);
	json_counters(stdout, s, t);
	printf(",\"latency_us\":{");
	for (i = 0; i < LAT_NR; i++)
		lat_json(stdout, &s->lat[i], lat_names[i], i == LAT_NR - 1);
	printf("}}\n");
}

/* The cumulative counts of each second, made per-second in place. */
static void sec_deltas(uint64_t *v, unsigned int n)
{
	unsigned int i;

	for (i = n; i-- > 1;)
		v[i] = v[i] >= v[i - 1] ? v[i] - v[i - 1] : 0;
}

/* --report: the SVG; 0 or -errno. */
static int report_svg(struct stress *s, const struct stress_totals *t)
{
	struct report_svg_series series[LAT_NR];
	struct report_svg_rate rates[SEC_NR] = {
		{ "guest_convert", "by the guest", s->sec_conv[SEC_GUEST] },
		{ "host_convert", "by the host", s->sec_conv[SEC_HOST] },
	};
	struct report_svg r = { .series = series, .nr_series = LAT_NR, .rates = rates,
				.nr_rates = SEC_NR, .nr_secs = s->nr_secs };
	char title[200], sub[300], detail[VEIL_ERROR_LEN + 64];
	unsigned int i;

	for (i = 0; i < LAT_NR; i++)
		series[i] = (struct report_svg_series){ lat_names[i], lat_labels[i], &s->lat[i] };
	for (i = 0; i < SEC_NR; i++)
		sec_deltas(s->sec_conv[i], s->nr_secs);
	snprintf(title, sizeof(title), "veil stress: %s, %u vCPU%s, %u s, %s model",
		 t->pass ? "pass" : "FAILED", s->nr_vcpus, s->nr_vcpus == 1 ? "" : "s",
		 s->o->seconds, gmem_model_name(gmem_model(s->gm)));
	snprintf(sub, sizeof(sub), "%s VM, ran %.2f s%s, seed %llu; %llu lost writes, %llu "
		 "invariant violations", vm_type_name(s), stress_seconds(s),
		 s->interrupted ? " (interrupted)" : "", (unsigned long long)s->o->seed,
		 (unsigned long long)t->dma.lost_writes, (unsigned long long)t->violations);
	snprintf(detail, sizeof(detail), "the run ended: %s", s->stop_reason);
	r.title = title;
	r.subtitle = sub;
	r.detail = t->pass ? NULL : detail;
	return report_svg_print(s->o->report, &r);
}

static int stress_report(struct stress *s, int code)
{
	struct stress_totals t = { 0 };
	int ret;

	guest_totals(s, &t.guest);
	if (s->dma)
		stress_dma_get_stats(s->dma, &t.dma);
	gmem_get_stats(s->gm, &t.gm);
	t.violations = s->violations + t.dma.violations + t.guest.verify_errors;
	report_text(s, &t, s->progress);
	if (code == VEIL_EXIT_POWEROFF && t.dma.lost_writes + t.violations)
		code = VEIL_EXIT_FAILURE;
	if (code != VEIL_EXIT_POWEROFF) {
		fprintf(s->progress, "stress: FAILED: %s\n", s->stop_reason);
	} else if (s->o->foreign_pin && !strncmp(s->foreign, "not run", 7)) {
		fprintf(s->progress, "stress: verdict: the --foreign-pin check asked for was %s; "
			"the rest passed\n", s->foreign);
		code = VEIL_EXIT_USAGE;
	} else {
		fprintf(s->progress, "stress: verdict: pass\n");
	}
	t.pass = code == VEIL_EXIT_POWEROFF;
	ret = s->o->report ? report_svg(s, &t) : 0;
	if (ret) {
		fprintf(stderr, "veil stress: --report '%s': cannot write: %s\n", s->o->report_path,
			strerror(-ret));
		code = code == VEIL_EXIT_POWEROFF ? VEIL_EXIT_USAGE : code;
	}
	if (s->o->json)
		report_json(s, &t);
	return code;
}

static void stress_free(struct stress *s)
{
	unsigned int i;

	stress_dma_destroy(s->dma);
	sv_destroy(s);
	for (i = 0; i < LAT_NR; i++)
		lat_free(&s->lat[i]);
	for (i = 0; i < SEC_NR; i++)
		free(s->sec_conv[i]);
}

static int stress_go(struct stress *s)
{
	pthread_t host, dma, mon;
	bool have_dma = false;
	int code;

	fprintf(s->progress, "stress: seed %llu (--seed repeats it)\n",
		(unsigned long long)s->o->seed);
	s->t_start_ns = now_ns();
	if (start_thread(&host, host_thread, s))
		return VEIL_EXIT_FAILURE;
	if (start_thread(&mon, monitor_thread, s)) {
		__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
		pthread_join(host, NULL);
		return VEIL_EXIT_FAILURE;
	}
	have_dma = s->dma && !start_thread(&dma, dma_thread, s);
	code = sv_run(s);
	s->t_end_ns = now_ns();
	/* 128 + the signal's number when a stop signal ended the run. */
	s->interrupted = code > 128;
	if (s->interrupted)
		fprintf(s->progress, "stress: interrupted (%s); the report covers the run so far\n",
			s->stop_reason);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	pthread_join(host, NULL);
	pthread_join(mon, NULL);
	if (have_dma)
		pthread_join(dma, NULL);
	return stress_report(s, code);
}

int stress_run(const struct stress_opts *o, struct veil_error *err)
{
	struct stress s = { .o = o, .progress = o->json ? stderr : stdout };
	sigset_t old;
	int code;

	*err = (struct veil_error){ 0 };
	if (stress_setup(&s, err)) {
		stress_free(&s);
		return -1;
	}
	if (stress_dma_setup(&s)) {
		stress_free(&s);
		return VEIL_EXIT_FAILURE;
	}
	stress_vm_signals_block(&old);
	code = stress_go(&s);
	fflush(stdout);
	fflush(s.progress);
	stress_vm_signals_restore(&old);
	stress_free(&s);
	return code;
}
