/*
 * kvm: libveil through veil.h alone: the selftest to a clean exit, pause
 * and resume with exits frozen, host conversions while the guest runs, a
 * start refused without a kick handler, two VMs at once with their own logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "veil.h"

/* A flat image that writes port 0x80 forever: every iteration is a vCPU exit. */
static const unsigned char spin_out[] = { 0xe6, 0x80, 0xeb, 0xfc }; /* out 0x80, al; jmp . - 2 */

static char spin_path[] = "/tmp/veil-test-libveil-XXXXXX";

struct log_count {
	const char *name;
	unsigned int msgs;
	unsigned int no_device; /* "has no device": from the VM's vCPU thread, at debug level */
};

static void count_log(void *opaque, enum veil_log_level level, const char *msg)
{
	struct log_count *lc = opaque;

	(void)level;
	lc->msgs++;
	if (strstr(msg, "has no device"))
		lc->no_device++;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t exits_of(struct veil_vm *vm)
{
	struct veil_counters c;

	CHECK_EQ(veil_vm_counters(vm, &c), 0);
	return c.exits;
}

/* The VM's exit count once it is above @floor: polled, so that a loaded machine only slows it. */
static uint64_t exits_above(struct veil_vm *vm, uint64_t floor)
{
	uint64_t e = exits_of(vm);

	for (int i = 0; i < 3000 && e <= floor; i++) {
		sleep_ms(10);
		e = exits_of(vm);
	}
	return e;
}

static struct veil_vm *create(struct veil_config *cfg)
{
	struct veil_error err = { 0 };
	struct veil_vm *vm = NULL;
	int ret = veil_vm_create(cfg, &vm, &err);

	if (ret)
		fprintf(stderr, "veil_vm_create: %s\n", err.msg);
	CHECK_EQ(ret, 0);
	return ret ? NULL : vm;
}

static void spin_config(struct veil_config *cfg)
{
	veil_config_init(cfg);
	cfg->mem_size = 16ULL << 20;
	cfg->boot.firmware = spin_path;
}

static void test_selftest(void)
{
	char out_path[] = "/tmp/veil-test-libveil-out-XXXXXX", buf[8192] = "", why[256] = "";
	struct veil_error err = { 0 };
	struct veil_config cfg;
	struct veil_exit ex = { 0 };
	struct veil_vm *vm;
	int fd = mkstemp(out_path);
	ssize_t n;

	CHECK(fd >= 0);
	unlink(out_path);
	veil_config_init(&cfg);
	cfg.nr_cpus = 2;
	cfg.mem_size = 16ULL << 20;
	cfg.boot.firmware = "selftest";
	cfg.console_out_fd = fd;
	vm = create(&cfg);
	if (!vm)
		return;
	CHECK_EQ(veil_vm_state(vm), VEIL_STATE_CREATED);
	CHECK_EQ(veil_vm_start(vm, &err), 0);
	CHECK_EQ(veil_vm_wait(vm, 60000, &ex), 0);
	CHECK_EQ(ex.code, VEIL_EXIT_POWEROFF);
	CHECK_EQ(veil_vm_state(vm), VEIL_STATE_STOPPED);
	CHECK_EQ(veil_vm_verify(vm, why, sizeof(why)), 0);
	CHECK(exits_of(vm) > 0);
	veil_vm_destroy(vm);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	CHECK(n > 0);
	CHECK_STR_CONTAINS(buf, "selftest: pass");
	close(fd);
	fprintf(stderr, "selftest: exit %d (%s)\n", ex.code, ex.reason);
}

static void test_no_kick_handler(void)
{
	struct veil_error err = { 0 };
	struct veil_config cfg;
	struct veil_exit ex;
	struct veil_vm *vm;

	signal(SIGUSR2, SIG_DFL);
	spin_config(&cfg);
	cfg.kick_signal = SIGUSR2;
	vm = create(&cfg);
	if (!vm)
		return;
	CHECK_EQ(veil_vm_start(vm, &err), -EINVAL);
	CHECK(err.config_fault);
	CHECK_STR_CONTAINS(err.msg, "no handler");
	CHECK_EQ(veil_vm_state(vm), VEIL_STATE_CREATED);
	/* Ignored is no better: the kick would never interrupt KVM_RUN. */
	signal(SIGUSR2, SIG_IGN);
	CHECK_EQ(veil_vm_start(vm, &err), -EINVAL);
	signal(SIGUSR2, SIG_DFL);
	/* With a handler it starts. */
	CHECK_EQ(veil_install_kick_handler(SIGUSR2), 0);
	CHECK_EQ(veil_vm_start(vm, &err), 0);
	CHECK_EQ(veil_vm_stop(vm, 0, "test"), 0);
	CHECK_EQ(veil_vm_wait(vm, -1, &ex), 0);
	CHECK_EQ(ex.code, 0);
	CHECK_STR_CONTAINS(ex.reason, "test");
	veil_vm_destroy(vm);
}

/* The caller's signal mask as it is now, to compare. */
static sigset_t mask_now(void)
{
	sigset_t m;

	pthread_sigmask(SIG_SETMASK, NULL, &m);
	return m;
}

static bool mask_same(const sigset_t *a, const sigset_t *b)
{
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(a, sig) != sigismember(b, sig))
			return false;
	}
	return true;
}

