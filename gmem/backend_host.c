/*
 * The host-enforced backend (DESIGN.md §2c): default VMs, no kernel
 * attributes.  veil's map is the truth; the VMM's mapping of private pages is
 * revoked where that is safe, and under --destructive a conversion punches.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gmem_backend.h"
#include "gmem_revoke.h"

/*
 * Every step that can fail comes before the punch, so a failed conversion
 * has not zeroed anything (I5): access comes back first on the way to
 * shared; on the way to private, revocation comes last and cannot fail
 * (past the VMA budget or on a kernel error the range is kept map-only).
 */
static int host_steps(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
		      bool to_private, bool destructive, struct gmem_conv_result *res)
{
	uint64_t first = off / GMEM_PAGE_SIZE, n = len / GMEM_PAGE_SIZE;
	int ret;

	if (!to_private) {
		ret = gmem_revoke_shared(gm, r, first, n, res);
		if (ret)
			return ret;
	}
	if (destructive) {
		ret = gmem_backend_punch(r->fd, off, len);
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

static int host_convert(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
			bool to_private, struct gmem_conv_result *res)
{
	return host_steps(gm, r, off, len, to_private, false, res);
}

static int host_convert_destructive(struct gmem *gm, struct gmem_region *r, uint64_t off,
				    uint64_t len, bool to_private, struct gmem_conv_result *res)
{
	return host_steps(gm, r, off, len, to_private, true, res);
}

const struct gmem_backend gmem_backend_host = {
	.name = "host-enforced",
	.semantics = "preserved: the pages stay where they are",
	.keeps_contents = true,
	.kernel_sees_pins = false,
	.separate_shared = false,
	.convert = host_convert,
};

const struct gmem_backend gmem_backend_host_destructive = {
	.name = "host-enforced",
	.semantics = "zeroed: every conversion punches the range",
	.keeps_contents = false,
	.kernel_sees_pins = false,
	.separate_shared = false,
	.convert = host_convert_destructive,
};
