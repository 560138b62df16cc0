/* Fuzz-test helpers: a seeded PRNG reseeded per iteration, env overrides, and byte mutations. */
#ifndef VEIL_FUZZ_H
#define VEIL_FUZZ_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "test.h"

/*
 * Every iteration draws from its own stream, derived from (seed, index):
 * a failure at iteration i replays alone with VEIL_FUZZ_FIRST=i
 * VEIL_FUZZ_ITERS=1, without running the i iterations before it, unless
 * the test keeps its devices from one iteration to the next
 * (carries_state).  Each failure prints the line that replays it.
 */
struct fuzz {
	const char *name;
	uint64_t seed;
	unsigned long first, iters;
	uint64_t s; /* the current iteration's stream */
	bool carries_state; /* iterations build on each other: a replay starts at 0 */
#ifdef VEIL_LIBFUZZER
	const uint8_t *in;  /* libFuzzer's input: the choices, read in order */
	size_t in_len, in_pos;
#endif
};

/* For the crash and timeout notes, which run where no struct fuzz is in reach. */
static struct fuzz *fuzz_current;
static volatile unsigned long fuzz_iter_now;

/* The environment that runs iteration i again, into buf; returns its length. */
static inline int fuzz_replay(const struct fuzz *f, unsigned long i, char *buf, size_t len)
{
	unsigned long first = f->carries_state ? f->first : i;

	return snprintf(buf, len, "VEIL_FUZZ_SEED=0x%llx VEIL_FUZZ_FIRST=%lu VEIL_FUZZ_ITERS=%lu\n",
			(unsigned long long)f->seed, first, i - first + 1);
}

static inline void fuzz_note(void)
{
	char line[200];
	int n;

	if (!fuzz_current)
		return;
	n = snprintf(line, sizeof(line), "%s: died in iteration %lu: replay with ",
		     fuzz_current->name, fuzz_iter_now);
	n += fuzz_replay(fuzz_current, fuzz_iter_now, line + n, sizeof(line) - (size_t)n);
	if (n > 0 && write(2, line, (size_t)n) < 0)
		return;
}

static inline void fuzz_on_signal(int sig)
{
	fuzz_note();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Sanitizers call this before they exit; weak, so a build without them still links. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static inline unsigned long fuzz_env(const char *var, unsigned long dflt)
{
	const char *s = getenv(var);

	return s && *s ? strtoul(s, NULL, 0) : dflt;
}

static inline void fuzz_init(struct fuzz *f, const char *name, uint64_t seed, unsigned long iters)
{
	const char *s = getenv("VEIL_FUZZ_SEED");

	f->name = name;
	f->seed = s && *s ? strtoull(s, NULL, 0) : seed;
	f->first = fuzz_env("VEIL_FUZZ_FIRST", 0);
	f->iters = fuzz_env("VEIL_FUZZ_ITERS", iters);
	f->s = f->seed;
	fuzz_current = f;
	/* Meson's timeout is a SIGTERM: say which iteration hung. */
	signal(SIGTERM, fuzz_on_signal);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(fuzz_note);
	else
		signal(SIGSEGV, fuzz_on_signal);
	signal(SIGABRT, fuzz_on_signal);
	printf("%s: seed 0x%llx, iterations %lu from %lu\n", name, (unsigned long long)f->seed,
	       f->iters, f->first);
	fflush(stdout);
}

/* splitmix64: tiny, full-period, and good enough to drive mutations. */
static inline uint64_t fuzz_splitmix(struct fuzz *f)
{
	uint64_t z = (f->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#ifdef VEIL_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Under libFuzzer every choice comes from the input, so the fuzzer's
 * mutations steer the generator: fuzz_next takes 8 bytes, fuzz_below as few
 * as n needs.  Past the end of the input the choices go on from splitmix,
 * seeded by the input's length, so every input replays exactly.
 */
static inline uint64_t fuzz_take(struct fuzz *f, unsigned int bytes)
{
	uint64_t v = 0;
	size_t n = f->in_len - f->in_pos;

	if (!n)
		return fuzz_splitmix(f);
	if (n > bytes)
		n = bytes;
	memcpy(&v, f->in + f->in_pos, n);
	f->in_pos += n;
	return v;
}

static inline uint64_t fuzz_next(struct fuzz *f)
{
	return fuzz_take(f, 8);
}

/* Whether unread input is left. */
static inline bool fuzz_lf_more(const struct fuzz *f)
{
	return f->in_pos < f->in_len;
}

/* Starts one libFuzzer input: no banner, no signal handlers (libFuzzer has its own). */
static inline void fuzz_lf_begin(struct fuzz *f, const char *name, const uint8_t *data, size_t size)
{
	*f = (struct fuzz){ .name = name, .seed = 0x6c6962667a ^ size, .iters = 1, .in = data,
			    .in_len = size };
	f->s = f->seed;
	test_failures = 0;
}

/* A failed check is a crash to libFuzzer, which then saves the input. */
static inline void fuzz_lf_end(struct fuzz *f)
{
	if (test_failures) {
		fprintf(stderr, "%s: %d check(s) failed on this input\n", f->name, test_failures);
		abort();
	}
}
#else
static inline uint64_t fuzz_next(struct fuzz *f)
{
	return fuzz_splitmix(f);
}
#endif

static inline void fuzz_begin(struct fuzz *f, unsigned long i)
{
	fuzz_iter_now = i;
	f->s = f->seed ^ (i * 0xd1b54a32d192ed03ULL);
	fuzz_next(f);
}

/* After an iteration: false (stop) once a check failed, with the line that replays it. */
static inline bool fuzz_end(struct fuzz *f, unsigned long i)
{
	char line[120];

	if (!test_failures)
		return true;
	fuzz_replay(f, i, line, sizeof(line));
	fprintf(stderr, "%s: iteration %lu failed: replay with %s", f->name, i, line);
	return false;
}

#define FUZZ_FOR_EACH(f, i) for (unsigned long i = (f)->first; i < (f)->first + (f)->iters && \
				 (fuzz_begin((f), i), true); i++)

/* 0 .. n-1; n 0 gives 0. */
static inline uint64_t fuzz_below(struct fuzz *f, uint64_t n)
{
#ifdef VEIL_LIBFUZZER
	/* The fewest input bytes that can name every value: mutations stay local. */
	unsigned int b = n <= 0x100 ? 1 : n <= 0x10000 ? 2 : n <= 0x100000000ULL ? 4 : 8;

	return n ? fuzz_take(f, b) % n : 0;
#else
	return n ? fuzz_next(f) % n : 0;
#endif
}

/* True one time in n. */
static inline bool fuzz_one_in(struct fuzz *f, uint64_t n)
{
	return fuzz_below(f, n) == 0;
}

/* Values at the edges, where off-by-ones and overflows live. */
static inline uint64_t fuzz_interesting(struct fuzz *f)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0x3ff, 0xfff,
		0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0xfffff, 0x100000, 0x7fffffff, 0x80000000,
		0xfffffff0, 0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL,
		0x8000000000000000ULL, 0xfffffffffffff000ULL, UINT64_MAX - 1, UINT64_MAX,
	};
	uint64_t x = v[fuzz_below(f, ARRAY_SIZE(v))];

	switch (fuzz_below(f, 4)) {
	case 0: return x + fuzz_below(f, 3) - 1; /* a neighbour */
	case 1: return 1ULL << fuzz_below(f, 64);
	default: return x;
	}
}

