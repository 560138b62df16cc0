/* SHA-256 over a stream of bytes, through Debian's nettle (no hash written here). */
#ifndef VEIL_SHA256_H
#define VEIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32

/* Opaque enough for callers; big enough for nettle's struct sha256_ctx (checked in sha256.c). */
struct sha256_stream {
	uint64_t ctx[16];
};

void sha256_stream_begin(struct sha256_stream *s);
void sha256_stream_update(struct sha256_stream *s, const void *buf, size_t len);
/* The digest as 64 lowercase hex digits and a NUL. */
void sha256_stream_end_hex(struct sha256_stream *s, char hex[2 * SHA256_BYTES + 1]);

#endif
