/* The control API's Unix socket and the thread that serves it, plus the call mailbox to the VM's owner. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http.h"
#include "sandbox.h"
#include "server.h"

#define READ_CHUNK 4096

struct client {
	int fd; /* -1: a free slot */
	struct api_http_conn *http;
	char *out;
	size_t out_len, out_off;
	bool close_after; /* once out is sent */
	uint64_t last_ms;
};

struct api_server {
	struct api_ctx *ctx;
	char *path;
	int listen_fd;
	int stop_fd;  /* eventfd: the owner asks the thread to end */
	int call_fd;  /* eventfd: a call waits for the owner */
	pthread_t thread;
	struct client clients[API_MAX_CLIENTS];
	/* The mailbox: one call at a time, since one thread makes them. */
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int (*call_fn)(void *);
	void *call_arg;
	int call_ret;
	bool call_pending, call_done, closing;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int api_server_call(struct api_server *s, int (*fn)(void *arg), void *arg)
{
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	s->call_fn = fn;
	s->call_arg = arg;
	s->call_pending = true;
	s->call_done = false;
	if (write(s->call_fd, &one, sizeof(one)) != sizeof(one)) {
		s->call_pending = false;
		pthread_mutex_unlock(&s->lock);
		return -EIO;
	}
	while (!s->call_done && !s->closing)
		pthread_cond_wait(&s->done_cond, &s->lock);
	ret = s->call_done ? s->call_ret : -ESHUTDOWN;
	s->call_pending = false;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int api_server_call_fd(struct api_server *s)
{
	return s->call_fd;
}

void api_server_run_calls(struct api_server *s)
{
	uint64_t n;
	int (*fn)(void *);
	void *arg;
	int ret;

	if (read(s->call_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&s->lock);
	if (!s->call_pending || s->call_done || s->closing) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	fn = s->call_fn;
	arg = s->call_arg;
	pthread_mutex_unlock(&s->lock);
	ret = fn(arg); /* the API thread waits meanwhile: arg stays valid */
	pthread_mutex_lock(&s->lock);
	s->call_ret = ret;
	s->call_done = true;
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->lock);
}

static void client_close(struct client *c)
{
	close(c->fd);
	api_http_conn_destroy(c->http);
	free(c->out);
	*c = (struct client){ .fd = -1 };
}

/* Sends what it can; false when the connection is finished with. */
static bool client_flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return !c->close_after;
}

static int queue_reply(struct client *c, int status, const char *body, bool keep_alive)
{
	size_t len;
	char *msg = api_http_reply(status, body, keep_alive, &len), *out;

	if (!msg)
		return -ENOMEM;
	out = realloc(c->out, c->out_len + len);
	if (!out) {
		free(msg);
		return -ENOMEM;
	}
	memcpy(out + c->out_len, msg, len);
	free(msg);
	c->out = out;
	c->out_len += len;
	if (!keep_alive)
		c->close_after = true;
	return 0;
}

/* Every complete request in buf, answered in order; a framing error answers and closes. */
static void client_feed(struct api_server *s, struct client *c, const char *buf, size_t len)
{
	while (len && !c->close_after) {
		struct api_http_req req;
		struct api_reply r;
		size_t used = 0;
		int ret = api_http_feed(c->http, buf, len, &used, &req);

		buf += used;
		len -= used;
		if (ret == 0)
			return;
		if (ret > 1) {
			char body[96];

			snprintf(body, sizeof(body), "{\"error\":\"bad HTTP request: %d %s\"}", ret,
				 api_http_status_text(ret));
			if (queue_reply(c, ret, body, false))
				c->close_after = true;
			return;
		}
		api_handle(s->ctx, req.method, req.path, req.body, req.body_len, &r);
		if (queue_reply(c, r.status, r.body, req.keep_alive))
			c->close_after = true;
		api_reply_free(&r);
		if (used == 0)
			return;
	}
}

static void client_read(struct api_server *s, struct client *c)
{
	char buf[READ_CHUNK];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->close_after = true; /* the peer is done: send what it asked for, then close */
		if (!c->out_len)
			client_close(c);
		return;
	}
	c->last_ms = now_ms();
	client_feed(s, c, buf, (size_t)n);
}

static void accept_one(struct api_server *s)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
				   "Content-Length: 33\r\nConnection: close\r\n\r\n"
				   "{\"error\":\"too many connections\"}\n";
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct client *c = NULL;

	if (fd < 0)
		return;
	for (unsigned int i = 0; i < API_MAX_CLIENTS && !c; i++)
		if (s->clients[i].fd < 0)
			c = &s->clients[i];
	if (!c || api_http_conn_create(&c->http)) {
		char sink[512];

		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			(void)0; /* it is going away either way */
		/* What it sent already is read first: closing on unread bytes resets the reply. */
		for (int i = 0; i < 8 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
		close(fd);
		return;
	}
	c->fd = fd;
	c->last_ms = now_ms();
}

