/*
 * unit: the arm64 firmware's identity map (arch/arm64/fwmap.c) on any host: MMIO below RAM as
 * Device-nGnRnE and never executable, RAM as Normal write-back, inner shareable, with the access
 * flag set (the firmware's exclusives and unaligned accesses need Normal memory; a missing AF
 * faults at the first access), nothing above RAM, and the layouts it refuses.
 */
#include <errno.h>

#include "test.h"
#include "../../arch/arm64/fwmap.h"

#define GIB (1ULL << 30)
#define ATTR_MASK (7ULL << 2)

static void test_small_ram(void)
{
	const struct gmem_layout l = { .nr = 1, .r = { { GIB, 64ULL << 20 } } };
	uint64_t t[ARM64_FWMAP_ENTRIES], top = 0;
	unsigned int i;

	for (i = 0; i < ARM64_FWMAP_ENTRIES; i++)
		t[i] = 0xdeadULL; /* whatever was there goes */
	CHECK_EQ(arm64_fwmap_build(&l, t, &top), 0);
	CHECK_EQ(top, 2 * GIB);
	/* [0, 1 GiB): the GIC, the UART, virtio-mmio and the firmware's registers. */
	CHECK_EQ(t[0] & 3, 1);                /* a block */
	CHECK_EQ(t[0] & ATTR_MASK, 0);        /* Device-nGnRnE */
	CHECK(t[0] & ARM64_PTE_AF);
	CHECK(t[0] & ARM64_PTE_PXN);
	CHECK(t[0] & ARM64_PTE_UXN);
	CHECK_EQ(t[0] & 0x0000fffffffff000ULL, 0);
	/* [1 GiB, 2 GiB): RAM, where the firmware runs. */
	CHECK_EQ(t[1] & 3, 1);
	CHECK_EQ(t[1] & ATTR_MASK, 1ULL << 2); /* Normal write-back */
	CHECK_EQ(t[1] & (3ULL << 8), 3ULL << 8); /* inner shareable */
	CHECK(t[1] & ARM64_PTE_AF);
	CHECK(!(t[1] & (ARM64_PTE_PXN | ARM64_PTE_UXN)));
	CHECK_EQ(t[1] & 0x0000fffffffff000ULL, GIB);
	for (i = 2; i < ARM64_FWMAP_ENTRIES; i++)
		CHECK_EQ(t[i], 0);
}

static void test_large_ram(void)
{
	const struct gmem_layout l = { .nr = 1, .r = { { GIB, 5 * GIB + 4096 } } };
	uint64_t t[ARM64_FWMAP_ENTRIES], top = 0;
	unsigned int i;

	CHECK_EQ(arm64_fwmap_build(&l, t, &top), 0);
	CHECK_EQ(top, 7 * GIB); /* RAM ends 4 KiB into the seventh GiB */
	for (i = 1; i < 7; i++) {
		CHECK_EQ(t[i] & 0x0000fffffffff000ULL, i * GIB);
		CHECK_EQ(t[i] & ATTR_MASK, 1ULL << 2);
	}
	CHECK_EQ(t[7], 0);
}

static void test_refused(void)
{
	const struct gmem_layout none = { .nr = 0 };
	const struct gmem_layout unaligned = { .nr = 1, .r = { { GIB + (2ULL << 20), GIB } } };
	const struct gmem_layout huge = { .nr = 1, .r = { { GIB, 512 * GIB } } };
	const struct gmem_layout edge = { .nr = 1, .r = { { GIB, 511 * GIB } } };
	uint64_t t[ARM64_FWMAP_ENTRIES], top = 0;

	CHECK_EQ(arm64_fwmap_build(&none, t, &top), -EINVAL);
	CHECK_EQ(arm64_fwmap_build(&unaligned, t, &top), -EINVAL);
	CHECK_EQ(arm64_fwmap_build(&huge, t, &top), -E2BIG);
	CHECK_EQ(top, 0);
	CHECK_EQ(arm64_fwmap_build(&edge, t, &top), 0); /* the last entry */
	CHECK_EQ(top, 512 * GIB);
	CHECK_EQ(t[511] & 0x0000fffffffff000ULL, 511 * GIB);
}

int main(void)
{
	test_small_ram();
	test_large_ram();
	test_refused();
	return test_done("test_arm64_fwmap");
}
