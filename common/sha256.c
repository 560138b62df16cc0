/* SHA-256 through nettle (Debian's nettle-dev): veil computes no hash by hand. */
#include <nettle/sha2.h>
#include <stdio.h>

#include "sha256.h"

_Static_assert(sizeof(struct sha256_stream) >= sizeof(struct sha256_ctx),
	       "struct sha256 too small for nettle's sha256_ctx");
_Static_assert(SHA256_BYTES == SHA256_DIGEST_SIZE, "SHA-256 digest size");

void sha256_stream_begin(struct sha256_stream *s)
{
	sha256_init((struct sha256_ctx *)s->ctx);
}

void sha256_stream_update(struct sha256_stream *s, const void *buf, size_t len)
{
	sha256_update((struct sha256_ctx *)s->ctx, len, buf);
}

void sha256_stream_end_hex(struct sha256_stream *s, char hex[2 * SHA256_BYTES + 1])
{
	uint8_t d[SHA256_BYTES];
	unsigned int i;

	sha256_digest((struct sha256_ctx *)s->ctx, sizeof(d), d);
	for (i = 0; i < SHA256_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}
