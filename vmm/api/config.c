/* vm.create's JSON body to a struct veil_config and back: the CLI's options, by name. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api.h"

#define PAGE 4096ULL
#define MIN_MEM (2ULL << 20)
#define MAX_CPUS 65536

__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A JSON integer from 0 to max; json-c keeps integers as int64 or uint64. */
int api_json_u64(struct json_object *v, const char *name, uint64_t max, uint64_t *out, char *why,
		 size_t len)
{
	if (!json_object_is_type(v, json_type_int))
		return bad(why, len, "\"%s\": not an integer", name);
	errno = 0;
	if (json_object_get_int64(v) < 0)
		return bad(why, len, "\"%s\": must not be negative", name);
	*out = json_object_get_uint64(v);
	if (errno == ERANGE || *out > max)
		return bad(why, len, "\"%s\": %llu is too large (at most %llu)", name,
			   (unsigned long long)*out, (unsigned long long)max);
	return 0;
}

static int get_bool(struct json_object *v, const char *name, bool *out, char *why, size_t len)
{
	if (!json_object_is_type(v, json_type_boolean))
		return bad(why, len, "\"%s\": not true or false", name);
	*out = json_object_get_boolean(v);
	return 0;
}

static int get_str(struct json_object *v, const char *name, char **out, char *why, size_t len)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return bad(why, len, "\"%s\": not a string", name);
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return bad(why, len, "\"%s\": contains a NUL", name);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* One of two words: *out = (v == second). */
static int get_choice(struct json_object *v, const char *name, const char *first,
		      const char *second, bool *out, char *why, size_t len)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return bad(why, len, "\"%s\": not a string", name);
	s = json_object_get_string(v);
	if (strcmp(s, first) && strcmp(s, second))
		return bad(why, len, "\"%s\": \"%s\" is not \"%s\" or \"%s\"", name, s, first, second);
	*out = !strcmp(s, second);
	return 0;
}

static int parse_disk(struct json_object *d, unsigned int i, struct api_config *ac, char *why,
		      size_t len)
{
	struct veil_disk *disk = &ac->cfg.disks[i];
	int ret = 0;

	if (!json_object_is_type(d, json_type_object))
		return bad(why, len, "\"disks\"[%u]: not an object", i);
	*disk = (struct veil_disk){ .fd = -1 };
	json_object_object_foreach(d, key, v) {
		if (!strcmp(key, "path"))
			ret = get_str(v, "path", &ac->disk_paths[i], why, len);
		else if (!strcmp(key, "read_only"))
			ret = get_bool(v, "read_only", &disk->read_only, why, len);
		else if (!strcmp(key, "direct"))
			ret = get_bool(v, "direct", &disk->direct, why, len);
		else
			ret = bad(why, len, "\"disks\"[%u]: unknown field \"%s\"", i, key);
		if (ret)
			return ret;
	}
	if (!ac->disk_paths[i])
		return bad(why, len, "\"disks\"[%u]: \"path\" is missing", i);
	disk->path = ac->disk_paths[i];
	return 0;
}

static int parse_disks(struct json_object *v, struct api_config *ac, char *why, size_t len)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return bad(why, len, "\"disks\": not an array");
	n = json_object_array_length(v);
	if (n > VEIL_MAX_DISKS)
		return bad(why, len, "\"disks\": at most %u", VEIL_MAX_DISKS);
	for (unsigned int i = 0; i < n; i++) {
		int ret = parse_disk(json_object_array_get_idx(v, i), i, ac, why, len);

		if (ret)
			return ret;
		ac->cfg.nr_disks = i + 1;
	}
	return 0;
}

