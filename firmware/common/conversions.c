/*
 * conversions: the stages of the kernel's private_mem_conversions_test, run
 * as a veil guest.  vCPU 0 converts ranges of a 2 MiB + 4 KiB data area at
 * (offset, size) = (0, 4K), (0, 2M), (4K, 4K), (4K, 2M), (2M, 4K), with and
 * without allocating the backing first, and checks at every step what the
 * guest and the host (veil, through VEIL_PORT_SERVICE) see against the
 * content semantics veil announced.  Then it punches holes, precisely and
 * imprecisely, into private memory and checks that they read zeros.
 *
 * One difference from the kernel test is deliberate: there, the host writes
 * the shared view of a private range.  veil refuses host access to private
 * pages (I3), so the firmware checks that the host's write and read are
 * refused and that the guest's private data stayed.
 */
#include "fwlib.h"

#define MAP_ENCRYPTED (1 << 4) /* the service's attrs: KVM_MAP_GPA_RANGE_ENCRYPTED */
#define SZ_4K 0x1000UL
#define SZ_2M 0x200000UL
#define DATA_SIZE (SZ_2M + SZ_4K)
#define EACCES 13
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define INIT_P 0xcc
#define P1 0x11
#define P2 0x22
#define P3 0x33
#define P4 0x44

static const struct {
	unsigned long offset, size;
} stages[] = {
	{ 0, SZ_4K }, { 0, SZ_2M }, { SZ_4K, SZ_4K }, { SZ_4K, SZ_2M }, { SZ_2M, SZ_4K },
};

struct ctx {
	const struct veil_boot_info *bi;
	volatile struct veil_svc_req *req;
	uint64_t base;
	uint64_t stride; /* qwords */
	const char *test; /* which test and stage, for failure lines */
	unsigned int stage;
	uint64_t checks;
	uint64_t failures;
};

static uint64_t bytes8(uint8_t b)
{
	return 0x0101010101010101ULL * b;
}

static void fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	c->failures++;
	if (c->failures > 20)
		return; /* the count says the rest */
	fw_lock();
	fw_printf("conversions: FAIL %s, stage %u (offset 0x%lx, size 0x%lx): ", c->test, c->stage,
		  stages[c->stage].offset, stages[c->stage].size);
	va_start(ap, fmt);
	fw_vprintf(fmt, ap);
	va_end(ap);
	fw_printf("\n");
	fw_unlock();
}

static int64_t svc(struct ctx *c, uint64_t op, uint64_t gpa, uint64_t len, uint64_t arg)
{
	c->req->op = op;
	c->req->gpa = gpa;
	c->req->len = len;
	c->req->arg = arg;
	c->req->ret = -9999;
	c->req->out = 0;
	fw_reg_write32(VEIL_PORT_SERVICE, 0);
	return c->req->ret;
}

/*
 * The guest asks for a conversion, by hypercall (x86: one MAP_GPA_RANGE; arm64: MEM_SHARE or
 * MEM_UNSHARE per 4 KiB granule) or, where that does not reach veil, by the service register.
 */
static void map(struct ctx *c, uint64_t gpa, uint64_t size, int private)
{
	uint64_t attrs = private ? MAP_ENCRYPTED : 0;
	long ret;

	c->checks++;
	if (c->bi->conv_port)
		ret = svc(c, VEIL_SVC_MAP_GPA_RANGE, gpa, size / SZ_4K, attrs);
	else
		ret = fw_hypercall_convert(gpa, size / SZ_4K, private);
	if (ret)
		fail(c, "conversion of 0x%lx+0x%lx to %s returned %d", gpa, size,
		     private ? "private" : "shared", (int)ret);
}

static void host_op(struct ctx *c, uint64_t op, const char *what, uint64_t gpa, uint64_t len,
		    uint64_t arg, int64_t want)
{
	int64_t ret;

	if (op == VEIL_SVC_HOST_CHECK)
		arg |= c->stride << 8;
	ret = svc(c, op, gpa, len, arg);

	c->checks++;
	if (ret != want)
		fail(c, "host %s 0x%lx+0x%lx: got %d, expected %d (at offset 0x%lx)", what, gpa, len,
		     (int)ret, (int)want, c->req->out);
}

