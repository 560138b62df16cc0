/* fuzz: vcpu_handle_exit on random kvm_run contents, dispatching to the UART, debug-exit, PCI host and virtio-mmio devices on the bus. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon.h"
#include "debug_exit.h"
#include "fuzz.h"
#include "fuzz_vdev.h"
#include "kvm_uapi.h"
#include "log.h"
#include "mmio.h"
#include "pci.h"
#include "uart8250.h"
#include "virtio/console.h" /* not vmm's console.h, earlier on the include path */
#include "vm.h"

#define RUN_SIZE 4096
#define IO_OFF 3072 /* where the kernel would put port data: past struct kvm_run */
#define UART 0x3f8
#define DBG 0x501
#define MMIO0 0xd0000000ULL
#define WIN 0xe0000000ULL

struct t {
	struct vq_drv d;
	struct vm vm;
	struct vcpu vcpu;
	struct kvm_run *run;
	uint8_t before[RUN_SIZE];
	struct uart8250 *uart;
	struct debug_exit dbg;
	struct pci_host host;
	struct virtio_console con;
	struct virtio_balloon balloon;
	struct virtio_mmio mmio[2];
	uint32_t gen[2];
	bool kicked;
	unsigned long actions[4];
};

static void kick(void *opaque)
{
	((struct t *)opaque)->kicked = true;
}

static void uart_tx(void *opaque, uint8_t byte)
{
	(void)opaque, (void)byte;
}

static void debug_exit_stop(void *opaque, uint32_t status)
{
	vm_request_stop(opaque, status ? VM_EXIT_FAILURE : VM_EXIT_POWEROFF, "debug-exit %u", status);
}

static void setup(struct t *t, struct fuzz *f)
{
	struct uart8250_config uc = { .tx = uart_tx, .opaque = t };
	const struct bus_device_ops *m = &virtio_mmio_ops;

	drv_setup(&t->d, f);
	t->vm.stop_efd = -1;
	pthread_mutex_init(&t->vm.stop_lock, NULL);
	pthread_cond_init(&t->vm.stop_cond, NULL);
	t->dbg = (struct debug_exit){ .exit = debug_exit_stop, .opaque = &t->vm };
	t->run = aligned_alloc(RUN_SIZE, RUN_SIZE);
	if (!t->run || bus_create(&t->vm.bus) || uart8250_create(&uc, &t->uart) ||
	    virtio_console_init(&t->con, t->d.gm, "fuzz-con") ||
	    virtio_balloon_init(&t->balloon, t->d.gm, "fuzz-balloon") ||
	    pci_host_init(&t->host, t->vm.bus, WIN, 0x100000, NULL, NULL) ||
	    bus_register(t->vm.bus, BUS_PIO, UART, 8, &uart8250_bus_ops, t->uart, "uart") ||
	    bus_register(t->vm.bus, BUS_PIO, DBG, 4, &debug_exit_bus_ops, &t->dbg, "debug-exit") ||
	    bus_register(t->vm.bus, BUS_MMIO, MMIO0, VIRTIO_MMIO_SIZE, m, &t->mmio[0], "con") ||
	    bus_register(t->vm.bus, BUS_MMIO, MMIO0 + 0x1000, VIRTIO_MMIO_SIZE, m, &t->mmio[1], "bal"))
		exit(1);
	t->con.kick = t->balloon.kick = kick;
	t->con.kick_opaque = t->balloon.kick_opaque = t;
	virtio_mmio_init(&t->mmio[0], &t->con.vdev);
	virtio_mmio_init(&t->mmio[1], &t->balloon.vdev);
	t->vcpu = (struct vcpu){ .vm = &t->vm, .index = 1, .fd = -1, .run = t->run,
				 .run_size = RUN_SIZE };
}

/* Registers a driver touches, so MMIO exits reach device state and not only refusals. */
static uint64_t mmio_addr(struct fuzz *f)
{
	static const uint16_t regs[] = { 0x000, 0x010, 0x014, 0x020, 0x024, 0x030, 0x038, 0x044,
					 0x050, 0x060, 0x064, 0x070, 0x080, 0x090, 0x0a0, 0x0fc,
					 0x100, 0x104, 0x108 };

	switch (fuzz_below(f, 4)) {
	case 0: case 1: return MMIO0 + 0x1000 * fuzz_below(f, 2) + regs[fuzz_below(f, ARRAY_SIZE(regs))];
	case 2: return MMIO0 + fuzz_below(f, 0x1210);
	default: return fuzz_one_in(f, 2) ? WIN + fuzz_below(f, 0x100000) : fuzz_interesting(f);
	}
}

