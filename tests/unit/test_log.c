/* Unit test: log.c's thread-local sinks: each thread's messages reach its own sink, at its level. */
#include <pthread.h>
#include <string.h>

#include "log.h"
#include "test.h"

struct collect {
	unsigned int n;
	char last[128];
	enum log_level last_level;
};

static void collect(void *opaque, enum log_level level, const char *msg)
{
	struct collect *c = opaque;

	c->n++;
	c->last_level = level;
	snprintf(c->last, sizeof(c->last), "%s", msg);
}

struct worker {
	struct log_sink sink;
	struct collect c;
	const char *word;
};

static void *worker(void *arg)
{
	struct worker *w = arg;

	log_set_sink(&w->sink);
	for (int i = 0; i < 1000; i++)
		pr_info("%s %d", w->word, i);
	pr_debug("%s debug", w->word); /* above the sink's level: dropped */
	return NULL;
}

int main(void)
{
	struct worker a = { .sink = { collect, &a.c, LOG_INFO }, .word = "alpha" };
	struct worker b = { .sink = { collect, &b.c, LOG_INFO }, .word = "beta" };
	struct collect mine = { 0 };
	struct log_sink own = { collect, &mine, LOG_DEBUG };
	const struct log_sink *old;
	pthread_t ta, tb;

	CHECK_EQ(pthread_create(&ta, NULL, worker, &a), 0);
	CHECK_EQ(pthread_create(&tb, NULL, worker, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ(a.c.n, 1000);
	CHECK_EQ(b.c.n, 1000);
	CHECK_STR_CONTAINS(a.c.last, "alpha 999");
	CHECK_STR_CONTAINS(b.c.last, "beta 999");
	/* This thread had no sink: nothing of theirs reached it; set one, and the trailing newline goes. */
	CHECK(log_get_sink() == NULL);
	old = log_set_sink(&own);
	CHECK(old == NULL);
	pr_debug("line\n");
	CHECK_EQ(mine.n, 1);
	CHECK_EQ(strcmp(mine.last, "line"), 0);
	CHECK_EQ(mine.last_level, LOG_DEBUG);
	CHECK_EQ(log_get_level(), LOG_DEBUG);
	CHECK(log_set_sink(NULL) == &own);
	CHECK_EQ(log_get_level(), LOG_WARN); /* the process-wide level again */
	return test_done("log");
}
