/*
 * arm64 kernel images (image.h): the Image header, gzip'd vmlinuz through Debian's zlib with a
 * bound on the output, and placement in RAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image.h"

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int arm64_image_parse(const uint8_t *data, size_t len, struct arm64_image *img, const char **why)
{
	memset(img, 0, sizeof(*img));
	if (len < ARM64_IMAGE_HDR_SIZE) {
		*why = "shorter than the 64-byte arm64 Image header";
		return -EINVAL;
	}
	if (le32(data + 56) != ARM64_IMAGE_MAGIC) {
		*why = "no arm64 Image magic (\"ARM\\x64\" at offset 56): not an arm64 Linux Image";
		return -EINVAL;
	}
	img->text_offset = le64(data + 8);
	img->image_size = le64(data + 16);
	img->flags = le64(data + 24);
	if (img->flags & 1) {
		*why = "a big-endian kernel (Image flags bit 0): veil runs little-endian guests";
		return -EINVAL;
	}
	if (!img->image_size) {
		*why = "image_size is 0 (a kernel older than 3.17, whose size is unknown): not supported";
		return -EINVAL;
	}
	if (img->image_size < len) {
		*why = "image_size in the header is smaller than the file: damaged Image";
		return -EINVAL;
	}
	if (img->text_offset >= ARM64_IMAGE_ALIGN || img->text_offset % 4096) {
		*why = "text_offset is not a 4 KiB multiple below 2 MiB: damaged Image";
		return -EINVAL;
	}
	img->data = data;
	img->len = len;
	return 0;
}

int arm64_image_is_gzip(const uint8_t *data, size_t len)
{
	return len >= 10 && data[0] == 0x1f && data[1] == 0x8b && data[2] == 8;
}

int arm64_image_gunzip(const uint8_t *gz, size_t len, size_t max, uint8_t **out, size_t *out_len,
		       const char **why)
{
	size_t cap = len * 4 < max ? len * 4 : max, done = 0;
	z_stream zs = { 0 };
	uint8_t *buf, *nb;
	int ret, zr = Z_OK;

	*out = NULL;
	*out_len = 0;
	if (!cap)
		cap = 1;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip framing only */
		free(buf);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)gz;
	while (zr != Z_STREAM_END) {
		if (done == cap) {
			if (cap == max) {
				ret = -EFBIG;
				*why = "inflates past the size limit for a kernel";
				goto fail;
			}
			cap = cap * 2 < max ? cap * 2 : max;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		/* zlib counts in uInt: feed and take at most 1 GiB a call. */
		if (!zs.avail_in && (size_t)(zs.next_in - gz) < len) {
			size_t left = len - (size_t)(zs.next_in - gz);

			zs.avail_in = (uInt)(left < (1U << 30) ? left : (1U << 30));
		}
		zs.next_out = buf + done;
		zs.avail_out = (uInt)(cap - done < (1U << 30) ? cap - done : (1U << 30));
		zr = inflate(&zs, Z_NO_FLUSH);
		done = (size_t)(zs.next_out - buf);
		if (zr == Z_BUF_ERROR && !zs.avail_in && (size_t)(zs.next_in - gz) == len) {
			ret = -EINVAL;
			*why = "the gzip stream ends early: truncated file";
			goto fail;
		}
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			ret = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			*why = "the gzip stream is damaged";
			goto fail;
		}
	}
	inflateEnd(&zs);
	*out = buf;
	*out_len = done;
	return 0;
fail:
	inflateEnd(&zs);
	free(buf);
	return ret;
}

int arm64_image_place(const struct arm64_image *img, uint64_t ram_base, uint64_t ram_size,
		      uint64_t *load_gpa, const char **why)
{
	uint64_t base = (ram_base + ARM64_IMAGE_ALIGN - 1) & ~(ARM64_IMAGE_ALIGN - 1);
	uint64_t end = ram_base + ram_size, load;

	if (base < ram_base || base >= end || end - base < img->text_offset ||
	    end - base - img->text_offset < img->image_size) {
		*why = "the kernel's image_size does not fit in guest RAM: give it more --mem";
		return -E2BIG;
	}
	load = base + img->text_offset;
	*load_gpa = load;
	return 0;
}
