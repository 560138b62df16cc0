/* Unit test: vcpu_handle_exit() fed made-up kvm_run contents, with no /dev/kvm. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "debug_exit.h"
#include "exit.h"
#include "kvm_uapi.h"
#include "log.h"
#include "gmem.h"
#include "test.h"
#include "vm.h"

#define RUN_SIZE 4096
/* Where the made-up IO exits keep their data: past struct kvm_run, inside the page. */
#define IO_OFF 3072
_Static_assert(sizeof(struct kvm_run) <= IO_OFF, "IO data would overlap struct kvm_run");

#define PIO_BASE 0x70
#define MMIO_BASE 0xd0000000ULL
#define DBG_PORT 0x501
#define VCPU_INDEX 3

struct access {
	uint64_t offset;
	unsigned int len;
	bool is_write;
	uint8_t data[8];
};

/* A device that records every access; reads return 0x40 + 0x10 * call + byte index. */
struct probe {
	unsigned int n;
	struct access a[8];
};

struct ctx {
	struct vm vm;
	struct vcpu vcpu;
	struct kvm_run *run;
	struct probe pio, mmio;
	struct debug_exit dbg;
	struct vcpu_exit last; /* what vcpu_handle_exit() returned last */
};

static int probe_access(struct probe *p, uint64_t offset, void *data, unsigned int len,
			bool is_write)
{
	struct access *a = &p->a[p->n % 8];
	unsigned int i;

	*a = (struct access){ .offset = offset, .len = len, .is_write = is_write };
	for (i = 0; i < len && i < 8; i++) {
		if (!is_write)
			((uint8_t *)data)[i] = (uint8_t)(0x40 + 0x10 * p->n + i);
		a->data[i] = ((uint8_t *)data)[i];
	}
	p->n++;
	return 0;
}

static int probe_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	return probe_access(opaque, offset, data, len, false);
}

static int probe_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	return probe_access(opaque, offset, (void *)data, len, true);
}

static const struct bus_device_ops probe_ops = { .read = probe_read, .write = probe_write };

/* The debug-exit port's status becomes the exit code, as in vmm/vm.c. */
static void debug_exit_stop(void *opaque, uint32_t status)
{
	vm_request_stop(opaque, status ? VM_EXIT_FAILURE : VM_EXIT_POWEROFF,
			"debug-exit status %u", status);
}

static void ctx_setup(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->vm.stop_efd = -1;
	pthread_mutex_init(&c->vm.stop_lock, NULL);
	pthread_cond_init(&c->vm.stop_cond, NULL);
	c->dbg = (struct debug_exit){ .exit = debug_exit_stop, .opaque = &c->vm };
	c->run = aligned_alloc(RUN_SIZE, RUN_SIZE);
	if (!c->run || bus_create(&c->vm.bus) ||
	    bus_register(c->vm.bus, BUS_PIO, PIO_BASE, 4, &probe_ops, &c->pio, "pio-probe") ||
	    bus_register(c->vm.bus, BUS_MMIO, MMIO_BASE, 0x1000, &probe_ops, &c->mmio, "mmio-probe") ||
	    bus_register(c->vm.bus, BUS_PIO, DBG_PORT, 4, &debug_exit_bus_ops, &c->dbg,
			 "debug-exit")) {
		fprintf(stderr, "test setup failed\n");
		exit(1);
	}
	memset(c->run, 0, RUN_SIZE);
	c->vcpu = (struct vcpu){ .vm = &c->vm, .index = VCPU_INDEX, .fd = -1, .run = c->run,
				 .run_size = RUN_SIZE };
}

static void ctx_teardown(struct ctx *c)
{
	bus_destroy(c->vm.bus);
	free(c->run);
	pthread_cond_destroy(&c->vm.stop_cond);
	pthread_mutex_destroy(&c->vm.stop_lock);
}

static uint8_t *io_data(struct ctx *c)
{
	return (uint8_t *)c->run + IO_OFF;
}

static void set_io(struct ctx *c, uint8_t dir, uint16_t port, uint8_t size, uint32_t count)
{
	c->run->exit_reason = KVM_EXIT_IO;
	c->run->io.direction = dir;
	c->run->io.port = port;
	c->run->io.size = size;
	c->run->io.count = count;
	c->run->io.data_offset = IO_OFF;
}

