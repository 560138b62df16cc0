/*
 * fuzz: the control API's request layer (vmm/api/: libhttp-parser framing,
 * json-c bodies, api_handle) over a fake VM.  The first input byte picks:
 * 0, a raw HTTP byte stream fed in pieces, every complete request handled;
 * 1 and 2, a sequence of (endpoint, method, body) requests, from no VM or a
 * booted one.  Checked: every reply is a known status with the body its
 * status calls for (JSON, and {"error": words} for a 4xx/5xx), a 500 only
 * when the fake was told to fail, conversions and discards reach the VM
 * only 4 KiB-aligned inside RAM, balloon targets only inside RAM.
 */
#include <errno.h>
#include <json-c/json.h>

#include "api.h"
#include "fake_ops.h"
#include "fuzz.h"
#include "http.h"

#define MEM (16ULL << 20)

static unsigned long nr_requests, nr_ok, nr_client_errors;

static void check_range(uint64_t gpa, uint64_t size)
{
	CHECK(gpa % 4096 == 0 && size % 4096 == 0 && size > 0);
	CHECK(gpa < MEM && size <= MEM - gpa);
}

static int chk_convert(void *o, uint64_t gpa, uint64_t size, bool to_private, struct veil_error *err)
{
	check_range(gpa, size);
	return fake_convert(o, gpa, size, to_private, err);
}

static int chk_discard(void *o, uint64_t gpa, uint64_t size, struct veil_error *err)
{
	check_range(gpa, size);
	return fake_discard(o, gpa, size, err);
}

static int chk_balloon(void *o, uint64_t bytes)
{
	CHECK(bytes % 4096 == 0 && bytes <= MEM);
	return fake_set_balloon(o, bytes);
}

static int chk_create(void *o, struct api_config *ac, struct veil_error *err)
{
	CHECK(ac->cfg.nr_cpus >= 1 && ac->cfg.mem_size % 4096 == 0 && ac->cfg.mem_size >= (2 << 20));
	CHECK(!(ac->cfg.boot.firmware && ac->cfg.boot.kernel));
	CHECK(ac->cfg.nr_disks <= VEIL_MAX_DISKS);
	/* The fake's RAM stays MEM whatever was asked, so the range checks above hold. */
	ac->cfg.mem_size = MEM;
	return fake_create(o, ac, err);
}

static struct api_ops ops;

static void check_reply(const struct api_reply *r, bool injected)
{
	struct json_object *j = r->body ? json_tokener_parse(r->body) : NULL, *e;

	nr_requests++;
	switch (r->status) {
	case 200:
		CHECK(j && json_object_is_type(j, json_type_object));
		nr_ok++;
		break;
	case 204:
		CHECK(!r->body);
		nr_ok++;
		break;
	case 400: case 404: case 405: case 409: case 413: case 414: case 431: case 500: case 501:
		CHECK(j && json_object_object_get_ex(j, "error", &e) &&
		      json_object_is_type(e, json_type_string) && json_object_get_string_len(e) > 0);
		CHECK(r->status != 500 || injected);
		nr_client_errors += r->status < 500;
		break;
	default:
		fprintf(stderr, "status %d\n", r->status);
		CHECK(0);
	}
	json_object_put(j);
}

struct env {
	struct fake_vm f;
	struct api_ctx ctx;
};

static void env_init(struct env *e, bool booted)
{
	memset(e, 0, sizeof(*e));
	ops = fake_ops;
	ops.convert = chk_convert;
	ops.discard = chk_discard;
	ops.set_balloon = chk_balloon;
	ops.create = chk_create;
	e->ctx.ops = &ops;
	e->ctx.opaque = &e->f;
	e->ctx.version = "fuzz";
	fake_defaults(&e->ctx.defaults);
	if (booted) {
		e->f.state = API_VM_RUNNING;
		e->f.ac.cfg = e->ctx.defaults;
		e->f.ac.cfg.mem_size = MEM;
		e->f.ac.cfg.balloon = true;
	}
}

static void handle(struct env *e, const char *method, const char *path, const char *body, size_t len,
		   int fail)
{
	struct api_reply r;

	e->f.fail = fail;
	api_handle(&e->ctx, method, path, body, len, &r);
	check_reply(&r, fail != 0);
	api_reply_free(&r);
	e->f.fail = 0;
}

/* Mode 0: bytes as a client would send them, in pieces of 1 to 64 bytes. */
static void fuzz_stream(const uint8_t *data, size_t len)
{
	struct api_http_conn *c;
	struct env e;
	size_t step = len ? 1 + data[0] % 64 : 1, off = 2;

	env_init(&e, len > 1 && (data[1] & 1));
	if (api_http_conn_create(&c))
		return;
	while (off < len) {
		struct api_http_req req;
		size_t n = len - off < step ? len - off : step, used = 0;
		int ret = api_http_feed(c, (const char *)data + off, n, &used, &req);

		CHECK(used <= n);
		off += used;
		if (ret == 1) {
			CHECK(req.path[0] == '/' && strlen(req.path) <= API_HTTP_MAX_PATH);
			CHECK(req.body_len <= API_HTTP_MAX_BODY && req.body[req.body_len] == '\0');
			handle(&e, req.method, req.path, req.body, req.body_len, 0);
			continue;
		}
		if (ret) {
			CHECK(ret == 400 || ret == 413 || ret == 414 || ret == 431);
			break;
		}
		CHECK(used == n); /* wanting more, it took everything */
		if (used != n)
			break;
	}
	api_http_conn_destroy(c);
	api_config_free(&e.f.ac);
}

