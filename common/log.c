/* Leveled logging: one line per message, prefixed with "veil:". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static enum log_level log_level = LOG_WARN;

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line keeps lines whole when vCPU threads log at once. */
	fprintf(stderr, "veil: %s: %s%s", names[level], line,
		line[0] && line[strlen(line) - 1] == '\n' ? "" : "\n");
}
