/*
 * Conversions and punches: drain the range's pins, perform the model's kernel
 * operation with bounded retries, update the attribute map and generation.
 * The three backends (DESIGN.md §2a/b/c) differ only in that middle step.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gmem_internal.h"
#include "kvm.h"
#include "log.h"

#define BACKOFF_MAX_US 2000

const char *gmem_model_name(enum gmem_model m)
{
	switch (m) {
	case GMEM_MODEL_HOST:
		return "host-enforced";
	case GMEM_MODEL_OUT_OF_PLACE:
		return "out-of-place";
	default:
		return "in-place";
	}
}

const char *gmem_content_semantics(const struct gmem *gm)
{
	switch (gm->cfg.model) {
	case GMEM_MODEL_HOST:
		return gm->cfg.destructive ? "zeroed: every conversion punches the range"
					   : "preserved: the pages stay where they are";
	case GMEM_MODEL_OUT_OF_PLACE:
		return "zeroed: each conversion discards the side that lost";
	default:
		return "preserved: the kernel converts the pages in place";
	}
}

static int punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

static int default_attrs2(int fd, uint64_t offset, uint64_t size, uint64_t attrs,
			  uint64_t *error_offset, void *opaque)
{
	struct kvm_memory_attributes2 a = { .offset = offset, .size = size, .attributes = attrs };

	(void)opaque;
	if (__kvm_ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &a) == 0)
		return 0;
	*error_offset = a.error_offset;
	return -errno;
}

void gmem_set_attrs2_fn(struct gmem *gm, gmem_attrs2_fn fn, void *opaque)
{
	gm->attrs2 = fn ? fn : default_attrs2;
	gm->attrs2_opaque = opaque;
}

static void backoff(unsigned int attempt)
{
	unsigned int us = 50u << (attempt < 6 ? attempt : 6);
	struct timespec ts = { 0, (long)(us > BACKOFF_MAX_US ? BACKOFF_MAX_US : us) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Releases our long-term pins that overlap [gpa, gpa+len); *any (if given) if one was.
 * -EBUSY if one would not release, named in res->culprit: the caller must
 * then fail with nothing changed, since a write through that pin would land
 * in an orphaned page.  Pins released before it (in this call or earlier in
 * the same operation) come back from longterm_restore() once the failed
 * operation has settled its pages.
 */
static int longterm_release(struct gmem *gm, uint64_t gpa, uint64_t len,
			    struct gmem_conv_result *res, bool *any)
{
	struct gmem_longterm *lt;
	int ret = 0, err;

	pthread_mutex_lock(&gm->longterm_lock);
	for (lt = gm->longterm; lt && !ret; lt = lt->next) {
		if (lt->released || lt->gpa >= gpa + len || gpa >= lt->gpa + lt->len)
			continue;
		err = lt->ops->release(lt->opaque);
		if (err == 0) {
			lt->released = true;
			if (any)
				*any = true;
			gmem_stat_add(&gm->stats.longterm_releases, 1);
			continue;
		}
		snprintf(res->culprit, sizeof(res->culprit), "long-term pin %s at GPA 0x%llx+0x%llx "
			 "would not release: %s", lt->ops->name, (unsigned long long)lt->gpa,
			 (unsigned long long)lt->len, strerror(err < 0 ? -err : err));
		ret = -EBUSY;
	}
	pthread_mutex_unlock(&gm->longterm_lock);
	return ret;
}

/* True if a page of the range is private or being converted or punched. */
static bool range_unsettled(struct gmem_region *r, uint64_t gpa, uint64_t len)
{
	uint64_t p, first = (gpa - r->gpa) / GMEM_PAGE_SIZE, n = len / GMEM_PAGE_SIZE;

	for (p = first; p < first + n; p++)
		if (__atomic_load_n(&r->page_state[p], __ATOMIC_ACQUIRE) & (PS_PRIVATE | PS_CONVERTING))
			return true;
	return false;
}

