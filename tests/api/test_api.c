/* unit: the control API's request layer and HTTP framing, over a fake VM (no KVM). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api.h"
#include "fake_ops.h"
#include "http.h"
#include "test.h"

struct env {
	struct fake_vm f;
	struct api_ctx ctx;
	struct api_reply r;
	struct json_object *j; /* the last reply's body, parsed */
};

static int req(struct env *e, const char *method, const char *path, const char *body)
{
	api_reply_free(&e->r);
	json_object_put(e->j);
	e->j = NULL;
	api_handle(&e->ctx, method, path, body, body ? strlen(body) : 0, &e->r);
	if (e->r.body) {
		e->j = json_tokener_parse(e->r.body);
		CHECK(e->j != NULL); /* every body is JSON */
	}
	/* Every error carries {"error": "<words>"}. */
	if (e->r.status >= 400) {
		struct json_object *m;

		CHECK(e->j && json_object_object_get_ex(e->j, "error", &m) &&
		      json_object_is_type(m, json_type_string) && json_object_get_string_len(m) > 0);
	}
	return e->r.status;
}

static uint64_t field_u64(struct env *e, const char *key)
{
	struct json_object *v;

	if (!e->j || !json_object_object_get_ex(e->j, key, &v) ||
	    !json_object_is_type(v, json_type_int)) {
		fprintf(stderr, "no integer \"%s\" in %s\n", key, e->r.body ? e->r.body : "(none)");
		test_failures++;
		return 0;
	}
	return json_object_get_uint64(v);
}

static const char *field_str(struct env *e, const char *key)
{
	struct json_object *v;

	return e->j && json_object_object_get_ex(e->j, key, &v) ? json_object_get_string(v) : "";
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->ctx.ops = &fake_ops;
	e->ctx.opaque = &e->f;
	e->ctx.version = "9.9.9";
	e->ctx.pid = 42;
	fake_defaults(&e->ctx.defaults);
}

static void env_fini(struct env *e)
{
	api_reply_free(&e->r);
	json_object_put(e->j);
	api_config_free(&e->f.ac);
}

static void test_routing(void)
{
	struct env e;

	env_init(&e);
	CHECK_EQ(req(&e, "GET", "/api/v1/vmm.ping", NULL), 200);
	CHECK_EQ(field_u64(&e, "api_version"), VEIL_API_VERSION);
	CHECK_EQ(field_u64(&e, "pid"), 42);
	CHECK(!strcmp(field_str(&e, "version"), "9.9.9"));
	CHECK_EQ(req(&e, "GET", "/api/v1/nope", NULL), 404);
	CHECK_EQ(req(&e, "GET", "/api/v1/vmm.ping/", NULL), 404);
	CHECK_EQ(req(&e, "GET", "", NULL), 404);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vmm.ping", NULL), 405);
	CHECK_EQ(req(&e, "DELETE", "/api/v1/vm.boot", NULL), 405);
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.create", NULL), 405);
	CHECK_EQ(req(&e, "GET", "/api/v1/vmm.ping", "{\"a\":1}"), 400); /* no body expected */
	CHECK_EQ(req(&e, "GET", "/api/v1/vmm.ping", " \r\n"), 200);     /* blank is no body */
	/* Without a VM, the VM's endpoints conflict rather than crash. */
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.info", NULL), 409);
	CHECK_STR_CONTAINS(e.r.body, "vm.create");
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.boot", NULL), 409);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.pause", NULL), 409);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.convert", "{\"gpa\":0,\"size\":4096,\"to\":\"private\"}"), 409);
	CHECK_EQ(e.f.calls, 0); /* none of that reached the VM */
	env_fini(&e);
}

