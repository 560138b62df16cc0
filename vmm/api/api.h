/*
 * The control API's request layer: an HTTP method, path and JSON body in, a
 * status and JSON body out, over a table of operations on one VM.  Pure: it
 * does no I/O and holds no VM, so tests and the fuzzer drive it with fake
 * operations, and the server (server.c) with ones that call libveil.
 */
#ifndef VEIL_API_H
#define VEIL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "veil.h"

#define API_MAX_EXTENTS 1024 /* vm.memory lists at most this many attribute extents */

enum api_vm_state { API_VM_NONE, API_VM_CREATED, API_VM_RUNNING, API_VM_PAUSED, API_VM_STOPPED };

/* A struct veil_config from JSON, with the strings it points at. */
struct api_config {
	struct veil_config cfg;
	char *firmware, *kernel, *initrd, *cmdline;
	char *disk_paths[VEIL_MAX_DISKS];
};

void api_config_free(struct api_config *ac);

struct json_object;
int api_config_from_object(struct json_object *root, const struct veil_config *defaults,
			   struct api_config *ac, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* body as exactly one JSON object (whitespace around it allowed); -EINVAL with why set. */
int api_json_parse(const char *body, size_t len, struct json_object **out, char *why,
		   size_t why_len) __attribute__((warn_unused_result));
/* A JSON integer from 0 to max. */
int api_json_u64(struct json_object *v, const char *name, uint64_t max, uint64_t *out, char *why,
		 size_t len) __attribute__((warn_unused_result));
/* The configuration as vm.create takes it (vm.info's "config"); NULL without memory. */
struct json_object *api_config_to_json(const struct veil_config *cfg);

/*
 * Fills ac from a vm.create body over defaults; every field is optional,
 * unknown fields and wrong types are refused.  0, or -EINVAL with why set.
 */
int api_config_from_json(const char *body, size_t len, const struct veil_config *defaults,
			 struct api_config *ac, char *why, size_t why_len) __attribute__((warn_unused_result));

/* Each returns 0 or -errno; err, where passed, says why. */
struct api_ops {
	enum api_vm_state (*state)(void *o);
	/* On success the VM owns *ac (the caller zeroes its copy); on failure ac stays the caller's. */
	int (*create)(void *o, struct api_config *ac, struct veil_error *err);
	int (*boot)(void *o, struct veil_error *err);
	/* info of the VM, and *exit once it stopped; config is the one it was created with. */
	int (*info)(void *o, struct veil_info *info, struct veil_exit *exit,
		    const struct api_config **config);
	int (*counters)(void *o, struct veil_counters *c);
	int (*device_counters)(void *o, veil_counter_fn fn, void *opaque);
	int (*pause)(void *o);
	int (*resume)(void *o);
	int (*shutdown)(void *o);     /* the VM stops (code 0) */
	int (*vmm_shutdown)(void *o); /* veil exits once the reply is out */
	int (*set_balloon)(void *o, uint64_t bytes);
	int (*convert)(void *o, uint64_t gpa, uint64_t size, bool to_private, struct veil_error *err);
	int (*discard)(void *o, uint64_t gpa, uint64_t size, struct veil_error *err);
	int (*memory)(void *o, struct veil_memory *m, veil_extent_fn fn, void *opaque);
};

struct api_ctx {
	const struct api_ops *ops;
	void *opaque;
	struct veil_config defaults; /* what vm.create starts from */
	const char *version;         /* vmm.ping's */
	int pid;
};

struct api_reply {
	int status;
	char *body; /* malloc'd JSON, or NULL (204) */
};

/* Serves one request: never fails, a bad request gets a 4xx and a JSON {"error": ...}. */
void api_handle(struct api_ctx *ctx, const char *method, const char *path, const char *body,
		size_t len, struct api_reply *r);

void api_reply_free(struct api_reply *r);

const char *api_state_name(enum api_vm_state s);

#endif