/* An exit as KVM makes them, of a random kind, then perhaps damaged. */
static void make_exit(struct t *t)
{
	struct fuzz *f = t->d.f;
	struct kvm_run *r = t->run;
	struct veil_kvm_memory_fault mf;
	uint8_t *p = (uint8_t *)r;

	for (unsigned int i = 0; i < RUN_SIZE; i += 8)
		fuzz_put(p + i, 8, fuzz_one_in(f, 2) ? fuzz_next(f) : 0);
	r->exit_reason = (uint32_t)fuzz_below(f, 45);
	switch (fuzz_below(f, 8)) {
	case 0: case 1:
		r->exit_reason = KVM_EXIT_IO;
		r->io.direction = (uint8_t)fuzz_below(f, fuzz_one_in(f, 16) ? 256 : 2);
		r->io.size = (uint8_t)(fuzz_one_in(f, 8) ? fuzz_below(f, 9) : 1u << fuzz_below(f, 3));
		r->io.port = (uint16_t)(fuzz_one_in(f, 8) ? fuzz_next(f) : fuzz_one_in(f, 2) ?
					UART + fuzz_below(f, 9) : fuzz_one_in(f, 2) ? DBG : 0xcf8 + fuzz_below(f, 8));
		r->io.count = (uint32_t)(fuzz_one_in(f, 8) ? fuzz_value(f, 1, 4) : 1 + fuzz_below(f, 4));
		r->io.data_offset = fuzz_one_in(f, 8) ? fuzz_interesting(f) :
				    fuzz_one_in(f, 8) ? fuzz_below(f, RUN_SIZE) : IO_OFF + 8 * fuzz_below(f, 8);
		break;
	case 2: case 3:
		r->exit_reason = KVM_EXIT_MMIO;
		r->mmio.phys_addr = mmio_addr(f);
		r->mmio.len = (uint32_t)(fuzz_one_in(f, 8) ? fuzz_value(f, 4, 4) : 1u << fuzz_below(f, 4));
		r->mmio.is_write = (uint8_t)fuzz_below(f, 2);
		break;
	case 4:
		r->exit_reason = KVM_EXIT_HYPERCALL;
		r->hypercall.nr = fuzz_one_in(f, 4) ? fuzz_value(f, 12, 8) : KVM_HC_MAP_GPA_RANGE;
		r->hypercall.args[0] = fuzz_one_in(f, 4) ? fuzz_interesting(f) : fuzz_below(f, MEM) & ~0xfffULL;
		r->hypercall.args[1] = fuzz_one_in(f, 4) ? fuzz_interesting(f) : 1 + fuzz_below(f, 16);
		r->hypercall.args[2] = fuzz_one_in(f, 4) ? fuzz_next(f) :
				       fuzz_below(f, 2) * KVM_MAP_GPA_RANGE_ENCRYPTED | fuzz_below(f, 3);
		break;
	case 5:
		mf = (struct veil_kvm_memory_fault){ .flags = fuzz_value(f, KVM_MEMORY_EXIT_FLAG_PRIVATE, 8),
			.gpa = fuzz_one_in(f, 4) ? fuzz_interesting(f) : fuzz_below(f, MEM + 0x2000),
			.size = fuzz_one_in(f, 4) ? fuzz_interesting(f) : 1 + fuzz_below(f, 0x3000) };
		r->exit_reason = KVM_EXIT_MEMORY_FAULT;
		memcpy(r->padding, &mf, sizeof(mf));
		break;
	default: {
		static const uint32_t plain[] = { KVM_EXIT_SYSTEM_EVENT, KVM_EXIT_INTERNAL_ERROR,
			KVM_EXIT_FAIL_ENTRY, KVM_EXIT_SHUTDOWN, KVM_EXIT_HLT, KVM_EXIT_INTR };

		if (fuzz_one_in(f, 2))
			r->exit_reason = plain[fuzz_below(f, ARRAY_SIZE(plain))];
		else if (fuzz_one_in(f, 4))
			r->exit_reason = (uint32_t)fuzz_interesting(f);
		r->system_event.type = (uint32_t)fuzz_below(f, 6);
		break;
	}
	}
	for (unsigned int n = fuzz_one_in(f, 4) ? 1 + (unsigned int)fuzz_below(f, 3) : 0; n; n--)
		fuzz_field(f, p, sizeof(*r), fuzz_below(f, 64), 1u << fuzz_below(f, 4));
}

