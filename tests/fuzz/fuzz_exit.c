/* fuzz: vcpu_handle_exit on random kvm_run contents, dispatching to the UART, debug-exit, PCI host, conversions service port and virtio-mmio devices (negotiated through exits) on the bus. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon.h"
#include "debug_exit.h"
#include "exit.h"
#include "fw.h"
#include "fwsvc.h"
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
#define SVC_CTL 0x40000ULL /* the conversions service's control page */
#define QBASE 0x50000ULL   /* rings of the queues negotiate() sets up: 0x1000 per queue */
#define QBUF 0x60000ULL    /* and their buffers */

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
	struct fwsvc svc;
	uint32_t gen[2];
	bool kicked;
	unsigned long actions[4];
	unsigned long running[2]; /* times each device reached DRIVER_OK through exits */
	unsigned long svc_exits;
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
	t->vcpu = (struct vcpu){ .vm = &t->vm, .index = 0, .fd = -1, .run = t->run,
				 .run_size = RUN_SIZE };
	/* The conversions service, as where MAP_GPA_RANGE exits do not reach veil. */
	t->vm.vcpus = &t->vcpu;
	t->vm.nr_vcpus = 1;
	t->vm.gmem = t->d.gm;
	if (fwsvc_prepare(&t->svc, &t->vm, 1, &(struct fw_boot_opts){ 0 }))
		exit(1);
	t->svc.ctl_gpa = SVC_CTL;
}

static void teardown(struct t *t)
{
	struct gmem_conv_result res;

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
}

/* One MMIO write exit of 4 bytes, as a driver's register write, through the exit handler. */
static void mmio_exit(struct t *t, uint64_t gpa, uint32_t v)
{
	memset(t->run, 0, sizeof(*t->run));
	t->run->exit_reason = KVM_EXIT_MMIO;
	t->run->mmio.phys_addr = gpa;
	t->run->mmio.len = 4;
	t->run->mmio.is_write = 1;
	memcpy(t->run->mmio.data, &v, 4);
	CHECK_EQ(vcpu_handle_exit(&t->vcpu).action, VCPU_CONTINUE);
}

/*
 * A driver's negotiation of device k over MMIO exits (virtio 1.2 §3.1.1):
 * reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, every queue with one
 * honest chain posted, DRIVER_OK, a kick.  Random exits after it then reach
 * the queues, the config space and the running device's registers, which
 * random register writes alone never did.
 */
