/* HTTP/1.1 requests for the control API, framed by libhttp-parser, with every size bounded. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "http.h"

struct api_http_conn {
	http_parser p;
	size_t header_bytes;
	size_t url_len;
	char url[API_HTTP_MAX_PATH + 1];
	char *body;
	size_t body_len;
	int error;     /* a 4xx the callbacks decided on */
	bool complete; /* on_message_complete ran: the parser is paused there */
};

static struct api_http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int fail(struct api_http_conn *c, int status)
{
	c->error = status;
	return -1;
}

static int count_header(struct api_http_conn *c, size_t n)
{
	c->header_bytes += n;
	return c->header_bytes > API_HTTP_MAX_HEADERS ? fail(c, 431) : 0;
}

static int on_begin(http_parser *p)
{
	struct api_http_conn *c = conn_of(p);

	c->header_bytes = 0;
	c->url_len = 0;
	c->body_len = 0;
	c->body[0] = '\0';
	c->complete = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct api_http_conn *c = conn_of(p);

	if (n > API_HTTP_MAX_PATH - c->url_len)
		return fail(c, 414);
	memcpy(c->url + c->url_len, at, n);
	c->url_len += n;
	c->url[c->url_len] = '\0';
	return count_header(c, n);
}

static int on_header(http_parser *p, const char *at, size_t n)
{
	(void)at;
	return count_header(conn_of(p), n);
}

static int on_headers_complete(http_parser *p)
{
	struct api_http_conn *c = conn_of(p);

	/* A Content-Length over the bound is refused before a byte of it is read. */
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
	    p->content_length > API_HTTP_MAX_BODY)
		return fail(c, 413);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct api_http_conn *c = conn_of(p);

	if (n > API_HTTP_MAX_BODY - c->body_len)
		return fail(c, 413);
	memcpy(c->body + c->body_len, at, n);
	c->body_len += n;
	c->body[c->body_len] = '\0';
	return 0;
}

static int on_complete(http_parser *p)
{
	struct api_http_conn *c = conn_of(p);

	c->complete = true;
	http_parser_pause(p, 1); /* hand this request over before parsing the next */
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_url = on_url,
	.on_header_field = on_header,
	.on_header_value = on_header,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

int api_http_conn_create(struct api_http_conn **out)
{
	struct api_http_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->body = malloc(API_HTTP_MAX_BODY + 1);
	if (!c->body) {
		free(c);
		return -ENOMEM;
	}
	c->body[0] = '\0';
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	*out = c;
	return 0;
}

void api_http_conn_destroy(struct api_http_conn *c)
{
	if (!c)
		return;
	free(c->body);
	free(c);
}

/* The path without query or fragment; 400 if the target is not an origin-form path. */
static int split_path(const struct api_http_conn *c, struct api_http_req *req)
{
	struct http_parser_url u;
	size_t len;

	http_parser_url_init(&u);
	if (c->url_len == 0 || c->url[0] != '/' ||
	    http_parser_parse_url(c->url, c->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH)))
		return 400;
	len = u.field_data[UF_PATH].len;
	memcpy(req->path, c->url + u.field_data[UF_PATH].off, len);
	req->path[len] = '\0';
	return 0;
}

int api_http_feed(struct api_http_conn *c, const char *buf, size_t len, size_t *used,
		  struct api_http_req *req)
{
	enum http_errno e;
	int ret;

	if (c->complete) { /* the previous request was handed over: go on after it */
		c->complete = false;
		http_parser_pause(&c->p, 0);
	}
	*used = http_parser_execute(&c->p, &settings, buf, len);
	e = HTTP_PARSER_ERRNO(&c->p);
	if (c->error)
		return c->error;
	if (e != HPE_OK && !(e == HPE_PAUSED && c->complete))
		return e == HPE_HEADER_OVERFLOW ? 431 : 400;
	if (c->p.upgrade)
		return 400;
	if (!c->complete)
		return 0;
	ret = split_path(c, req);
	if (ret)
		return ret;
	snprintf(req->method, sizeof(req->method), "%s",
		 http_method_str((enum http_method)c->p.method));
	req->body = c->body;
	req->body_len = c->body_len;
	req->keep_alive = http_should_keep_alive(&c->p);
	return 1;
}

const char *api_http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

char *api_http_reply(int status, const char *body, bool keep_alive, size_t *len)
{
	size_t blen = body ? strlen(body) : 0, cap = blen + 256;
	char *out = malloc(cap);
	int n;

	if (!out)
		return NULL;
	n = snprintf(out, cap, "HTTP/1.1 %d %s\r\n%s%s%zu\r\n%s\r\n", status,
		     api_http_status_text(status),
		     body ? "Content-Type: application/json\r\n" : "",
		     "Content-Length: ", blen, keep_alive ? "" : "Connection: close\r\n");
	if (n < 0 || (size_t)n + blen >= cap) {
		free(out);
		return NULL;
	}
	memcpy(out + n, body ? body : "", blen);
	*len = (size_t)n + blen;
	out[*len] = '\0';
	return out;
}