static void test_create(void)
{
	static const char *const bad[] = {
		"", "{", "[]", "3", "{\"cpus\":1}x", "{\"cpus\":\"2\"}", "{\"cpus\":-1}", "{\"cpus\":0}",
		"{\"cpus\":1.5}", "{\"mem\":1000}", "{\"mem\":4096}", "{\"mem\":99999999999999999999}",
		"{\"bogus\":1}", "{\"vm_type\":\"sev\"}", "{\"transport\":true}",
		"{\"firmware\":\"x\",\"kernel\":\"/k\"}", "{\"initrd\":\"/i\"}", "{\"cmdline\":\"a\"}",
		"{\"check_stride\":2}", "{\"firmware\":\"conversions\",\"check_stride\":513}",
		"{\"disks\":{}}", "{\"disks\":[{}]}", "{\"disks\":[{\"path\":\"/d\",\"ro\":true}]}",
		"{\"disks\":[1]}", "{\"disks\":[{\"path\":\"a\"},{\"path\":\"b\"},{\"path\":\"c\"},"
		"{\"path\":\"d\"},{\"path\":\"e\"}]}", "{\"balloon\":1}", "{\"console\":\"hvc\"}",
		"{\"firmware\":\"a\\u0000b\"}", "{\"vm_type\":\"sw-protected\",\"destructive\":true}",
	};
	struct env e;

	env_init(&e);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = req(&e, "PUT", "/api/v1/vm.create", bad[i]);

		if (st != 400)
			fprintf(stderr, "vm.create %s: %d\n", bad[i], st);
		CHECK_EQ(st, 400);
	}
	CHECK_EQ(e.f.calls, 0);
	CHECK_EQ(e.f.state, API_VM_NONE);
	/* The VM refusing the configuration is a 400 with its words; the host failing a 500. */
	e.f.fail = -EINVAL;
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.create", "{}"), 400);
	CHECK_STR_CONTAINS(e.r.body, "the fake refuses");
	e.f.fail = -ENOMEM;
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.create", "{}"), 500);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.create",
		     "{\"cpus\":2,\"mem\":33554432,\"firmware\":\"conversions\",\"check_stride\":512,"
		     "\"seed\":18446744073709551615,\"vm_type\":\"sw-protected\",\"transport\":\"pci\","
		     "\"disks\":[{\"path\":\"/tmp/d\",\"read_only\":true}],\"balloon\":true,"
		     "\"rng\":true,\"console\":\"virtio\",\"seccomp\":false}"), 204);
	CHECK(e.r.body == NULL);
	CHECK_EQ(e.f.state, API_VM_CREATED);
	CHECK_EQ(e.f.ac.cfg.nr_cpus, 2);
	CHECK_EQ(e.f.ac.cfg.mem_size, 32 << 20);
	CHECK(!strcmp(e.f.ac.cfg.boot.firmware, "conversions"));
	CHECK_EQ(e.f.ac.cfg.boot.check_stride, 512);
	CHECK(e.f.ac.cfg.boot.seed == UINT64_MAX);
	CHECK_EQ(e.f.ac.cfg.vm_type, VEIL_VM_SW_PROTECTED);
	CHECK_EQ(e.f.ac.cfg.transport, VEIL_TRANSPORT_PCI);
	CHECK_EQ(e.f.ac.cfg.nr_disks, 1);
	CHECK(!strcmp(e.f.ac.cfg.disks[0].path, "/tmp/d") && e.f.ac.cfg.disks[0].read_only);
	CHECK_EQ(e.f.ac.cfg.disks[0].fd, -1);
	CHECK(e.f.ac.cfg.balloon && e.f.ac.cfg.rng && e.f.ac.cfg.virtio_console);
	CHECK(!e.f.ac.cfg.seccomp);
	CHECK_EQ(e.f.ac.cfg.kick_signal, 10); /* from the defaults */
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.create", "{}"), 409); /* one VM */
	/* vm.info gives the configuration back in vm.create's own terms. */
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.info", NULL), 200);
	CHECK(!strcmp(field_str(&e, "state"), "created"));
	{
		struct json_object *cfg;
		struct api_config back;
		char why[256];

		CHECK(json_object_object_get_ex(e.j, "config", &cfg));
		CHECK_EQ(api_config_from_object(cfg, &e.ctx.defaults, &back, why, sizeof(why)), 0);
		CHECK_EQ(back.cfg.nr_cpus, 2);
		CHECK(back.cfg.boot.seed == UINT64_MAX);
		CHECK(back.cfg.disks[0].read_only && back.cfg.balloon && !back.cfg.seccomp);
		api_config_free(&back);
	}
	env_fini(&e);
	/* Defaults: the selftest firmware, the CLI's defaults. */
	env_init(&e);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.create", " {} "), 204);
	CHECK(!strcmp(e.f.ac.cfg.boot.firmware, "selftest"));
	CHECK_EQ(e.f.ac.cfg.mem_size, 64 << 20);
	env_fini(&e);
}

static void boot(struct env *e, const char *create)
{
	env_init(e);
	CHECK_EQ(req(e, "PUT", "/api/v1/vm.create", create), 204);
	CHECK_EQ(req(e, "PUT", "/api/v1/vm.boot", NULL), 204);
	CHECK_EQ(e->f.state, API_VM_RUNNING);
}

