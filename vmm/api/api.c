/* The control API's endpoints: method and path to an operation, JSON in and out, every error a 4xx. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api.h"

#define PAGE 4096ULL
#define WHY_LEN 256

struct req {
	struct api_ctx *ctx;
	struct json_object *body; /* NULL for an endpoint without one */
	struct api_reply *r;
};

typedef void (*handler_fn)(struct req *q);

/* Which states an endpoint accepts, as a bit mask of enum api_vm_state. */
#define S(x) (1u << API_VM_##x)
#define S_ANY (S(NONE) | S(CREATED) | S(RUNNING) | S(PAUSED) | S(STOPPED))
#define S_VM (S(CREATED) | S(RUNNING) | S(PAUSED) | S(STOPPED))
#define S_LIVE (S(CREATED) | S(RUNNING) | S(PAUSED))

struct endpoint {
	const char *path;
	const char *method;
	bool body;          /* takes a JSON object */
	unsigned int states;
	handler_fn fn;
};

static const char *const state_names[] = {
	[API_VM_NONE] = "none", [API_VM_CREATED] = "created", [API_VM_RUNNING] = "running",
	[API_VM_PAUSED] = "paused", [API_VM_STOPPED] = "stopped",
};

const char *api_state_name(enum api_vm_state s)
{
	return (unsigned int)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

static void reply_json(struct api_reply *r, int status, struct json_object *o)
{
	const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;

	r->status = status;
	r->body = s ? strdup(s) : NULL;
	if (!r->body)
		r->status = 500; /* out of memory: the only reply without a body but 204 */
	json_object_put(o);
}

__attribute__((format(printf, 3, 4))) static void reply_error(struct api_reply *r, int status,
							       const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[WHY_LEN + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o)
		json_object_object_add(o, "error", json_object_new_string(msg));
	reply_json(r, status, o);
	if (r->status == 500 && status != 500)
		r->status = status;
}

static void reply_none(struct api_reply *r)
{
	r->status = 204;
	r->body = NULL;
}

/* An operation's -errno as a status: the configuration's or the request's fault is a 4xx. */
static int status_of(int ret, const struct veil_error *err)
{
	if (err && err->config_fault)
		return 400;
	switch (ret) {
	case -EINVAL: case -ERANGE: case -ENODEV: case -EOPNOTSUPP: case -ENOENT: case -E2BIG:
		return 400;
	case -EBUSY: case -EAGAIN: case -EALREADY:
		return 409;
	default:
		return 500;
	}
}

static void reply_op(struct api_reply *r, int ret, const struct veil_error *err, const char *what)
{
	if (!ret) {
		reply_none(r);
		return;
	}
	reply_error(r, status_of(ret, err), "%s: %s", what,
		    err && err->msg[0] ? err->msg : strerror(-ret));
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void h_ping(struct req *q)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_string(q->ctx->version ?
								     q->ctx->version : "unknown"));
	add_u64(o, "api_version", VEIL_API_VERSION);
	add_u64(o, "pid", (uint64_t)q->ctx->pid);
	reply_json(q->r, 200, o);
}

static void h_create(struct req *q)
{
	struct veil_error err = { 0 };
	struct api_config ac;
	char why[WHY_LEN] = "";
	int ret = api_config_from_object(q->body, &q->ctx->defaults, &ac, why, sizeof(why));

	if (ret) {
		reply_error(q->r, ret == -ENOMEM ? 500 : 400, "vm.create: %s", why);
		return;
	}
	ret = q->ctx->ops->create(q->ctx->opaque, &ac, &err);
	if (ret)
		api_config_free(&ac);
	reply_op(q->r, ret, &err, "vm.create");
}

static void h_boot(struct req *q)
{
	struct veil_error err = { 0 };

	reply_op(q->r, q->ctx->ops->boot(q->ctx->opaque, &err), &err, "vm.boot");
}

static struct json_object *ranges_json(const struct veil_info *in)
{
	struct json_object *a = json_object_new_array();

	for (unsigned int i = 0; i < in->nr_ranges && i < VEIL_MAX_RANGES; i++) {
		struct json_object *o = json_object_new_object();

		add_u64(o, "gpa", in->ranges[i].gpa);
		add_u64(o, "size", in->ranges[i].size);
		json_object_array_add(a, o);
	}
	return a;
}

