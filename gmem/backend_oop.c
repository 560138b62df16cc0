/*
 * The out-of-place backend (DESIGN.md §2a): VM attributes.  The private side
 * is a guest_memfd, the shared side a memfd; the kernel switches sides and
 * veil discards the side that lost, so contents do not survive.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gmem_backend.h"
#include "kvm.h"
#include "log.h"

static int oop_convert(struct gmem *gm, struct gmem_region *r, uint64_t off, uint64_t len,
		       bool to_private, struct gmem_conv_result *res)
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
		gmem_backend_backoff(attempt);
	}
	if (ret) {
		snprintf(res->culprit, sizeof(res->culprit), "KVM_SET_MEMORY_ATTRIBUTES on GPA "
			 "0x%llx+0x%llx: %s", (unsigned long long)a.address, (unsigned long long)len,
			 strerror(-ret));
		return ret;
	}
	/* The kernel switched sides; discard the one that lost. */
	ret = gmem_backend_punch(to_private ? r->shared_fd : r->fd, off, len);
	if (ret)
		pr_warn("discarding the %s side of GPA 0x%llx: %s", to_private ? "shared" : "private",
			(unsigned long long)a.address, strerror(-ret));
	return 0;
}

const struct gmem_backend gmem_backend_oop = {
	.name = "out-of-place",
	.semantics = "zeroed: each conversion discards the side that lost",
	.keeps_contents = false,
	.kernel_sees_pins = false,
	.separate_shared = true,
	.convert = oop_convert,
};
