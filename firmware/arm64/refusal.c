/*
 * refusal: an arm64 guest of the confidential mode (`veil run --confidential --firmware
 * refusal --disk IMG`) that points a device at memory it never shared.  All RAM is private
 * at launch; vCPU 0 shares four pages (the virtqueue, the request header and status, a data
 * buffer) with MEM_SHARE and drives the first virtio-mmio slot, which must be a virtio-blk:
 *
 *   1. writes pattern A to sector 0 from the shared buffer: status OK;
 *   2. writes pattern B to sector 0 from a private page it never shared: status IOERR
 *      (veil refuses the access, I3), the private page still holds B;
 *   3. reads sector 0 into the shared buffer: A, so step 2 wrote nothing;
 *   4. sends MEM_SHARE / MEM_UNSHARE / HYP_MEMINFO with bad arguments (unaligned, outside
 *      RAM, non-zero x2, non-zero MEMINFO argument): each must answer INVALID_PARAMETER
 *      (-3); and a share of a shared page and an unshare of a private page, which veil
 *      answers as no-ops (0, the page stays as it was; docs/confidential.md).
 *
 * It ends with debug-exit 0 if everything held, 1 otherwise, naming each failed check.
 */
#include "fwlib.h"

#define VIRTIO_MMIO_BASE 0x0a000000UL
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_STATUS 0x070
#define R_QUEUE_DESC_LO 0x080
#define R_QUEUE_DESC_HI 0x084
#define R_QUEUE_AVAIL_LO 0x090
#define R_QUEUE_AVAIL_HI 0x094
#define R_QUEUE_USED_LO 0x0a0
#define R_QUEUE_USED_HI 0x0a4

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define DESC_NEXT 1
#define DESC_WRITE 2
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define QSIZE 8
#define SECTOR 512
#define PAGE 4096UL
#define RET_INVALID (-3L)
/* What veil answers a share of a shared page and an unshare of a private one. */
#define NOOP_RET 0L
#define NOOP_WHAT "the no-op 0"

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct ctx {
	uint64_t ring, hdr, shared, priv; /* GPAs: ring, header + status, shared data, private */
	volatile struct desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[QSIZE] */
	volatile uint16_t *used;  /* flags, idx, then {u32 id, u32 len}[QSIZE] */
	uint16_t next_avail;
	unsigned int fails;
};

static uint32_t rd(uint64_t off)
{
	uint32_t v;

	__asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(VIRTIO_MMIO_BASE + off) : "memory");
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	mmio_write32(VIRTIO_MMIO_BASE + off, v);
}

static void check(struct ctx *c, int ok, const char *what, long got)
{
	fw_printf("refusal: %s %s (got %ld)\n", ok ? "ok:" : "FAIL:", what, got);
	if (!ok)
		c->fails++;
}

static void fill(uint64_t gpa, const char *word)
{
	volatile char *p = (volatile char *)gpa;
	unsigned int i, n = 0;

	while (word[n])
		n++;
	for (i = 0; i < SECTOR; i++)
		p[i] = word[i % n];
}

static void zero(uint64_t gpa, unsigned long len)
{
	volatile uint64_t *p = (volatile uint64_t *)gpa;
	unsigned long i;

	for (i = 0; i < len / 8; i++)
		p[i] = 0;
}

static int holds(uint64_t gpa, const char *word)
{
	const volatile char *p = (const volatile char *)gpa;
	unsigned int i, n = 0;

	while (word[n])
		n++;
	for (i = 0; i < SECTOR; i++)
		if (p[i] != word[i % n])
			return 0;
	return 1;
}

