/*
 * The control API's HTTP/1.1 framing: one request at a time out of a byte
 * stream, bounded, and a reply's bytes.  The only file that knows the parser
 * (Debian's libhttp-parser), so that llhttp can replace it here alone.
 */
#ifndef VEIL_API_HTTP_H
#define VEIL_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define API_HTTP_MAX_PATH 256        /* the request target, query included */
#define API_HTTP_MAX_HEADERS 8192    /* request line and headers, in bytes */
#define API_HTTP_MAX_BODY 65536      /* a JSON body */

struct api_http_req {
	char method[16];
	char path[API_HTTP_MAX_PATH + 1]; /* NUL-terminated, without the query */
	char *body;                       /* NUL-terminated; owned by the connection */
	size_t body_len;
	bool keep_alive;
};

struct api_http_conn;

int api_http_conn_create(struct api_http_conn **out);
void api_http_conn_destroy(struct api_http_conn *c);

/*
 * Feeds len bytes.  *used says how many it took: after a complete request it
 * stops there (the rest belongs to the next one).  Returns 1 when *req is a
 * complete request (valid until the next call), 0 when it needs more bytes,
 * or a 4xx status (400, 413, 414, 431) when the stream is bad: reply with it
 * and close.
 */
int api_http_feed(struct api_http_conn *c, const char *buf, size_t len, size_t *used,
		  struct api_http_req *req);

/*
 * Formats a reply: status line, Content-Type application/json and
 * Content-Length when body is not NULL, Connection: close unless keep_alive.
 * Returns a malloc'd buffer of *len bytes, or NULL.
 */
char *api_http_reply(int status, const char *body, bool keep_alive, size_t *len);

const char *api_http_status_text(int status);

#endif