static const char *const paths[] = {
	"/api/v1/vmm.ping", "/api/v1/vmm.shutdown", "/api/v1/vm.create", "/api/v1/vm.boot",
	"/api/v1/vm.info", "/api/v1/vm.counters", "/api/v1/vm.pause", "/api/v1/vm.resume",
	"/api/v1/vm.shutdown", "/api/v1/vm.resize", "/api/v1/vm.convert", "/api/v1/vm.discard",
	"/api/v1/vm.memory", "/api/v1/", "/", "/api/v1/vm.info/", "/api/v2/vm.info",
};
static const char *const methods[] = { "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD" };

/* Modes 1 and 2: requests of [path][method][fail][body length][body]. */
static void fuzz_requests(const uint8_t *data, size_t len, bool booted)
{
	static const int fails[] = { 0, -EINVAL, -EBUSY, -EIO, -ENOMEM, -ENODEV, -EOPNOTSUPP };
	struct env e;
	size_t off = 0;

	env_init(&e, booted);
	while (off + 4 <= len) {
		const char *path = paths[data[off] % ARRAY_SIZE(paths)];
		const char *method = methods[data[off + 1] % ARRAY_SIZE(methods)];
		int fail = data[off + 2] < 224 ? 0 : fails[data[off + 2] % ARRAY_SIZE(fails)];
		size_t blen = data[off + 3];
		char *body;

		off += 4;
		if (blen > len - off)
			blen = len - off;
		body = malloc(blen + 1);
		if (!body)
			break;
		memcpy(body, data + off, blen);
		body[blen] = '\0';
		off += blen;
		handle(&e, method, path, blen ? body : NULL, blen, fail);
		free(body);
	}
	api_config_free(&e.f.ac);
}

static void fuzz_one(const uint8_t *data, size_t size)
{
	if (!size)
		return;
	switch (data[0] % 3) {
	case 0: fuzz_stream(data + 1, size - 1); break;
	case 1: fuzz_requests(data + 1, size - 1, false); break;
	default: fuzz_requests(data + 1, size - 1, true); break;
	}
}

#ifdef VEIL_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz f;

	fuzz_lf_begin(&f, "fuzz_api", data, size);
	fuzz_one(data, size);
	fuzz_lf_end(&f);
	return 0;
}
#else
/* Seeds the mutator starts from: each a valid input of one mode. */
#define SEED(s) { s, sizeof(s) - 1 }
static const struct { const char *s; size_t len; } seeds[] = {
	SEED("\x00\x10\x01PUT /api/v1/vm.convert HTTP/1.1\r\nHost: x\r\nContent-Length: 39\r\n\r\n"
	"{\"gpa\":4096,\"size\":8192,\"to\":\"private\"}GET /api/v1/vm.memory HTTP/1.1\r\n\r\n"),
	SEED("\x00\x03\x00PUT /api/v1/vm.create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	"19\r\n{\"cpus\":2,\"balloon\":true}\r\n0\r\n\r\nPUT /api/v1/vm.boot HTTP/1.1\r\n\r\n"),
	SEED("\x01\x02\x01\x00\x42{\"firmware\":\"conversions\",\"check_stride\":4,\"disks\":[{\"path\":\"a\"}]}"
	"\x03\x01\x00\x00\x06\x01\x00\x00\x07\x01\x00\x00"),
	SEED("\x02\x0a\x01\x00\x2a{\"gpa\":16773120,\"size\":4096,\"to\":\"shared\"}"
	"\x09\x01\x00\x1b{\"desired_balloon\":1048576}\x0b\x01\x00\x15{\"gpa\":0,\"size\":4096}"),
};

int main(void)
{
	struct fuzz f = { 0 };
	uint8_t buf[1024];

	fuzz_init(&f, "fuzz_api", 0x617069, 30000);
	FUZZ_FOR_EACH(&f, i) {
		unsigned int k = (unsigned int)fuzz_below(&f, ARRAY_SIZE(seeds));
		const char *s = seeds[k].s;
		size_t len = seeds[k].len, muts = 1 + fuzz_below(&f, 8);

		if (len > sizeof(buf))
			len = sizeof(buf);
		memcpy(buf, s, len);
		for (size_t m = 0; m < muts && len; m++) {
			size_t at = fuzz_below(&f, len);

			switch (fuzz_below(&f, 4)) {
			case 0: buf[at] = (uint8_t)fuzz_next(&f); break;
			case 1: buf[at] ^= (uint8_t)(1u << fuzz_below(&f, 8)); break;
			case 2: len = at + 1; break; /* cut short */
			default: /* a digit run made large */
				if (len < sizeof(buf) - 20 && at > 0) {
					memmove(buf + at + 19, buf + at, len - at);
					memcpy(buf + at, "1844674407370955161", 19);
					len += 19;
				}
				break;
			}
		}
		fuzz_one(buf, len);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_api: %lu requests, %lu answered 2xx, %lu 4xx\n", nr_requests, nr_ok,
	       nr_client_errors);
	if (!test_failures && f.iters >= 1000)
		CHECK(nr_ok > f.iters / 10 && nr_client_errors > f.iters / 2);
	return test_done("fuzz_api");
}
#endif