static void negotiate(struct t *t, unsigned int k)
{
	struct fuzz *f = t->d.f;
	struct virtio_dev *vd = k ? &t->balloon.vdev : &t->con.vdev;
	uint64_t base = MMIO0 + 0x1000 * k, feat = vd->features & fuzz_next(f);
	const uint32_t ad = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	feat |= 1ULL << VIRTIO_F_VERSION_1;
	mmio_exit(t, base + 0x070, 0);
	mmio_exit(t, base + 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	mmio_exit(t, base + 0x070, ad);
	for (uint32_t sel = 0; sel < 2; sel++) {
		mmio_exit(t, base + 0x024, sel);
		mmio_exit(t, base + 0x020, (uint32_t)(feat >> (32 * sel)));
	}
	mmio_exit(t, base + 0x070, ad | VIRTIO_STATUS_FEATURES_OK);
	CHECK(vd->status & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int q = 0; q < vd->nr_queues; q++) {
		uint64_t r = QBASE + 0x1000 * q + 0x4000 * k, buf = QBUF + 0x1000 * q + 0x4000 * k;
		uint16_t size = (uint16_t)(fuzz_one_in(f, 8) ? fuzz_value(f, 8, 2) : 8);
		struct desc dsc = { buf, (uint32_t)(1 + fuzz_below(f, 0x1000)),
				    (uint16_t)(k == 0 && q == 0 ? VIRTQ_DESC_F_WRITE : 0), 0 };
		uint16_t avail[3] = { 0, 1, 0 };

		if (k == 1) /* balloon: whole page frame numbers, little-endian 32-bit */
			for (unsigned int i = 0; i < 4; i++)
				(void)!gmem_write(t->d.gm, buf + 4 * i,
						  &(uint32_t){ (uint32_t)fuzz_below(f, MEM >> 12) }, 4);
		if (k == 1 && q == BALLOON_Q_REPORTING) /* a reported range: address and length */
			dsc = (struct desc){ fuzz_below(f, MEM) & ~0xfffULL, 0x1000 << fuzz_below(f, 3),
					     VIRTQ_DESC_F_WRITE, 0 };
		/* Refused where the guest converted the page to private: the queue then fails. */
		(void)!gmem_write(t->d.gm, r, &dsc, sizeof(dsc));
		(void)!gmem_write(t->d.gm, r + 0x800, avail, sizeof(avail));
		mmio_exit(t, base + 0x030, q);
		mmio_exit(t, base + 0x038, size);
		mmio_exit(t, base + 0x080, (uint32_t)r);
		mmio_exit(t, base + 0x084, 0);
		mmio_exit(t, base + 0x090, (uint32_t)(r + 0x800));
		mmio_exit(t, base + 0x094, 0);
		mmio_exit(t, base + 0x0a0, (uint32_t)(r + 0xc00));
		mmio_exit(t, base + 0x0a4, 0);
		mmio_exit(t, base + 0x044, 1);
	}
	mmio_exit(t, base + 0x070, ad | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	if (virtio_dev_running(vd))
		t->running[k]++;
	mmio_exit(t, base + 0x050, (uint32_t)fuzz_below(f, vd->nr_queues));
}

/* A request in the conversions service's control page, for an exit to its port. */
static void service_request(struct t *t)
{
	struct fuzz *f = t->d.f;
	struct veil_svc_req rq = {
		.op = fuzz_one_in(f, 8) ? fuzz_next(f) : 1 + fuzz_below(f, 5),
		.gpa = fuzz_one_in(f, 4) ? fuzz_interesting(f) : fuzz_below(f, MEM) & ~0xfffULL,
		.len = fuzz_one_in(f, 4) ? fuzz_interesting(f) : 0x1000 * (1 + fuzz_below(f, 4)),
		.arg = fuzz_one_in(f, 4) ? fuzz_next(f) : fuzz_below(f, 0x300),
	};

	/* Refused if the guest made the page private; the service then finds it so too. */
	if (gmem_write(t->d.gm, SVC_CTL, &rq, sizeof(rq)))
		return;
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
					UART + fuzz_below(f, 9) : fuzz_one_in(f, 2) ? DBG :
					fuzz_one_in(f, 2) ? VEIL_PORT_SERVICE + fuzz_below(f, 5) :
					0xcf8 + fuzz_below(f, 8));
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

/* The actions vcpu_handle_exit may answer this exit with, as a mask of 1 << action. */
static unsigned int allowed_actions(const struct kvm_run *r)
{
	const unsigned int go = 1u << VCPU_CONTINUE, stop = 1u << VCPU_STOP,
			   dump = 1u << VCPU_STOP_DUMP;
	uint64_t n = (uint64_t)r->io.size * r->io.count;

	switch (r->exit_reason) {
	case KVM_EXIT_IO: /* a malformed exit stops; a device (debug-exit) stops the VM itself */
		if ((r->io.size != 1 && r->io.size != 2 && r->io.size != 4) ||
		    r->io.data_offset < sizeof(struct kvm_run) || r->io.data_offset > RUN_SIZE ||
		    n > RUN_SIZE - r->io.data_offset)
			return stop;
		return go;
	case KVM_EXIT_MMIO:
		return r->mmio.len == 0 || r->mmio.len > 8 ? stop : go;
	case KVM_EXIT_INTR: /* nobody asked to stop before the exit */
	case KVM_EXIT_HYPERCALL:
		return go;
	case KVM_EXIT_HLT:
		return 1u << VCPU_PARK;
	case KVM_EXIT_SYSTEM_EVENT:
		return r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
		       r->system_event.type == KVM_SYSTEM_EVENT_RESET ? stop : dump;
	case KVM_EXIT_MEMORY_FAULT:
		return go | dump;
	default: /* shutdown, failed entry, internal error, and every exit veil does not know */
		return dump;
	}
}

static void one(struct t *t)
{
	struct fuzz *f = t->d.f;
	size_t lo, hi;
	uint64_t exits = t->vcpu.stats.exits;
	struct vcpu_exit res;
	enum vcpu_action act;

	t->vm.stopping = false, t->vm.exit_code = 0, t->vm.stop_reason[0] = '\0';
	t->vm.gmem = t->d.gm;
	if (fuzz_one_in(f, 32))
		negotiate(t, (unsigned int)fuzz_below(f, 2));
	if (fuzz_one_in(f, 8))
		service_request(t);
	t->vm.gmem = fuzz_one_in(f, 4) ? NULL : t->d.gm;
	t->vm.implicit_conversions = fuzz_one_in(f, 4);
	exits = t->vcpu.stats.exits;
	make_exit(t);
	/* The service port exists only in a VM with guest_memfd. */
	if (t->run->exit_reason == KVM_EXIT_IO && t->run->io.port == VEIL_PORT_SERVICE) {
		t->vm.gmem = t->d.gm;
		t->svc_exits++;
		/* Half the time a well-formed request: the calling vCPU's own number, 4 bytes out. */
		if (fuzz_one_in(f, 2)) {
			uint32_t self = t->vcpu.index;

			t->run->io.direction = KVM_EXIT_IO_OUT, t->run->io.size = 4, t->run->io.count = 1;
			t->run->io.data_offset = IO_OFF;
			memcpy((char *)t->run + IO_OFF, &self, sizeof(self));
		}
	}
	writable_run(t->run, &lo, &hi);
	memcpy(t->before, t->run, RUN_SIZE);
	res = vcpu_handle_exit(&t->vcpu);
	act = res.action;
	if (!((1u << act) & allowed_actions((const struct kvm_run *)t->before)))
		fprintf(stderr, "exit %u answered with action %d\n", t->run->exit_reason, act);
	CHECK((1u << act) & allowed_actions((const struct kvm_run *)t->before));
	t->actions[act & 3]++;
	CHECK_EQ(t->vcpu.stats.exits, exits + 1);
	/*
	 * A stop is returned with its reason, never requested by the handler;
	 * only a device an I/O exit reached (debug-exit) stops the VM itself.
	 */
	if (act == VCPU_STOP || act == VCPU_STOP_DUMP)
		CHECK(res.reason[0] && !vm_stopping(&t->vm));
	else
		CHECK(!vm_stopping(&t->vm) ||
		      ((const struct kvm_run *)t->before)->exit_reason == KVM_EXIT_IO ||
		      ((const struct kvm_run *)t->before)->exit_reason == KVM_EXIT_MMIO);
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

#ifdef VEIL_LIBFUZZER
/* Fresh devices and memory for every input; the input is one()'s choices, up to 64 exits. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct t *t = calloc(1, sizeof(*t));
	struct fuzz f;

	log_set_level(LOG_ERR);
	fuzz_lf_begin(&f, "fuzz_exit", data, size);
	setup(t, &f);
	for (unsigned int n = 0; n < 64 && !test_failures && (n == 0 || fuzz_lf_more(&f)); n++)
		one(t);
	teardown(t);
	free(t);
	fuzz_lf_end(&f);
	return 0;
}
#else
int main(void)
{
	struct t *t = calloc(1, sizeof(*t));
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
	printf("fuzz_exit: continue %lu, stop %lu, stop+dump %lu, park %lu; "
	       "DRIVER_OK through exits: console %lu, balloon %lu; %lu service port exits\n",
	       t->actions[VCPU_CONTINUE], t->actions[VCPU_STOP], t->actions[VCPU_STOP_DUMP],
	       t->actions[VCPU_PARK], t->running[0], t->running[1], t->svc_exits);
	if (!test_failures && f.iters >= 1000) {
		for (unsigned int a = 0; a < 4; a++)
			CHECK(t->actions[a] > 0);
		/* The devices' queues were reached, not only their refusals. */
		CHECK(t->running[0] > 0 && t->running[1] > 0 && t->svc_exits > 0);
		CHECK(t->con.stats.tx_bytes > 0 && t->balloon.stats.reports + t->balloon.stats.inflated_pages > 0);
		CHECK(t->svc.requests > 0 && t->svc.requests > t->svc.refused);
	}
	teardown(t);
	free(t);
	return test_done("fuzz_exit");
}
#endif