static void set_mmio(struct ctx *c, uint64_t gpa, uint32_t len, bool is_write)
{
	c->run->exit_reason = KVM_EXIT_MMIO;
	c->run->mmio.phys_addr = gpa;
	c->run->mmio.len = len;
	c->run->mmio.is_write = is_write;
}

/* One exit through vcpu_handle_exit(); its result is kept in c->last. */
static enum vcpu_action handle(struct ctx *c)
{
	c->last = vcpu_handle_exit(&c->vcpu);
	return c->last.action;
}

static void expect_running(struct ctx *c)
{
	CHECK(c->last.action == VCPU_CONTINUE || c->last.action == VCPU_PARK);
	CHECK(!vm_stopping(&c->vm));
	CHECK_EQ(c->vm.exit_code, 0);
	CHECK_EQ(c->vm.stop_reason[0], '\0');
}

/*
 * The last exit asked for a stop with this code and reason, and only asked:
 * stopping the VM is the caller's business, so the VM is not stopping.
 */
static void expect_stopped(struct ctx *c, int code, const char *reason)
{
	CHECK(c->last.action == VCPU_STOP || c->last.action == VCPU_STOP_DUMP);
	CHECK_EQ(c->last.code, code);
	CHECK_STR_CONTAINS(c->last.reason, reason);
	CHECK(!vm_stopping(&c->vm));
}

/* A device on the bus stopped the VM itself (debug-exit's callback); the exit just goes on. */
static void expect_device_stopped(struct ctx *c, int code, const char *reason)
{
	CHECK_EQ(c->last.action, VCPU_CONTINUE);
	CHECK(vm_stopping(&c->vm));
	CHECK_EQ(c->vm.exit_code, code);
	CHECK_STR_CONTAINS(c->vm.stop_reason, reason);
}

static void test_io_out(void)
{
	struct ctx c;
	uint16_t v[2] = { 0x1234, 0x5678 };

	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_OUT, PIO_BASE + 2, 2, 2);
	memcpy(io_data(&c), v, sizeof(v));
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.pio.n, 2);
	CHECK_EQ(c.pio.a[0].offset, 2);
	CHECK_EQ(c.pio.a[0].len, 2);
	CHECK(c.pio.a[0].is_write && c.pio.a[1].is_write);
	CHECK_EQ(c.pio.a[0].data[0] | c.pio.a[0].data[1] << 8, 0x1234);
	CHECK_EQ(c.pio.a[1].offset, 2);
	CHECK_EQ(c.pio.a[1].data[0] | c.pio.a[1].data[1] << 8, 0x5678);
	CHECK_EQ(c.vcpu.stats.exits, 1);
	CHECK_EQ(c.vcpu.stats.io, 1);
	CHECK_EQ(c.vm.stats.unhandled_io, 0);
	expect_running(&c);
	ctx_teardown(&c);
}

static void test_io_in(void)
{
	struct ctx c;
	const uint8_t *d;

	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_IN, PIO_BASE, 4, 2);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	d = io_data(&c);
	CHECK_EQ(c.pio.n, 2);
	CHECK(!c.pio.a[0].is_write && !c.pio.a[1].is_write);
	CHECK_EQ(c.pio.a[1].offset, 0);
	CHECK_EQ(c.pio.a[1].len, 4);
	CHECK_EQ(d[0], 0x40);
	CHECK_EQ(d[3], 0x43);
	CHECK_EQ(d[4], 0x50);
	CHECK_EQ(d[7], 0x53);
	CHECK_EQ(d[8], 0); /* nothing past size * count */
	CHECK_EQ(c.vm.stats.unhandled_io, 0);
	expect_running(&c);
	ctx_teardown(&c);
}

