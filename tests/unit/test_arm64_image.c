/*
 * unit: arm64 kernel images (arch/arm64/image.c) on any host: the Image header's checks, gzip'd
 * kernels inflated with a bound, damaged streams refused, and placement in guest RAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "test.h"
#include "../../arch/arm64/image.h"

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An Image of @len bytes: the header, then a pattern. */
static uint8_t *make_image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	uint8_t *p = calloc(1, len);

	for (size_t i = 64; i < len; i++)
		p[i] = (uint8_t)(i * 7);
	put64(p + 8, text_offset);
	put64(p + 16, image_size);
	put64(p + 24, flags);
	p[56] = 'A', p[57] = 'R', p[58] = 'M', p[59] = 0x64;
	return p;
}

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = len + len / 100 + 1024;
	uint8_t *out = malloc(cap);
	z_stream zs = { 0 };

	CHECK_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	CHECK_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static void test_header(void)
{
	struct arm64_image img;
	const char *why = "";
	uint8_t *p = make_image(1 << 20, 0, 3 << 20, 1 << 3);

	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), 0);
	CHECK_EQ(img.image_size, 3 << 20);
	CHECK_EQ(img.text_offset, 0);
	CHECK(img.data == p && img.len == 1 << 20);
	CHECK_EQ(arm64_image_parse(p, 63, &img, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "64-byte");
	p[59] = 0x65;
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "magic");
	p[59] = 0x64;
	put64(p + 24, 1); /* big-endian */
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "big-endian");
	put64(p + 24, 0);
	put64(p + 16, 0);
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "image_size is 0");
	put64(p + 16, (1 << 20) - 4096);
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "smaller than the file");
	put64(p + 16, 3 << 20);
	put64(p + 8, 0x80000); /* the old default: fine */
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), 0);
	put64(p + 8, 2 << 20);
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "text_offset");
	put64(p + 8, 0x80001);
	CHECK_EQ(arm64_image_parse(p, 1 << 20, &img, &why), -EINVAL);
	free(p);
}

static void test_gzip(void)
{
	const size_t len = 5 << 20;
	uint8_t *p = make_image(len, 0, 8 << 20, 0), *gz, *out = NULL;
	const char *why = "";
	size_t gz_len, out_len;
	struct arm64_image img;

	gz = gzip(p, len, &gz_len);
	CHECK(arm64_image_is_gzip(gz, gz_len));
	CHECK(!arm64_image_is_gzip(p, len));
	CHECK_EQ(arm64_image_gunzip(gz, gz_len, ARM64_IMAGE_MAX_SIZE, &out, &out_len, &why), 0);
	CHECK_EQ(out_len, len);
	CHECK(out && !memcmp(out, p, len));
	CHECK_EQ(arm64_image_parse(out, out_len, &img, &why), 0);
	free(out);
	/* The bound: one byte short of the Image is refused, not truncated. */
	CHECK_EQ(arm64_image_gunzip(gz, gz_len, len - 1, &out, &out_len, &why), -EFBIG);
	CHECK(out == NULL);
	CHECK_STR_CONTAINS(why, "size limit");
	CHECK_EQ(arm64_image_gunzip(gz, gz_len, len, &out, &out_len, &why), 0);
	free(out);
	/* Truncated, and damaged in the middle. */
	CHECK_EQ(arm64_image_gunzip(gz, gz_len / 2, ARM64_IMAGE_MAX_SIZE, &out, &out_len, &why), -EINVAL);
	CHECK_STR_CONTAINS(why, "ends early");
	memset(gz + gz_len / 3, 0xff, 64);
	CHECK_EQ(arm64_image_gunzip(gz, gz_len, ARM64_IMAGE_MAX_SIZE, &out, &out_len, &why), -EINVAL);
	CHECK(out == NULL);
	free(gz);
	free(p);
}

static void test_place(void)
{
	struct arm64_image img = { .text_offset = 0, .image_size = 40 << 20 };
	const char *why = "";
	uint64_t gpa = 0;

	CHECK_EQ(arm64_image_place(&img, 0x40000000, 256 << 20, &gpa, &why), 0);
	CHECK_EQ(gpa, 0x40000000);
	/* RAM not 2 MiB aligned: the next aligned address, plus text_offset. */
	img.text_offset = 0x80000;
	CHECK_EQ(arm64_image_place(&img, 0x40001000, 256 << 20, &gpa, &why), 0);
	CHECK_EQ(gpa, 0x40280000);
	/* Exactly enough room, then one page too little. */
	img.text_offset = 0;
	CHECK_EQ(arm64_image_place(&img, 0x40000000, 40 << 20, &gpa, &why), 0);
	CHECK_EQ(arm64_image_place(&img, 0x40000000, (40 << 20) - 4096, &gpa, &why), -E2BIG);
	CHECK_STR_CONTAINS(why, "--mem");
	CHECK_EQ(arm64_image_place(&img, UINT64_MAX - (1 << 20), 1 << 20, &gpa, &why), -E2BIG);
}

int main(void)
{
	test_header();
	test_gzip();
	test_place();
	return test_done("test_arm64_image");
}
