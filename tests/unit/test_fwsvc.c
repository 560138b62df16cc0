/*
 * Unit test: the firmware service port acts for the vCPU whose exit it is,
 * never for a vCPU number the guest writes (issue 10 §8), driven through
 * vcpu_handle_exit() with made-up port writes and a host-only gmem.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "exit.h"
#include "fwsvc.h"
#include "gmem.h"
#include "kvm_uapi.h"
#include "log.h"
#include "test.h"
#include "veil_boot.h"
#include "vm.h"

#define RUN_SIZE 4096
#define IO_OFF 3072
#define NR_VCPUS 2
#define CTL_GPA 0x1000ULL
#define PAGE_OF(cpu) (0x200000ULL + (cpu) * 0x1000ULL) /* what each vCPU's request converts */

struct ctx {
	struct vm vm;
	struct vcpu vcpus[NR_VCPUS];
	struct kvm_run *run[NR_VCPUS];
	struct fwsvc svc;
};

static void ctx_setup(struct ctx *c)
{
	struct gmem_layout l = { .nr = 1, .r = { { 0, 4ULL << 20 } } };
	struct fw_boot_opts opts = { 0 };
	unsigned int i;

	memset(c, 0, sizeof(*c));
	c->vm.stop_efd = -1;
	c->vm.nr_vcpus = NR_VCPUS;
	c->vm.vcpus = c->vcpus;
	pthread_mutex_init(&c->vm.stop_lock, NULL);
	pthread_cond_init(&c->vm.stop_cond, NULL);
	if (bus_create(&c->vm.bus) || gmem_create(-1, &l, 0, &c->vm.gmem) ||
	    fwsvc_prepare(&c->svc, &c->vm, 1, &opts)) {
		fprintf(stderr, "test setup failed\n");
		exit(1);
	}
	c->svc.ctl_gpa = CTL_GPA; /* what svc_fill() sets from the firmware's plan */
	for (i = 0; i < NR_VCPUS; i++) {
		c->run[i] = aligned_alloc(RUN_SIZE, RUN_SIZE);
		if (!c->run[i])
			exit(1);
		memset(c->run[i], 0, RUN_SIZE);
		c->vcpus[i] = (struct vcpu){ .vm = &c->vm, .index = i, .fd = -1, .run = c->run[i],
					     .run_size = RUN_SIZE };
	}
}

static void ctx_teardown(struct ctx *c)
{
	unsigned int i;

	for (i = 0; i < NR_VCPUS; i++)
		free(c->run[i]);
	gmem_destroy(c->vm.gmem);
	bus_destroy(c->vm.bus);
	pthread_cond_destroy(&c->vm.stop_cond);
	pthread_mutex_destroy(&c->vm.stop_lock);
}

static uint64_t slot_gpa(unsigned int cpu)
{
	return CTL_GPA + (uint64_t)cpu * sizeof(struct veil_svc_req);
}

/* Every vCPU's slot asks to make its own page private; ret starts as a marker. */
static void post_requests(struct ctx *c)
{
	unsigned int i;

	for (i = 0; i < NR_VCPUS; i++) {
		struct veil_svc_req rq = { .op = VEIL_SVC_MAP_GPA_RANGE, .gpa = PAGE_OF(i), .len = 1,
					   .arg = KVM_MAP_GPA_RANGE_ENCRYPTED, .ret = -9999 };

		CHECK_EQ(gmem_write(c->vm.gmem, slot_gpa(i), &rq, sizeof(rq)), 0);
	}
}

static int64_t slot_ret(struct ctx *c, unsigned int cpu)
{
	struct veil_svc_req rq = { 0 };

	CHECK_EQ(gmem_read(c->vm.gmem, slot_gpa(cpu), &rq, sizeof(rq)), 0);
	return rq.ret;
}

static bool is_private(struct ctx *c, unsigned int cpu)
{
	bool private = false;

	CHECK_EQ(gmem_attr_is_private(c->vm.gmem, PAGE_OF(cpu), &private), 0);
	return private;
}

/* vCPU cpu executes `out %eax, VEIL_PORT_SERVICE` with eax = says. */
static void port_write(struct ctx *c, unsigned int cpu, uint32_t says)
{
	struct kvm_run *r = c->run[cpu];

	r->exit_reason = KVM_EXIT_IO;
	r->io.direction = KVM_EXIT_IO_OUT;
	r->io.port = VEIL_PORT_SERVICE;
	r->io.size = 4;
	r->io.count = 1;
	r->io.data_offset = IO_OFF;
	memcpy((uint8_t *)r + IO_OFF, &says, sizeof(says));
	CHECK_EQ(vcpu_handle_exit(&c->vcpus[cpu]).action, VCPU_CONTINUE);
}

/*
 * vCPU 0 names vCPU 1, and numbers past the last vCPU: each write is
 * refused as a guest fault, no slot is served and vCPU 1 is not touched
 * (the old port served vCPU 1's slot as vCPU 1 from vCPU 0's thread).
 */
