/* Unit test: parse_size and parse_uint accept exactly the documented forms and refuse overflow. */
#include <errno.h>
#include <stdint.h>

#include "parse.h"
#include "test.h"

/* The value is poisoned first so that a parser that "succeeds" without storing is caught. */
static void expect_size(const char *s, uint64_t want)
{
	uint64_t v = 0xdeadbeefULL;
	int ret = parse_size(s, &v);

	if (ret || v != want)
		fprintf(stderr, "parse_size(\"%s\"): ret %d, value %" PRIu64 "\n", s, ret, v);
	CHECK_EQ(ret, 0);
	CHECK(v == want);
}

static void expect_size_err(const char *s, int want)
{
	uint64_t v;
	int ret = parse_size(s, &v);

	if (ret != want)
		fprintf(stderr, "parse_size(\"%s\") returned %d\n", s, ret);
	CHECK_EQ(ret, want);
}

static void expect_uint(const char *s, uint64_t want)
{
	uint64_t v = 0xdeadbeefULL;
	int ret = parse_uint(s, &v);

	if (ret || v != want)
		fprintf(stderr, "parse_uint(\"%s\"): ret %d, value %" PRIu64 "\n", s, ret, v);
	CHECK_EQ(ret, 0);
	CHECK(v == want);
}

static void expect_uint_err(const char *s, int want)
{
	uint64_t v;
	int ret = parse_uint(s, &v);

	if (ret != want)
		fprintf(stderr, "parse_uint(\"%s\") returned %d\n", s, ret);
	CHECK_EQ(ret, want);
}

static void test_size_good(void)
{
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("123", 123);
	expect_size("007", 7);
	expect_size("4096", 4096);
	expect_size("1K", 1024);
	expect_size("64K", 64ULL << 10);
	expect_size("64k", 64ULL << 10);
	expect_size("1M", 1ULL << 20);
	expect_size("64M", 64ULL << 20);
	expect_size("64m", 64ULL << 20);
	expect_size("2G", 2ULL << 30);
	expect_size("3g", 3ULL << 30);
	expect_size("0G", 0);
	expect_size("1T", 1ULL << 40);
	expect_size("2t", 2ULL << 40);
	expect_size("16777215T", 16777215ULL << 40);
	expect_size("18446744073709551615", UINT64_MAX);
	/* The largest multiples that still fit. */
	expect_size("17179869183G", 17179869183ULL << 30);
	expect_size("17592186044415M", 17592186044415ULL << 20);
	expect_size("18014398509481983K", 18014398509481983ULL << 10);
}

static void test_size_malformed(void)
{
	expect_size_err("", -EINVAL);
	expect_size_err("12Q", -EINVAL);
	expect_size_err("1MB", -EINVAL);
	expect_size_err("1KiB", -EINVAL);
	expect_size_err("1KK", -EINVAL);
	expect_size_err("-1", -EINVAL);
	expect_size_err("+1", -EINVAL);
	expect_size_err(" 1", -EINVAL);
	expect_size_err("1 ", -EINVAL);
	expect_size_err("1 M", -EINVAL);
	expect_size_err("0x10", -EINVAL);
	expect_size_err("K", -EINVAL);
	expect_size_err("M", -EINVAL);
	expect_size_err("1.5G", -EINVAL);
	expect_size_err("T", -EINVAL);
	expect_size_err("1P", -EINVAL);
}

static void test_size_overflow(void)
{
	expect_size_err("18446744073709551616", -ERANGE);
	expect_size_err("99999999999999999999999", -ERANGE);
	expect_size_err("17179869184G", -ERANGE);
	expect_size_err("16777216T", -ERANGE);
	expect_size_err("17592186044416M", -ERANGE);
	expect_size_err("18014398509481984K", -ERANGE);
	expect_size_err("18446744073709551615K", -ERANGE);
}

static void test_uint(void)
{
	expect_uint("0", 0);
	expect_uint("42", 42);
	expect_uint("18446744073709551615", UINT64_MAX);
	expect_uint_err("", -EINVAL);
	expect_uint_err("12Q", -EINVAL);
	expect_uint_err("1M", -EINVAL);
	expect_uint_err("1K", -EINVAL);
	expect_uint_err("-1", -EINVAL);
	expect_uint_err(" 1", -EINVAL);
	expect_uint_err("1 ", -EINVAL);
	expect_uint_err("0x10", -EINVAL);
	expect_uint_err("18446744073709551616", -ERANGE);
	expect_uint_err("184467440737095516150", -ERANGE);
}

int main(void)
{
	test_size_good();
	test_size_malformed();
	test_size_overflow();
	test_uint();
	return test_done("test_parse");
}