/* A port nobody claims reads as all ones; the guest carries on and the miss is counted. */
static void test_io_unclaimed(void)
{
	struct ctx c;
	const uint8_t *d;
	unsigned int i;

	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_IN, 0x80, 2, 3);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	d = io_data(&c);
	for (i = 0; i < 6; i++)
		CHECK_EQ(d[i], 0xff);
	CHECK_EQ(d[6], 0);
	CHECK_EQ(c.vm.stats.unhandled_io, 3);
	CHECK_EQ(c.vm.stats.guest_faults, 0); /* probing absent hardware is no fault */
	set_io(&c, KVM_EXIT_IO_OUT, 0x80, 1, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.vm.stats.unhandled_io, 4);
	/* Straddling the end of a device is no access to it. */
	set_io(&c, KVM_EXIT_IO_IN, PIO_BASE + 3, 2, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(d[0], 0xff);
	CHECK_EQ(d[1], 0xff);
	CHECK_EQ(c.pio.n, 0);
	CHECK_EQ(c.vm.stats.unhandled_io, 5);
	/* A device refusing the access counts too: debug-exit takes offset 0 only. */
	set_io(&c, KVM_EXIT_IO_OUT, DBG_PORT + 1, 1, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.vm.stats.unhandled_io, 6);
	expect_running(&c);
	ctx_teardown(&c);
}

static void expect_malformed_io(uint8_t size, uint32_t count, uint64_t offset)
{
	struct ctx c;

	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_OUT, PIO_BASE, size, count);
	c.run->io.data_offset = offset;
	CHECK_EQ(handle(&c), VCPU_STOP);
	expect_stopped(&c, VM_EXIT_FAILURE, "malformed IO exit");
	CHECK_STR_CONTAINS(c.last.reason, "vCPU 3");
	CHECK_EQ(c.pio.n, 0);
	ctx_teardown(&c);
}

static void test_io_malformed(void)
{
	struct ctx c;

	expect_malformed_io(1, 1, RUN_SIZE + 1);
	expect_malformed_io(1, 1, UINT64_MAX);
	/* Data over the exit itself: an IN could rewrite the count it loops on. */
	expect_malformed_io(4, 1, offsetof(struct kvm_run, io.count));
	expect_malformed_io(3, 1, IO_OFF);
	expect_malformed_io(0, 1, IO_OFF);
	expect_malformed_io(8, 1, IO_OFF);
	expect_malformed_io(4, 257, IO_OFF);
	expect_malformed_io(4, UINT32_MAX, IO_OFF);
	expect_malformed_io(2, 1, RUN_SIZE - 1);
	/* The last bytes of the run page are still fair game. */
	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_OUT, PIO_BASE, 4, 256);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.pio.n, 256);
	expect_running(&c);
	ctx_teardown(&c);
}

static void test_io_debug_exit(void)
{
	struct ctx c;
	uint32_t status = 7;

	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_OUT, DBG_PORT, 4, 1);
	memcpy(io_data(&c), &status, sizeof(status));
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	expect_device_stopped(&c, VM_EXIT_FAILURE, "debug-exit status 7");
	ctx_teardown(&c);
	ctx_setup(&c);
	set_io(&c, KVM_EXIT_IO_OUT, DBG_PORT, 1, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	expect_device_stopped(&c, VM_EXIT_POWEROFF, "debug-exit status 0");
	ctx_teardown(&c);
}

static void test_mmio_write_read(void)
{
	struct ctx c;
	const uint8_t w[4] = { 0xef, 0xbe, 0xad, 0xde };

	ctx_setup(&c);
	set_mmio(&c, MMIO_BASE + 0x10, 4, true);
	memcpy(c.run->mmio.data, w, sizeof(w));
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.mmio.n, 1);
	CHECK(c.mmio.a[0].is_write);
	CHECK_EQ(c.mmio.a[0].offset, 0x10);
	CHECK_EQ(c.mmio.a[0].len, 4);
	CHECK(memcmp(c.mmio.a[0].data, w, sizeof(w)) == 0);
	set_mmio(&c, MMIO_BASE + 0xff8, 8, false);
	memset(c.run->mmio.data, 0, sizeof(c.run->mmio.data));
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.mmio.n, 2);
	CHECK_EQ(c.mmio.a[1].offset, 0xff8);
	CHECK_EQ(c.mmio.a[1].len, 8);
	CHECK_EQ(c.run->mmio.data[0], 0x50);
	CHECK_EQ(c.run->mmio.data[7], 0x57);
	CHECK_EQ(c.vcpu.stats.mmio, 2);
	CHECK_EQ(c.pio.n, 0);
	CHECK_EQ(c.vm.stats.unhandled_io, 0);
	expect_running(&c);
	ctx_teardown(&c);
}