static void test_other_vcpu_refused(void)
{
	static const uint32_t lies[] = { 1, NR_VCPUS, 63, 64, 1000, UINT32_MAX };
	unsigned int i;
	struct ctx c;

	ctx_setup(&c);
	post_requests(&c);
	for (i = 0; i < ARRAY_SIZE(lies); i++)
		port_write(&c, 0, lies[i]);
	CHECK_EQ(c.vm.stats.guest_faults, ARRAY_SIZE(lies));
	CHECK_EQ(c.svc.requests, 0);
	CHECK_EQ(slot_ret(&c, 0), -9999);
	CHECK_EQ(slot_ret(&c, 1), -9999);
	CHECK(!is_private(&c, 0) && !is_private(&c, 1));
	CHECK_EQ(c.vcpus[1].stats.conversions + c.vcpus[1].stats.conversion_fails, 0);
	CHECK_EQ(c.vcpus[0].stats.conversions + c.vcpus[0].stats.conversion_fails, 0);
	CHECK(!vm_stopping(&c.vm));
	ctx_teardown(&c);
}

/* Each vCPU writing its own index is served from its own slot, as itself. */
static void test_own_vcpu_served(void)
{
	unsigned int i;
	struct ctx c;

	ctx_setup(&c);
	post_requests(&c);
	port_write(&c, 1, 1);
	CHECK_EQ(slot_ret(&c, 1), 0);
	CHECK(is_private(&c, 1));
	CHECK_EQ(c.vcpus[1].stats.conversions, 1);
	CHECK_EQ(slot_ret(&c, 0), -9999); /* not vCPU 0's request */
	CHECK(!is_private(&c, 0));
	port_write(&c, 0, 0);
	CHECK_EQ(slot_ret(&c, 0), 0);
	CHECK(is_private(&c, 0));
	for (i = 0; i < NR_VCPUS; i++)
		CHECK_EQ(c.vcpus[i].stats.conversions, 1);
	CHECK_EQ(c.svc.requests, 2);
	CHECK_EQ(c.vm.stats.guest_faults, 0);
	ctx_teardown(&c);
}

/* The check both firmware ports share (the stress port uses it too). */
static void test_port_vcpu(void)
{
	uint32_t v = 1;
	struct ctx c;

	ctx_setup(&c);
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, 1, 0, &v, 4), 1);
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, 0, 0, &v, 4), -EINVAL);
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, 1, 1, &v, 4), -EINVAL);
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, 1, 0, &v, 2), -EINVAL);
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, BUS_NO_VCPU, 0, &v, 4), -EINVAL);
	v = BUS_NO_VCPU;
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, BUS_NO_VCPU, 0, &v, 4), -EINVAL);
	v = NR_VCPUS;
	CHECK_EQ(fwsvc_port_vcpu(&c.vm, NR_VCPUS, 0, &v, 4), -EINVAL);
	/* A write that no vCPU made (the host, a test) is refused. */
	v = 0;
	CHECK_EQ(bus_dispatch(c.vm.bus, BUS_PIO, VEIL_PORT_SERVICE, &v, 4, true), -EINVAL);
	CHECK_EQ(c.svc.requests, 0);
	ctx_teardown(&c);
}

/*
 * What the firmware is told about contents follows the one predicate: a
 * destructive default VM zeroes on conversion (the service used to tell the
 * firmware "preserved" there, unlike the rest of veil).
 */
static void test_semantics_follow_model(void)
{
	static const bool destructive[] = { false, true };
	struct gmem_layout l = { .nr = 1, .r = { { 0, 4ULL << 20 } } };
	struct fw_plan plan = { .scratch_base = 0x10000 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(destructive); i++) {
		struct gmem_config gc = { .vm_fd = -1, .model = GMEM_MODEL_HOST,
					  .destructive = destructive[i] };
		struct fw_boot_opts opts = { 0 };
		struct veil_boot_info bi = { 0 };
		struct fwsvc svc;
		struct vm vm;

		memset(&vm, 0, sizeof(vm));
		vm.nr_vcpus = 1;
		vm.cfg.destructive = destructive[i];
		if (bus_create(&vm.bus) || gmem_create_cfg(&gc, &l, &vm.gmem) ||
		    fwsvc_prepare(&svc, &vm, 1, &opts)) {
			fprintf(stderr, "test setup failed\n");
			exit(1);
		}
		CHECK(opts.fill != NULL);
		opts.fill(&bi, &plan, opts.opaque);
		CHECK_EQ(bi.semantics, destructive[i] ? VEIL_CONTENT_ZEROED : VEIL_CONTENT_PRESERVED);
		gmem_destroy(vm.gmem);
		bus_destroy(vm.bus);
	}
}

int main(void)
{
	log_set_level(LOG_ERR);
	test_other_vcpu_refused();
	test_own_vcpu_served();
	test_port_vcpu();
	test_semantics_follow_model();
	return test_done("test_fwsvc");
}
