/*
 * fuzz: arm64 kernel images (arch/arm64/image.c) on any host: mutated Images and gzip'd
 * Images through arm64_image_is_gzip/gunzip, arm64_image_parse and arm64_image_place, with
 * what each promises checked on what it accepts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "../../arch/arm64/image.h"

#define IMG_SIZE (16 * 1024)
#define CAP (IMG_SIZE + 4096)
#define GUNZIP_MAX (1 << 20) /* the bound under test, far below the real 256 MiB */
#define RAM_BASE 0x40000000ULL
#define RAM_SIZE (64ULL << 20)

static size_t seed_image(uint8_t *img)
{
	memset(img, 0, IMG_SIZE);
	for (size_t i = 64; i < IMG_SIZE; i++)
		img[i] = (uint8_t)(i * 7);
	fuzz_put(img + 8, 8, 0);              /* text_offset */
	fuzz_put(img + 16, 8, 8ULL << 20);    /* image_size */
	fuzz_put(img + 24, 8, 1 << 3);        /* flags: anywhere in RAM, 4K pages unspecified */
	fuzz_put(img + 56, 4, ARM64_IMAGE_MAGIC);
	return IMG_SIZE;
}

static size_t seed_gzip(uint8_t *out)
{
	static uint8_t img[IMG_SIZE];
	z_stream zs = { 0 };
	size_t n;

	seed_image(img);
	if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	zs.next_in = img;
	zs.avail_in = IMG_SIZE;
	zs.next_out = out;
	zs.avail_out = CAP;
	n = deflate(&zs, Z_FINISH) == Z_STREAM_END ? zs.total_out : 0;
	deflateEnd(&zs);
	return n;
}

static const struct { uint8_t off, width; } hdr_fields[] = {
	{ 8, 8 }, { 16, 8 }, { 24, 8 }, { 56, 4 }, { 0, 4 },
};

static void mutate(struct fuzz *f, uint8_t *img, size_t *len, bool gz)
{
	unsigned int k;

	switch (fuzz_below(f, 4)) {
	case 0:
		fuzz_mutate(f, img, len, CAP, 0, 0);
		break;
	case 1: /* aimed at the first bytes: the Image header, or gzip's and deflate's */
		fuzz_mutate(f, img, len, CAP, 0, gz ? 32 : ARM64_IMAGE_HDR_SIZE);
		break;
	default:
		if (gz) {
			fuzz_mutate(f, img, len, CAP, *len > 16 ? *len - 16 : 0, *len); /* the trailer */
		} else {
			k = (unsigned int)fuzz_below(f, ARRAY_SIZE(hdr_fields));
			fuzz_field(f, img, *len, hdr_fields[k].off, hdr_fields[k].width);
		}
		break;
	}
}

/* What an accepted Image promises, and where it is placed. */
static void check_accepted(const uint8_t *data, size_t len, const struct arm64_image *img)
{
	const char *why = "";
	uint64_t gpa = 0;
	int ret;

	CHECK(len >= ARM64_IMAGE_HDR_SIZE);
	CHECK_EQ(fuzz_get(data + 56, 4), ARM64_IMAGE_MAGIC);
	CHECK_EQ(img->flags & 1, 0);
	CHECK(img->image_size >= len && img->image_size > 0);
	CHECK(img->text_offset < ARM64_IMAGE_ALIGN && img->text_offset % 4096 == 0);
	CHECK(img->data == data && img->len == len);
	ret = arm64_image_place(img, RAM_BASE, RAM_SIZE, &gpa, &why);
	if (ret) {
		CHECK_EQ(ret, -E2BIG);
		CHECK(why[0] != '\0');
		CHECK(img->image_size > RAM_SIZE - img->text_offset);
		return;
	}
	CHECK((gpa - img->text_offset) % ARM64_IMAGE_ALIGN == 0);
	CHECK(gpa >= RAM_BASE);
	CHECK(img->image_size <= RAM_BASE + RAM_SIZE - gpa);
}

static bool check_image(const uint8_t *data, size_t len)
{
	struct arm64_image img;
	const char *why = "";
	int ret = arm64_image_parse(data, len, &img, &why);

	if (!ret)
		check_accepted(data, len, &img);
	else
		CHECK(ret == -EINVAL && why[0] != '\0');
	return ret == 0;
}

/* The whole path a kernel file takes: inflated if gzip'd, then parsed; true if accepted. */
static bool check_file(const uint8_t *work, size_t len)
{
	uint8_t *file = malloc(len ? len : 1), *out = NULL; /* exactly len: ASan sees overreads */
	const char *why = "";
	size_t out_len = 0;
	bool ok = false;
	int ret;

	memcpy(file, work, len);
	if (!arm64_image_is_gzip(file, len)) {
		ok = check_image(file, len);
		free(file);
		return ok;
	}
	ret = arm64_image_gunzip(file, len, GUNZIP_MAX, &out, &out_len, &why);
	if (ret) {
		CHECK(ret == -EINVAL || ret == -EFBIG);
		CHECK(out == NULL && why[0] != '\0');
	} else {
		CHECK(out_len <= GUNZIP_MAX);
		ok = check_image(out, out_len);
		free(out);
	}
	free(file);
	return ok;
}

static void one(struct fuzz *f, uint8_t *work, unsigned long *accepted)
{
	bool gz = fuzz_one_in(f, 2);
	unsigned int n = (unsigned int)fuzz_below(f, 6);
	size_t len = gz ? seed_gzip(work) : seed_image(work);

	for (unsigned int i = 0; i < n; i++)
		mutate(f, work, &len, gz);
	if (check_file(work, len))
		(*accepted)++;
	else
		CHECK(n > 0); /* the seeds are good kernels */
}

#ifdef VEIL_LIBFUZZER
/* First byte even: the rest is the file itself; odd: the rest are one()'s choices. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *work;
	unsigned long accepted = 0;
	struct fuzz f;

	if (!work)
		work = malloc(CAP);
	fuzz_lf_begin(&f, "fuzz_arm64_image", data, size);
	if (size && data[0] & 1) {
		f.in_pos = 1;
		one(&f, work, &accepted);
	} else {
		check_file(size ? data + 1 : data, size ? size - 1 : 0);
	}
	fuzz_lf_end(&f);
	return 0;
}
#else
int main(void)
{
	uint8_t *work = malloc(CAP);
	unsigned long accepted = 0;
	struct fuzz f;

	fuzz_init(&f, "fuzz_arm64_image", 0x61726d3634, 20000);
	FUZZ_FOR_EACH(&f, i) {
		one(&f, work, &accepted);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_arm64_image: %lu accepted\n", accepted);
	/* A fuzzer that never gets past the magic tests nothing. */
	if (!test_failures && f.iters >= 1000)
		CHECK(accepted > f.iters / 20);
	free(work);
	return test_done("fuzz_arm64_image");
}
#endif
