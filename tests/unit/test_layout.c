/* Unit test: RAM placement around the MMIO hole, and the firmware plan that must fit the first range. */
#include <errno.h>
#include <stdint.h>

#include "fw.h"
#include "gmem.h"
#include "test.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

static const struct gmem_arch_map x86_map = {
	.ram_base = 0, .hole_start = 0xc0000000ULL, .hole_end = 0x100000000ULL,
};

static const struct gmem_arch_map flat_map = {
	.ram_base = 0x40000000ULL, .hole_start = 0, .hole_end = 0,
};

/* One expected layout: nr ranges, the rest of want[] unused. */
static void expect_layout(const struct gmem_arch_map *map, uint64_t size, unsigned int nr,
			  const struct gmem_range *want)
{
	struct gmem_layout l;
	unsigned int i;
	int ret = gmem_layout_compute(map, size, &l);

	if (ret || l.nr != nr)
		fprintf(stderr, "layout of 0x%" PRIx64 " bytes: ret %d, %u ranges\n", size, ret, l.nr);
	CHECK_EQ(ret, 0);
	CHECK_EQ(l.nr, nr);
	for (i = 0; i < nr && i < l.nr; i++) {
		CHECK_EQ(l.r[i].gpa, want[i].gpa);
		CHECK_EQ(l.r[i].size, want[i].size);
	}
}

static void expect_layout_err(const struct gmem_arch_map *map, uint64_t size, int err)
{
	struct gmem_layout l;

	CHECK_EQ(gmem_layout_compute(map, size, &l), err);
	CHECK_EQ(l.nr, 0);
}

static void test_x86_below_hole(void)
{
	expect_layout(&x86_map, 2 * MiB, 1, (struct gmem_range[]){ { 0, 2 * MiB } });
	expect_layout(&x86_map, 64 * MiB, 1, (struct gmem_range[]){ { 0, 64 * MiB } });
	expect_layout(&x86_map, 2 * MiB + 4096, 1, (struct gmem_range[]){ { 0, 2 * MiB + 4096 } });
	/* Exactly up to the hole: nothing spills above it. */
	expect_layout(&x86_map, 3 * GiB, 1, (struct gmem_range[]){ { 0, 3 * GiB } });
}

static void test_x86_split(void)
{
	expect_layout(&x86_map, 3 * GiB + 4096, 2,
		      (struct gmem_range[]){ { 0, 3 * GiB }, { 4 * GiB, 4096 } });
	expect_layout(&x86_map, 5 * GiB, 2,
		      (struct gmem_range[]){ { 0, 3 * GiB }, { 4 * GiB, 2 * GiB } });
	expect_layout(&x86_map, 16 * GiB, 2,
		      (struct gmem_range[]){ { 0, 3 * GiB }, { 4 * GiB, 13 * GiB } });
}

static void test_bad_sizes(void)
{
	expect_layout_err(&x86_map, 0, -EINVAL);
	expect_layout_err(&x86_map, 4096, -EINVAL);
	expect_layout_err(&x86_map, 2 * MiB - 4096, -EINVAL);
	expect_layout_err(&x86_map, 2 * MiB + 1, -EINVAL);
	expect_layout_err(&x86_map, 64 * MiB + 512, -EINVAL);
	expect_layout_err(&x86_map, 5 * GiB - 1, -EINVAL);
	expect_layout_err(&flat_map, 0, -EINVAL);
	expect_layout_err(&flat_map, 1 * MiB, -EINVAL);
}

/* An empty hole splits nothing; RAM that would start inside the hole starts after it. */
static void test_odd_holes(void)
{
	const struct gmem_arch_map empty = {
		.ram_base = 0, .hole_start = 0x80000000ULL, .hole_end = 0x80000000ULL,
	};
	const struct gmem_arch_map at_hole = {
		.ram_base = 0x80000000ULL, .hole_start = 0x80000000ULL, .hole_end = 0x90000000ULL,
	};

	expect_layout(&empty, 4 * GiB, 1, (struct gmem_range[]){ { 0, 4 * GiB } });
	expect_layout(&at_hole, 64 * MiB, 1,
		      (struct gmem_range[]){ { 0x90000000ULL, 64 * MiB } });
}

