/*
 * prng SEED BYTES: writes BYTES of a seeded pseudorandom stream to stdout
 * (xorshift64*, little-endian words).  The nested virtio-blk-integrity test
 * runs it in L2 to fill the disk and in L1 to check the image, so both ends
 * agree on the data without storing it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static uint64_t buf[1 << 17]; /* 1 MiB */
	unsigned long long left;
	uint64_t x;
	char *end;

	if (argc != 3) {
		fprintf(stderr, "usage: prng SEED BYTES\n");
		return 2;
	}
	x = strtoull(argv[1], &end, 0) ^ 0x9e3779b97f4a7c15ULL;
	if (*end || !x)
		x = 0x9e3779b97f4a7c15ULL;
	left = strtoull(argv[2], &end, 0);
	if (*end || left % 8) {
		fprintf(stderr, "prng: BYTES must be a number, a multiple of 8\n");
		return 2;
	}
	while (left) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf), i, off = 0;

		for (i = 0; i < n / 8; i++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			buf[i] = x * 0x2545f4914f6cdd1dULL;
		}
		while (off < n) {
			ssize_t w = write(STDOUT_FILENO, (char *)buf + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				fprintf(stderr, "prng: write: %s\n", w < 0 ? strerror(errno) : "short");
				return 1;
			}
			off += (size_t)w;
		}
		left -= n;
	}
	return 0;
}