/*
 * The guest writes and checks one qword in stride (veil's --check-stride),
 * always including each page's first and last: on a KVM that emulates every
 * guest instruction, touching all 2 MiB at every step takes minutes.  The
 * host's writes and checks always cover every byte.
 */
/* Calls fn on the sampled qwords of [gpa, gpa+len), len a multiple of 4 KiB; stops on nonzero. */
static int sample(const struct ctx *c, uint64_t gpa, uint64_t len,
		  int (*fn)(volatile uint64_t *p, uint64_t v), uint64_t v)
{
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)gpa;
	uint64_t page, k, n = len / 8;

	for (page = 0; page < n; page += 512) {
		for (k = 0; k < 512; k += c->stride)
			if (fn(&p[page + k], v))
				return -1;
		if (fn(&p[page + 511], v))
			return -1;
	}
	return 0;
}

static int put(volatile uint64_t *p, uint64_t v)
{
	*p = v;
	return 0;
}

static volatile uint64_t *bad; /* the first mismatch sample() met */

static int cmp(volatile uint64_t *p, uint64_t v)
{
	if (*p == v)
		return 0;
	bad = p;
	return 1;
}

static void guest_fill(const struct ctx *c, uint64_t gpa, uint64_t len, uint8_t b)
{
	sample(c, gpa, len, put, bytes8(b));
}

static void guest_check(struct ctx *c, const char *what, uint64_t gpa, uint64_t len, uint8_t b)
{
	c->checks++;
	if (sample(c, gpa, len, cmp, bytes8(b)))
		fail(c, "guest read of %s at 0x%lx: 0x%lx, expected bytes of 0x%x", what,
		     (uint64_t)(uintptr_t)bad, *bad, b);
}

/* After a conversion, contents are kept or read as zeros, as veil announced. */
static uint8_t after(const struct ctx *c, uint8_t b)
{
	return c->bi->semantics == VEIL_CONTENT_ZEROED ? 0 : b;
}

static void explicit_conversion(struct ctx *c, int allocate)
{
	unsigned int i;
	uint64_t j;

	c->test = allocate ? "explicit conversion, backing allocated first" : "explicit conversion";
	guest_fill(c, c->base, DATA_SIZE, INIT_P);
	for (i = 0; i < ARRAY_SIZE(stages); i++) {
		uint64_t gpa = c->base + stages[i].offset, size = stages[i].size;
		uint64_t end = gpa + size, data_end = c->base + DATA_SIZE;

		c->stage = i;
		/* Shared to start with: guest and host see the same bytes. */
		guest_check(c, "the data area", c->base, DATA_SIZE, INIT_P);
		host_op(c, VEIL_SVC_HOST_CHECK, "check", gpa, size, INIT_P, 0);
		/* The host check can say no: a pattern that is not there is a mismatch. */
		host_op(c, VEIL_SVC_HOST_CHECK, "check of a pattern not written", gpa, size, P4, 1);
		host_op(c, VEIL_SVC_HOST_WRITE, "write", gpa, size, P1, 0);
		guest_check(c, "the host's write", gpa, size, P1);
		guest_check(c, "below the range", c->base, gpa - c->base, INIT_P);
		guest_check(c, "above the range", end, data_end - end, INIT_P);

		/* Private: the host may neither write nor read it. */
		if (allocate)
			host_op(c, VEIL_SVC_ALLOCATE, "allocate", gpa, size, 0, 0);
		map(c, gpa, size, 1);
		guest_check(c, "the range just made private", gpa, size, after(c, P1));
		guest_fill(c, gpa, size, P2);
		host_op(c, VEIL_SVC_HOST_WRITE, "write of a private range", gpa, size, P3, -EACCES);
		host_op(c, VEIL_SVC_HOST_CHECK, "read of a private range", gpa, size, P2, -EACCES);
		guest_check(c, "private data after the host's refused write", gpa, size, P2);

		/* Back to shared one page at a time; the rest stays private meanwhile. */
		for (j = 0; j < size; j += SZ_4K) {
			if (allocate)
				host_op(c, VEIL_SVC_ALLOCATE, "allocate", gpa + j, SZ_4K, 0, 0);
			map(c, gpa + j, SZ_4K, 0);
			guest_check(c, "a page made shared again", gpa + j, SZ_4K, after(c, P2));
			host_op(c, VEIL_SVC_HOST_CHECK, "check", gpa + j, SZ_4K, after(c, P2), 0);
			host_op(c, VEIL_SVC_HOST_WRITE, "write", gpa + j, SZ_4K, P4, 0);
			guest_check(c, "the host's write", gpa + j, SZ_4K, P4);
			if (j + SZ_4K < size)
				guest_check(c, "the next page, still private", gpa + j + SZ_4K, SZ_4K, P2);
			if (c->failures)
				return;
		}
		guest_check(c, "below the range", c->base, gpa - c->base, INIT_P);
		guest_check(c, "above the range", end, data_end - end, INIT_P);
		guest_fill(c, gpa, size, INIT_P);
		if (c->failures)
			return;
	}
}

