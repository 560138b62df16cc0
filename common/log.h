/* Leveled logging with printf checking: to stderr, or to the calling thread's sink. */
#ifndef VEIL_LOG_H
#define VEIL_LOG_H

#include "compiler.h"

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * Where one VM's messages go: each thread has one (thread-local), set in
 * every thread a VM starts and around each libveil call, so two VMs in one
 * process each log to their own callback.  A thread with no sink writes to
 * stderr, filtered by the process-wide level.
 */
struct log_sink {
	void (*fn)(void *opaque, enum log_level level, const char *msg);
	void *opaque;
	enum log_level level;
};

/* The process-wide level of stderr (threads without a sink). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Sets the calling thread's sink (NULL: stderr); returns the previous one. */
const struct log_sink *log_set_sink(const struct log_sink *sink);
const struct log_sink *log_get_sink(void);
void log_msg(enum log_level level, const char *fmt, ...) __printf(2, 3);

#define pr_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