static void serve_clients(struct api_server *s, struct pollfd *pfd, unsigned int *slot,
			  unsigned int n)
{
	uint64_t now = now_ms();

	for (unsigned int i = 0; i < n; i++) {
		struct client *c = &s->clients[slot[i]];

		if (c->fd < 0 || c->fd != pfd[i].fd)
			continue;
		if (pfd[i].revents & POLLIN)
			client_read(s, c);
		if (c->fd >= 0 && (c->out_len || c->close_after) && !client_flush(c))
			client_close(c);
		else if (c->fd >= 0 && (pfd[i].revents & (POLLERR | POLLNVAL)))
			client_close(c);
		else if (c->fd >= 0 && now > c->last_ms && now - c->last_ms > API_IDLE_TIMEOUT_MS)
			client_close(c);
	}
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	struct pollfd pfd[2 + API_MAX_CLIENTS];
	unsigned int slot[API_MAX_CLIENTS];

	for (;;) {
		unsigned int n = 0;

		pfd[0] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		for (unsigned int i = 0; i < API_MAX_CLIENTS; i++) {
			struct client *c = &s->clients[i];

			if (c->fd < 0)
				continue;
			slot[n] = i;
			pfd[2 + n++] = (struct pollfd){ .fd = c->fd,
				.events = (short)(c->out_len ? POLLOUT : POLLIN) };
		}
		if (poll(pfd, 2 + n, 1000) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			break;
		if (pfd[1].revents & POLLIN)
			accept_one(s);
		serve_clients(s, pfd + 2, slot, n);
	}
	/* Here, not in the owner: its filter may forbid unlink (the main thread's does). */
	unlink(s->path);
	return NULL;
}

/* Refuses an existing file (bind's EADDRINUSE); creates the socket 0600 whatever the umask. */
static int bind_socket(struct api_server *s, const char *path, char *err, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, len, "the path is longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	old = umask(0177);
	ret = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (ret == -EADDRINUSE) {
		snprintf(err, len, "a file of that name exists; veil does not replace it");
		return -EEXIST;
	}
	if (ret) {
		snprintf(err, len, "%s", strerror(-ret));
		return ret;
	}
	s->path = strdup(path);
	if (!s->path || chmod(path, 0600) || listen(s->listen_fd, API_MAX_CLIENTS)) {
		ret = s->path ? -errno : -ENOMEM;
		unlink(path);
		snprintf(err, len, "%s", strerror(-ret));
		return ret;
	}
	return 0;
}

/* json-c draws its hash seed on first use (getrandom, or /dev/urandom): before any filter. */
static void json_warm_up(void)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "seed", json_object_new_int(1));
	json_object_put(o);
}

int api_server_start(const char *path, struct api_ctx *ctx, bool seccomp,
		     struct api_server **out, char *err, size_t len)
{
	struct vmm_sandbox_fds fds = { .vm_fd = -1, .vcpu_fd = -1, .tty_fd = -1 };
	struct api_server *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->ctx = ctx;
	s->listen_fd = s->stop_fd = s->call_fd = -1;
	for (unsigned int i = 0; i < API_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	json_warm_up();
	vmm_sandbox_warm_up();
	ret = bind_socket(s, path, err, len);
	if (ret)
		goto fail;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0 || s->call_fd < 0) {
		ret = -errno;
		snprintf(err, len, "eventfd: %s", strerror(-ret));
		goto fail_unlink;
	}
	/* Before the thread: a request may need the server (api_server_call) at once. */
	*out = s;
	ret = vmm_thread_start(&s->thread, VMM_THREAD_API, seccomp ? &fds : NULL, "veil-api",
			       api_thread, s);
	if (ret) {
		*out = NULL;
		snprintf(err, len, "starting its thread: %s", strerror(-ret));
		goto fail_unlink;
	}
	return 0;
fail_unlink:
	unlink(s->path);
fail:
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->call_fd >= 0)
		close(s->call_fd);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s->path);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->done_cond);
	free(s);
	return ret;
}

void api_server_stop(struct api_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = true; /* a call still waiting gets -ESHUTDOWN */
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->lock);
	if (write(s->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(s->thread, NULL); /* it removed the socket */
	for (unsigned int i = 0; i < API_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			client_close(&s->clients[i]);
	close(s->listen_fd);
	close(s->stop_fd);
	close(s->call_fd);
	free(s->path);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->done_cond);
	free(s);
}
