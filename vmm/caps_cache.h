/* The probe cache: behaviour probes' results, kept per host kernel boot in one small file. */
#ifndef VEIL_CAPS_CACHE_H
#define VEIL_CAPS_CACHE_H

#include <stddef.h>

#include "compiler.h"

/* The behaviour probes whose results are kept (each needs a guest to learn). */
enum caps_cache_id {
	CAPS_CACHE_REVOKE,    /* caps_probe_revoke() */
	CAPS_CACHE_HYPERCALL, /* caps_probe_hypercall_exit() */
	CAPS_CACHE_NR,
};

#define CAPS_CACHE_DETAIL 200
#define CAPS_CACHE_KEY 256
#define CAPS_CACHE_MAX 2048 /* a longer file is not ours */

struct caps_cache {
	struct {
		int value; /* 1 or 0; -1 not known */
		char detail[CAPS_CACHE_DETAIL];
	} e[CAPS_CACHE_NR];
};

/* Every entry unknown. */
void caps_cache_init(struct caps_cache *c);
/* The host kernel boot: "RELEASE BOOT_ID", from uname and /proc/sys/kernel/random/boot_id. */
int caps_cache_key(char *key, size_t len) __must_check;
/* $VEIL_CACHE_DIR, else $XDG_CACHE_HOME/veil, else $HOME/.cache/veil; each must be absolute. */
int caps_cache_dir(char *dir, size_t len) __must_check;
/* Parses a cache file's text strictly: 0, or -EINVAL for anything not written by store, -ESTALE for another key. */
int caps_cache_parse(const char *buf, size_t len, const char *key, struct caps_cache *c)
	__must_check;
/* The file's text for key and c; its length, or -ENOSPC. */
int caps_cache_format(char *buf, size_t len, const char *key, const struct caps_cache *c)
	__must_check;
/* dir/caps, read and parsed; any failure is a miss (a negative errno). */
int caps_cache_load(const char *dir, const char *key, struct caps_cache *c) __must_check;
/* dir/caps written atomically (a temporary file renamed over it), mode 0600. */
int caps_cache_store(const char *dir, const char *key, const struct caps_cache *c) __must_check;

#endif
