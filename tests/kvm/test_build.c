/*
 * kvm: vmm/build.c's one unwind path.  The build is failed at each of its
 * steps in turn (veil_build_fail_at, a test hook); each time
 * veil_vm_create() must fail with the step named, and leave the process as
 * it found it: the same open fds, the same threads, no guest memory or KVM
 * mapping left.  A build that succeeds and is destroyed leaves nothing either.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "build.h"
#include "fwsvc.h"
#include "test.h"
#include "veil.h"
#include "veil_vm.h"
#include "vm.h"

/* The conversions firmware with its host service, whose port a build hook registers too. */
static struct fwsvc svc;

static int create(const struct veil_config *cfg, struct veil_vm **vm, struct veil_error *err)
{
	return fwsvc_vm_create(&svc, cfg, vm, err);
}

static unsigned int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	unsigned int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Mappings a VM makes: guest_memfd, memfds, vCPU run pages, io_uring rings. */
static unsigned int count_vm_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd") || strstr(line, "kvm") || strstr(line, "io_uring") ||
		     strstr(line, "guest_mem");
	fclose(f);
	return n;
}

struct snapshot {
	unsigned int fds, threads, maps;
};

static void snap(struct snapshot *s)
{
	s->fds = count_dir("/proc/self/fd");
	s->threads = count_dir("/proc/self/task");
	s->maps = count_vm_maps();
}

static void check_same(const struct snapshot *a, const char *what)
{
	struct snapshot b;

	snap(&b);
	if (a->fds != b.fds || a->threads != b.threads || a->maps != b.maps)
		fprintf(stderr, "%s: fds %u -> %u, threads %u -> %u, VM mappings %u -> %u\n", what,
			a->fds, b.fds, a->threads, b.threads, a->maps, b.maps);
	CHECK_EQ(b.fds, a->fds);
	CHECK_EQ(b.threads, a->threads);
	CHECK_EQ(b.maps, a->maps);
}

static void *no_op(void *arg)
{
	return arg;
}

int main(void)
{
	char disk[] = "/tmp/veil-test-build-XXXXXX";
	struct veil_error err;
	struct veil_config cfg;
	struct snapshot before;
	struct veil_vm *vm;
	int fd, ret, step;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP("no usable /dev/kvm");
	close(fd);
	/*
	 * ThreadSanitizer starts a thread of its own with the first thread a
	 * program creates, and keeps it: start it now, so the counts compare
	 * veil's threads only.
	 */
	{
		pthread_t t;

		CHECK(pthread_create(&t, NULL, no_op, NULL) == 0 && pthread_join(t, NULL) == 0);
	}
	fd = mkstemp(disk);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	veil_config_init(&cfg);
	cfg.nr_cpus = 2;
	cfg.mem_size = 16ULL << 20;
	cfg.boot.firmware = "conversions";
	cfg.nr_disks = 1;
	cfg.disks[0].path = disk;
	cfg.balloon = true;
	cfg.rng = true;
	cfg.virtio_console = true;
	cfg.console_out_fd = -1;
	cfg.log_level = VEIL_LOG_ERR;

	/* A first build and destroy: lazily made process state (the allocator's) settles. */
	CHECK_EQ(create(&cfg, &vm, &err), 0);
	/* A firmware guest's board has no PIT: KVM has none to report (its teardown costs ~17 ms). */
	{
		struct kvm_pit_state2 pit;

		CHECK(ioctl(veil_vm_core(vm)->vm_fd, KVM_GET_PIT2, &pit) < 0 && errno == ENXIO);
	}
	veil_vm_destroy(vm);

	snap(&before);
	for (step = BUILD_CHECK; step <= BUILD_NR_STEPS; step++) {
		char what[32];

		veil_build_fail_at(step);
		vm = NULL;
		ret = create(&cfg, &vm, &err);
		CHECK(ret < 0);
		CHECK(vm == NULL);
		CHECK_STR_CONTAINS(err.msg, "(injected)");
		snprintf(what, sizeof(what), "failed at step %d", step);
		check_same(&before, what);
		if (ret == 0)
			veil_vm_destroy(vm);
	}
	veil_build_fail_at(0);

	/* A configuration error, found before anything is made. */
	cfg.nr_disks = 1;
	cfg.disks[0].path = "/nonexistent/disk.img";
	CHECK(create(&cfg, &vm, &err) < 0);
	CHECK(err.config_fault);
	CHECK_STR_CONTAINS(err.msg, "disk '/nonexistent/disk.img'");
	check_same(&before, "a missing disk");
	cfg.disks[0].path = disk;

	/* Built, started, stopped, destroyed: nothing left either. */
	CHECK_EQ(veil_install_kick_handler(SIGUSR1), 0);
	ret = create(&cfg, &vm, &err);
	CHECK_EQ(ret, 0);
	if (ret)
		return test_done("build");
	CHECK_EQ(veil_vm_start(vm, &err), 0);
	CHECK_EQ(veil_vm_stop(vm, 0, "test"), 0);
	CHECK_EQ(veil_vm_wait(vm, -1, NULL), 0);
	veil_vm_destroy(vm);
	check_same(&before, "run and destroyed");

	unlink(disk);
	return test_done("build");
}
