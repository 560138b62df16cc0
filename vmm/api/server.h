/*
 * The control API's server: a Unix socket served by one thread of its own
 * (poll over the listening socket and its clients), under its own seccomp
 * filter.  Requests go through api_handle(); the operations it calls are
 * carried out on the thread that owns the VM through api_server_call().
 */
#ifndef VEIL_API_SERVER_H
#define VEIL_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"

#define API_MAX_CLIENTS 16       /* connections served at once; more get a 503 */
#define API_IDLE_TIMEOUT_MS 30000 /* a connection that sends nothing for this long is closed */

struct api_server;

/*
 * Binds path (mode 0600; an existing file is refused, never replaced) and
 * starts the API thread serving ctx, which must outlive the server.  With
 * seccomp, the thread loads its filter before it accepts anything.  *out is
 * set before the thread starts, since its first request may call through it.
 */
int api_server_start(const char *path, struct api_ctx *ctx, bool seccomp,
		     struct api_server **out, char *err, size_t len) __attribute__((warn_unused_result));

/* Stops and joins the thread, closes every connection, removes the socket. */
void api_server_stop(struct api_server *s);

/* From the API thread: runs fn(arg) on the owner's thread, waits for it, returns what it did. */
int api_server_call(struct api_server *s, int (*fn)(void *arg), void *arg);

/* The owner polls this fd (readable when a call waits) and then runs the calls. */
int api_server_call_fd(struct api_server *s);
void api_server_run_calls(struct api_server *s);

#endif
