/* Leveled logging: one line per message, to the thread's sink or stderr prefixed with "veil:". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static enum log_level log_level = LOG_WARN;
static __thread const struct log_sink *log_sink;

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_sink ? log_sink->level : log_level;
}

const struct log_sink *log_set_sink(const struct log_sink *sink)
{
	const struct log_sink *old = log_sink;

	log_sink = sink;
	return old;
}

const struct log_sink *log_get_sink(void)
{
	return log_sink;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	const struct log_sink *sink = log_sink;
	char line[1024];
	size_t n;
	va_list ap;

	if (level > (sink ? sink->level : log_level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (sink && sink->fn) {
		if (n && line[n - 1] == '\n')
			line[n - 1] = '\0';
		sink->fn(sink->opaque, level, line);
		return;
	}
	/* One fprintf per line keeps lines whole when vCPU threads log at once. */
	fprintf(stderr, "veil: %s: %s%s", names[level], line,
		n && line[n - 1] == '\n' ? "" : "\n");
}