static void punch_hole(struct ctx *c, int precise)
{
	unsigned int i;

	c->test = precise ? "punch hole, precise" : "punch hole, whole area";
	c->stage = 0;
	map(c, c->base, DATA_SIZE, 1);
	for (i = 0; i < ARRAY_SIZE(stages) && !c->failures; i++) {
		uint64_t gpa = c->base + stages[i].offset, size = stages[i].size;

		c->stage = i;
		host_op(c, VEIL_SVC_PUNCH, "punch", c->base, DATA_SIZE, 0, 0);
		guest_check(c, "a punched private range", gpa, size, 0);
		guest_fill(c, gpa, size, INIT_P);
		if (precise)
			host_op(c, VEIL_SVC_PUNCH, "punch", gpa, size, 0, 0);
		else
			host_op(c, VEIL_SVC_PUNCH, "punch", c->base, DATA_SIZE, 0, 0);
		guest_check(c, "a punched private range", gpa, size, 0);
	}
	c->stage = 0;
	map(c, c->base, DATA_SIZE, 0);
}

void fw_main(uint64_t cpu, const struct veil_boot_info *bi)
{
	struct ctx c = { .bi = bi };

	if (cpu != 0)
		fw_halt();
	if (bi->magic != VEIL_BOOT_MAGIC || bi->version != VEIL_BOOT_VERSION || !bi->ctl_gpa ||
	    !bi->pool_gpa || (bi->pool_gpa & (SZ_2M - 1)) || bi->pool_pages < DATA_SIZE / SZ_4K) {
		fw_printf("conversions: FAIL no conversions configuration in the boot info\n");
		fw_exit(1);
	}
	c.req = (volatile struct veil_svc_req *)(uintptr_t)bi->ctl_gpa;
	c.base = bi->pool_gpa;
	c.stride = bi->check_stride >= 1 && bi->check_stride <= 512 ? bi->check_stride : 1;
	fw_hypercall_init();
	fw_printf("conversions: data area 0x%lx+0x%lx, contents %s on conversion, by %s, "
		  "guest checks 1 qword in %lu\n", c.base, DATA_SIZE,
		  bi->semantics == VEIL_CONTENT_ZEROED ? "zeroed" : "preserved",
		  bi->conv_port ? (VEIL_FW_REGS_MMIO ? "register" : "port") : "hypercall", c.stride);

	explicit_conversion(&c, 0);
	if (!c.failures)
		fw_printf("conversions: explicit conversion: %u stages pass\n",
			  (unsigned int)ARRAY_SIZE(stages));
	if (!c.failures)
		explicit_conversion(&c, 1);
	if (!c.failures)
		fw_printf("conversions: explicit conversion, backing allocated first: %u stages pass\n",
			  (unsigned int)ARRAY_SIZE(stages));
	if (!c.failures)
		punch_hole(&c, 1);
	if (!c.failures)
		fw_printf("conversions: punch hole, precise: %u stages pass\n",
			  (unsigned int)ARRAY_SIZE(stages));
	if (!c.failures)
		punch_hole(&c, 0);
	if (!c.failures)
		fw_printf("conversions: punch hole, whole area: %u stages pass\n",
			  (unsigned int)ARRAY_SIZE(stages));
	if (c.failures) {
		fw_printf("conversions: FAIL %lu of %lu checks failed\n", c.failures, c.checks);
		fw_exit(1);
	}
	fw_printf("conversions: pass (%lu checks)\n", c.checks);
	fw_exit(0);
}