static void test_mmio_unclaimed(void)
{
	struct ctx c;

	ctx_setup(&c);
	set_mmio(&c, 0xe0000000ULL, 4, false);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.run->mmio.data[0], 0xff);
	CHECK_EQ(c.run->mmio.data[3], 0xff);
	CHECK_EQ(c.run->mmio.data[4], 0);
	CHECK_EQ(c.vm.stats.unhandled_io, 1);
	set_mmio(&c, MMIO_BASE + 0xffc, 8, false);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.run->mmio.data[7], 0xff);
	CHECK_EQ(c.mmio.n, 0);
	set_mmio(&c, 0xe0000000ULL, 2, true);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.vm.stats.unhandled_io, 3);
	expect_running(&c);
	ctx_teardown(&c);
}

static void expect_malformed_mmio(uint32_t len)
{
	struct ctx c;

	ctx_setup(&c);
	set_mmio(&c, MMIO_BASE, len, false);
	CHECK_EQ(handle(&c), VCPU_STOP);
	expect_stopped(&c, VM_EXIT_FAILURE, "malformed MMIO exit");
	CHECK_EQ(c.mmio.n, 0);
	ctx_teardown(&c);
}

static void test_hlt_intr(void)
{
	struct ctx c;

	ctx_setup(&c);
	c.run->exit_reason = KVM_EXIT_HLT;
	CHECK_EQ(handle(&c), VCPU_PARK);
	expect_running(&c);
	c.run->exit_reason = KVM_EXIT_INTR;
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	expect_running(&c);
	/* A kick out of a stopping VM: the loop, not the exit, sees the stop. */
	vm_request_stop(&c.vm, VM_EXIT_POWEROFF, "test stop");
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.vcpu.stats.exits, 3);
	ctx_teardown(&c);
}

/* Runs one exit on a fresh VM; checks the action, the exit code and part of the reason. */
static void expect_stop(struct kvm_run *tmpl, enum vcpu_action act, int code, const char *reason)
{
	struct ctx c;

	ctx_setup(&c);
	memcpy(c.run, tmpl, sizeof(*tmpl));
	CHECK_EQ(handle(&c), act);
	expect_stopped(&c, code, reason);
	CHECK_STR_CONTAINS(c.last.reason, "vCPU 3");
	ctx_teardown(&c);
}

static void test_shutdown_and_events(void)
{
	struct kvm_run r = { .exit_reason = KVM_EXIT_SHUTDOWN };

	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_RESET, "triple fault");
	r.exit_reason = KVM_EXIT_SYSTEM_EVENT;
	r.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	expect_stop(&r, VCPU_STOP, VM_EXIT_POWEROFF, "powered off");
	r.system_event.type = KVM_SYSTEM_EVENT_RESET;
	expect_stop(&r, VCPU_STOP, VM_EXIT_RESET, "reset");
	/* arm64's PSCI SYSTEM_RESET2 is a reset with a flag (api.rst): the same exit 3. */
	r.system_event.ndata = 1;
	r.system_event.data[0] = 1; /* KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 */
	expect_stop(&r, VCPU_STOP, VM_EXIT_RESET, "reset");
	/* And PSCI 1.3's SYSTEM_OFF2 a shutdown with one: exit 0. */
	r.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	expect_stop(&r, VCPU_STOP, VM_EXIT_POWEROFF, "powered off");
	r.system_event.ndata = 0;
	r.system_event.data[0] = 0;
	r.system_event.type = KVM_SYSTEM_EVENT_CRASH;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "crashed");
	r.system_event.type = 99;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "unexpected system event 99");
}

static void test_internal_error(void)
{
	struct kvm_run r = { .exit_reason = KVM_EXIT_INTERNAL_ERROR };
	unsigned int i;

	r.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	r.internal.ndata = 2;
	r.internal.data[0] = 0xabc123;
	r.internal.data[1] = 0xfeed;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "emulation");
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "suberror 1");
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "abc123 feed");
	/* ndata is the kernel's word, but never a reason to read past data[]. */
	r.internal.ndata = 100000;
	for (i = 0; i < ARRAY_SIZE(r.internal.data); i++)
		r.internal.data[i] = 0x1000 + i;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "1000 1001 1002 1003");
	r.internal.suberror = 77;
	r.internal.ndata = 0;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "suberror 77 (unknown suberror)");
}

