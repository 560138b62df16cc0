/* `veil caps`: probes KVM, including a tiny guest that learns whether host-mapping revocation is safe. */
#include <errno.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "caps.h"
#include "gmem.h"
#include "kvm.h"
#include "log.h"
#include "probe.h"

#define PROBE_MAGIC 0x5a17
#define PROBE_TIMEOUT_MS 500

enum gmem_model caps_gmem_model(enum caps_model m)
{
	switch (m) {
	case CAPS_MODEL_OUT_OF_PLACE:
		return GMEM_MODEL_OUT_OF_PLACE;
	case CAPS_MODEL_IN_PLACE:
		return GMEM_MODEL_IN_PLACE;
	default:
		return GMEM_MODEL_HOST;
	}
}

const char *caps_model_name(enum caps_model m)
{
	return m == CAPS_MODEL_NONE ? "none" : gmem_model_name(caps_gmem_model(m));
}

void caps_choose_model(struct caps_vm_type *t, int revoke_safe)
{
	if (!t->supported) {
		t->model = CAPS_MODEL_NONE;
		snprintf(t->why, sizeof(t->why), "this KVM does not offer the VM type");
	} else if (t->type == KVM_X86_DEFAULT_VM) {
		t->model = CAPS_MODEL_HOST_ENFORCED;
		snprintf(t->why, sizeof(t->why),
			 "no kernel attributes for default VMs: veil keeps the map and %s; "
			 "this guards against the VMM's own mistakes, not a malicious host kernel",
			 revoke_safe == 1 ? "revokes its mapping of private ranges"
					  : "cannot revoke its mapping here (the guest would break)");
	} else if (t->inplace == 1) {
		t->model = CAPS_MODEL_IN_PLACE;
		snprintf(t->why, sizeof(t->why),
			 "KVM_SET_MEMORY_ATTRIBUTES2 converted a scratch guest_memfd page in place");
	} else if (t->mem_attrs > 0 && (t->mem_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
		t->model = CAPS_MODEL_OUT_OF_PLACE;
		snprintf(t->why, sizeof(t->why),
			 "VM-level PRIVATE attribute; a pin held by another party is invisible to "
			 "both the kernel and veil in this model");
	} else {
		t->model = CAPS_MODEL_NONE;
		snprintf(t->why, sizeof(t->why), "neither VM-level nor per-guest_memfd attributes");
	}
}

/* What the probe guest reported reading from the revoked page. */
static int probe_report(uint16_t got, char *detail, size_t len)
{
	if (got == PROBE_MAGIC) {
		snprintf(detail, len, "a guest read of a revoked page still saw its data");
		return 1;
	}
	snprintf(detail, len, "a guest read of a revoked page saw 0x%x, not 0x%x", got, PROBE_MAGIC);
	return 0;
}

/* Runs the probe guest until its port or MMIO write; describes what happened. */
static int probe_run(struct probe_vm *pv, const struct arch_mem_probe *p, char *detail, size_t len)
{
	struct kvm_run *run = pv->run;
	uint16_t got;
	int i, ret;

	for (i = 0; i < 4; i++) {
		ret = probe_vm_run(pv, PROBE_TIMEOUT_MS);
		if (ret) {
			snprintf(detail, len, "KVM_RUN: %s", strerror(-ret));
			return 0;
		}
		if (run->exit_reason == KVM_EXIT_IO && !p->mmio && run->io.port == p->port &&
		    run->io.size == 2) {
			memcpy(&got, (uint8_t *)run + run->io.data_offset, 2);
			return probe_report(got, detail, len);
		}
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
			snprintf(detail, len, "a guest read of a revoked page gave KVM_EXIT_INTERNAL_ERROR "
				 "(suberror %u)", run->internal.suberror);
			return 0;
		}
		if (run->exit_reason == KVM_EXIT_MMIO && p->mmio && run->mmio.phys_addr == p->mmio &&
		    run->mmio.is_write && run->mmio.len == 2) {
			memcpy(&got, run->mmio.data, 2);
			return probe_report(got, detail, len);
		}
		if (run->exit_reason == KVM_EXIT_MMIO) {
			snprintf(detail, len, "a guest read of a revoked page at GPA 0x%llx became an "
				 "MMIO exit", (unsigned long long)run->mmio.phys_addr);
			return 0;
		}
		if (run->exit_reason != KVM_EXIT_INTR)
			break;
	}
	snprintf(detail, len, "the probe guest stopped with %s",
		 kvm_exit_reason_name(run->exit_reason));
	return 0;
}