/*
 * Restores released long-term pins whose pages are all shared and settled.
 * Any thread's conversion may call this, so it must not re-pin a range that
 * another conversion is still working on: that converter releases under
 * longterm_lock only after marking its pages converting, so checking for
 * converting pages under the same lock closes the window in which a restore
 * would pin pages that are about to be punched.
 */
static void longterm_restore(struct gmem *gm)
{
	struct gmem_longterm *lt;

	pthread_mutex_lock(&gm->longterm_lock);
	for (lt = gm->longterm; lt; lt = lt->next) {
		struct gmem_region *r = gmem_region_find(gm, lt->gpa, lt->len);

		if (!lt->released || !r || range_unsettled(r, lt->gpa, lt->len))
			continue;
		if (lt->ops->restore(lt->opaque) == 0)
			lt->released = false;
		else
			pr_warn("restoring long-term pin %s at GPA 0x%llx failed", lt->ops->name,
				(unsigned long long)lt->gpa);
	}
	pthread_mutex_unlock(&gm->longterm_lock);
}

/*
 * Every step that can fail comes before the punch, so a failed conversion
 * has not zeroed anything (I5): access comes back first on the way to
 * shared; on the way to private, revocation comes last and cannot fail
 * (past the VMA budget or on a kernel error the range is kept map-only).
 */
static int backend_host(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
			bool to_private, struct gmem_conv_result *res)
{
	uint64_t first = off / GMEM_PAGE_SIZE, n = len / GMEM_PAGE_SIZE;
	int ret;

	if (!to_private) {
		ret = gmem_revoke_shared(gm, r, first, n, res);
		if (ret)
			return ret;
	}
	if (gm->cfg.destructive) {
		ret = punch(r->fd, off, len);
		if (ret) {
			snprintf(res->culprit, sizeof(res->culprit), "PUNCH_HOLE of GPA 0x%llx+0x%llx: %s",
				 (unsigned long long)(r->gpa + off), (unsigned long long)len,
				 strerror(-ret));
			return ret;
		}
	}
	if (to_private)
		gmem_revoke_private(gm, r, first, n);
	return 0;
}

static int backend_out_of_place(struct gmem *gm, struct gmem_region *r, uint64_t off,
				uint64_t len, bool to_private, struct gmem_conv_result *res)
{
	struct kvm_memory_attributes a = {
		.address = r->gpa + off, .size = len,
		.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};
	unsigned int attempt;
	int ret;

	for (attempt = 0;; attempt++) {
		ret = _kvm_ioctl(gm->cfg.vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &a);
		if (ret != -EAGAIN || attempt >= gm->cfg.max_retries)
			break;
		res->eagain++;
		res->retries++;
		backoff(attempt);
	}
	if (ret) {
		snprintf(res->culprit, sizeof(res->culprit), "KVM_SET_MEMORY_ATTRIBUTES on GPA "
			 "0x%llx+0x%llx: %s", (unsigned long long)a.address, (unsigned long long)len,
			 strerror(-ret));
		return ret;
	}
	/* The kernel switched sides; discard the one that lost. */
	ret = punch(to_private ? r->shared_fd : r->fd, off, len);
	if (ret)
		pr_warn("discarding the %s side of GPA 0x%llx: %s", to_private ? "shared" : "private",
			(unsigned long long)a.address, strerror(-ret));
	return 0;
}

