/*
 * kvm: veil_internal.h's build hooks, as the harness uses them.  A hook
 * runs once, between the devices and the guest (the firmware loader calls
 * the fill it set afterwards); the port it adds serves, and the range
 * cannot be taken twice; the VM it built still runs the selftest to a
 * passing host check; a hook's failure fails the build and leaves no fd;
 * the conversions firmware is refused without its service; the
 * keeps-contents hook agrees with veil_vm_info().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "fw.h"
#include "test.h"
#include "veil.h"
#include "veil_boot.h"
#include "veil_internal.h"

struct probe {
	unsigned int builds, fills, fills_at_build, nr_vcpus;
	bool had_fw;
	int port_ret, port_again_ret, fail;
	struct gmem *gm;
};

static int port_write(void *opaque, unsigned int vcpu, uint64_t offset, const void *data,
		      unsigned int len)
{
	(void)opaque, (void)vcpu, (void)offset, (void)data, (void)len;
	return 0;
}

static const struct bus_device_ops port_ops = { .write_vcpu = port_write };

static void fill(struct veil_boot_info *bi, const struct fw_plan *plan, void *opaque)
{
	struct probe *p = opaque;

	(void)bi, (void)plan;
	p->fills++;
}

static int build(void *opaque, struct vm *vm, struct fw_boot_opts *fw)
{
	struct probe *p = opaque;

	p->builds++;
	p->fills_at_build = p->fills;
	p->had_fw = fw != NULL;
	p->gm = veil_internal_gmem(vm);
	p->nr_vcpus = veil_internal_nr_vcpus(vm);
	p->port_ret = veil_internal_add_port(vm, VEIL_PORT_CONVERT, 4, &port_ops, p, "test-port");
	p->port_again_ret = veil_internal_add_port(vm, VEIL_PORT_CONVERT, 4, &port_ops, p,
						   "test-port-again");
	if (fw) {
		fw->fill = fill;
		fw->opaque = p;
	}
	return p->fail;
}

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void config(struct veil_config *cfg, bool destructive)
{
	veil_config_init(cfg);
	cfg->nr_cpus = 2;
	cfg->mem_size = 16ULL << 20;
	cfg->destructive = destructive;
	cfg->console_out_fd = -1;
	cfg->log_level = VEIL_LOG_ERR;
}

/* A hooked selftest VM: the hook ran once, before the fill, and the guest still passes. */
static void test_hook_runs_once_before_the_guest(void)
{
	struct probe p = { 0 };
	const struct veil_hooks hooks = { .build = build, .opaque = &p };
	struct veil_vcpu_stats st = { 0 };
	struct veil_error err = { 0 };
	struct veil_exit ex = { 0 };
	struct veil_config cfg;
	struct veil_vm *vm = NULL;
	char why[256] = "";

	config(&cfg, false);
	CHECK_EQ(veil_vm_create_hooked(&cfg, &hooks, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "create: %s\n", err.msg);
		return;
	}
	CHECK_EQ(p.builds, 1);
	CHECK(p.had_fw);
	CHECK_EQ(p.fills_at_build, 0);
	CHECK_EQ(p.fills, 1);
	CHECK_EQ(p.nr_vcpus, 2);
	CHECK(p.gm != NULL && p.gm == veil_internal_gmem(veil_internal_vm(vm)));
	CHECK_EQ(p.port_ret, 0);
	CHECK(p.port_again_ret < 0); /* the bus refuses an overlapping range */
	CHECK_EQ(veil_vm_start(vm, &err), 0);
	CHECK_EQ(veil_vm_wait(vm, 60000, &ex), 0);
	CHECK_EQ(ex.code, VEIL_EXIT_POWEROFF);
	CHECK_EQ(veil_vm_verify(vm, why, sizeof(why)), 0);
	CHECK_EQ(veil_internal_vcpu_stats(veil_internal_vm(vm), 1, &st), 0);
	CHECK(st.exits > 0);
	CHECK_EQ(veil_internal_vcpu_stats(veil_internal_vm(vm), 2, &st), -EINVAL);
	veil_vm_destroy(vm);
}

/* A hook that fails fails the build, which leaves nothing open. */
static void test_failing_hook_unwinds(void)
{
	struct probe p = { .fail = -EIO };
	const struct veil_hooks hooks = { .build = build, .opaque = &p };
	struct veil_error err = { 0 };
	struct veil_config cfg;
	struct veil_vm *vm = NULL;
	unsigned int fds = count_fds();

	config(&cfg, false);
	CHECK(veil_vm_create_hooked(&cfg, &hooks, &vm, &err) < 0);
	CHECK(vm == NULL);
	CHECK_EQ(p.builds, 1);
	CHECK_EQ(p.port_ret, 0);
	CHECK(err.msg[0] != 0);
	CHECK_EQ(count_fds(), fds);
}

/* The conversions firmware's host side is a hook: without it, a configuration error. */
static void test_conversions_needs_its_service(void)
{
	struct veil_error err = { 0 };
	struct veil_config cfg;
	struct veil_vm *vm = NULL;

	config(&cfg, false);
	cfg.boot.firmware = "conversions";
	CHECK_EQ(veil_vm_create(&cfg, &vm, &err), -EINVAL);
	CHECK(vm == NULL);
	CHECK(err.config_fault);
	CHECK_STR_CONTAINS(err.msg, "conversions");
}

/* One answer to "does this VM keep contents", whoever asks. */
static void test_keeps_contents_agrees(void)
{
	static const bool destructive[] = { false, true };
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct veil_error err = { 0 };
		struct veil_info info = { 0 };
		struct veil_config cfg;
		struct veil_vm *vm = NULL;

		config(&cfg, destructive[i]);
		CHECK_EQ(veil_vm_create(&cfg, &vm, &err), 0);
		if (!vm)
			continue;
		CHECK_EQ(veil_vm_info(vm, &info), 0);
		CHECK_EQ(veil_internal_keeps_contents(veil_internal_vm(vm)), info.keeps_contents);
		if (!strcmp(info.model, "host-enforced"))
			CHECK_EQ(info.keeps_contents, !destructive[i]);
		veil_vm_destroy(vm);
	}
}

int main(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("no usable /dev/kvm");
	close(fd);
	CHECK_EQ(veil_install_kick_handler(SIGUSR1), 0);
	test_hook_runs_once_before_the_guest();
	test_failing_hook_unwinds();
	test_conversions_needs_its_service();
	test_keeps_contents_agrees();
	return test_done("test_hooks");
}