static int virtio_setup(struct ctx *c)
{
	if (rd(R_MAGIC) != 0x74726976 || rd(R_VERSION) != 2 || rd(R_DEVICE_ID) != 2) {
		fw_printf("refusal: FAIL: no virtio-mmio v2 block device at 0x%lx (magic 0x%x, "
			  "version %u, id %u)\n", VIRTIO_MMIO_BASE, rd(R_MAGIC), rd(R_VERSION),
			  rd(R_DEVICE_ID));
		return -1;
	}
	wr(R_STATUS, 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	wr(R_DEV_FEATURES_SEL, 1);
	if (!(rd(R_DEV_FEATURES) & 1)) {
		fw_printf("refusal: FAIL: the device does not offer VIRTIO_F_VERSION_1\n");
		return -1;
	}
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, 0);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1); /* VERSION_1 only: buffers are plain GPAs */
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(R_STATUS) & S_FEATURES_OK)) {
		fw_printf("refusal: FAIL: FEATURES_OK not accepted\n");
		return -1;
	}
	wr(R_QUEUE_SEL, 0);
	if (rd(R_QUEUE_NUM_MAX) < QSIZE) {
		fw_printf("refusal: FAIL: queue 0 holds %u < %u\n", rd(R_QUEUE_NUM_MAX), QSIZE);
		return -1;
	}
	wr(R_QUEUE_NUM, QSIZE);
	wr(R_QUEUE_DESC_LO, (uint32_t)c->ring);
	wr(R_QUEUE_DESC_HI, (uint32_t)(c->ring >> 32));
	wr(R_QUEUE_AVAIL_LO, (uint32_t)(c->ring + 0x400));
	wr(R_QUEUE_AVAIL_HI, (uint32_t)((c->ring + 0x400) >> 32));
	wr(R_QUEUE_USED_LO, (uint32_t)(c->ring + 0x800));
	wr(R_QUEUE_USED_HI, (uint32_t)((c->ring + 0x800) >> 32));
	wr(R_QUEUE_READY, 1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return 0;
}

/* One request of three descriptors; returns its status byte, or -1 if it never came back. */
static int blk_request(struct ctx *c, uint32_t type, uint64_t data)
{
	volatile struct blk_hdr *h = (volatile struct blk_hdr *)c->hdr;
	volatile uint8_t *status = (volatile uint8_t *)(c->hdr + 0x100);
	struct fw_wait w = { 0 };
	uint16_t idx = c->next_avail;

	h->type = type;
	h->reserved = 0;
	h->sector = 0;
	*status = 0xff;
	c->desc[0] = (struct desc){ c->hdr, sizeof(struct blk_hdr), DESC_NEXT, 1 };
	c->desc[1] = (struct desc){ data, SECTOR,
				    (uint16_t)(DESC_NEXT | (type == BLK_T_IN ? DESC_WRITE : 0)), 2 };
	c->desc[2] = (struct desc){ c->hdr + 0x100, 1, DESC_WRITE, 0 };
	c->avail[2 + idx % QSIZE] = 0;
	__asm__ volatile("dmb ish" ::: "memory");
	c->avail[1] = (uint16_t)(idx + 1);
	__asm__ volatile("dsb sy" ::: "memory");
	wr(R_QUEUE_NOTIFY, 0);
	c->next_avail = (uint16_t)(idx + 1);
	while (c->used[1] != c->next_avail) {
		if (fw_wait_over(&w, 0, 30))
			return -1;
		cpu_relax();
	}
	__asm__ volatile("dmb ish" ::: "memory");
	return *status;
}

static long share(uint64_t gpa, uint64_t x2)
{
	return smccc_hvc(VEIL_SMCCC_MEM_SHARE, gpa, x2, 0);
}

