// SPDX-License-Identifier: GPL-2.0-only
/* `veil run --json`: the end-of-run summary as one line of JSON (run_json.h). */
#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "veil.h"
#include "convstress.h"
#include "run_json.h"

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void add_str(struct json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, s ? json_object_new_string(s) : NULL);
}

/* The kind of stop, from the code: what a program branches on; the reason is for people. */
static const char *exit_kind(int code)
{
	switch (code) {
	case VEIL_EXIT_POWEROFF: return "poweroff";
	case VEIL_EXIT_FAILURE: return "failure";
	case VEIL_EXIT_USAGE: return "usage";
	case VEIL_EXIT_RESET: return "reset";
	default: return code > 128 ? "signal" : "failure";
	}
}

static const char *const exit_kinds[VEIL_EXIT_KINDS] = {
	[VEIL_EXIT_KIND_IO] = "io",
	[VEIL_EXIT_KIND_MMIO] = "mmio",
	[VEIL_EXIT_KIND_HYPERCALL] = "hypercall",
	[VEIL_EXIT_KIND_MEMORY_FAULT] = "memory_fault",
	[VEIL_EXIT_KIND_KICK] = "kick",
	[VEIL_EXIT_KIND_HLT] = "hlt",
	[VEIL_EXIT_KIND_OTHER] = "other",
};

static struct json_object *exit_json(const struct veil_exit *ex)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "code", json_object_new_int(ex->code));
	add_str(o, "kind", exit_kind(ex->code));
	add_str(o, "reason", ex->reason);
	return o;
}

static struct json_object *vm_json(const struct veil_info *in, const struct run_json_facts *f)
{
	struct json_object *o = json_object_new_object();

	add_u64(o, "cpus", in->nr_cpus);
	add_u64(o, "mem_bytes", f->mem_size);
	add_str(o, "model", in->model ? in->model : "unknown");
	json_object_object_add(o, "keeps_contents", json_object_new_boolean(in->keeps_contents));
	json_object_object_add(o, "revokes_host_mapping",
			       json_object_new_boolean(in->revokes_host_mapping));
	add_str(o, "guest_kind", f->kernel ? "kernel" : "firmware");
	add_str(o, "guest", f->kernel ? f->kernel : f->firmware);
	return o;
}

static struct json_object *counters_json(const struct veil_counters *c)
{
	struct json_object *o = json_object_new_object();

	/* The names and order of the control API's vm.counters (docs/api.md). */
#define C(f) add_u64(o, #f, c->f)
	C(exits); C(io_exits); C(mmio_exits); C(guest_conversions); C(guest_conversion_fails);
	C(host_conversions); C(conversion_errors); C(punches); C(retries); C(eagain);
	C(refused_private); C(unhandled_io); C(guest_faults); C(console_dropped);
	C(guest_shares); C(guest_unshares); C(share_p50_ns); C(share_p99_ns); C(unshare_p50_ns);
	C(unshare_p99_ns); C(refused_device); C(ram_bytes); C(private_bytes); C(private_at_launch);
#undef C
	return o;
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

static struct json_object *profile_json(const struct veil_exit_profile *p)
{
	struct json_object *o = json_object_new_object(), *count = json_object_new_object();

	json_object_object_add(o, "timed", json_object_new_boolean(p->timed));
	for (unsigned int k = 0; k < VEIL_EXIT_KINDS; k++)
		add_u64(count, exit_kinds[k], p->count[k]);
	json_object_object_add(o, "count", count);
	add_u64(o, "coalesced_writes", p->coalesced_writes);
	if (p->timed) {
		struct json_object *ns = json_object_new_object();

		add_u64(o, "run_ns", p->run_ns);
		add_u64(o, "handle_ns", p->handle_ns);
		add_u64(o, "clock_read_ns", p->clock_read_ns);
		for (unsigned int k = 0; k < VEIL_EXIT_KINDS; k++)
			add_u64(ns, exit_kinds[k], p->ns[k]);
		json_object_object_add(o, "handle_ns_by_kind", ns);
	}
	return o;
}

static struct json_object *convstress_json(const struct convstress *cs)
{
	struct json_object *o = json_object_new_object();

	add_u64(o, "roundtrips", cs->roundtrips);
	add_u64(o, "over_io", cs->over_io);
	add_u64(o, "waited", cs->waited);
	add_u64(o, "eagain", cs->eagain);
	add_u64(o, "busy", cs->busy);
	add_u64(o, "failures", cs->failures);
	add_str(o, "first_failure", cs->failures ? cs->first_failure : NULL);
	return o;
}

void run_json_prepare(void)
{
	struct json_object *o = json_object_new_object();

	/* Hashing one key makes json-c read its seed now, once for the process. */
	if (o)
		add_u64(o, "schema", RUN_JSON_SCHEMA);
	json_object_put(o);
}

/* Nanoseconds from veil's start to t; null if t never came. */
static struct json_object *since(uint64_t t, uint64_t t0)
{
	return t && t0 && t >= t0 ? json_object_new_uint64(t - t0) : NULL;
}

int run_json_print(FILE *out, struct veil_vm *vm, const struct run_json_facts *f)
{
	struct veil_exit_profile prof;
	struct veil_counters c;
	struct veil_info in;
	struct json_object *o, *devs;
	const char *digest, *s;
	int ret = 0;

	memset(&in, 0, sizeof(in));
	memset(&c, 0, sizeof(c));
	memset(&prof, 0, sizeof(prof));
	veil_vm_info(vm, &in);
	veil_vm_counters(vm, &c);
	veil_vm_exit_profile(vm, &prof);
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	add_u64(o, "schema", RUN_JSON_SCHEMA);
	add_str(o, "veil", veil_version());
	json_object_object_add(o, "status", json_object_new_int(f->code));
	json_object_object_add(o, "exit", exit_json(f->ex));
	json_object_object_add(o, "vm", vm_json(&in, f));
	json_object_object_add(o, "counters", counters_json(&c));
	devs = json_object_new_object();
	json_object_object_add(o, "devices", devs);
	veil_vm_device_counters(vm, device_counter, devs);
	json_object_object_add(o, "exits", profile_json(&prof));
	if (f->verdict) {
		struct json_object *h = json_object_new_object();

		json_object_object_add(h, "passed", json_object_new_boolean(!f->verdict_failed));
		add_str(h, "text", f->verdict);
		json_object_object_add(o, "host_check", h);
	} else {
		json_object_object_add(o, "host_check", NULL);
	}
	json_object_object_add(o, "convert_stress", f->cs ? convstress_json(f->cs) : NULL);
	digest = veil_vm_launch_digest(vm);
	if (digest) {
		char buf[80];

		snprintf(buf, sizeof(buf), "sha256:%s", digest);
		add_str(o, "launch_digest", buf);
	} else {
		json_object_object_add(o, "launch_digest", NULL);
	}
	json_object_object_add(o, "first_run_ns", since(in.first_run_ns, f->t0_ns));
	json_object_object_add(o, "first_output_ns", since(in.first_output_ns, f->t0_ns));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		ret = -ENOMEM;
	/* The guest's console shares stdout: start a line of our own. */
	else if (fprintf(out, "%s%s\n", in.first_output_ns ? "\n" : "", s) < 0 || fflush(out))
		ret = -errno;
	json_object_put(o);
	return ret;
}
