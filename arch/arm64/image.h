/*
 * arm64: the Linux kernel Image format (the kernel's Documentation/arch/arm64/booting.rst), and
 * Debian's gzip-compressed vmlinuz around it.  Pure: bytes in, a checked description out; the
 * caller copies the kernel into guest memory.  Tested and fuzzed on any host.
 */
#ifndef VEIL_ARM64_IMAGE_H
#define VEIL_ARM64_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_MAGIC 0x644d5241U  /* "ARM\x64" at offset 56 */
#define ARM64_IMAGE_HDR_SIZE 64
#define ARM64_IMAGE_ALIGN (2ULL << 20) /* the load base is 2 MiB aligned, plus text_offset */
/* A bound on what a gzip'd kernel may inflate to: Debian's arm64 Image is about 40 MiB. */
#define ARM64_IMAGE_MAX_SIZE (256ULL << 20)

struct arm64_image {
	const uint8_t *data; /* the Image itself (inflated if it came gzip'd) */
	size_t len;
	uint64_t text_offset; /* from the 2 MiB-aligned base */
	uint64_t image_size;  /* what the kernel occupies once running, bss included */
	uint64_t flags;
};

/*
 * Checks an Image's header: the magic, little-endian (flags bit 0 clear), a non-zero
 * image_size no smaller than the file, and a text_offset below 2 MiB.  0, or -EINVAL with
 * *why saying what is wrong.
 */
int arm64_image_parse(const uint8_t *data, size_t len, struct arm64_image *img, const char **why);

/* Whether @data starts like a gzip stream (RFC 1952's 1f 8b, deflate). */
int arm64_image_is_gzip(const uint8_t *data, size_t len);

/*
 * Inflates a gzip stream into a new buffer (*out, freed by the caller) of at most @max bytes.
 * 0; -EFBIG when it would exceed @max; -EINVAL, with *why, for a damaged stream; -ENOMEM.
 */
int arm64_image_gunzip(const uint8_t *gz, size_t len, size_t max, uint8_t **out, size_t *out_len,
		       const char **why);

/*
 * Where the Image goes in RAM [ram_base, ram_base + ram_size): the first 2 MiB-aligned address
 * in it, plus text_offset, with image_size bytes of room.  0, or -E2BIG with *why.
 */
int arm64_image_place(const struct arm64_image *img, uint64_t ram_base, uint64_t ram_size,
		      uint64_t *load_gpa, const char **why);

#endif