static volatile sig_atomic_t usr1_seen;
static bool watch_stop, watch_changed;

static void usr1_mine(int sig)
{
	(void)sig;
	usr1_seen = 1;
}

/* Samples SIGUSR1's disposition while veil_vm_create() runs: a swap, however brief, is a change. */
static void *watch_usr1(void *arg)
{
	struct sigaction cur;

	(void)arg;
	while (!__atomic_load_n(&watch_stop, __ATOMIC_ACQUIRE)) {
		if (sigaction(SIGUSR1, NULL, &cur) == 0 && cur.sa_handler != usr1_mine)
			__atomic_store_n(&watch_changed, true, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * A create whose capability probes really run (an empty cache) changes no
 * signal disposition and no mask: the probes' kicks are a child process's.
 * SIGUSR1 (the probes' own kick) carries the program's handler throughout.
 */
static void test_probe_leaves_signals(void)
{
	char dir[] = "/tmp/veil-test-libveil-cache-XXXXXX";
	struct sigaction mine = { .sa_handler = usr1_mine }, before[NSIG], after;
	bool known[NSIG] = { false };
	struct veil_config cfg;
	struct veil_vm *vm;
	sigset_t m0 = mask_now(), m1;
	const char *old = getenv("VEIL_CACHE_DIR");
	char *saved = old ? strdup(old) : NULL;
	int sig;

	CHECK(mkdtemp(dir) != NULL);
	setenv("VEIL_CACHE_DIR", dir, 1);
	sigaction(SIGUSR1, &mine, NULL);
	for (sig = 1; sig < NSIG; sig++) /* glibc keeps a few for itself: sigaction refuses them */
		known[sig] = sigaction(sig, NULL, &before[sig]) == 0;
	spin_config(&cfg);
	cfg.kick_signal = SIGUSR1;
	{
		pthread_t w;

		CHECK_EQ(pthread_create(&w, NULL, watch_usr1, NULL), 0);
		vm = create(&cfg);
		__atomic_store_n(&watch_stop, true, __ATOMIC_RELEASE);
		pthread_join(w, NULL);
	}
	veil_vm_destroy(vm);
	if (__atomic_load_n(&watch_changed, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "SIGUSR1's handler was swapped while veil_vm_create ran\n");
		CHECK(false);
	}
	for (sig = 1; sig < NSIG; sig++) {
		if (!known[sig] || sigaction(sig, NULL, &after))
			continue;
		if (after.sa_handler != before[sig].sa_handler || after.sa_flags != before[sig].sa_flags) {
			fprintf(stderr, "signal %d's disposition changed across veil_vm_create\n", sig);
			CHECK(false);
		}
	}
	m1 = mask_now();
	CHECK(mask_same(&m0, &m1));
	CHECK_EQ(usr1_seen, 0);
	/* The probes ran: their answers are in the new cache. */
	{
		char path[sizeof(dir) + 8];

		snprintf(path, sizeof(path), "%s/caps", dir);
		CHECK_EQ(access(path, R_OK), 0);
		unlink(path);
	}
	rmdir(dir);
	if (saved)
		setenv("VEIL_CACHE_DIR", saved, 1);
	else
		unsetenv("VEIL_CACHE_DIR");
	free(saved);
}

static void test_pause_resume(void)
{
	struct veil_config cfg;
	struct veil_exit ex;
	struct veil_vm *vm;
	uint64_t e0, e1, e2, e3;

	sigset_t m0 = mask_now(), m1;
	struct sigaction int0, int1;

	sigaction(SIGINT, NULL, &int0);
	spin_config(&cfg);
	vm = create(&cfg);
	if (!vm)
		return;
	CHECK_EQ(veil_vm_pause(vm), -EINVAL); /* not running */
	CHECK_EQ(veil_vm_start(vm, NULL), 0);
	/* The caller's mask and the stop signals' dispositions are the embedder's. */
	m1 = mask_now();
	CHECK(mask_same(&m0, &m1));
	sigaction(SIGINT, NULL, &int1);
	CHECK(int0.sa_handler == int1.sa_handler);
	e0 = exits_above(vm, 0);
	CHECK(e0 > 0);
	CHECK_EQ(veil_vm_pause(vm), 0);
	CHECK_EQ(veil_vm_state(vm), VEIL_STATE_PAUSED);
	e1 = exits_of(vm);
	sleep_ms(300);
	e2 = exits_of(vm);
	CHECK_EQ(e2, e1); /* frozen while paused */
	CHECK_EQ(veil_vm_resume(vm), 0);
	CHECK_EQ(veil_vm_state(vm), VEIL_STATE_RUNNING);
	e3 = exits_above(vm, e2);
	CHECK(e3 > e2);
	fprintf(stderr, "pause: exits %llu before, %llu and %llu while paused, %llu after resume\n",
		(unsigned long long)e0, (unsigned long long)e1, (unsigned long long)e2,
		(unsigned long long)e3);
	/* A second pause, then a stop while paused. */
	CHECK_EQ(veil_vm_pause(vm), 0);
	CHECK_EQ(veil_vm_stop(vm, 0, "stopped while paused"), 0);
	CHECK_EQ(veil_vm_wait(vm, 10000, &ex), 0);
	CHECK_EQ(ex.code, 0);
	veil_vm_destroy(vm);
	m1 = mask_now();
	CHECK(mask_same(&m0, &m1));
}

struct extents {
	unsigned int n, nr_private;
	uint64_t private_gpa, private_size;
};

static void on_extent(void *opaque, uint64_t gpa, uint64_t size, bool is_private)
{
	struct extents *e = opaque;

	e->n++;
	if (is_private) {
		e->nr_private++;
		e->private_gpa = gpa;
		e->private_size = size;
	}
}

static void test_convert(void)
{
	const uint64_t gpa = 8ULL << 20, size = 64 << 10;
	struct veil_counters c0, c1;
	struct veil_error err = { 0 };
	struct veil_memory m;
	struct extents e = { 0 };
	struct veil_config cfg;
	struct veil_info info;
	struct veil_vm *vm;

	spin_config(&cfg);
	vm = create(&cfg);
	if (!vm)
		return;
	CHECK_EQ(veil_vm_info(vm, &info), 0);
	CHECK_EQ(info.nr_cpus, 1);
	CHECK_EQ(info.mem_size, 16ULL << 20);
	CHECK(info.nr_ranges >= 1);
	CHECK(info.model != NULL);
	CHECK_EQ(veil_vm_start(vm, NULL), 0);
	exits_above(vm, 0);
	CHECK_EQ(veil_vm_counters(vm, &c0), 0);
	CHECK_EQ(veil_vm_convert(vm, gpa, size, true, &err), 0);
	CHECK_EQ(veil_vm_memory(vm, &m, on_extent, &e), 0);
	CHECK_EQ(m.private_bytes, size);
	CHECK_EQ(e.nr_private, 1);
	CHECK_EQ(e.private_gpa, gpa);
	CHECK_EQ(e.private_size, size);
	CHECK_EQ(e.n, 3); /* shared, private, shared */
	CHECK_EQ(veil_vm_convert(vm, gpa, size, false, &err), 0);
	CHECK_EQ(veil_vm_discard(vm, gpa, size, &err), 0);
	CHECK_EQ(veil_vm_memory(vm, &m, NULL, NULL), 0);
	CHECK_EQ(m.private_bytes, 0);
	exits_above(vm, c0.exits);
	CHECK_EQ(veil_vm_counters(vm, &c1), 0);
	fprintf(stderr, "convert: exits %llu -> %llu, conversions %llu -> %llu\n",
		(unsigned long long)c0.exits, (unsigned long long)c1.exits,
		(unsigned long long)c0.host_conversions, (unsigned long long)c1.host_conversions);
	CHECK(c1.host_conversions >= c0.host_conversions + 2);
	CHECK(c1.exits > c0.exits); /* the guest ran on */
	/* Bad ranges are the caller's fault, and change nothing. */
	CHECK_EQ(veil_vm_convert(vm, gpa + 1, size, true, &err), -EINVAL);
	CHECK(err.config_fault);
	CHECK_EQ(veil_vm_convert(vm, 1ULL << 40, size, true, &err), -EINVAL);
	CHECK_EQ(veil_vm_stop(vm, 0, NULL), 0);
	CHECK_EQ(veil_vm_wait(vm, -1, NULL), 0);
	veil_vm_destroy(vm);
}

static void test_two_vms(void)
{
	struct log_count la = { "A" }, lb = { "B" };
	struct veil_config ca, cb;
	struct veil_vm *a, *b;
	struct veil_exit ex;
	uint64_t a1, b1, a2, b2;

	spin_config(&ca);
	ca.log = count_log;
	ca.log_opaque = &la;
	ca.log_level = VEIL_LOG_DEBUG;
	spin_config(&cb);
	cb.nr_cpus = 2;
	cb.log = count_log;
	cb.log_opaque = &lb;
	cb.log_level = VEIL_LOG_INFO;
	a = create(&ca);
	b = create(&cb);
	if (!a || !b) {
		veil_vm_destroy(a);
		veil_vm_destroy(b);
		return;
	}
	CHECK_EQ(veil_vm_start(a, NULL), 0);
	CHECK_EQ(veil_vm_start(b, NULL), 0);
	exits_above(a, 0);
	exits_above(b, 0);
	CHECK_EQ(veil_vm_state(a), VEIL_STATE_RUNNING);
	CHECK_EQ(veil_vm_state(b), VEIL_STATE_RUNNING);
	/* Pausing one leaves the other running. */
	CHECK_EQ(veil_vm_pause(a), 0);
	a1 = exits_of(a);
	b1 = exits_of(b);
	sleep_ms(300);
	a2 = exits_of(a);
	b2 = exits_above(b, b1);
	CHECK_EQ(a2, a1);
	CHECK(b2 > b1);
	CHECK(a1 > 0);
	CHECK_EQ(veil_vm_stop(b, 0, "b"), 0);
	CHECK_EQ(veil_vm_wait(b, -1, &ex), 0);
	CHECK_STR_CONTAINS(ex.reason, "b");
	CHECK_EQ(veil_vm_state(a), VEIL_STATE_PAUSED);
	CHECK_EQ(veil_vm_resume(a), 0);
	CHECK_EQ(veil_vm_stop(a, 0, "a"), 0);
	CHECK_EQ(veil_vm_wait(a, -1, &ex), 0);
	CHECK_STR_CONTAINS(ex.reason, "a");
	veil_vm_destroy(a);
	veil_vm_destroy(b);
	/* Each VM's messages went to its own callback: A's vCPU logged at debug level, B's did not. */
	fprintf(stderr, "logs: A %u messages (%u no-device), B %u (%u)\n", la.msgs, la.no_device,
		lb.msgs, lb.no_device);
	CHECK(la.no_device > 0);
	CHECK_EQ(lb.no_device, 0);
	CHECK(lb.msgs > 0);
}

int main(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("no usable /dev/kvm");
	close(fd);
	fd = mkstemp(spin_path);
	if (fd < 0 || write(fd, spin_out, sizeof(spin_out)) != sizeof(spin_out))
		SKIP("cannot write %s", spin_path);
	close(fd);
	test_no_kick_handler();
	test_probe_leaves_signals();
	CHECK_EQ(veil_install_kick_handler(SIGUSR1), 0);
	test_selftest();
	test_pause_resume();
	test_convert();
	test_two_vms();
	unlink(spin_path);
	return test_done("libveil");
}