static void test_lifecycle(void)
{
	struct env e;
	uint64_t exits;

	boot(&e, "{}");
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.boot", NULL), 409);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resume", NULL), 409);
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.counters", NULL), 200);
	CHECK(field_u64(&e, "exits") > 0);
	CHECK_STR_CONTAINS(e.r.body, "\"virtio-blk0\":{\"reads\":3,\"writes\":4}");
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.pause", NULL), 204);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.pause", NULL), 409);
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.counters", NULL), 200);
	exits = field_u64(&e, "exits");
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.counters", NULL), 200);
	CHECK_EQ(field_u64(&e, "exits"), exits);
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.info", NULL), 200);
	CHECK(!strcmp(field_str(&e, "state"), "paused"));
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resume", NULL), 204);
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.counters", NULL), 200);
	CHECK(field_u64(&e, "exits") > exits);
	/* A failing operation: busy is a conflict, anything else the host's fault. */
	e.f.fail = -EBUSY;
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.pause", NULL), 409);
	e.f.fail = -EIO;
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.pause", NULL), 500);
	CHECK_EQ(e.f.state, API_VM_RUNNING);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.shutdown", NULL), 204);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.shutdown", NULL), 409);
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.info", NULL), 200);
	CHECK(!strcmp(field_str(&e, "state"), "stopped"));
	CHECK_STR_CONTAINS(e.r.body, "\"exit\":{\"code\":0,\"reason\":\"the fake stopped\"}");
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.create", "{}"), 409);
	CHECK(!e.f.vmm_quit);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vmm.shutdown", NULL), 204);
	CHECK(e.f.vmm_quit);
	env_fini(&e);
}

static void test_ranges(void)
{
	static const char *const bad[] = {
		"", "{}", "{\"gpa\":0,\"size\":4096}", "{\"gpa\":0,\"size\":4096,\"to\":\"both\"}",
		"{\"gpa\":0,\"size\":4096,\"to\":1}", "{\"gpa\":\"0\",\"size\":4096,\"to\":\"shared\"}",
		"{\"gpa\":-4096,\"size\":4096,\"to\":\"shared\"}",
		"{\"gpa\":1,\"size\":4096,\"to\":\"shared\"}", "{\"gpa\":0,\"size\":4095,\"to\":\"shared\"}",
		"{\"gpa\":0,\"size\":0,\"to\":\"shared\"}",
		"{\"gpa\":0,\"size\":4096,\"to\":\"shared\",\"x\":1}",
		/* Out of RAM: past the end, across the two ranges, wrapping around. */
		"{\"gpa\":67108864,\"size\":4096,\"to\":\"private\"}",
		"{\"gpa\":67104768,\"size\":8192,\"to\":\"private\"}",
		"{\"gpa\":1044480,\"size\":8192,\"to\":\"private\"}",
		"{\"gpa\":18446744073709547520,\"size\":8192,\"to\":\"private\"}",
		"{\"gpa\":4096,\"size\":18446744073709547520,\"to\":\"private\"}",
	};
	struct env e;

	boot(&e, "{}");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = req(&e, "PUT", "/api/v1/vm.convert", bad[i]);

		if (st != 400)
			fprintf(stderr, "vm.convert %s: %d\n", bad[i], st);
		CHECK_EQ(st, 400);
	}
	CHECK_EQ(e.f.calls, 2); /* the create and the boot only */
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.convert",
		     "{\"to\":\"private\",\"size\":8192,\"gpa\":2097152}"), 204);
	CHECK(e.f.last_gpa == 2 << 20 && e.f.last_size == 8192 && e.f.last_private);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.convert",
		     "{\"gpa\":67100672,\"size\":8192,\"to\":\"shared\"}"), 204); /* RAM's last pages */
	CHECK(!e.f.last_private);
	e.f.fail = -EBUSY;
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.convert", "{\"gpa\":0,\"size\":4096,\"to\":\"shared\"}"),
		 409);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.discard", "{\"gpa\":0,\"size\":4096,\"to\":\"shared\"}"),
		 400);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.discard", "{\"gpa\":0,\"size\":67112960}"), 400);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.discard", "{\"gpa\":1048576,\"size\":4096}"), 204);
	CHECK(e.f.last_gpa == 1 << 20 && e.f.last_size == 4096);
	/* The balloon: none configured, then bounds. */
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resize", "{\"desired_balloon\":4096}"), 400);
	CHECK_STR_CONTAINS(e.r.body, "no balloon");
	env_fini(&e);
	boot(&e, "{\"balloon\":true}");
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resize", "{\"desired_balloon\":4097}"), 400);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resize", "{\"desired_balloon\":67112960}"), 400);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resize", "{\"desired_ram\":4096}"), 400);
	CHECK_EQ(req(&e, "PUT", "/api/v1/vm.resize", "{\"desired_balloon\":16777216}"), 204);
	CHECK_EQ(e.f.balloon, 16 << 20);
	/* vm.memory: extents, bounded. */
	e.f.nr_extents = 3;
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.memory", NULL), 200);
	CHECK_EQ(field_u64(&e, "private_bytes"), 4096);
	CHECK_STR_CONTAINS(e.r.body, "{\"gpa\":4096,\"size\":4096,\"private\":true}");
	CHECK_STR_CONTAINS(e.r.body, "\"extents_truncated\":false");
	e.f.nr_extents = API_MAX_EXTENTS + 5;
	CHECK_EQ(req(&e, "GET", "/api/v1/vm.memory", NULL), 200);
	CHECK_STR_CONTAINS(e.r.body, "\"extents_truncated\":true");
	env_fini(&e);
}

