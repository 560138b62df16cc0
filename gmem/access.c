/*
 * Checked access to guest memory: bounds and the attribute map (I3), and
 * reads and writes through pins, so a conversion or punch waits for them.
 * Depends on attr and pin.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "gmem_attr.h"
#include "gmem_internal.h"
#include "gmem_revoke.h"

int gmem_translate(struct gmem *gm, uint64_t gpa, uint64_t len, void **hva)
{
	struct gmem_region *r = gmem_region_find(gm, gpa, len);
	int ret;

	if (!r) {
		gmem_stat_add(&gm->stats.out_of_range, 1);
		return -EFAULT;
	}
	if (gmem_range_has_private(r, gpa, len)) {
		gmem_stat_add(&gm->stats.refused_private, 1);
		return -EACCES;
	}
	ret = len ? gmem_revoke_fault_in(gm, r, (gpa - r->gpa) / GMEM_PAGE_SIZE,
					 (gpa - r->gpa + len - 1) / GMEM_PAGE_SIZE -
					 (gpa - r->gpa) / GMEM_PAGE_SIZE + 1) : 0;
	if (ret)
		return ret;
	*hva = r->hva + (gpa - r->gpa);
	return 0;
}

int gmem_read(struct gmem *gm, uint64_t gpa, void *buf, uint64_t len)
{
	struct gmem_pin pin;
	int ret = gmem_pin(gm, gpa, len, "vmm", 0, &pin);

	if (ret)
		return ret;
	memcpy(buf, pin.hva, len);
	gmem_unpin(&pin);
	return 0;
}

int gmem_write(struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len)
{
	struct gmem_pin pin;
	int ret = gmem_pin(gm, gpa, len, "vmm", 0, &pin);

	if (ret)
		return ret;
	memcpy(pin.hva, buf, len);
	gmem_unpin(&pin);
	return 0;
}

int gmem_host_access(struct gmem *gm, uint64_t gpa, uint64_t len, bool accessible)
{
	struct gmem_region *r = gmem_region_find_pages(gm, gpa, len);

	if (!r)
		return -EINVAL;
	if (mprotect(r->hva + (gpa - r->gpa), len,
		     accessible ? PROT_READ | PROT_WRITE : PROT_NONE) < 0)
		return -errno;
	return 0;
}
