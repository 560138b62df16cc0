/* `veil caps`: what this host's KVM offers for guest_memfd, and the conversion model each VM type gets. */
#ifndef VEIL_CAPS_H
#define VEIL_CAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "caps_cache.h"
#include "compiler.h"
#include "gmem.h"

enum caps_model {
	CAPS_MODEL_NONE,
	CAPS_MODEL_HOST_ENFORCED, /* DESIGN.md §2c */
	CAPS_MODEL_OUT_OF_PLACE,  /* §2a */
	CAPS_MODEL_IN_PLACE,      /* §2b */
};

struct caps_vm_type {
	const char *name;
	unsigned long type;
	bool supported;
	bool probed;           /* a VM of this type was created */
	uint64_t gmem_flags;   /* KVM_CAP_GUEST_MEMFD_FLAGS on such a VM */
	int64_t mem_attrs;     /* KVM_CAP_MEMORY_ATTRIBUTES on such a VM */
	int inplace;           /* gmem_probe_inplace(): 1, 0 or -errno; 0 when not probed */
	enum caps_model model;
	char why[200];
};

/* Where a behaviour probe's result came from. */
enum caps_source {
	CAPS_FROM_NONE,  /* not needed, or not offered: nothing to probe */
	CAPS_FROM_CACHE, /* the probe cache, for this kernel boot */
	CAPS_FROM_PROBE, /* a probe VM, just now */
};

/* How behaviour probes use the cache. */
enum caps_cache_mode {
	CAPS_CACHE_USE,     /* a result cached for this boot, else probe and store */
	CAPS_CACHE_REFRESH, /* probe, and store what was found */
	CAPS_CACHE_OFF,     /* probe; neither read nor write the cache */
};

struct caps {
	int api_version;
	unsigned int max_vcpus;
	bool guest_memfd;
	bool user_memory2;
	int64_t vm_types;      /* KVM_CAP_VM_TYPES bitmap; 1 (default only) when the cap is absent */
	int64_t exit_hypercall;
	bool memory_fault_info;
	int revoke_safe;       /* 1 safe, 0 unsafe, -1 not probed */
	char revoke_detail[200];
	enum caps_source revoke_from;
	int hypercall_exit;    /* 1: MAP_GPA_RANGE reaches userspace; 0 no; -1 not probed */
	char hypercall_detail[200];
	enum caps_source hypercall_from;
	struct caps_vm_type types[2];
};

/* What one VM gets: the model and how it is enforced, decided once when the VM is built. */
struct caps_choice {
	enum caps_model model;
	enum gmem_model gmem_model;  /* the backend for model (not CAPS_MODEL_NONE) */
	bool revoke_host_mapping;    /* host-enforced, and revoking is safe on this host */
	bool destructive;            /* as asked: conversions punch, contents read as zeros */
	int revoke_safe;             /* 1, 0; -1 not needed (not a default VM) or unknown */
	enum caps_source revoke_from;
	int hypercall_exit;          /* 1 MAP_GPA_RANGE reaches veil, 0 no, -1 not known yet */
	enum caps_source hypercall_from;
	char why[200];
};

/*
 * Everything vm_create() needs to know about KVM for one VM (vm_fd, of
 * vm_type), learnt on that VM or from the probe cache: a probe VM runs only
 * when this boot's result is not cached.  hypercall_exit is filled from the
 * cache only (caps_hypercall_exit() probes).  0, or -EOPNOTSUPP (logged) when
 * no model fits.
 */
int caps_for_vm(int kvm_fd, int vm_fd, unsigned long vm_type, bool destructive,
		struct caps_choice *out) __must_check;
/* caps_probe_revoke() and caps_probe_hypercall_exit(), through the cache as mode says. */
int caps_revoke_safe(int kvm_fd, enum caps_cache_mode mode, char *detail, size_t len,
		     enum caps_source *from);
int caps_hypercall_exit_cached(int kvm_fd, enum caps_cache_mode mode, char *detail, size_t len,
			       enum caps_source *from);
/* 1 if a guest's KVM_HC_MAP_GPA_RANGE reaches veil, 0 if not, -1 unknown: cached, else probed. */
int caps_hypercall_exit(int kvm_fd, char *detail, size_t len);

int caps_probe(struct caps *c, enum caps_cache_mode mode) __must_check;
const char *caps_source_name(enum caps_source s);
/* Probes one VM's guest_memfd flags and attributes into t (t->type must be set). */
void caps_probe_vm(int vm_fd, struct caps_vm_type *t);
/* 1 if a guest survives veil revoking its mapping of guest_memfd, 0 if not, -1 unknown. */
int caps_probe_revoke(int kvm_fd, char *detail, size_t len);
/* 1 if a guest's KVM_HC_MAP_GPA_RANGE reaches userspace, 0 if not, -1 unknown. */
int caps_probe_hypercall_exit(int kvm_fd, char *detail, size_t len);
/* Decides the model for one VM type from what was probed: pure, unit-tested. */
void caps_choose_model(struct caps_vm_type *t, int revoke_safe);
const char *caps_model_name(enum caps_model m);
/* The gmem model that implements m (m must not be CAPS_MODEL_NONE). */
enum gmem_model caps_gmem_model(enum caps_model m);
void caps_print(const struct caps *c, FILE *out);
/* Its "schema": a key may be added within a schema; none is removed or changes meaning. */
#define CAPS_JSON_SCHEMA 1
void caps_print_json(const struct caps *c, FILE *out);

#endif
