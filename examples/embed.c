/*
 * embed: a program that runs a VM through libveil, built against an installed libveil alone:
 *
 *     cc -o embed embed.c $(pkg-config --cflags --libs libveil)
 *
 * It runs veil's built-in selftest firmware on one vCPU and, from this thread while the guest
 * runs, converts 2 MiB of guest RAM to private and back, checking the attribute map after
 * each step.  Then it waits for the guest's exit, checks the guest's results and reads the
 * counters.  It exits 0 only if all of that worked, 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <veil.h>

#define MIB (UINT64_C(1) << 20)
#define CONVERT_SIZE (2 * MIB)

/*
 * What the log callback saw: libveil writes nothing to stderr itself once a callback is set.
 * The callback runs on whichever thread logged, so its state is atomic.
 */
struct logs {
	atomic_uint errors;
};

static void on_log(void *opaque, enum veil_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	struct logs *logs = opaque;

	if (level == VEIL_LOG_ERR)
		atomic_fetch_add(&logs->errors, 1);
	fprintf(stderr, "embed: veil %s: %s\n",
		(unsigned int)level < 4 ? names[level] : "?", msg);
}

/* The attribute map's private extents that overlap [want_gpa, want_gpa + CONVERT_SIZE). */
struct extents {
	uint64_t want_gpa;
	uint64_t private_in_range;
	uint64_t private_total;
};

static void on_extent(void *opaque, uint64_t gpa, uint64_t size, bool is_private)
{
	struct extents *e = opaque;
	uint64_t lo = gpa > e->want_gpa ? gpa : e->want_gpa;
	uint64_t hi = gpa + size < e->want_gpa + CONVERT_SIZE ? gpa + size : e->want_gpa + CONVERT_SIZE;

	if (!is_private)
		return;
	e->private_total += size;
	if (hi > lo)
		e->private_in_range += hi - lo;
}

static int fail(const char *what, int ret, const struct veil_error *err)
{
	fprintf(stderr, "embed: FAIL %s: %s%s%s\n", what, strerror(ret < 0 ? -ret : ret),
		err && err->msg[0] ? ": " : "", err ? err->msg : "");
	return -1;
}

/* Reads the attribute map and checks that exactly want_private bytes of the range are private. */
static int check_map(struct veil_vm *vm, uint64_t gpa, uint64_t want_private)
{
	struct extents e = { .want_gpa = gpa };
	struct veil_memory m;
	int ret;

	ret = veil_vm_memory(vm, &m, on_extent, &e);
	if (ret < 0)
		return fail("veil_vm_memory", ret, NULL);
	if (e.private_in_range != want_private || e.private_total != want_private ||
	    m.private_bytes != want_private) {
		fprintf(stderr, "embed: FAIL attribute map: %" PRIu64 " private bytes in the range, %"
			PRIu64 " in all extents, %" PRIu64 " in the summary; expected %" PRIu64 "\n",
			e.private_in_range, e.private_total, m.private_bytes, want_private);
		return -1;
	}
	return 0;
}

/* Converts the range to private and back while the guest runs. */
static int convert_while_running(struct veil_vm *vm, uint64_t gpa)
{
	struct veil_error err = { 0 };
	enum veil_state before = veil_vm_state(vm);
	int ret;

	if (before != VEIL_STATE_RUNNING) {
		fprintf(stderr, "embed: FAIL the guest was no longer running (state %d) when the host "
			"began its conversion\n", (int)before);
		return -1;
	}
	ret = veil_vm_convert(vm, gpa, CONVERT_SIZE, true, &err);
	if (ret < 0)
		return fail("veil_vm_convert to private", ret, &err);
	if (check_map(vm, gpa, CONVERT_SIZE))
		return -1;
	ret = veil_vm_convert(vm, gpa, CONVERT_SIZE, false, &err);
	if (ret < 0)
		return fail("veil_vm_convert to shared", ret, &err);
	if (check_map(vm, gpa, 0))
		return -1;
	printf("embed: converted [0x%" PRIx64 ", 0x%" PRIx64 ") to private and back while the guest ran\n",
	       gpa, gpa + CONVERT_SIZE);
	return 0;
}

