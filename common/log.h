/* Leveled logging to stderr with printf checking. */
#ifndef VEIL_LOG_H
#define VEIL_LOG_H

#include "compiler.h"

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * The level is process-wide on purpose: stderr is one stream whatever the
 * number of VMs, so the verbosity of that stream is not per-VM state.
 */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __printf(2, 3);

#define pr_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
