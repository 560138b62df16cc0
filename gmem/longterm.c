/*
 * Long-term pins (io_uring registered buffers): the kernel sees them, veil
 * cannot drain them.  A conversion or punch that needs their pages releases
 * them, and they are restored once the pages are shared and settled again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmem_longterm.h"
#include "log.h"

/*
 * -EBUSY if a pin would not release, named in res->culprit: the caller must
 * then fail with nothing changed, since a write through that pin would land
 * in an orphaned page.  Pins released before it (in this call or earlier in
 * the same operation) come back from gmem_longterm_restore() once the failed
 * operation has settled its pages.
 */
int gmem_longterm_release(struct gmem *gm, uint64_t gpa, uint64_t len,
			  struct gmem_conv_result *res, bool *any)
{
	struct gmem_longterm *lt;
	int ret = 0, err;

	if (!__atomic_load_n(&gm->longterm_nr, __ATOMIC_ACQUIRE))
		return 0; /* none registered: no lock on a conversion's path */
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
	uint64_t first = (gpa - r->gpa) / GMEM_PAGE_SIZE;
	uint64_t n = len ? (gpa - r->gpa + len - 1) / GMEM_PAGE_SIZE - first + 1 : 1;
	uint64_t c, last = (first + n - 1) / GMEM_CHUNK_PAGES, m;

	if (!len)
		return false;
	for (c = first / GMEM_CHUNK_PAGES; c <= last; c++) {
		m = gmem_chunk_mask(c, first, n);
		if ((gmem_load(&r->chunks[c].private) | gmem_load(&r->chunks[c].converting)) & m)
			return true;
	}
	return false;
}

/*
 * Any thread's conversion may call this, so it must not re-pin a range that
 * another conversion is still working on: that converter releases under
 * longterm_lock only after marking its pages converting, so checking for
 * converting pages under the same lock closes the window in which a restore
 * would pin pages that are about to be punched.
 */
void gmem_longterm_restore(struct gmem *gm)
{
	struct gmem_longterm *lt;

	if (!__atomic_load_n(&gm->longterm_nr, __ATOMIC_ACQUIRE))
		return;
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

uint64_t gmem_longterm_held_locked(struct gmem *gm)
{
	const struct gmem_longterm *lt;
	uint64_t n = 0;

	for (lt = gm->longterm; lt; lt = lt->next)
		n += !lt->released;
	return n;
}

bool gmem_longterm_covers_locked(struct gmem *gm, const struct gmem_region *r, uint64_t p)
{
	uint64_t lo = r->gpa + p * GMEM_PAGE_SIZE, hi = lo + GMEM_PAGE_SIZE;
	const struct gmem_longterm *lt;

	for (lt = gm->longterm; lt; lt = lt->next)
		if (!lt->released && lt->gpa < hi && lo < lt->gpa + lt->len)
			return true;
	return false;
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
	__atomic_store_n(&gm->longterm_nr, gm->longterm_nr + 1, __ATOMIC_RELEASE);
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
			__atomic_store_n(&gm->longterm_nr, gm->longterm_nr - 1, __ATOMIC_RELEASE);
		} else {
			pp = &lt->next;
		}
	}
	pthread_mutex_unlock(&gm->longterm_lock);
}

void gmem_longterm_free_all(struct gmem *gm)
{
	while (gm->longterm) {
		struct gmem_longterm *lt = gm->longterm;

		gm->longterm = lt->next;
		free(lt);
	}
	gm->longterm_nr = 0;
}