static void test_fail_entry(void)
{
	struct kvm_run r = { .exit_reason = KVM_EXIT_FAIL_ENTRY };

	r.fail_entry.hardware_entry_failure_reason = 0x80000021ULL;
	r.fail_entry.cpu = 5;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "0x80000021");
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "VM entry failed");
}

static void test_hypercall(void)
{
	struct ctx c;

	ctx_setup(&c);
	c.run->exit_reason = KVM_EXIT_HYPERCALL;
	c.run->hypercall.nr = KVM_HC_MAP_GPA_RANGE;
	c.run->hypercall.ret = 0;
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK(c.run->hypercall.ret == (uint64_t)-1000);
	CHECK_EQ(c.vm.stats.guest_faults, 1);
	expect_running(&c);
	ctx_teardown(&c);
}

static void set_memory_fault(struct kvm_run *r, uint64_t flags, uint64_t gpa, uint64_t size)
{
	struct veil_kvm_memory_fault mf = { .flags = flags, .gpa = gpa, .size = size };

	r->exit_reason = KVM_EXIT_MEMORY_FAULT;
	memcpy(r->padding, &mf, sizeof(mf));
}

static void test_memory_fault(void)
{
	struct kvm_run r = { 0 };

	CHECK_EQ(KVM_EXIT_MEMORY_FAULT, 39);
	set_memory_fault(&r, KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x12345000ULL, 0x1000);
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "0x12345000");
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "private");
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "4096 bytes");
	set_memory_fault(&r, 0, 0x7ff000ULL, 0x2000);
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "0x7ff000");
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "shared");
}

/*
 * Inside RAM, on the VM types veil runs, a memory fault raced a host
 * conversion: the vCPU runs again, nothing is converted, and only a fault
 * that keeps coming back at the same GPA stops the VM.  Where the VM type
 * makes faults requests (implicit_conversions), the range is converted.
 */
static void test_memory_fault_in_ram(void)
{
	struct gmem_layout l = { .nr = 1, .r = { { 0, 4ULL << 20 } } };
	struct kvm_run r = { 0 };
	bool private = false;
	struct ctx c;
	unsigned int i;

	ctx_setup(&c);
	CHECK_EQ(gmem_create(-1, &l, 0, &c.vm.gmem), 0);
	set_memory_fault(&r, KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x200000ULL, 0x1000);
	for (i = 0; i < 4; i++) {
		memcpy(c.run, &r, sizeof(r));
		CHECK_EQ(handle(&c), VCPU_CONTINUE);
	}
	CHECK_EQ(gmem_attr_is_private(c.vm.gmem, 0x200000ULL, &private), 0);
	CHECK(!private); /* the map stayed shared: the repeats re-applied shared */
	CHECK_EQ(c.vcpu.stats.fault_retries, 1);
	CHECK_EQ(c.vcpu.stats.fault_resyncs, 3);
	memcpy(c.run, &r, sizeof(r));
	CHECK_EQ(handle(&c), VCPU_STOP_DUMP);
	expect_stopped(&c, VM_EXIT_FAILURE, "faulted again at the same GPA");
	gmem_destroy(c.vm.gmem);
	ctx_teardown(&c);

	ctx_setup(&c);
	CHECK_EQ(gmem_create(-1, &l, 0, &c.vm.gmem), 0);
	c.vm.implicit_conversions = true;
	memcpy(c.run, &r, sizeof(r));
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(gmem_attr_is_private(c.vm.gmem, 0x200000ULL, &private), 0);
	CHECK(private);
	CHECK_EQ(c.vcpu.stats.conversions, 1);
	gmem_destroy(c.vm.gmem);
	ctx_teardown(&c);
}

