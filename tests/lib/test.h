/* Minimal test helpers: CHECK macros that report file:line and count failures; exit 77 to skip. */
#ifndef VEIL_TEST_H
#define VEIL_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_SKIP 77

static int test_failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			test_failures++;                                             \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b)                                                               \
	do {                                                                         \
		long long _a = (long long)(a), _b = (long long)(b);                  \
		if (_a != _b) {                                                      \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",  \
				__FILE__, __LINE__, #a, _a, #b, _b);                 \
			test_failures++;                                             \
		}                                                                    \
	} while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                              \
	do {                                                                         \
		if (!strstr((hay), (needle))) {                                      \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n",   \
				__FILE__, __LINE__, (hay), (needle));                \
			test_failures++;                                             \
		}                                                                    \
	} while (0)

#define SKIP(...)                                                                    \
	do {                                                                         \
		fprintf(stderr, "skip: " __VA_ARGS__);                               \
		fprintf(stderr, "\n");                                               \
		exit(TEST_SKIP);                                                     \
	} while (0)

static inline int test_done(const char *name)
{
	if (test_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
		return 1;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}

#endif