static void h_info(struct req *q)
{
	const struct api_config *ac = NULL;
	struct veil_exit ex = { .code = -1 };
	struct veil_info in;
	struct json_object *o;
	enum api_vm_state st = q->ctx->ops->state(q->ctx->opaque);
	int ret = q->ctx->ops->info(q->ctx->opaque, &in, &ex, &ac);

	if (ret) {
		reply_op(q->r, ret, NULL, "vm.info");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(api_state_name(st)));
	if (ac)
		json_object_object_add(o, "config", api_config_to_json(&ac->cfg));
	json_object_object_add(o, "model", json_object_new_string(in.model ? in.model : "unknown"));
	json_object_object_add(o, "keeps_contents", json_object_new_boolean(in.keeps_contents));
	json_object_object_add(o, "revokes_host_mapping",
			       json_object_new_boolean(in.revokes_host_mapping));
	add_u64(o, "cpus", in.nr_cpus);
	add_u64(o, "memory_actual_size", in.mem_size);
	json_object_object_add(o, "memory_ranges", ranges_json(&in));
	if (st == API_VM_STOPPED && ex.code >= 0) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "code", json_object_new_int(ex.code));
		json_object_object_add(e, "reason", json_object_new_string(ex.reason));
		json_object_object_add(o, "exit", e);
	}
	reply_json(q->r, 200, o);
}

static void device_counter(void *opaque, const char *device, const char *name, uint64_t value)
{
	struct json_object *devs = opaque, *d;

	if (!device || !name)
		return;
	if (!json_object_object_get_ex(devs, device, &d)) {
		d = json_object_new_object();
		json_object_object_add(devs, device, d);
	}
	add_u64(d, name, value);
}

static void h_counters(struct req *q)
{
	struct veil_counters c;
	struct json_object *o, *devs;
	int ret = q->ctx->ops->counters(q->ctx->opaque, &c);

	if (ret) {
		reply_op(q->r, ret, NULL, "vm.counters");
		return;
	}
	o = json_object_new_object();
#define C(f) add_u64(o, #f, c.f)
	C(exits); C(io_exits); C(mmio_exits); C(guest_conversions); C(guest_conversion_fails);
	C(host_conversions); C(conversion_errors); C(punches); C(retries); C(eagain);
	C(refused_private); C(unhandled_io); C(guest_faults); C(console_dropped);
	/* The confidential mode's (0 outside it). */
	C(guest_shares); C(guest_unshares); C(share_p50_ns); C(share_p99_ns); C(unshare_p50_ns);
	C(unshare_p99_ns); C(refused_device); C(ram_bytes); C(private_bytes); C(private_at_launch);
#undef C
	devs = json_object_new_object();
	json_object_object_add(o, "devices", devs);
	if (q->ctx->ops->device_counters)
		q->ctx->ops->device_counters(q->ctx->opaque, device_counter, devs);
	reply_json(q->r, 200, o);
}

static void h_pause(struct req *q)
{
	reply_op(q->r, q->ctx->ops->pause(q->ctx->opaque), NULL, "vm.pause");
}

static void h_resume(struct req *q)
{
	reply_op(q->r, q->ctx->ops->resume(q->ctx->opaque), NULL, "vm.resume");
}

static void h_shutdown(struct req *q)
{
	reply_op(q->r, q->ctx->ops->shutdown(q->ctx->opaque), NULL, "vm.shutdown");
}

static void h_vmm_shutdown(struct req *q)
{
	reply_op(q->r, q->ctx->ops->vmm_shutdown(q->ctx->opaque), NULL, "vmm.shutdown");
}

/* The body's fields, each named once in names (NULL-terminated); all of them required. */
static int take_fields(struct req *q, const char *what, const char *const *names,
		       struct json_object **vals)
{
	unsigned int n = 0;