/* A map without a hole, as arm64's: one range at ram_base, whatever the size. */
static void test_no_hole(void)
{
	expect_layout(&flat_map, 2 * MiB, 1, (struct gmem_range[]){ { 0x40000000ULL, 2 * MiB } });
	expect_layout(&flat_map, 64 * MiB, 1,
		      (struct gmem_range[]){ { 0x40000000ULL, 64 * MiB } });
	expect_layout(&flat_map, 16 * GiB, 1,
		      (struct gmem_range[]){ { 0x40000000ULL, 16 * GiB } });
}

static int plan_for(uint64_t mem, unsigned int cpus, size_t image, struct fw_plan *plan)
{
	struct gmem_layout l;

	if (gmem_layout_compute(&x86_map, mem, &l)) {
		fprintf(stderr, "no layout for 0x%" PRIx64 " bytes\n", mem);
		test_failures++;
		return -EINVAL;
	}
	return fw_plan_compute(&l, cpus, image, plan);
}

static void test_fw_plan_fits(void)
{
	struct fw_plan p;

	CHECK_EQ(plan_for(64 * MiB, 2, 5000, &p), 0);
	CHECK_EQ(p.image_end, VEIL_FW_LOAD_GPA + 5000);
	CHECK_EQ(p.scratch_base, VEIL_FW_LOAD_GPA + 2 * 4096);
	CHECK_EQ(p.stacks_end, 64 * MiB);
	CHECK_EQ(p.stacks_base, 64 * MiB - 2 * VEIL_FW_STACK_SIZE);
	CHECK_EQ(p.scratch_size, p.stacks_base - p.scratch_base);
	/* Room for the two result pages and at least one page of probes. */
	CHECK(p.scratch_size >= 3 * 4096);
}

static void test_fw_plan_too_small(void)
{
	struct fw_plan p;
	struct gmem_layout empty = { .nr = 0 };

	CHECK_EQ(plan_for(2 * MiB, 64, 4096, &p), -ENOSPC);
	CHECK_EQ(plan_for(2 * MiB, 1024, 4096, &p), -ENOSPC);
	CHECK_EQ(plan_for(64 * MiB, 2, 63 * MiB, &p), -ENOSPC);
	CHECK_EQ(plan_for(64 * MiB, 0, 4096, &p), -ENOSPC);
	CHECK_EQ(fw_plan_compute(&empty, 1, 4096, &p), -ENOSPC);
}

/* fw_plan_min_mem() is what the error message promises: it fits, and 1 MiB less does not. */
static void check_min_mem(unsigned int cpus, size_t image)
{
	uint64_t min = fw_plan_min_mem(cpus, image);
	struct fw_plan p;

	CHECK(min >= GMEM_MIN_SIZE);
	CHECK_EQ(min % MiB, 0);
	if (plan_for(min, cpus, image, &p) != 0) {
		fprintf(stderr, "min_mem %" PRIu64 " MiB refused for %u cpus, image %zu\n",
			min / MiB, cpus, image);
		test_failures++;
	}
	if (min > GMEM_MIN_SIZE && plan_for(min - MiB, cpus, image, &p) != -ENOSPC) {
		fprintf(stderr, "min_mem - 1 MiB accepted for %u cpus, image %zu\n", cpus, image);
		test_failures++;
	}
}

static void test_fw_plan_min_mem(void)
{
	static const unsigned int cpus[] = { 1, 2, 8, 63, 64, 65, 100, 256, 1024 };
	static const size_t images[] = { 1, 4096, 5000, 1 * MiB, 3 * MiB + 1 };
	unsigned int i, j, above_min = 0;

	for (i = 0; i < ARRAY_SIZE(cpus); i++) {
		for (j = 0; j < ARRAY_SIZE(images); j++) {
			check_min_mem(cpus[i], images[j]);
			above_min += fw_plan_min_mem(cpus[i], images[j]) > GMEM_MIN_SIZE;
		}
	}
	/* The "1 MiB less" half must have run for most of the table. */
	CHECK(above_min >= ARRAY_SIZE(cpus) * ARRAY_SIZE(images) / 2);
	CHECK_EQ(fw_plan_min_mem(1, 4096), GMEM_MIN_SIZE);
	/* 1 MiB image start + 4 KiB image + 65 pages + 64 x 16 KiB stacks, rounded up: 3 MiB. */
	CHECK_EQ(fw_plan_min_mem(64, 4096), 3 * MiB);
}

int main(void)
{
	test_x86_below_hole();
	test_x86_split();
	test_bad_sizes();
	test_no_hole();
	test_odd_holes();
	test_fw_plan_fits();
	test_fw_plan_too_small();
	test_fw_plan_min_mem();
	return test_done("test_layout");
}
