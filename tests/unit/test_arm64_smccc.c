/*
 * unit: arm64's answers to pKVM's guest memory-sharing calls (arch/arm64/smccc.c) on any host:
 * every function id, the IPA and argument checks, a conversion that fails, and MEMINFO's granule.
 * A fake converter records what it was asked, so a check that passes without converting fails.
 */
#include <errno.h>
#include <stdbool.h>

#include "test.h"
#include "../../arch/arm64/smccc.h"

#define RAM 0x40000000ULL
#define RAM_SIZE (16ULL << 20)

struct fake {
	unsigned int calls;
	uint64_t gpa, len;
	bool to_private;
	int fail; /* what the next conversion returns */
};

static int fake_convert(void *opaque, uint64_t gpa, uint64_t len, bool to_private)
{
	struct fake *f = opaque;

	f->calls++;
	f->gpa = gpa;
	f->len = len;
	f->to_private = to_private;
	return f->fail;
}

static const struct gmem_layout ram = { .nr = 1, .r = { { RAM, RAM_SIZE } } };

static int64_t call(struct fake *f, uint32_t fn, uint64_t x1, uint64_t x2, uint64_t x3,
		    const char **fault)
{
	struct arch_hypercall_ops ops = { .ram = &ram, .convert = fake_convert, .opaque = f };
	uint64_t x[3] = { x1, x2, x3 };

	return arm64_smccc_call(&ops, fn, x, fault);
}

static void test_meminfo(void)
{
	struct fake f = { 0 };
	const char *fault;

	CHECK_EQ(call(&f, 0xc6000002, 0, 0, 0, &fault), 4096);
	CHECK(fault == NULL);
	/* pKVM takes no arguments: any is a mistake, answered, not obeyed. */
	CHECK_EQ(call(&f, 0xc6000002, 1, 0, 0, &fault), -3);
	CHECK(fault != NULL);
	CHECK_EQ(call(&f, 0xc6000002, 0, 0, 7, &fault), -3);
	CHECK_EQ(f.calls, 0);
}

static void test_share_unshare(void)
{
	struct fake f = { 0 };
	const char *fault;

	CHECK_EQ(call(&f, 0xc6000003, RAM + 0x5000, 0, 0, &fault), 0);
	CHECK(fault == NULL);
	CHECK_EQ(f.calls, 1);
	CHECK_EQ(f.gpa, RAM + 0x5000);
	CHECK_EQ(f.len, 4096);
	CHECK(!f.to_private);
	CHECK_EQ(call(&f, 0xc6000004, RAM + RAM_SIZE - 4096, 0, 0, &fault), 0);
	CHECK_EQ(f.calls, 2);
	CHECK_EQ(f.gpa, RAM + RAM_SIZE - 4096);
	CHECK(f.to_private);
	/* The first granule of RAM too. */
	CHECK_EQ(call(&f, 0xc6000003, RAM, 0, 0, &fault), 0);
	CHECK_EQ(f.calls, 3);
}

/* Every bad argument gets INVALID_PARAMETER and converts nothing. */
static void test_bad_arguments(void)
{
	static const uint64_t bad_ipa[] = {
		0, RAM - 4096, RAM + RAM_SIZE, UINT64_MAX & ~4095ULL, RAM + 0x800, RAM + 1,
		RAM + RAM_SIZE - 1,
	};
	struct fake f = { 0 };
	const char *fault;

	for (unsigned int fn = 0xc6000003; fn <= 0xc6000004; fn++) {
		for (unsigned int i = 0; i < sizeof(bad_ipa) / sizeof(bad_ipa[0]); i++) {
			fault = NULL;
			CHECK_EQ(call(&f, fn, bad_ipa[i], 0, 0, &fault), -3);
			CHECK(fault != NULL);
		}
		CHECK_EQ(call(&f, fn, RAM, 1, 0, &fault), -3);
		CHECK_STR_CONTAINS(fault ? fault : "", "x2");
		CHECK_EQ(call(&f, fn, RAM, 0, 1ULL << 63, &fault), -3);
		CHECK_STR_CONTAINS(fault ? fault : "", "x3");
	}
	CHECK_EQ(f.calls, 0);
	/* Without guest RAM nothing is in range. */
	struct arch_hypercall_ops none = { .ram = NULL, .convert = fake_convert, .opaque = &f };
	uint64_t x[3] = { RAM, 0, 0 };

	CHECK_EQ(arm64_smccc_call(&none, 0xc6000003, x, &fault), -3);
	CHECK_EQ(f.calls, 0);
}

/* A conversion that could not finish (pins that would not drain, the kernel refusing): -3. */
static void test_conversion_fails(void)
{
	struct fake f = { .fail = -ETIMEDOUT };
	const char *fault;

	CHECK_EQ(call(&f, 0xc6000003, RAM + 0x3000, 0, 0, &fault), -3);
	CHECK_EQ(f.calls, 1);
	f.fail = -EBUSY;
	CHECK_EQ(call(&f, 0xc6000004, RAM + 0x3000, 0, 0, &fault), -3);
	CHECK_EQ(f.calls, 2);
	f.fail = 0;
	CHECK_EQ(call(&f, 0xc6000004, RAM + 0x3000, 0, 0, &fault), 0);
}

/* Other ids, the neighbours included (FEATURES stays KVM's): NOT_SUPPORTED, nothing converted. */
static void test_other_ids(void)
{
	static const uint32_t ids[] = {
		0xc6000001, 0xc6000005, 0xc6000000, 0x86000000, 0x86000003, 0x84000008, 0x80000000,
		0x00000003, 0xffffffff, 0x46000003,
	};
	struct fake f = { 0 };
	const char *fault;

	for (unsigned int i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		CHECK_EQ(call(&f, ids[i], RAM, 0, 0, &fault), -1);
		CHECK(fault != NULL);
	}
	CHECK_EQ(f.calls, 0);
}

int main(void)
{
	test_meminfo();
	test_share_unshare();
	test_bad_arguments();
	test_conversion_fails();
	test_other_ids();
	return test_done("test_arm64_smccc");
}