/* Whether the guest survives the VMM revoking its mapping of guest_memfd: tried, not guessed. */
int caps_probe_revoke(int kvm_fd, char *detail, size_t len)
{
	struct arch_mem_probe p = { 0 };
	struct probe_vm pv;
	uint16_t magic = PROBE_MAGIC;
	int ret;

	if (probe_vm_create(kvm_fd, "probe VM (is revoking the host mapping safe)", &pv)) {
		snprintf(detail, len, "could not create a probe VM with guest_memfd");
		return -1;
	}
	if (arch_mem_probe_prepare(pv.gm, pv.vcpu_fd, &p) ||
	    gmem_write(pv.gm, p.data_gpa, &magic, sizeof(magic)) ||
	    gmem_host_access(pv.gm, ALIGN_DOWN(p.data_gpa, GMEM_PAGE_SIZE), GMEM_PAGE_SIZE, false)) {
		snprintf(detail, len, "could not set up the probe guest");
		probe_vm_destroy(&pv);
		return -1;
	}
	ret = probe_run(&pv, &p, detail, len);
	probe_vm_destroy(&pv);
	return ret;
}

/*
 * Whether the architecture's own share call (arm64: pKVM's MEM_SHARE) reaches
 * veil once KVM is asked to forward it (arch_vm_hypercalls_enable()): a probe
 * guest makes it, sharing a page of its RAM, under a watchdog.
 */
static int caps_probe_share_call(int kvm_fd, char *detail, size_t len)
{
	const uint64_t gpa = arch_mem_map()->ram_base + 3 * GMEM_PAGE_SIZE;
	const char *name = arch_share_call.name;
	struct probe_vm pv;
	int ret;

	if (gpa > UINT32_MAX || probe_vm_create(kvm_fd, "probe VM (does the share call reach veil)",
						&pv)) {
		snprintf(detail, len, "could not create a probe VM");
		return -1;
	}
	ret = arch_vm_hypercalls_enable(pv.vm_fd);
	if (ret < 0) {
		snprintf(detail, len, "asking KVM to forward %s: %s", name, strerror(-ret));
		probe_vm_destroy(&pv);
		return 0;
	}
	ret = arch_hypercall_probe_prepare(pv.gm, pv.vcpu_fd, arch_share_call.nr, (uint32_t)gpa, 0, 0);
	if (!ret)
		ret = probe_vm_run(&pv, PROBE_TIMEOUT_MS);
	if (!ret && pv.run->exit_reason == KVM_EXIT_HYPERCALL &&
	    pv.run->hypercall.nr == arch_share_call.nr) {
		snprintf(detail, len, "a guest's %s exited to userspace", name);
		ret = 1;
	} else {
		snprintf(detail, len, "a guest's %s gave %s", name,
			 ret == -ETIMEDOUT ? "no exit (KVM answered it)" :
			 ret ? strerror(-ret) : kvm_exit_reason_name(pv.run->exit_reason));
		ret = 0;
	}
	probe_vm_destroy(&pv);
	return ret;
}

/*
 * Whether a guest's KVM_HC_MAP_GPA_RANGE really reaches userspace once
 * KVM_CAP_EXIT_HYPERCALL is enabled: the capability alone is not enough on
 * every KVM, so a probe guest makes the call under a watchdog.
 */