static int backend_in_place(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
			    bool to_private, struct gmem_conv_result *res)
{
	uint64_t attrs = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0, eoff = 0;
	unsigned int attempt;
	bool released;
	int ret;

	for (attempt = 0;; attempt++) {
		ret = gm->attrs2(r->fd, off, len, attrs, &eoff, gm->attrs2_opaque);
		if (ret != -EAGAIN)
			break;
		res->eagain++;
		gmem_stat_add(&gm->stats.eagain, 1);
		if (attempt >= gm->cfg.max_retries)
			break;
		res->retries++;
		/* A reference of ours the kernel sees: let it go and try again at once. */
		released = false;
		ret = longterm_release(gm, r->gpa + eoff, GMEM_PAGE_SIZE, res, &released);
		if (ret)
			return ret; /* it stays, so retrying is futile; the culprit is named */
		if (released)
			continue;
		backoff(attempt);
	}
	if (ret == -EAGAIN)
		snprintf(res->culprit, sizeof(res->culprit), "a reference the kernel holds at "
			 "guest_memfd offset 0x%llx (GPA 0x%llx), still there after %u retries",
			 (unsigned long long)eoff, (unsigned long long)(r->gpa + eoff), attempt);
	else if (ret)
		snprintf(res->culprit, sizeof(res->culprit), "KVM_SET_MEMORY_ATTRIBUTES2 at offset "
			 "0x%llx: %s", (unsigned long long)off, strerror(-ret));
	return ret;
}

static int run_backend(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
		       bool to_private, struct gmem_conv_result *res)
{
	switch (gm->cfg.model) {
	case GMEM_MODEL_HOST:
		return backend_host(gm, r, off, len, to_private, res);
	case GMEM_MODEL_OUT_OF_PLACE:
		return backend_out_of_place(gm, r, off, len, to_private, res);
	default:
		return backend_in_place(gm, r, off, len, to_private, res);
	}
}

static int discard_backend(struct gmem_region *r, uint64_t off, uint64_t len,
			   struct gmem_conv_result *res)
{
	int ret = punch(r->fd, off, len);

	if (!ret && r->shared_fd >= 0)
		ret = punch(r->shared_fd, off, len);
	if (ret)
		snprintf(res->culprit, sizeof(res->culprit), "PUNCH_HOLE: %s", strerror(-ret));
	return ret;
}

/*
 * The one shape of every conversion and punch: mark and drain, get
 * long-term pins out of the way where the kernel cannot see them (and
 * always before a punch: a write through one would land in the orphaned
 * page, DESIGN.md §3), run the backend, record the result, settle.
 */
static int range_op(struct gmem *gm, uint64_t gpa, uint64_t len, bool discard, bool to_private,
		    bool wait, struct gmem_conv_result *res)
{
	struct gmem_region *r = gmem_region_find_pages(gm, gpa, len);
	uint64_t first, n;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!r)
		return -EINVAL;
	first = (gpa - r->gpa) / GMEM_PAGE_SIZE;
	n = len / GMEM_PAGE_SIZE;
	ret = gmem_range_begin_within(gm, r, first, n, wait ? gm->cfg.drain_timeout_ns : 0, res);
	if (ret == -ETIMEDOUT && !wait)
		return -EAGAIN; /* busy now: the caller did not want to wait, nothing counted */
	if (!ret) {
		if (discard || gm->cfg.model != GMEM_MODEL_IN_PLACE)
			ret = longterm_release(gm, gpa, len, res, NULL);
		if (!ret)
			ret = discard ? discard_backend(r, gpa - r->gpa, len, res)
				      : run_backend(gm, r, gpa - r->gpa, len, to_private, res);
		if (!ret && !discard)
			gmem_attr_update(gm, r, first, n, to_private);
		gmem_range_end(gm, r, first, n, ret == 0);
		longterm_restore(gm);
	}
	gmem_stat_add(ret ? &gm->stats.conversion_errors :
		      discard ? &gm->stats.punches : &gm->stats.conversions, 1);
	gmem_stat_add(&gm->stats.retries, res->retries);
	return ret;
}

int gmem_convert(struct gmem *gm, uint64_t gpa, uint64_t len, bool to_private,
		 struct gmem_conv_result *res)
{
	return range_op(gm, gpa, len, false, to_private, true, res);
}

int gmem_discard(struct gmem *gm, uint64_t gpa, uint64_t len, struct gmem_conv_result *res)
{
	return range_op(gm, gpa, len, true, false, true, res);
}

