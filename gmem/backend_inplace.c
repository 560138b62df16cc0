/*
 * The in-place backend (DESIGN.md §2b): per-guest_memfd attributes.  The
 * kernel converts the pages where they are, keeping contents, and refuses
 * (EAGAIN, naming the page) while it sees an extra reference to one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gmem_backend.h"
#include "gmem_longterm.h"
#include "kvm.h"

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

static void name_culprit(struct gmem_region *r, uint64_t off, uint64_t eoff, unsigned int attempt,
			 int ret, struct gmem_conv_result *res)
{
	if (ret == -EAGAIN)
		snprintf(res->culprit, sizeof(res->culprit), "a reference the kernel holds at "
			 "guest_memfd offset 0x%llx (GPA 0x%llx), still there after %u retries",
			 (unsigned long long)eoff, (unsigned long long)(r->gpa + eoff), attempt);
	else if (ret)
		snprintf(res->culprit, sizeof(res->culprit), "KVM_SET_MEMORY_ATTRIBUTES2 at offset "
			 "0x%llx: %s", (unsigned long long)off, strerror(-ret));
}

static int inplace_convert(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
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
		ret = gmem_longterm_release(gm, r->gpa + eoff, GMEM_PAGE_SIZE, res, &released);
		if (ret)
			return ret; /* it stays, so retrying is futile; the culprit is named */
		if (released)
			continue;
		gmem_backend_backoff(attempt);
	}
	name_culprit(r, off, eoff, attempt, ret, res);
	return ret;
}

const struct gmem_backend gmem_backend_inplace = {
	.name = "in-place",
	.semantics = "preserved: the kernel converts the pages in place",
	.keeps_contents = true,
	.kernel_sees_pins = true,
	.separate_shared = false,
	.convert = inplace_convert,
};