/* A value for a field of width bytes: random, interesting, or a small nudge of old. */
static inline uint64_t fuzz_value(struct fuzz *f, uint64_t old, unsigned int width)
{
	uint64_t mask = width >= 8 ? UINT64_MAX : (1ULL << (8 * width)) - 1, v;

	switch (fuzz_below(f, 4)) {
	case 0: v = fuzz_next(f); break;
	case 1: v = old + fuzz_below(f, 33) - 16; break;
	case 2: v = old ^ (1ULL << fuzz_below(f, 8 * width)); break;
	default: v = fuzz_interesting(f); break;
	}
	return v & mask;
}

static inline uint64_t fuzz_get(const uint8_t *p, unsigned int width)
{
	uint64_t v = 0;

	memcpy(&v, p, width); /* little-endian host, like the formats fuzzed here */
	return v;
}

static inline void fuzz_put(uint8_t *p, unsigned int width, uint64_t v)
{
	memcpy(p, &v, width);
}

/* Overwrites the width-byte field at off (if it fits in len) with a fuzz_value. */
static inline void fuzz_field(struct fuzz *f, uint8_t *buf, size_t len, size_t off,
			      unsigned int width)
{
	if (off + width <= len)
		fuzz_put(buf + off, width, fuzz_value(f, fuzz_get(buf + off, width), width));
}

/*
 * One generic mutation of buf[0..*len) in place, the length changing within
 * cap: bit flip, random byte, interesting field, insert, delete, truncate,
 * duplicate a block.  Offsets are drawn from [lo, hi) when that window is
 * non-empty, so a caller can aim at a header.
 */
static inline void fuzz_mutate(struct fuzz *f, uint8_t *buf, size_t *len, size_t cap, size_t lo,
			       size_t hi)
{
	size_t n = *len, off, k;

	if (hi > n)
		hi = n;
	off = lo < hi ? lo + fuzz_below(f, hi - lo) : fuzz_below(f, n ? n : 1);
	switch (fuzz_below(f, 8)) {
	case 0:
		if (n)
			buf[off] ^= (uint8_t)(1u << fuzz_below(f, 8));
		break;
	case 1:
		if (n)
			buf[off] = (uint8_t)fuzz_next(f);
		break;
	case 2: case 3:
		k = 1u << fuzz_below(f, 4);
		fuzz_field(f, buf, n, off, (unsigned int)k);
		break;
	case 4: /* insert k random bytes at off */
		k = 1 + fuzz_below(f, 16);
		if (off <= n && n + k <= cap) {
			memmove(buf + off + k, buf + off, n - off);
			for (size_t j = 0; j < k; j++)
				buf[off + j] = (uint8_t)fuzz_next(f);
			*len = n + k;
		}
		break;
	case 5: /* delete k bytes at off */
		k = 1 + fuzz_below(f, 16);
		if (off + k <= n) {
			memmove(buf + off, buf + off + k, n - off - k);
			*len = n - k;
		}
		break;
	case 6: /* truncate */
		*len = fuzz_below(f, n + 1);
		break;
	default: /* copy a block over another: repeats structures, like a second header */
		k = 1 + fuzz_below(f, 64);
		if (n > k) {
			size_t from = fuzz_below(f, n - k), to = fuzz_below(f, n - k);

			memmove(buf + to, buf + from, k);
		}
		break;
	}
}

#endif