static void test_unknown_exit(void)
{
	struct kvm_run r = { .exit_reason = 9999 };

	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "unexpected exit 9999");
	r.exit_reason = KVM_EXIT_DEBUG;
	expect_stop(&r, VCPU_STOP_DUMP, VM_EXIT_FAILURE, "unexpected exit 4 (DEBUG)");
	CHECK(strcmp(kvm_exit_reason_name(KVM_EXIT_IO), "IO") == 0);
	CHECK(strcmp(kvm_exit_reason_name(KVM_EXIT_MEMORY_FAULT), "MEMORY_FAULT") == 0);
	CHECK(strcmp(kvm_exit_reason_name(9999), "(unknown exit reason)") == 0);
	CHECK(strcmp(kvm_exit_reason_name(UINT32_MAX), "(unknown exit reason)") == 0);
}

static void test_first_stop_wins(void)
{
	struct ctx c;

	ctx_setup(&c);
	vm_request_stop(&c.vm, VM_EXIT_POWEROFF, "first %d", 1);
	vm_request_stop(&c.vm, VM_EXIT_FAILURE, "second");
	CHECK(vm_stopping(&c.vm));
	CHECK_EQ(c.vm.exit_code, VM_EXIT_POWEROFF);
	CHECK_STR_CONTAINS(c.vm.stop_reason, "first 1");
	/* A later exit's stop is only returned: the VM keeps the first reason. */
	c.run->exit_reason = KVM_EXIT_SHUTDOWN;
	CHECK_EQ(handle(&c), VCPU_STOP_DUMP);
	CHECK_EQ(c.last.code, VM_EXIT_RESET);
	CHECK_STR_CONTAINS(c.last.reason, "triple fault");
	CHECK_EQ(c.vm.exit_code, VM_EXIT_POWEROFF);
	CHECK(strstr(c.vm.stop_reason, "triple") == NULL);
	/* Once stopping, device I/O still completes; the vCPU loop sees the stop. */
	set_io(&c, KVM_EXIT_IO_OUT, PIO_BASE, 1, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.pio.n, 1);
	ctx_teardown(&c);
}

/* The event loop sleeps on stop_efd: a stop request must wake it, exactly once. */
static void test_stop_wakes_loop(void)
{
	struct ctx c;
	uint64_t n = 0;

	ctx_setup(&c);
	c.vm.stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(c.vm.stop_efd >= 0);
	vm_request_stop(&c.vm, VM_EXIT_RESET, "wake");
	vm_request_stop(&c.vm, VM_EXIT_FAILURE, "again");
	CHECK_EQ(read(c.vm.stop_efd, &n, sizeof(n)), sizeof(n));
	CHECK_EQ(n, 1);
	close(c.vm.stop_efd);
	ctx_teardown(&c);
}

/*
 * The boot profile: each exit is counted by kind; with profiling on, the
 * handling time goes to the device the exit reached, by bus name, and the
 * run time to KVM_RUN.  Without it, nothing is timed and no device noted.
 */