/* Feeds s in pieces of step bytes; the number of complete requests, or the error status. */
static int http_run(const char *s, size_t len, size_t step, struct api_http_req *last, int *count)
{
	struct api_http_conn *c;
	int ret = 0;

	*count = 0;
	CHECK_EQ(api_http_conn_create(&c), 0);
	for (size_t off = 0; off < len && ret <= 1;) {
		size_t n = len - off < step ? len - off : step, used;

		ret = api_http_feed(c, s + off, n, &used, last);
		off += used;
		if (ret == 1) {
			(*count)++;
			/* The request stays valid until the next feed: copy what the test needs. */
			last->body = NULL;
		}
		if (ret == 0 && used < n)
			ret = -1;
	}
	api_http_conn_destroy(c);
	return ret;
}

static void test_http(void)
{
	static const char two[] =
		"PUT /api/v1/vm.convert?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
		"GET /api/v1/vm.info HTTP/1.1\r\nConnection: close\r\n\r\n";
	static const char chunked[] = "PUT /api/v1/vm.create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
				      "\r\n2\r\n{}\r\n0\r\n\r\n";
	struct api_http_req r;
	char *big;
	int n;

	for (size_t step = 1; step <= sizeof(two); step += 7) {
		CHECK(http_run(two, sizeof(two) - 1, step, &r, &n) <= 1);
		CHECK_EQ(n, 2);
		CHECK(!strcmp(r.method, "GET") && !strcmp(r.path, "/api/v1/vm.info"));
		CHECK(!r.keep_alive);
	}
	CHECK(http_run(chunked, sizeof(chunked) - 1, 5, &r, &n) <= 1);
	CHECK_EQ(n, 1);
	CHECK(!strcmp(r.path, "/api/v1/vm.create"));
	CHECK(http_run("GARBAGE\r\n\r\n", 11, 64, &r, &n) == 400);
	CHECK(http_run("GET http://x/api/v1/vmm.ping HTTP/1.1\r\n\r\n", 41, 64, &r, &n) == 400);
	CHECK(http_run("PUT / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 42, 64, &r, &n) == 413);
	big = malloc(API_HTTP_MAX_HEADERS + 200);
	snprintf(big, 200, "GET / HTTP/1.1\r\nX: ");
	memset(big + strlen(big), 'a', API_HTTP_MAX_HEADERS);
	CHECK(http_run(big, strlen("GET / HTTP/1.1\r\nX: ") + API_HTTP_MAX_HEADERS, 1000, &r, &n) ==
	      431);
	snprintf(big, 200, "GET /");
	memset(big + 5, 'a', API_HTTP_MAX_PATH);
	CHECK(http_run(big, 5 + API_HTTP_MAX_PATH, 100, &r, &n) == 414);
	/* A chunked body past the bound, which no Content-Length announced. */
	{
		size_t len = 0, cap = API_HTTP_MAX_BODY + 20000;
		char *s = malloc(cap);

		len += (size_t)sprintf(s, "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < 17; i++) {
			len += (size_t)sprintf(s + len, "1000\r\n");
			memset(s + len, 'x', 4096);
			len += 4096;
			len += (size_t)sprintf(s + len, "\r\n");
			if (len + 5000 > cap)
				break;
		}
		CHECK_EQ(http_run(s, len, 3000, &r, &n), 413);
		free(s);
	}
	free(big);
	{
		size_t len;
		char *out = api_http_reply(404, "{\"error\":\"x\"}", true, &len);

		CHECK(out && !strcmp(out, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
				     "Content-Length: 13\r\n\r\n{\"error\":\"x\"}"));
		CHECK_EQ(len, strlen(out));
		free(out);
		out = api_http_reply(204, NULL, false, &len);
		CHECK(out && !strcmp(out, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
				     "Connection: close\r\n\r\n"));
		free(out);
	}
}

int main(void)
{
	test_routing();
	test_create();
	test_lifecycle();
	test_ranges();
	test_http();
	return test_done("test_api");
}