/* One top-level field onto ac. */
static int parse_field(const char *key, struct json_object *v, struct api_config *ac, char *why,
		       size_t len)
{
	struct veil_config *c = &ac->cfg;
	uint64_t u = 0;
	bool b = false;
	int ret;

	if (!strcmp(key, "cpus")) {
		ret = api_json_u64(v, key, MAX_CPUS, &u, why, len);
		c->nr_cpus = (unsigned int)u;
		return ret;
	}
	if (!strcmp(key, "mem"))
		return api_json_u64(v, key, UINT64_MAX, &c->mem_size, why, len);
	if (!strcmp(key, "vm_type")) {
		ret = get_choice(v, key, "default", "sw-protected", &b, why, len);
		c->vm_type = b ? VEIL_VM_SW_PROTECTED : VEIL_VM_DEFAULT;
		return ret;
	}
	if (!strcmp(key, "destructive"))
		return get_bool(v, key, &c->destructive, why, len);
	if (!strcmp(key, "firmware"))
		return get_str(v, key, &ac->firmware, why, len);
	if (!strcmp(key, "kernel"))
		return get_str(v, key, &ac->kernel, why, len);
	if (!strcmp(key, "initrd"))
		return get_str(v, key, &ac->initrd, why, len);
	if (!strcmp(key, "cmdline"))
		return get_str(v, key, &ac->cmdline, why, len);
	if (!strcmp(key, "check_stride")) {
		ret = api_json_u64(v, key, 512, &u, why, len);
		c->boot.check_stride = (unsigned int)u;
		return ret;
	}
	if (!strcmp(key, "seed"))
		return api_json_u64(v, key, UINT64_MAX, &c->boot.seed, why, len);
	if (!strcmp(key, "transport")) {
		ret = get_choice(v, key, "mmio", "pci", &b, why, len);
		c->transport = b ? VEIL_TRANSPORT_PCI : VEIL_TRANSPORT_MMIO;
		return ret;
	}
	if (!strcmp(key, "disks"))
		return parse_disks(v, ac, why, len);
	if (!strcmp(key, "balloon"))
		return get_bool(v, key, &c->balloon, why, len);
	if (!strcmp(key, "rng"))
		return get_bool(v, key, &c->rng, why, len);
	if (!strcmp(key, "console"))
		return get_choice(v, key, "serial", "virtio", &c->virtio_console, why, len);
	if (!strcmp(key, "seccomp"))
		return get_bool(v, key, &c->seccomp, why, len);
	return bad(why, len, "unknown field \"%s\"", key);
}

/* The CLI's rules between options, so both refuse the same configurations. */
static int check(struct api_config *ac, char *why, size_t len)
{
	struct veil_config *c = &ac->cfg;

	if (c->nr_cpus == 0)
		return bad(why, len, "\"cpus\": a VM needs at least 1 vCPU");
	if (c->mem_size % PAGE || c->mem_size < MIN_MEM)
		return bad(why, len, "\"mem\": a multiple of 4096 bytes, at least 2 MiB");
	if (ac->kernel && ac->firmware)
		return bad(why, len, "\"kernel\" and \"firmware\" exclude each other");
	if (!ac->kernel && (ac->initrd || ac->cmdline))
		return bad(why, len, "\"%s\" needs \"kernel\"", ac->initrd ? "initrd" : "cmdline");
	if (c->boot.check_stride &&
	    (!ac->firmware || strcmp(ac->firmware, "conversions")))
		return bad(why, len, "\"check_stride\" applies to firmware \"conversions\" only");
	if (c->destructive && c->vm_type != VEIL_VM_DEFAULT)
		return bad(why, len, "\"destructive\" applies to default VMs only");
	c->boot.firmware = ac->firmware ? ac->firmware : (ac->kernel ? NULL : "selftest");
	c->boot.kernel = ac->kernel;
	c->boot.initrd = ac->initrd;
	c->boot.cmdline = ac->cmdline;
	return 0;
}

void api_config_free(struct api_config *ac)
{
	free(ac->firmware);
	free(ac->kernel);
	free(ac->initrd);
	free(ac->cmdline);
	for (unsigned int i = 0; i < VEIL_MAX_DISKS; i++)
		free(ac->disk_paths[i]);
	memset(ac, 0, sizeof(*ac));
}