int caps_probe_hypercall_exit(int kvm_fd, char *detail, size_t len)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL, .args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
	};
	struct probe_vm pv;
	int ret;

	if (arch_share_call.nr)
		return caps_probe_share_call(kvm_fd, detail, len);
	if (probe_vm_create(kvm_fd, "probe VM (does MAP_GPA_RANGE reach veil)", &pv)) {
		snprintf(detail, len, "could not create a probe VM");
		return -1;
	}
	ret = _kvm_ioctl(pv.vm_fd, KVM_ENABLE_CAP, &cap);
	if (ret < 0) {
		snprintf(detail, len, "KVM_ENABLE_CAP(EXIT_HYPERCALL): %s", strerror(-ret));
		probe_vm_destroy(&pv);
		return 0;
	}
	ret = arch_hypercall_probe_prepare(pv.gm, pv.vcpu_fd, KVM_HC_MAP_GPA_RANGE, 0x1000, 1,
					   KVM_MAP_GPA_RANGE_ENCRYPTED);
	if (!ret)
		ret = probe_vm_run(&pv, PROBE_TIMEOUT_MS);
	if (!ret && pv.run->exit_reason == KVM_EXIT_HYPERCALL &&
	    pv.run->hypercall.nr == KVM_HC_MAP_GPA_RANGE && pv.run->hypercall.args[0] == 0x1000) {
		snprintf(detail, len, "a guest's MAP_GPA_RANGE exited to userspace");
		ret = 1;
	} else if (ret == -ETIMEDOUT) {
		snprintf(detail, len, "a guest's MAP_GPA_RANGE never left KVM_RUN (%u ms): this KVM "
			 "re-enters the guest at the hypercall", PROBE_TIMEOUT_MS);
		ret = 0;
	} else {
		snprintf(detail, len, "a guest's MAP_GPA_RANGE gave %s",
			 ret ? strerror(-ret) : kvm_exit_reason_name(pv.run->exit_reason));
		ret = 0;
	}
	probe_vm_destroy(&pv);
	return ret;
}

const char *caps_source_name(enum caps_source s)
{
	return s == CAPS_FROM_CACHE ? "cached" : s == CAPS_FROM_PROBE ? "probed" : "not probed";
}

typedef int (*caps_probe_fn)(int kvm_fd, char *detail, size_t len);

static const caps_probe_fn caps_probes[CAPS_CACHE_NR] = {
	[CAPS_CACHE_REVOKE] = caps_probe_revoke,
	[CAPS_CACHE_HYPERCALL] = caps_probe_hypercall_exit,
};

/* What a probe child sends back: its result and the words explaining it. */
struct caps_probe_reply {
	int value;
	char detail[200];
};

/*
 * Runs a behaviour probe in a child process.  A probe runs a guest with a
 * watchdog that kicks its vCPU with a signal, which needs a handler; in a
 * child that handler is the child's business, so libveil never changes the
 * embedding process's signal dispositions, even for a moment.  A probe guest
 * that upsets KVM takes down the child, not veil.  The result comes through
 * a pipe, so a SIGCHLD handler of the embedder that reaps every child does
 * not lose it.  -1 (unknown) if the child could not run or said nothing.
 */