int gmem_discard_try(struct gmem *gm, uint64_t gpa, uint64_t len, struct gmem_conv_result *res)
{
	return range_op(gm, gpa, len, true, false, false, res);
}

/* The steps of a round trip on a range already marked converting. */
static int roundtrip_steps(struct gmem *gm, struct gmem_region *r, uint64_t gpa, uint64_t len,
			   struct gmem_conv_result *res)
{
	int ret = 0;

	if (gm->cfg.model != GMEM_MODEL_IN_PLACE)
		ret = longterm_release(gm, gpa, len, res, NULL);
	if (!ret)
		ret = run_backend(gm, r, gpa - r->gpa, len, true, res);
	if (ret)
		return ret;
	ret = run_backend(gm, r, gpa - r->gpa, len, false, res);
	/* Half done: the kernel has it private, and the map must say so (I5). */
	if (ret)
		gmem_attr_update(gm, r, (gpa - r->gpa) / GMEM_PAGE_SIZE, len / GMEM_PAGE_SIZE, true);
	return ret;
}

int gmem_roundtrip(struct gmem *gm, uint64_t gpa, uint64_t len, struct gmem_conv_result *res)
{
	struct gmem_region *r = gmem_region_find_pages(gm, gpa, len);
	uint64_t first, n;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!r)
		return -EINVAL;
	if (gm->cfg.model == GMEM_MODEL_OUT_OF_PLACE ||
	    (gm->cfg.model == GMEM_MODEL_HOST && gm->cfg.destructive))
		return -EOPNOTSUPP; /* contents would not survive: only for models that keep them */
	first = (gpa - r->gpa) / GMEM_PAGE_SIZE;
	n = len / GMEM_PAGE_SIZE;
	ret = gmem_range_begin(gm, r, first, n, res);
	if (ret)
		goto out;
	if (gmem_range_has_private(gm, r, gpa, len)) {
		ret = -EBUSY; /* the guest's own private memory: not ours to flip */
		gmem_range_end(gm, r, first, n, false);
		goto out;
	}
	ret = roundtrip_steps(gm, r, gpa, len, res);
	gmem_range_end(gm, r, first, n, ret == 0);
	longterm_restore(gm);
out:
	gmem_stat_add(ret ? &gm->stats.conversion_errors : &gm->stats.conversions, ret ? 1 : 2);
	gmem_stat_add(&gm->stats.retries, res->retries);
	return ret;
}

int gmem_allocate(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	struct gmem_region *r = gmem_region_find_pages(gm, gpa, len);

	if (!r)
		return -EINVAL;
	/* Allocation keeps contents, so it needs no drain: nobody can observe it. */
	if (fallocate(r->fd, FALLOC_FL_KEEP_SIZE, (off_t)(gpa - r->gpa), (off_t)len) < 0)
		return -errno;
	return 0;
}

int gmem_longterm_register(struct gmem *gm, uint64_t gpa, uint64_t len,
			   const struct gmem_longterm_ops *ops, void *opaque)
{
	struct gmem_longterm *lt;

	if (!gmem_region_find(gm, gpa, len))
		return -EFAULT;
	lt = calloc(1, sizeof(*lt));
	if (!lt)
		return -ENOMEM;
	*lt = (struct gmem_longterm){ .gpa = gpa, .len = len, .ops = ops, .opaque = opaque };
	pthread_mutex_lock(&gm->longterm_lock);
	lt->next = gm->longterm;
	gm->longterm = lt;
	pthread_mutex_unlock(&gm->longterm_lock);
	return 0;
}

void gmem_longterm_unregister(struct gmem *gm, void *opaque)
{
	struct gmem_longterm **pp, *lt;

	pthread_mutex_lock(&gm->longterm_lock);
	for (pp = &gm->longterm; (lt = *pp);) {
		if (lt->opaque == opaque) {
			*pp = lt->next;
			free(lt);
		} else {
			pp = &lt->next;
		}
	}
	pthread_mutex_unlock(&gm->longterm_lock);
}
