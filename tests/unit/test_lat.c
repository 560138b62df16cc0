/* Unit test: the latency histogram counts every sample and its percentiles are within 1/256. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "lat.h"
#include "test.h"

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, as lat.h promises: the smallest sample with p% of them at or below it. */
static uint64_t ref_percentile(const uint64_t *sorted, uint64_t n, double p)
{
	double r = p / 100.0 * (double)n;
	uint64_t rank = r < 1 ? 1 : (uint64_t)r;

	if ((double)rank < r)
		rank++;
	return sorted[(rank > n ? n : rank) - 1];
}

/* |got - want| <= want / 256, the stated error; exact below 256 ns. */
static int close_enough(uint64_t got, uint64_t want)
{
	uint64_t d = got > want ? got - want : want - got;

	return d <= want / 256;
}

static void lat_setup(struct lat *l)
{
	if (lat_init(l)) {
		fprintf(stderr, "lat_init failed\n");
		exit(1);
	}
}

#define NR_REF 200000

/* Three shapes: uniform in [0, 1 ms), log-uniform over 1 ns..1 s, and a tight cluster. */
static uint64_t sample(unsigned int shape, uint64_t *s)
{
	uint64_t x = rng(s);

	switch (shape) {
	case 0:
		return x % 1000000;
	case 1:
		return ((x >> 20) & ((1ULL << 30) - 1)) >> (x % 30);
	default:
		return 40000 + x % 300;
	}
}

static void test_against_sorted(void)
{
	static const double ps[] = { 0, 0.1, 1, 10, 50, 90, 99, 99.9, 99.99, 100 };
	uint64_t *v = malloc(NR_REF * sizeof(*v)), seed = 0x9e3779b97f4a7c15ULL, sum;
	unsigned int shape, i, k;
	struct lat l;

	if (!v)
		exit(1);
	for (shape = 0; shape < 3; shape++) {
		lat_setup(&l);
		sum = 0;
		for (i = 0; i < NR_REF; i++) {
			v[i] = sample(shape, &seed);
			sum += v[i];
			lat_add(&l, v[i]);
		}
		qsort(v, NR_REF, sizeof(*v), cmp_u64);
		CHECK_EQ(lat_count(&l), NR_REF);
		CHECK_EQ(lat_min(&l), v[0]);
		CHECK_EQ(lat_max(&l), v[NR_REF - 1]);
		CHECK_EQ(lat_mean(&l), sum / NR_REF);
		for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
			uint64_t got = lat_percentile(&l, ps[k]), want = ref_percentile(v, NR_REF, ps[k]);

			if (!close_enough(got, want)) {
				fprintf(stderr, "shape %u p%g: %llu, sorted says %llu\n", shape, ps[k],
					(unsigned long long)got, (unsigned long long)want);
				test_failures++;
			}
		}
		lat_free(&l);
	}
	free(v);
}

/*
 * Every value's bucket: with 0 and UINT64_MAX around it, p50 is v's bucket's
 * reported value, unclamped.  Powers of two and their neighbours are the
 * bucket edges.
 */
static void test_every_scale(void)
{
	uint64_t seed = 12345, v;
	unsigned int e, j;
	struct lat l;

	for (e = 0; e < 64; e++) {
		for (j = 0; j < 8; j++) {
			uint64_t p2 = 1ULL << e;

			v = j == 0 ? p2 : j == 1 ? p2 - 1 : j == 2 ? p2 + 1 :
			    p2 + rng(&seed) % p2;
			lat_setup(&l);
			lat_add(&l, 0);
			lat_add(&l, v);
			lat_add(&l, UINT64_MAX);
			if (!close_enough(lat_percentile(&l, 50), v)) {
				fprintf(stderr, "value %llu reported as %llu\n", (unsigned long long)v,
					(unsigned long long)lat_percentile(&l, 50));
				test_failures++;
			}
			CHECK_EQ(lat_percentile(&l, 100), (long long)UINT64_MAX);
			lat_free(&l);
		}
	}
	lat_setup(&l);
	CHECK_EQ(lat_percentile(&l, 99), 0); /* empty */
	CHECK_EQ(lat_min(&l), 0);
	CHECK_EQ(lat_max(&l), 0);
	CHECK_EQ(lat_mean(&l), 0);
	lat_add(&l, 255);
	CHECK_EQ(lat_percentile(&l, 0), 255);
	CHECK_EQ(lat_percentile(&l, 99.9), 255);
	lat_free(&l);
}

/*
 * The whole run counts: the old histogram kept the first 2^18 samples, so
 * a slow spell after them never reached p99.9 or the maximum.
 */
static void test_late_outliers(void)
{
	const uint64_t early = (1u << 18) + (1u << 17), late = 1000;
	uint64_t i;
	struct lat l;

	lat_setup(&l);
	for (i = 0; i < early; i++)
		lat_add(&l, 1000 + i % 50);
	for (i = 0; i < late; i++)
		lat_add(&l, 10000000); /* 10 ms: 0.25% of the samples, all at the end */
	CHECK_EQ(lat_count(&l), early + late);
	CHECK(close_enough(lat_percentile(&l, 99.9), 10000000));
	CHECK_EQ(lat_percentile(&l, 100), 10000000);
	CHECK_EQ(lat_max(&l), 10000000);
	CHECK(close_enough(lat_percentile(&l, 99), 1049));
	CHECK(close_enough(lat_percentile(&l, 50), 1025));
	lat_free(&l);
}

#define NR_THREADS 4
#define PER_THREAD 100000

struct adder {
	struct lat *l;
	uint64_t seed;
};

static void *adder_main(void *arg)
{
	struct adder *a = arg;
	unsigned int i;

	for (i = 0; i < PER_THREAD; i++)
		lat_add(a->l, 1 + rng(&a->seed) % 5000);
	return NULL;
}

/* Concurrent writers lose nothing (and TSan sees no race). */
static void test_threads(void)
{
	struct adder a[NR_THREADS];
	pthread_t t[NR_THREADS];
	unsigned int i;
	struct lat l;

	lat_setup(&l);
	for (i = 0; i < NR_THREADS; i++) {
		a[i] = (struct adder){ .l = &l, .seed = 0x1234567ULL * (i + 1) };
		if (pthread_create(&t[i], NULL, adder_main, &a[i]))
			exit(1);
	}
	lat_add(&l, 6000); /* the maximum, from the main thread while they run */
	for (i = 0; i < NR_THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(lat_count(&l), NR_THREADS * PER_THREAD + 1);
	CHECK_EQ(lat_max(&l), 6000);
	CHECK(lat_min(&l) >= 1 && lat_min(&l) <= 3);
	CHECK(lat_percentile(&l, 50) > 2450 && lat_percentile(&l, 50) < 2550);
	lat_free(&l);
}

int main(void)
{
	test_against_sorted();
	test_every_scale();
	test_late_outliers();
	test_threads();
	return test_done("test_lat");
}