static int caps_probe_isolated(caps_probe_fn fn, int kvm_fd, char *detail, size_t len)
{
	struct caps_probe_reply r = { .value = -1 };
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(detail, len, "probe not run: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		r.value = fn(kvm_fd, r.detail, sizeof(r.detail));
		n = write(p[1], &r, sizeof(r));
		_exit(n == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(detail, len, "probe not run: fork: %s", strerror(errno));
		return -1;
	}
	do
		n = read(p[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(r)) {
		snprintf(detail, len, "probe not run: its process ended without an answer");
		return -1;
	}
	r.detail[sizeof(r.detail) - 1] = '\0';
	snprintf(detail, len, "%s", r.detail);
	return r.value;
}

/*
 * One behaviour probe through the cache.  A cache that cannot be read or
 * written costs a probe, never a guessed answer; an unknown result (-1) is
 * not stored, so the next run tries again.
 */
static int caps_cached(int kvm_fd, enum caps_cache_id id, enum caps_cache_mode mode,
		       char *detail, size_t len, enum caps_source *from)
{
	char dir[PATH_MAX], key[CAPS_CACHE_KEY];
	bool usable = mode != CAPS_CACHE_OFF && !caps_cache_dir(dir, sizeof(dir)) &&
		      !caps_cache_key(key, sizeof(key));
	struct caps_cache c;
	int v, ret;

	if (usable && mode == CAPS_CACHE_USE && !caps_cache_load(dir, key, &c) &&
	    c.e[id].value >= 0) {
		snprintf(detail, len, "%s", c.e[id].detail);
		*from = CAPS_FROM_CACHE;
		return c.e[id].value;
	}
	v = caps_probe_isolated(caps_probes[id], kvm_fd, detail, len);
	*from = CAPS_FROM_PROBE;
	if (!usable || v < 0)
		return v;
	if (caps_cache_load(dir, key, &c))
		caps_cache_init(&c);
	c.e[id].value = v;
	snprintf(c.e[id].detail, sizeof(c.e[id].detail), "%s", detail);
	ret = caps_cache_store(dir, key, &c);
	if (ret)
		pr_info("probe cache %s: not written: %s", dir, strerror(-ret));
	return v;
}

int caps_revoke_safe(int kvm_fd, enum caps_cache_mode mode, char *detail, size_t len,
		     enum caps_source *from)
{
	return caps_cached(kvm_fd, CAPS_CACHE_REVOKE, mode, detail, len, from);
}

int caps_hypercall_exit_cached(int kvm_fd, enum caps_cache_mode mode, char *detail, size_t len,
			       enum caps_source *from)
{
	return caps_cached(kvm_fd, CAPS_CACHE_HYPERCALL, mode, detail, len, from);
}

int caps_hypercall_exit(int kvm_fd, char *detail, size_t len)
{
	enum caps_source from;

	return caps_cached(kvm_fd, CAPS_CACHE_HYPERCALL, CAPS_CACHE_USE, detail, len, &from);
}

/* The hypercall result if this boot's cache holds it; never probes. */
static void caps_hypercall_from_cache(struct caps_choice *out)
{
	char dir[PATH_MAX], key[CAPS_CACHE_KEY];
	struct caps_cache c;

	if (!caps_cache_dir(dir, sizeof(dir)) && !caps_cache_key(key, sizeof(key)) &&
	    !caps_cache_load(dir, key, &c) && c.e[CAPS_CACHE_HYPERCALL].value >= 0) {
		out->hypercall_exit = c.e[CAPS_CACHE_HYPERCALL].value;
		out->hypercall_from = CAPS_FROM_CACHE;
	}
}

/*
 * Whether vm_type is a default VM, whatever else its number says (arm64 puts the IPA size in
 * it): anything but the architecture's software-protected type, where there is one.
 */
static bool caps_is_default_type(int kvm_fd, unsigned long vm_type)
{
	unsigned long sw;
	char why[160];

	return vm_type == KVM_X86_DEFAULT_VM ||
	       arch_vm_type(kvm_fd, true, GMEM_MIN_SIZE, &sw, why, sizeof(why)) != 0 ||
	       vm_type != sw;
}

int caps_for_vm(int kvm_fd, int vm_fd, unsigned long vm_type, bool destructive,
		struct caps_choice *out)
{
	struct caps_vm_type t = { .type = vm_type, .supported = true };
	char detail[CAPS_CACHE_DETAIL] = "";

	if (caps_is_default_type(kvm_fd, vm_type))
		t.type = KVM_X86_DEFAULT_VM; /* the kind the model choice knows */

	*out = (struct caps_choice){ .revoke_safe = -1, .hypercall_exit = -1,
				     .destructive = destructive };
	caps_probe_vm(vm_fd, &t);
	if (t.type == KVM_X86_DEFAULT_VM)
		out->revoke_safe = caps_revoke_safe(kvm_fd, CAPS_CACHE_USE, detail, sizeof(detail),
						    &out->revoke_from);
	caps_hypercall_from_cache(out);
	caps_choose_model(&t, out->revoke_safe);
	out->model = t.model;
	snprintf(out->why, sizeof(out->why), "%s", t.why);
	if (t.model == CAPS_MODEL_NONE) {
		pr_err("VM type %lu: %s", vm_type, t.why);
		return -EOPNOTSUPP;
	}
	out->gmem_model = caps_gmem_model(t.model);
	out->revoke_host_mapping = t.model == CAPS_MODEL_HOST_ENFORCED && out->revoke_safe == 1;
	if (t.model == CAPS_MODEL_HOST_ENFORCED &&
	    (t.gmem_flags & (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)) !=
	    (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)) {
		pr_err("guest_memfd flags 0x%llx lack MMAP|INIT_SHARED, which default VMs need",
		       (unsigned long long)t.gmem_flags);
		return -EOPNOTSUPP;
	}
	pr_info("host mapping revocable: %s (%s)%s%s",
		out->revoke_safe == 1 ? "yes" : out->revoke_safe == 0 ? "no" : "not asked",
		caps_source_name(out->revoke_from), detail[0] ? ": " : "", detail);
	return 0;
}

void caps_probe_vm(int vm_fd, struct caps_vm_type *t)
{
	uint64_t flags = 0;

	t->probed = true;
	if (gmem_probe_flags(vm_fd, &flags) == 0)
		t->gmem_flags = flags;
	t->mem_attrs = kvm_check_extension(vm_fd, KVM_CAP_MEMORY_ATTRIBUTES);
	/* In-place conversion is a property of private-capable VMs; probe it by behaviour. */
	if (t->type != KVM_X86_DEFAULT_VM)
		t->inplace = gmem_probe_inplace(vm_fd, flags & GUEST_MEMFD_FLAG_MMAP ?
					       GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED : 0);
}

static void caps_probe_type(int kvm_fd, struct caps_vm_type *t)
{
	int vm_fd;

	if (!t->supported)
		return;
	vm_fd = kvm_create_vm(kvm_fd, t->type, "probe VM (memory attributes)");
	if (vm_fd < 0)
		return;
	caps_probe_vm(vm_fd, t);
	close(vm_fd);
}

int caps_probe(struct caps *c, enum caps_cache_mode mode)
{
	unsigned int i;
	int kvm_fd, ret;

	memset(c, 0, sizeof(*c));
	c->types[0] = (struct caps_vm_type){ .name = "default", .type = KVM_X86_DEFAULT_VM };
	c->types[1] = (struct caps_vm_type){ .name = "sw-protected", .type = KVM_X86_SW_PROTECTED_VM };
	ret = kvm_open(&kvm_fd, &c->max_vcpus);
	if (ret)
		return ret;
	c->api_version = _kvm_ioctl_val(kvm_fd, KVM_GET_API_VERSION, 0);
	c->guest_memfd = kvm_check_extension(kvm_fd, KVM_CAP_GUEST_MEMFD) > 0;
	c->user_memory2 = kvm_check_extension(kvm_fd, KVM_CAP_USER_MEMORY2) > 0;
	c->vm_types = kvm_check_extension(kvm_fd, KVM_CAP_VM_TYPES);
	if (c->vm_types == 0)
		c->vm_types = 1u << KVM_X86_DEFAULT_VM;
	c->exit_hypercall = kvm_check_extension(kvm_fd, KVM_CAP_EXIT_HYPERCALL);
	c->memory_fault_info = kvm_check_extension(kvm_fd, KVM_CAP_MEMORY_FAULT_INFO) > 0;
	c->hypercall_exit = -1;
	if (arch_share_call.nr || (c->exit_hypercall & (1 << KVM_HC_MAP_GPA_RANGE)))
		c->hypercall_exit = caps_hypercall_exit_cached(kvm_fd, mode, c->hypercall_detail,
							       sizeof(c->hypercall_detail),
							       &c->hypercall_from);
	c->revoke_safe = c->guest_memfd ? caps_revoke_safe(kvm_fd, mode, c->revoke_detail,
							   sizeof(c->revoke_detail),
							   &c->revoke_from) : -1;
	for (i = 0; i < ARRAY_SIZE(c->types); i++) {
		c->types[i].supported = c->vm_types & (1LL << c->types[i].type);
		caps_probe_type(kvm_fd, &c->types[i]);
		caps_choose_model(&c->types[i], c->revoke_safe);
	}
	close(kvm_fd);
	return 0;
}

/* Flag names, shared by the text and the JSON so that the two always name the same bits. */
struct caps_flag {
	uint64_t bit;
	const char *name;
};

static const struct caps_flag gmem_flag_names[] = {
	{ GUEST_MEMFD_FLAG_MMAP, "MMAP" },
	{ GUEST_MEMFD_FLAG_INIT_SHARED, "INIT_SHARED" },
};
static const struct caps_flag attr_names[] = { { KVM_MEMORY_ATTRIBUTE_PRIVATE, "PRIVATE" } };
static const struct caps_flag hypercall_names[] = {
	{ 1ULL << KVM_HC_MAP_GPA_RANGE, "MAP_GPA_RANGE" },
};

/* The names of f's known bits joined by '|', or none_word if it has none. */
static void names_str(uint64_t f, const struct caps_flag *t, size_t n, const char *none_word,
		      char *buf, size_t len)
{
	size_t i, at = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		if ((f & t[i].bit) && at < len)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "|" : "", t[i].name);
	if (!at)
		snprintf(buf, len, "%s", none_word);
}

static void flags_str(uint64_t f, char *buf, size_t len)
{
	names_str(f, gmem_flag_names, ARRAY_SIZE(gmem_flag_names), "none", buf, len);
}

static const char *inplace_str(const struct caps_vm_type *t)
{
	if (!t->probed || t->type == KVM_X86_DEFAULT_VM)
		return "not probed";
	if (t->inplace == 1)
		return "yes (KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd)";
	return t->inplace == 0 ? "no (KVM_SET_MEMORY_ATTRIBUTES2: ENOTTY)" : "refused the probe";
}

void caps_print(const struct caps *c, FILE *out)
{
	const struct caps_vm_type *d = &c->types[0];
	char flags[64], names[64], label[48];
	unsigned int i;

	flags_str(d->gmem_flags, flags, sizeof(flags));
	fprintf(out, "KVM API version:           %d\n", c->api_version);
	fprintf(out, "max vCPUs per VM:          %u\n", c->max_vcpus);
	fprintf(out, "guest_memfd:               %s, flags %s (0x%llx) on default VMs\n",
		c->guest_memfd ? "yes" : "no", flags, (unsigned long long)d->gmem_flags);
	fprintf(out, "memslots with guest_memfd: %s\n", c->user_memory2 ? "yes" : "no");
	fprintf(out, "VM types:                  0x%llx:", (unsigned long long)c->vm_types);
	for (i = 0; i < ARRAY_SIZE(c->types); i++)
		if (c->types[i].supported)
			fprintf(out, " %s", c->types[i].name);
	fprintf(out, "\n");
	for (i = 0; i < ARRAY_SIZE(c->types); i++) {
		const struct caps_vm_type *t = &c->types[i];

		if (!t->supported)
			continue;
		names_str((uint64_t)t->mem_attrs, attr_names, ARRAY_SIZE(attr_names), "none", names,
			  sizeof(names));
		fprintf(out, "memory attributes, %-7s VM level 0x%llx (%s); per guest_memfd %s\n",
			i == 0 ? "default:" : "sw-prot:", (unsigned long long)t->mem_attrs, names,
			inplace_str(t));
	}
	names_str((uint64_t)c->exit_hypercall, hypercall_names, ARRAY_SIZE(hypercall_names), "",
		  names, sizeof(names));
	fprintf(out, "exit on hypercall:         0x%llx%s%s%s\n", (unsigned long long)c->exit_hypercall,
		names[0] ? " (" : "", names, names[0] ? ")" : "");
	snprintf(label, sizeof(label), "%s reaches veil:", arch_share_call.name);
	fprintf(out, "%-26s %s (%s)%s%s\n", label,
		c->hypercall_exit == 1 ? "yes" : c->hypercall_exit == 0 ? "no" : "unknown",
		caps_source_name(c->hypercall_from), c->hypercall_detail[0] ? ": " : "",
		c->hypercall_detail);
	fprintf(out, "memory fault info:         %s\n", c->memory_fault_info ? "yes" : "no");
	fprintf(out, "host mapping revocable:    %s (%s): %s\n",
		c->revoke_safe == 1 ? "yes" : c->revoke_safe == 0 ? "no" : "unknown",
		caps_source_name(c->revoke_from), c->revoke_detail);
	fprintf(out, "conversion model per VM type:\n");
	for (i = 0; i < ARRAY_SIZE(c->types); i++)
		fprintf(out, "  %-13s %s: %s\n", c->types[i].name, caps_model_name(c->types[i].model),
			c->types[i].why);
}

/* A JSON string, escaped: details may quote a guest's or the kernel's words. */
static void json_str(FILE *f, const char *key, const char *v)
{
	fprintf(f, ",\"%s\":\"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*v);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* The names of f's known bits, as the text output gives them: ["MMAP","INIT_SHARED"]. */
static void json_names(FILE *f, const char *key, uint64_t v, const struct caps_flag *t, size_t n)
{
	size_t i;
	bool first = true;

	fprintf(f, ",\"%s\":[", key);
	for (i = 0; i < n; i++) {
		if (!(v & t[i].bit))
			continue;
		fprintf(f, "%s\"%s\"", first ? "" : ",", t[i].name);
		first = false;
	}
	fputc(']', f);
}

static const char *json_tristate(int v)
{
	return v == 1 ? "true" : v == 0 ? "false" : "null";
}

static void caps_json_vm(const struct caps_vm_type *t, FILE *out)
{
	fprintf(out, "\"%s\":{\"supported\":%s,\"memory_attributes\":%lld", t->name,
		t->supported ? "true" : "false", (long long)t->mem_attrs);
	json_names(out, "memory_attribute_names", (uint64_t)t->mem_attrs, attr_names,
		   ARRAY_SIZE(attr_names));
	fprintf(out, ",\"guest_memfd_flags\":%llu", (unsigned long long)t->gmem_flags);
	json_names(out, "guest_memfd_flag_names", t->gmem_flags, gmem_flag_names,
		   ARRAY_SIZE(gmem_flag_names));
	fprintf(out, ",\"gmem_memory_attributes\":%s", t->inplace == 1 ? "true" : "false");
	json_str(out, "model", caps_model_name(t->model));
	json_str(out, "why", t->why);
	fputc('}', out);
}

/* One object on one line; docs/formats.md lists the keys (schema CAPS_JSON_SCHEMA). */
void caps_print_json(const struct caps *c, FILE *out)
{
	unsigned int i;
	bool first = true;

	fprintf(out, "{\"schema\":%d,\"api_version\":%d,\"max_vcpus\":%u,\"guest_memfd\":%s,"
		"\"guest_memfd_flags\":%llu", CAPS_JSON_SCHEMA, c->api_version, c->max_vcpus,
		c->guest_memfd ? "true" : "false", (unsigned long long)c->types[0].gmem_flags);
	json_names(out, "guest_memfd_flag_names", c->types[0].gmem_flags, gmem_flag_names,
		   ARRAY_SIZE(gmem_flag_names));
	fprintf(out, ",\"user_memory2\":%s,\"vm_types\":%lld,\"vm_type_names\":[",
		c->user_memory2 ? "true" : "false", (long long)c->vm_types);
	for (i = 0; i < ARRAY_SIZE(c->types); i++) {
		if (!c->types[i].supported)
			continue;
		fprintf(out, "%s\"%s\"", first ? "" : ",", c->types[i].name);
		first = false;
	}
	fprintf(out, "],\"exit_hypercall\":%lld", (long long)c->exit_hypercall);
	json_names(out, "exit_hypercall_names", (uint64_t)c->exit_hypercall, hypercall_names,
		   ARRAY_SIZE(hypercall_names));
	json_str(out, "share_call", arch_share_call.name);
	fprintf(out, ",\"map_gpa_range_exits\":%s", json_tristate(c->hypercall_exit));
	json_str(out, "map_gpa_range_detail", c->hypercall_detail);
	json_str(out, "map_gpa_range_from", caps_source_name(c->hypercall_from));
	fprintf(out, ",\"memory_fault_info\":%s,\"revoke_safe\":%s",
		c->memory_fault_info ? "true" : "false", json_tristate(c->revoke_safe));
	json_str(out, "revoke_detail", c->revoke_detail);
	json_str(out, "revoke_from", caps_source_name(c->revoke_from));
	fputs(",\"vm\":{", out);
	for (i = 0; i < ARRAY_SIZE(c->types); i++) {
		if (i)
			fputc(',', out);
		caps_json_vm(&c->types[i], out);
	}
	fputs("}}\n", out);
}