static void test_profile(void)
{
	struct vcpu_profile *p;
	struct ctx c;
	unsigned int i;

	ctx_setup(&c);
	p = &c.vcpu.prof;
	set_io(&c, KVM_EXIT_IO_OUT, PIO_BASE, 1, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(p->count[VCPU_EXIT_IO], 1);
	CHECK(p->cur_name == NULL); /* profiling off: no lookup for a name */
	c.vm.profile = true;
	for (i = 0; i < 3; i++) {
		set_io(&c, KVM_EXIT_IO_OUT, PIO_BASE, 1, 1);
		CHECK_EQ(handle(&c), VCPU_CONTINUE);
		vcpu_profile_exit(&c.vcpu, vcpu_exit_kind(c.run->exit_reason), 100, 10);
	}
	set_io(&c, KVM_EXIT_IO_IN, 0x3f8, 1, 1); /* no device there */
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	vcpu_profile_exit(&c.vcpu, VCPU_EXIT_IO, 5, 7);
	c.run->exit_reason = KVM_EXIT_MMIO;
	c.run->mmio.phys_addr = MMIO_BASE + 8;
	c.run->mmio.len = 4;
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	vcpu_profile_exit(&c.vcpu, VCPU_EXIT_MMIO, 1000, 20);
	c.run->exit_reason = KVM_EXIT_INTR;
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	vcpu_profile_exit(&c.vcpu, VCPU_EXIT_KICK, 1, 0);
	CHECK_EQ(p->count[VCPU_EXIT_IO], 5);
	CHECK_EQ(p->count[VCPU_EXIT_MMIO], 1);
	CHECK_EQ(p->count[VCPU_EXIT_KICK], 1);
	CHECK_EQ(p->ns[VCPU_EXIT_IO], 37);
	CHECK_EQ(p->ns[VCPU_EXIT_MMIO], 20);
	CHECK_EQ(p->run_ns, 1306);
	CHECK_EQ(p->nr_dev, 3);
	CHECK_STR_CONTAINS(p->dev[0].name, "pio-probe");
	CHECK_EQ(p->dev[0].count, 3);
	CHECK_EQ(p->dev[0].ns, 30);
	CHECK_STR_CONTAINS(p->dev[1].name, "(none)");
	CHECK_EQ(p->dev[1].ns, 7);
	CHECK_STR_CONTAINS(p->dev[2].name, "mmio-probe");
	CHECK_EQ(p->dev[2].space, BUS_MMIO);
	CHECK_EQ(vcpu_exit_kind(KVM_EXIT_HYPERCALL), VCPU_EXIT_HYPERCALL);
	CHECK_EQ(vcpu_exit_kind(KVM_EXIT_SHUTDOWN), VCPU_EXIT_OTHER);
	ctx_teardown(&c);
}

/*
 * Writes KVM queued in the coalesced ring reach their devices in order,
 * before the exit that follows them is handled, and the ring is consumed;
 * an entry of a bad length is skipped, not dispatched.
 */
static void test_coalesced(void)
{
	enum { MAX = 4 };
	struct {
		struct kvm_coalesced_mmio_ring r;
		struct kvm_coalesced_mmio e[MAX];
	} ring;
	struct ctx c;

	ctx_setup(&c);
	memset(&ring, 0, sizeof(ring));
	c.vcpu.coalesced = &ring.r;
	c.vm.coalesced_max = MAX;
	ring.r.first = 3; /* wraps: entries 3, 0, 1 */
	ring.r.last = 2;
	ring.e[3] = (struct kvm_coalesced_mmio){ .phys_addr = PIO_BASE, .len = 1, .pio = 1,
						 .data = { 0x11 } };
	ring.e[0] = (struct kvm_coalesced_mmio){ .phys_addr = PIO_BASE + 1, .len = 9, .pio = 1 };
	ring.e[1] = (struct kvm_coalesced_mmio){ .phys_addr = MMIO_BASE + 4, .len = 2,
						 .data = { 0x22, 0x33 } };
	set_io(&c, KVM_EXIT_IO_IN, PIO_BASE + 2, 1, 1);
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(ring.r.first, 2);
	CHECK_EQ(c.vm.coalesced_writes, 3);
	CHECK_EQ(c.pio.n, 2); /* the queued write, then the exit's own read */
	CHECK(c.pio.a[0].is_write && c.pio.a[0].offset == 0 && c.pio.a[0].data[0] == 0x11);
	CHECK(!c.pio.a[1].is_write && c.pio.a[1].offset == 2);
	CHECK_EQ(c.mmio.n, 1);
	CHECK(c.mmio.a[0].is_write && c.mmio.a[0].offset == 4 && c.mmio.a[0].len == 2);
	CHECK_EQ(c.mmio.a[0].data[1], 0x33);
	/* An empty ring costs nothing more: the same exit again dispatches only itself. */
	CHECK_EQ(handle(&c), VCPU_CONTINUE);
	CHECK_EQ(c.pio.n, 3);
	CHECK_EQ(c.vm.coalesced_writes, 3);
	ctx_teardown(&c);
}

int main(void)
{
	log_set_level(LOG_ERR); /* guest faults are expected here; keep the output readable */
	test_io_out();
	test_io_in();
	test_io_unclaimed();
	test_io_malformed();
	test_io_debug_exit();
	test_mmio_write_read();
	test_mmio_unclaimed();
	expect_malformed_mmio(0);
	expect_malformed_mmio(9);
	expect_malformed_mmio(UINT32_MAX);
	test_hlt_intr();
	test_shutdown_and_events();
	test_internal_error();
	test_fail_entry();
	test_hypercall();
	test_memory_fault();
	test_memory_fault_in_ram();
	test_unknown_exit();
	test_first_stop_wins();
	test_stop_wakes_loop();
	test_profile();
	test_coalesced();
	return test_done("test_exit");
}