void fw_main(uint64_t cpu, const struct veil_boot_info *bi)
{
	struct ctx c = { 0 };
	long r;
	int st;

	if (cpu)
		fw_halt();
	if (bi->magic != VEIL_BOOT_MAGIC || bi->scratch_size < 8 * PAGE) {
		fw_printf("refusal: FAIL: boot info unusable\n");
		fw_exit(1);
	}
	/* Scratch pages past vCPU 0's result page: ring, header, shared data, private data. */
	c.ring = bi->scratch_base + 2 * PAGE;
	c.hdr = c.ring + PAGE;
	c.shared = c.hdr + PAGE;
	c.priv = c.shared + PAGE;
	c.desc = (volatile struct desc *)c.ring;
	c.avail = (volatile uint16_t *)(c.ring + 0x400);
	c.used = (volatile uint16_t *)(c.ring + 0x800);

	r = smccc_hvc(VEIL_SMCCC_HYP_MEMINFO, 0, 0, 0);
	check(&c, r == (long)PAGE, "HYP_MEMINFO answers the 4 KiB granule", r);
	r = share(c.ring, 0);
	if (!r)
		r = share(c.hdr, 0);
	if (!r)
		r = share(c.shared, 0);
	check(&c, r == 0, "MEM_SHARE of the ring, header and data pages", r);
	if (r)
		fw_exit(1);
	/* Whatever sharing did to their contents, they start from zero now. */
	zero(c.ring, PAGE);
	zero(c.hdr, PAGE);
	fill(c.priv, "veil-private-B.");
	if (virtio_setup(&c))
		fw_exit(1);

	fill(c.shared, "veil-shared-A.");
	st = blk_request(&c, BLK_T_OUT, c.shared);
	check(&c, st == BLK_S_OK, "write of sector 0 from a shared page: status OK", st);
	st = blk_request(&c, BLK_T_OUT, c.priv);
	check(&c, st == BLK_S_IOERR, "write of sector 0 from a private page: status IOERR", st);
	fw_printf("refusal: the private page is at GPA 0x%lx\n", c.priv);
	check(&c, holds(c.priv, "veil-private-B."), "the private page still holds its data", 0);
	zero(c.shared, SECTOR);
	st = blk_request(&c, BLK_T_IN, c.shared);
	check(&c, st == BLK_S_OK, "read of sector 0 into a shared page: status OK", st);
	check(&c, holds(c.shared, "veil-shared-A."), "sector 0 holds the shared write, not the "
	      "private page", 0);

	r = share(c.priv + 8, 0);
	check(&c, r == RET_INVALID, "MEM_SHARE of an unaligned IPA: -3", r);
	r = share(0x1000, 0);
	check(&c, r == RET_INVALID, "MEM_SHARE of an IPA below RAM: -3", r);
	r = share(1UL << 38, 0);
	check(&c, r == RET_INVALID, "MEM_SHARE of an IPA above RAM: -3", r);
	r = share(c.priv, 1);
	check(&c, r == RET_INVALID, "MEM_SHARE with x2 = 1: -3", r);
	r = smccc_hvc(VEIL_SMCCC_MEM_UNSHARE, c.priv, 0, 1);
	check(&c, r == RET_INVALID, "MEM_UNSHARE with x3 = 1: -3", r);
	r = smccc_hvc(VEIL_SMCCC_HYP_MEMINFO, 1, 0, 0);
	check(&c, r == RET_INVALID, "HYP_MEMINFO with x1 = 1: -3", r);
	r = share(c.shared, 0);
	check(&c, r == NOOP_RET, "MEM_SHARE of a shared page: " NOOP_WHAT, r);
	r = smccc_hvc(VEIL_SMCCC_MEM_UNSHARE, c.priv, 0, 0);
	check(&c, r == NOOP_RET, "MEM_UNSHARE of a private page: " NOOP_WHAT, r);
	check(&c, holds(c.priv, "veil-private-B."), "the private page still holds its data", 0);
	/* The device still works after all that: veil ran on. */
	st = blk_request(&c, BLK_T_IN, c.shared);
	check(&c, st == BLK_S_OK && holds(c.shared, "veil-shared-A."),
	      "a last read of sector 0: status OK, pattern A", st);

	fw_printf("refusal: %s (%u failed)\n", c.fails ? "FAIL" : "PASS", c.fails);
	fw_exit(c.fails ? 1 : 0);
}