	while (names[n])
		vals[n++] = NULL;
	json_object_object_foreach(q->body, key, v) {
		unsigned int i;

		for (i = 0; i < n && strcmp(key, names[i]); i++)
			;
		if (i == n) {
			reply_error(q->r, 400, "%s: unknown field \"%s\"", what, key);
			return -EINVAL;
		}
		vals[i] = v;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!vals[i]) {
			reply_error(q->r, 400, "%s: \"%s\" is missing", what, names[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int take_u64(struct req *q, const char *what, struct json_object *v, const char *name,
		    uint64_t *out)
{
	char why[WHY_LEN];

	if (api_json_u64(v, name, UINT64_MAX, out, why, sizeof(why))) {
		reply_error(q->r, 400, "%s: %s", what, why);
		return -EINVAL;
	}
	return 0;
}

/* [gpa, gpa + size): 4 KiB-aligned, not empty, inside one RAM range of the VM. */
static int check_range(struct req *q, const char *what, uint64_t gpa, uint64_t size)
{
	const struct api_config *ac = NULL;
	struct veil_exit ex;
	struct veil_info in;
	int ret;

	if (gpa % PAGE || size % PAGE || !size) {
		reply_error(q->r, 400, "%s: gpa and size must be multiples of 4096, size not 0", what);
		return -EINVAL;
	}
	ret = q->ctx->ops->info(q->ctx->opaque, &in, &ex, &ac);
	if (ret) {
		reply_op(q->r, ret, NULL, what);
		return ret;
	}
	for (unsigned int i = 0; i < in.nr_ranges && i < VEIL_MAX_RANGES; i++) {
		const struct veil_range *rg = &in.ranges[i];

		if (gpa >= rg->gpa && gpa - rg->gpa < rg->size && size <= rg->size - (gpa - rg->gpa))
			return 0;
	}
	reply_error(q->r, 400, "%s: [0x%llx, +0x%llx) is not inside one range of guest RAM "
		    "(see vm.info's memory_ranges)", what, (unsigned long long)gpa,
		    (unsigned long long)size);
	return -ERANGE;
}

static void h_convert(struct req *q)
{
	static const char *const names[] = { "gpa", "size", "to", NULL };
	struct veil_error err = { 0 };
	struct json_object *v[3];
	uint64_t gpa, size;
	const char *to;

	if (take_fields(q, "vm.convert", names, v) || take_u64(q, "vm.convert", v[0], "gpa", &gpa) ||
	    take_u64(q, "vm.convert", v[1], "size", &size))
		return;
	to = json_object_is_type(v[2], json_type_string) ? json_object_get_string(v[2]) : "";
	if (strcmp(to, "private") && strcmp(to, "shared")) {
		reply_error(q->r, 400, "vm.convert: \"to\": \"private\" or \"shared\"");
		return;
	}
	if (check_range(q, "vm.convert", gpa, size))
		return;
	reply_op(q->r, q->ctx->ops->convert(q->ctx->opaque, gpa, size, !strcmp(to, "private"), &err),
		 &err, "vm.convert");
}

static void h_discard(struct req *q)
{
	static const char *const names[] = { "gpa", "size", NULL };
	struct veil_error err = { 0 };
	struct json_object *v[2];
	uint64_t gpa, size;

	if (take_fields(q, "vm.discard", names, v) || take_u64(q, "vm.discard", v[0], "gpa", &gpa) ||
	    take_u64(q, "vm.discard", v[1], "size", &size) || check_range(q, "vm.discard", gpa, size))
		return;
	reply_op(q->r, q->ctx->ops->discard(q->ctx->opaque, gpa, size, &err), &err, "vm.discard");
}

static void h_resize(struct req *q)
{
	static const char *const names[] = { "desired_balloon", NULL };
	const struct api_config *ac = NULL;
	struct json_object *v[1];
	struct veil_exit ex;
	struct veil_info in;
	uint64_t bytes;
	int ret;

	if (take_fields(q, "vm.resize", names, v) ||
	    take_u64(q, "vm.resize", v[0], "desired_balloon", &bytes))
		return;
	ret = q->ctx->ops->info(q->ctx->opaque, &in, &ex, &ac);
	if (ret) {
		reply_op(q->r, ret, NULL, "vm.resize");
		return;
	}
	if (bytes % PAGE || bytes > in.mem_size) {
		reply_error(q->r, 400, "vm.resize: \"desired_balloon\": a multiple of 4096 bytes, at "
			    "most the VM's %llu bytes of RAM", (unsigned long long)in.mem_size);
		return;
	}
	ret = q->ctx->ops->set_balloon(q->ctx->opaque, bytes);
	if (ret == -ENODEV)
		reply_error(q->r, 400, "vm.resize: the VM has no balloon (vm.create with "
			    "\"balloon\": true)");
	else
		reply_op(q->r, ret, NULL, "vm.resize");
}

struct extents {
	struct json_object *a;
	unsigned int n;
	bool truncated;
};

static void extent(void *opaque, uint64_t gpa, uint64_t size, bool is_private)
{
	struct extents *e = opaque;
	struct json_object *o;

	if (e->n >= API_MAX_EXTENTS) {
		e->truncated = true;
		return;
	}
	o = json_object_new_object();
	add_u64(o, "gpa", gpa);
	add_u64(o, "size", size);
	json_object_object_add(o, "private", json_object_new_boolean(is_private));
	json_object_array_add(e->a, o);
	e->n++;
}

static void h_memory(struct req *q)
{
	struct extents e = { .a = json_object_new_array() };
	struct veil_memory m;
	struct json_object *o;
	int ret = q->ctx->ops->memory(q->ctx->opaque, &m, extent, &e);

	if (ret) {
		json_object_put(e.a);
		reply_op(q->r, ret, NULL, "vm.memory");
		return;
	}
	o = json_object_new_object();
	add_u64(o, "private_bytes", m.private_bytes);
	add_u64(o, "ram_bytes", m.ram_bytes);
	json_object_object_add(o, "private_fraction", json_object_new_double(
		m.ram_bytes ? (double)m.private_bytes / (double)m.ram_bytes : 0.0));
	add_u64(o, "pins", m.pins);
	add_u64(o, "pinned_bytes", m.pinned_bytes);
	add_u64(o, "converting_bytes", m.converting_bytes);
	json_object_object_add(o, "extents", e.a);
	json_object_object_add(o, "extents_truncated", json_object_new_boolean(e.truncated));
	reply_json(q->r, 200, o);
}

static const struct endpoint endpoints[] = {
	{ "/api/v1/vmm.ping", "GET", false, S_ANY, h_ping },
	{ "/api/v1/vmm.shutdown", "PUT", false, S_ANY, h_vmm_shutdown },
	{ "/api/v1/vm.create", "PUT", true, S(NONE), h_create },
	{ "/api/v1/vm.boot", "PUT", false, S(CREATED), h_boot },
	{ "/api/v1/vm.info", "GET", false, S_VM, h_info },
	{ "/api/v1/vm.counters", "GET", false, S_VM, h_counters },
	{ "/api/v1/vm.pause", "PUT", false, S(RUNNING), h_pause },
	{ "/api/v1/vm.resume", "PUT", false, S(PAUSED), h_resume },
	{ "/api/v1/vm.shutdown", "PUT", false, S_LIVE, h_shutdown },
	{ "/api/v1/vm.resize", "PUT", true, S_LIVE, h_resize },
	{ "/api/v1/vm.convert", "PUT", true, S_LIVE, h_convert },
	{ "/api/v1/vm.discard", "PUT", true, S_LIVE, h_discard },
	{ "/api/v1/vm.memory", "GET", false, S_VM, h_memory },
};

#define NR_ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

static const struct endpoint *find(const char *path)
{
	for (size_t i = 0; i < NR_ENDPOINTS; i++)
		if (!strcmp(endpoints[i].path, path))
			return &endpoints[i];
	return NULL;
}

static bool blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", body[i]) || !body[i])
			return false;
	return true;
}

void api_handle(struct api_ctx *ctx, const char *method, const char *path, const char *body,
		size_t len, struct api_reply *r)
{
	const struct endpoint *e = path ? find(path) : NULL;
	struct req q = { .ctx = ctx, .r = r };
	enum api_vm_state st;
	char why[WHY_LEN] = "";
	int ret;

	*r = (struct api_reply){ 0 };
	if (!e) {
		reply_error(r, 404, "no such endpoint '%.200s'", path ? path : "");
		return;
	}
	if (!method || strcmp(method, e->method)) {
		reply_error(r, 405, "%s takes %s, not %.20s", e->path, e->method, method ? method : "");
		return;
	}
	if (!e->body && body && !blank(body, len)) {
		reply_error(r, 400, "%s takes no body", e->path);
		return;
	}
	st = ctx->ops->state(ctx->opaque);
	if (!(e->states & (1u << st))) {
		reply_error(r, 409, "%s: not while the VM is %s", e->path + 8, st == API_VM_NONE ?
			    "not created (PUT vm.create first)" : api_state_name(st));
		return;
	}
	ret = e->body ? api_json_parse(body ? body : "", body ? len : 0, &q.body, why, sizeof(why)) : 0;
	if (ret) {
		reply_error(r, ret == -ENOMEM ? 500 : 400, "%s: %s", e->path + 8, why);
		return;
	}
	e->fn(&q);
	json_object_put(q.body);
}

void api_reply_free(struct api_reply *r)
{
	free(r->body);
	r->body = NULL;
}
