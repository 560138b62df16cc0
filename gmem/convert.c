/*
 * Conversions and punches: drain the range's pins, run the backend's kernel
 * step (gmem_backend.h) with its bounded retries, update the attribute map
 * and generation.  Depends on attr, pin, longterm and the backends, and on
 * nothing that depends on it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gmem_attr.h"
#include "gmem_backend.h"
#include "gmem_longterm.h"
#include "gmem_pins.h"

bool gmem_keeps_contents(const struct gmem *gm)
{
	return gm->backend->keeps_contents;
}

bool gmem_kernel_sees_pins(const struct gmem *gm)
{
	return gm->backend->kernel_sees_pins;
}

const char *gmem_content_semantics(const struct gmem *gm)
{
	return gm->backend->semantics;
}

static int discard_backend(struct gmem_region *r, uint64_t off, uint64_t len,
			   struct gmem_conv_result *res)
{
	int ret = gmem_backend_punch(r->fd, off, len);

	if (!ret && r->shared_fd >= 0)
		ret = gmem_backend_punch(r->shared_fd, off, len);
	if (ret)
		snprintf(res->culprit, sizeof(res->culprit), "PUNCH_HOLE: %s", strerror(-ret));
	return ret;
}

/*
 * Long-term pins go out of the way where the kernel cannot see them, and
 * always before a punch: a write through one would land in the orphaned
 * page (DESIGN.md §3).
 */
static int release_unseen(struct gmem *gm, uint64_t gpa, uint64_t len, bool discard,
			  struct gmem_conv_result *res)
{
	if (discard || !gm->backend->kernel_sees_pins)
		return gmem_longterm_release(gm, gpa, len, res, NULL);
	return 0;
}

/*
 * The one shape of every conversion and punch: mark and drain, release
 * long-term pins, run the backend, record the result, settle.
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
		ret = release_unseen(gm, gpa, len, discard, res);
		if (!ret)
			ret = discard ? discard_backend(r, gpa - r->gpa, len, res)
				      : gm->backend->convert(gm, r, gpa - r->gpa, len, to_private, res);
		if (!ret && !discard)
			gmem_attr_update(r, first, n, to_private);
		gmem_range_end(gm, r, first, n, ret == 0);
		gmem_longterm_restore(gm);
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

int gmem_punch_hole(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	struct gmem_conv_result res;

	return gmem_discard(gm, gpa, len, &res);
}

/* The steps of a round trip on a range already marked converting. */
static int roundtrip_steps(struct gmem *gm, struct gmem_region *r, uint64_t gpa, uint64_t len,
			   struct gmem_conv_result *res)
{
	int ret = release_unseen(gm, gpa, len, false, res);

	if (!ret)
		ret = gm->backend->convert(gm, r, gpa - r->gpa, len, true, res);
	if (ret)
		return ret;
	ret = gm->backend->convert(gm, r, gpa - r->gpa, len, false, res);
	/* Half done: the kernel has it private, and the map must say so (I5). */
	if (ret)
		gmem_attr_update(r, (gpa - r->gpa) / GMEM_PAGE_SIZE, len / GMEM_PAGE_SIZE, true);
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
	if (!gmem_keeps_contents(gm))
		return -EOPNOTSUPP; /* contents would not survive: only for models that keep them */
	first = (gpa - r->gpa) / GMEM_PAGE_SIZE;
	n = len / GMEM_PAGE_SIZE;
	ret = gmem_range_begin(gm, r, first, n, res);
	if (ret)
		goto out;
	if (gmem_range_has_private(r, gpa, len)) {
		ret = -EBUSY; /* the guest's own private memory: not ours to flip */
		gmem_range_end(gm, r, first, n, false);
		goto out;
	}
	ret = roundtrip_steps(gm, r, gpa, len, res);
	gmem_range_end(gm, r, first, n, ret == 0);
	gmem_longterm_restore(gm);
out:
	gmem_stat_add(ret ? &gm->stats.conversion_errors : &gm->stats.conversions, ret ? 1 : 2);
	gmem_stat_add(&gm->stats.retries, res->retries);
	return ret;
}