int api_json_parse(const char *body, size_t len, struct json_object **out, char *why,
		   size_t why_len)
{
	struct json_tokener *tok;
	struct json_object *root;
	size_t end;

	*out = NULL;
	if (len > INT32_MAX)
		return bad(why, why_len, "body too large");
	tok = json_tokener_new();
	if (!tok) {
		bad(why, why_len, "out of memory");
		return -ENOMEM;
	}
	root = json_tokener_parse_ex(tok, body, (int)len);
	end = root ? json_tokener_get_parse_end(tok) : 0;
	while (root && end < len && strchr(" \t\r\n", body[end]) && body[end])
		end++;
	if (!root || end != len) {
		bad(why, why_len, "not one JSON value: %s", !root ?
		    json_tokener_error_desc(json_tokener_get_error(tok)) : "something follows it");
		json_tokener_free(tok);
		json_object_put(root);
		return -EINVAL;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return bad(why, why_len, "not a JSON object");
	}
	*out = root;
	return 0;
}

int api_config_from_object(struct json_object *root, const struct veil_config *defaults,
			   struct api_config *ac, char *why, size_t why_len)
{
	int ret = 0;

	memset(ac, 0, sizeof(*ac));
	ac->cfg = *defaults;
	ac->cfg.nr_disks = 0;
	memset(&ac->cfg.boot, 0, sizeof(ac->cfg.boot));
	json_object_object_foreach(root, key, v) {
		ret = parse_field(key, v, ac, why, why_len);
		if (ret)
			break;
	}
	if (!ret)
		ret = check(ac, why, why_len);
	if (ret)
		api_config_free(ac);
	return ret;
}

int api_config_from_json(const char *body, size_t len, const struct veil_config *defaults,
			 struct api_config *ac, char *why, size_t why_len)
{
	struct json_object *root;
	int ret;

	memset(ac, 0, sizeof(*ac));
	ret = api_json_parse(body, len, &root, why, why_len);
	if (ret)
		return ret;
	ret = api_config_from_object(root, defaults, ac, why, why_len);
	json_object_put(root);
	return ret;
}

static void put_str(struct json_object *o, const char *key, const char *s)
{
	if (s)
		json_object_object_add(o, key, json_object_new_string(s));
}

static struct json_object *disks_to_json(const struct veil_config *c)
{
	struct json_object *a = json_object_new_array();

	for (unsigned int i = 0; a && i < c->nr_disks && i < VEIL_MAX_DISKS; i++) {
		struct json_object *d = json_object_new_object();

		put_str(d, "path", c->disks[i].path);
		json_object_object_add(d, "read_only", json_object_new_boolean(c->disks[i].read_only));
		json_object_object_add(d, "direct", json_object_new_boolean(c->disks[i].direct));
		json_object_array_add(a, d);
	}
	return a;
}

struct json_object *api_config_to_json(const struct veil_config *c)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "cpus", json_object_new_uint64(c->nr_cpus));
	json_object_object_add(o, "mem", json_object_new_uint64(c->mem_size));
	put_str(o, "vm_type", c->vm_type == VEIL_VM_SW_PROTECTED ? "sw-protected" : "default");
	json_object_object_add(o, "destructive", json_object_new_boolean(c->destructive));
	put_str(o, "firmware", c->boot.firmware);
	put_str(o, "kernel", c->boot.kernel);
	put_str(o, "initrd", c->boot.initrd);
	put_str(o, "cmdline", c->boot.cmdline);
	if (c->boot.check_stride)
		json_object_object_add(o, "check_stride", json_object_new_uint64(c->boot.check_stride));
	if (c->boot.seed)
		json_object_object_add(o, "seed", json_object_new_uint64(c->boot.seed));
	put_str(o, "transport", c->transport == VEIL_TRANSPORT_PCI ? "pci" : "mmio");
	json_object_object_add(o, "disks", disks_to_json(c));
	json_object_object_add(o, "balloon", json_object_new_boolean(c->balloon));
	json_object_object_add(o, "rng", json_object_new_boolean(c->rng));
	put_str(o, "console", c->virtio_console ? "virtio" : "serial");
	json_object_object_add(o, "seccomp", json_object_new_boolean(c->seccomp));
	return o;
}