/* The bytes of the run page the handler may write for this exit: [*lo, *hi). */
static void writable_run(const struct kvm_run *r, size_t *lo, size_t *hi)
{
	uint64_t n = (uint64_t)r->io.size * r->io.count;

	*lo = *hi = 0;
	if (r->exit_reason == KVM_EXIT_IO && r->io.direction != KVM_EXIT_IO_OUT &&
	    (r->io.size == 1 || r->io.size == 2 || r->io.size == 4) &&
	    r->io.data_offset <= RUN_SIZE && n <= RUN_SIZE - r->io.data_offset) {
		*lo = r->io.data_offset;
		*hi = *lo + n;
	} else if (r->exit_reason == KVM_EXIT_MMIO && !r->mmio.is_write && r->mmio.len >= 1 &&
		   r->mmio.len <= 8) {
		*lo = offsetof(struct kvm_run, mmio.data);
		*hi = *lo + r->mmio.len;
	} else if (r->exit_reason == KVM_EXIT_HYPERCALL) {
		*lo = offsetof(struct kvm_run, hypercall.ret);
		*hi = *lo + sizeof(r->hypercall.ret);
	}
}

static void one(struct t *t)
{
	struct fuzz *f = t->d.f;
	size_t lo, hi;
	uint64_t exits = t->vcpu.stats.exits;
	enum vcpu_action act;

	t->vm.stopping = false, t->vm.exit_code = 0, t->vm.stop_reason[0] = '\0';
	t->vm.gmem = fuzz_one_in(f, 4) ? NULL : t->d.gm;
	t->vm.implicit_conversions = fuzz_one_in(f, 4);
	make_exit(t);
	writable_run(t->run, &lo, &hi);
	memcpy(t->before, t->run, RUN_SIZE);
	act = vcpu_handle_exit(&t->vcpu);
	CHECK(act == VCPU_CONTINUE || act == VCPU_STOP || act == VCPU_STOP_DUMP || act == VCPU_PARK);
	t->actions[act & 3]++;
	CHECK_EQ(t->vcpu.stats.exits, exits + 1);
	/* A stop says why; going on means nobody asked to stop. */
	if (act == VCPU_STOP || act == VCPU_STOP_DUMP)
		CHECK(vm_stopping(&t->vm) && t->vm.stop_reason[0]);
	else
		CHECK(!vm_stopping(&t->vm));
	for (size_t i = 0; i < RUN_SIZE; i++)
		if (((uint8_t *)t->run)[i] != t->before[i] && (i < lo || i >= hi)) {
			CHECK(!"the exit handler wrote where the exit did not say");
			fprintf(stderr, "exit %u: byte %zu of the run page\n", t->before[8], i);
			break;
		}
	if (t->kicked) { /* what the I/O thread does when a queue is kicked */
		t->kicked = false;
		console_process_tx(&t->con);
		balloon_process(&t->balloon);
	}
	drv_check_vdev(&t->con.vdev, &t->gen[0]);
	drv_check_vdev(&t->balloon.vdev, &t->gen[1]);
}

int main(void)
{
	struct t *t = calloc(1, sizeof(*t));
	struct gmem_conv_result res;
	struct fuzz f;

	log_set_level(LOG_ERR); /* guest faults are logged as warnings, by the thousand */
	fuzz_init(&f, "fuzz_exit", 0x65786974, 100000);
	f.carries_state = true; /* devices and memory attributes live through all iterations */
	setup(t, &f);
	FUZZ_FOR_EACH(&f, i) {
		one(t);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_exit: continue %lu, stop %lu, stop+dump %lu, park %lu\n",
	       t->actions[VCPU_CONTINUE], t->actions[VCPU_STOP], t->actions[VCPU_STOP_DUMP],
	       t->actions[VCPU_PARK]);
	if (!test_failures && f.iters >= 1000)
		for (unsigned int a = 0; a < 4; a++)
			CHECK(t->actions[a] > 0);
	/* Whatever the guest converted goes back, so nothing stays pinned or private. */
	CHECK_EQ(gmem_convert(t->d.gm, 0, GUARD, false, &res), 0);
	virtio_balloon_destroy(&t->balloon);
	virtio_console_destroy(&t->con);
	pci_host_destroy(&t->host);
	uart8250_destroy(t->uart);
	bus_destroy(t->vm.bus);
	free(t->run);
	pthread_cond_destroy(&t->vm.stop_cond);
	pthread_mutex_destroy(&t->vm.stop_lock);
	drv_teardown(&t->d);
	free(t);
	return test_done("fuzz_exit");
}