/* After the stop: the guest's own results, veil's check of them, and the counters. */
static int check_after(struct veil_vm *vm, const struct veil_exit *ex)
{
	struct veil_counters c;
	char why[VEIL_ERROR_LEN] = "";
	int ret;

	if (ex->code != VEIL_EXIT_POWEROFF) {
		fprintf(stderr, "embed: FAIL the guest ended with code %d: %s\n", ex->code, ex->reason);
		return -1;
	}
	ret = veil_vm_verify(vm, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "embed: FAIL veil_vm_verify: %s: %s\n", strerror(-ret), why);
		return -1;
	}
	ret = veil_vm_counters(vm, &c);
	if (ret < 0)
		return fail("veil_vm_counters", ret, NULL);
	printf("embed: counters: %" PRIu64 " exits (%" PRIu64 " I/O, %" PRIu64 " MMIO), %" PRIu64
	       " conversions completed, %" PRIu64 " conversion errors\n",
	       c.exits, c.io_exits, c.mmio_exits, c.host_conversions, c.conversion_errors);
	if (c.exits == 0 || c.io_exits == 0 || c.host_conversions < 2 || c.conversion_errors) {
		fprintf(stderr, "embed: FAIL counters: expected vCPU exits, I/O exits, at least the "
			"host's 2 conversions and no conversion error\n");
		return -1;
	}
	return 0;
}

static int run(struct veil_vm *vm, const struct veil_config *cfg)
{
	struct logs *logs = cfg->log_opaque;
	struct veil_error err = { 0 };
	struct veil_exit ex = { 0 };
	struct veil_info info;
	uint64_t gpa;
	int ret;

	ret = veil_vm_info(vm, &info);
	if (ret < 0)
		return fail("veil_vm_info", ret, NULL);
	if (info.nr_ranges == 0 || info.ranges[0].size < 4 * CONVERT_SIZE) {
		fprintf(stderr, "embed: FAIL veil_vm_info: no RAM range of 8 MiB\n");
		return -1;
	}
	/* The middle of the first RAM range: away from the firmware image and the stacks. */
	gpa = (info.ranges[0].gpa + info.ranges[0].size / 2) & ~(CONVERT_SIZE - 1);

	/* libveil refuses to start a VM whose kick signal has no handler, and says why. */
	ret = veil_vm_start(vm, &err);
	if (ret != -EINVAL || !err.config_fault || !err.msg[0]) {
		fprintf(stderr, "embed: FAIL veil_vm_start without a kick handler returned %d (%s)\n",
			ret, err.msg);
		return -1;
	}
	printf("embed: veil_vm_start without a kick handler: refused, as it must be: %s\n", err.msg);
	atomic_store(&logs->errors, 0); /* whether the refusal was logged too is libveil's choice */
	memset(&err, 0, sizeof(err));
	ret = veil_install_kick_handler(cfg->kick_signal);
	if (ret < 0)
		return fail("veil_install_kick_handler", ret, NULL);
	ret = veil_vm_start(vm, &err);
	if (ret < 0)
		return fail("veil_vm_start", ret, &err);
	if (convert_while_running(vm, gpa)) {
		veil_vm_stop(vm, VEIL_EXIT_FAILURE, "the embedder's conversion failed");
		veil_vm_wait(vm, -1, &ex);
		return -1;
	}
	ret = veil_vm_wait(vm, 60000, &ex);
	if (ret < 0)
		return fail("veil_vm_wait", ret, NULL);
	return check_after(vm, &ex);
}

int main(void)
{
	struct veil_error err = { 0 };
	struct logs logs = { 0 };
	struct veil_config cfg;
	struct veil_vm *vm;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0); /* in order with the guest's console on the same fd */
	veil_config_init(&cfg);
	cfg.nr_cpus = 1;
	cfg.mem_size = 64 * MIB;
	cfg.boot.firmware = "selftest";
	cfg.console_out_fd = STDOUT_FILENO;
	cfg.log = on_log;
	cfg.log_opaque = &logs;

	printf("embed: libveil %s, API version %d\n", veil_version(), VEIL_API_VERSION);
	ret = veil_vm_create(&cfg, &vm, &err);
	if (ret < 0) {
		fail("veil_vm_create", ret, &err);
		return 1;
	}
	ret = run(vm, &cfg);
	veil_vm_destroy(vm);
	if (ret == 0 && atomic_load(&logs.errors)) {
		fprintf(stderr, "embed: FAIL libveil logged %u errors\n", atomic_load(&logs.errors));
		ret = -1;
	}
	printf("embed: %s\n", ret ? "FAIL" : "pass");
	return ret ? 1 : 0;
}
