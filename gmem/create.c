/*
 * gmem: guest_memfd regions, their memslots and host mappings, from creation
 * to destruction, and the queries about them.  The top of gmem/: it picks
 * the backend and sets up what the other files use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "gmem_backend.h"
#include "gmem_longterm.h"
#include "gmem_pins.h"
#include "gmem_revoke.h"
#include "kvm.h"
#include "log.h"

#define GMEM_DEFAULT_DRAIN_NS 2000000000ULL
#define GMEM_DEFAULT_RETRIES 16

int gmem_probe_flags(int vm_fd, uint64_t *flags)
{
	int ret;

	ret = _kvm_ioctl_val(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD);
	if (ret <= 0)
		return -EOPNOTSUPP;
	ret = _kvm_ioctl_val(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	*flags = ret > 0 ? (uint64_t)ret : 0;
	return 0;
}

static int memfd_open(uint64_t size, int *out)
{
	int fd = memfd_create("veil-ram", MFD_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

/* The out-of-place model's private side is never mapped; the others map guest_memfd itself. */
static uint64_t region_gmem_flags(const struct gmem *gm)
{
	if (gm->backend->separate_shared)
		return 0;
	return GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
}

static int region_open(struct gmem *gm, struct gmem_region *r)
{
	struct kvm_create_guest_memfd args = { .size = r->size, .flags = region_gmem_flags(gm) };
	int fd;

	if (gm->cfg.vm_fd < 0)
		return memfd_open(r->size, &r->fd);
	fd = __kvm_ioctl(gm->cfg.vm_fd, KVM_CREATE_GUEST_MEMFD, &args);
	if (fd < 0)
		return -errno;
	r->fd = fd;
	if (gm->backend->separate_shared)
		return memfd_open(r->size, &r->shared_fd);
	return 0;
}

/*
 * Never trust the kernel to bounds-check the binding: one host kernel here
 * accepts a memslot far past the end of its guest_memfd (DESIGN.md §1).
 */
static int region_check_binding(const struct gmem_region *r, uint64_t offset)
{
	struct stat st;
	uint64_t end;

	if (file_fstat(r->fd, &st) < 0)
		return -errno;
	if (__builtin_add_overflow(offset, r->size, &end) || end > (uint64_t)st.st_size)
		return -ERANGE;
	return 0;
}

static int region_bind(struct gmem *gm, struct gmem_region *r)
{
	struct kvm_userspace_memory_region2 slot = {
		.slot = r->slot,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = r->gpa,
		.memory_size = r->size,
		.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		.guest_memfd_offset = 0,
		.guest_memfd = (uint32_t)r->fd,
	};
	int ret;

	ret = region_check_binding(r, slot.guest_memfd_offset);
	if (ret)
		return ret;
	ret = _kvm_ioctl(gm->cfg.vm_fd, KVM_SET_USER_MEMORY_REGION2, &slot);
	if (ret)
		return ret;
	r->bound = true;
	return 0;
}

static void region_unbind(struct gmem *gm, struct gmem_region *r)
{
	struct kvm_userspace_memory_region2 slot = { .slot = r->slot };

	if (r->bound && __kvm_ioctl(gm->cfg.vm_fd, KVM_SET_USER_MEMORY_REGION2, &slot) < 0)
		pr_warn("deleting memslot %u: %s", r->slot, strerror(errno));
	r->bound = false;
}

static void region_close(struct gmem *gm, struct gmem_region *r)
{
	region_unbind(gm, r);
	if (r->hva)
		munmap(r->hva, r->size);
	if (r->fd >= 0)
		close(r->fd);
	if (r->shared_fd >= 0)
		close(r->shared_fd);
	free(r->pins);
	free(r->chunks);
	free(r->revoked);
	r->revoked = NULL;
	r->hva = NULL;
	r->fd = r->shared_fd = -1;
	r->pins = NULL;
	r->chunks = NULL;
}

static int region_setup(struct gmem *gm, struct gmem_region *r)
{
	uint64_t pages = r->size / GMEM_PAGE_SIZE;
	void *hva;
	int ret;

	ret = region_open(gm, r);
	if (ret)
		return ret;
	hva = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   r->shared_fd >= 0 ? r->shared_fd : r->fd, 0);
	if (hva == MAP_FAILED)
		return -errno;
	r->hva = hva;
	r->pins = calloc((pages + GMEM_PINS_PER_WORD - 1) / GMEM_PINS_PER_WORD, sizeof(*r->pins));
	if (!r->pins)
		return -ENOMEM;
	r->chunks = aligned_alloc(128, ALIGN_UP(gmem_chunks(pages) * sizeof(*r->chunks), 128));
	if (!r->chunks)
		return -ENOMEM;
	memset(r->chunks, 0, gmem_chunks(pages) * sizeof(*r->chunks));
	ret = gmem_revoke_init(gm, r);
	if (ret)
		return ret;
	if (gm->cfg.vm_fd >= 0)
		return region_bind(gm, r);
	return 0;
}

static void gmem_init_locks(struct gmem *gm)
{
	unsigned int i;

	pthread_mutex_init(&gm->wait_lock, NULL);
	pthread_cond_init(&gm->wait_cond, NULL);
	pthread_mutex_init(&gm->longterm_lock, NULL);
	pthread_mutex_init(&gm->revoke_lock, NULL);
	for (i = 0; i < GMEM_PIN_SHARDS; i++)
		pthread_mutex_init(&gm->shards[i].lock, NULL);
}

int gmem_create_cfg(const struct gmem_config *cfg, const struct gmem_layout *layout,
		    struct gmem **out)
{
	struct gmem *gm;
	unsigned int i;
	int ret;

	if (layout->nr == 0 || layout->nr > GMEM_MAX_REGIONS)
		return -EINVAL;
	gm = calloc(1, sizeof(*gm));
	if (!gm)
		return -ENOMEM;
	gm->cfg = *cfg;
	if (!gm->cfg.drain_timeout_ns)
		gm->cfg.drain_timeout_ns = GMEM_DEFAULT_DRAIN_NS;
	if (!gm->cfg.max_retries)
		gm->cfg.max_retries = GMEM_DEFAULT_RETRIES;
	gm->backend = gmem_backend_for(cfg->model, cfg->destructive);
	gm->layout = *layout;
	gmem_init_locks(gm);
	gmem_set_attrs2_fn(gm, NULL, NULL);
	gmem_set_mprotect_fn(gm, NULL, NULL);
	for (i = 0; i < layout->nr; i++) {
		gm->regions[i] = (struct gmem_region){
			.gpa = layout->r[i].gpa, .size = layout->r[i].size,
			.fd = -1, .shared_fd = -1, .slot = i,
		};
	}
	gm->nr = layout->nr;
	for (i = 0; i < gm->nr; i++) {
		ret = region_setup(gm, &gm->regions[i]);
		if (ret) {
			pr_err("guest memory region %u (GPA 0x%llx, %llu MiB): %s", i,
			       (unsigned long long)gm->regions[i].gpa,
			       (unsigned long long)(gm->regions[i].size >> 20), strerror(-ret));
			goto err;
		}
	}
	*out = gm;
	return 0;
err:
	gmem_destroy(gm);
	return ret;
}

int gmem_create(int vm_fd, const struct gmem_layout *layout, uint64_t gmem_flags,
		struct gmem **out)
{
	struct gmem_config cfg = { .vm_fd = vm_fd, .model = GMEM_MODEL_HOST };
	uint64_t need = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

	/* The VMM maps every region, so it needs MMAP; INIT_SHARED keeps default VMs usable. */
	if (vm_fd >= 0 && (gmem_flags & need) != need)
		return -EOPNOTSUPP;
	return gmem_create_cfg(&cfg, layout, out);
}

void gmem_destroy(struct gmem *gm)
{
	unsigned int i;

	if (!gm)
		return;
	for (i = 0; i < gm->nr; i++)
		region_close(gm, &gm->regions[i]);
	gmem_longterm_free_all(gm);
	free(gm);
}

int gmem_allocated_bytes(const struct gmem *gm, uint64_t *bytes)
{
	unsigned int i;
	struct stat st;

	*bytes = 0;
	for (i = 0; i < gm->nr; i++) {
		const struct gmem_region *r = &gm->regions[i];

		if (file_fstat(r->fd, &st) < 0)
			return -errno;
		*bytes += (uint64_t)st.st_blocks * 512;
		if (r->shared_fd >= 0) {
			if (file_fstat(r->shared_fd, &st) < 0)
				return -errno;
			*bytes += (uint64_t)st.st_blocks * 512;
		}
	}
	return 0;
}

uint64_t gmem_flags(const struct gmem *gm)
{
	return region_gmem_flags(gm);
}

enum gmem_model gmem_model(const struct gmem *gm)
{
	return gm->cfg.model;
}

int gmem_fds(const struct gmem *gm, int *fds, unsigned int max)
{
	unsigned int i, n = 0;

	for (i = 0; i < gm->nr; i++) {
		const int both[2] = { gm->regions[i].fd, gm->regions[i].shared_fd };

		for (unsigned int j = 0; j < 2; j++) {
			if (both[j] < 0)
				continue;
			if (n == max)
				return -ENOSPC;
			fds[n++] = both[j];
		}
	}
	return (int)n;
}

uint64_t gmem_total_size(const struct gmem *gm)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < gm->nr; i++)
		total += gm->regions[i].size;
	return total;
}

const struct gmem_layout *gmem_get_layout(const struct gmem *gm)
{
	return &gm->layout;
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

/*
 * Pages are counted once however many pins cover them; every word is read
 * once, so the figures are a snapshot word by word, not of the whole.
 */
void gmem_pin_summary(struct gmem *gm, uint64_t *pins, uint64_t *pinned_bytes,
		      uint64_t *converting_bytes)
{
	uint64_t held = gmem_pins_held(gm), pinned = 0, converting = 0, p, c;
	unsigned int i;

	pthread_mutex_lock(&gm->longterm_lock);
	held += gmem_longterm_held_locked(gm);
	for (i = 0; i < gm->nr; i++) {
		const struct gmem_region *r = &gm->regions[i];

		for (p = 0; p < r->size / GMEM_PAGE_SIZE; p++)
			pinned += gmem_page_pins(r, p) || gmem_longterm_covers_locked(gm, r, p);
		for (c = 0; c < gmem_chunks(r->size / GMEM_PAGE_SIZE); c++)
			converting += (uint64_t)__builtin_popcountll(gmem_load(&r->chunks[c].converting));
	}
	pthread_mutex_unlock(&gm->longterm_lock);
	*pins = held;
	*pinned_bytes = pinned * GMEM_PAGE_SIZE;
	*converting_bytes = converting * GMEM_PAGE_SIZE;
}

void gmem_get_stats(struct gmem *gm, struct gmem_stats *out)
{
	const uint64_t *src = (const uint64_t *)&gm->stats;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/*
 * In-place conversion is found by behaviour, not by capability number (the
 * number is provisional): on a scratch one-page guest_memfd of vm_fd, convert
 * to private and back.  1 if the kernel converts in place, 0 if the ioctl is
 * unknown (ENOTTY), -errno if it exists but refused.
 */
int gmem_probe_inplace(int vm_fd, uint64_t gmem_flags)
{
	struct kvm_create_guest_memfd args = { .size = GMEM_PAGE_SIZE, .flags = gmem_flags };
	struct kvm_memory_attributes2 attrs = {
		.offset = 0, .size = GMEM_PAGE_SIZE, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
	};
	int fd, ret = 1;

	fd = __kvm_ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args);
	if (fd < 0)
		return -errno;
	if (__kvm_ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &attrs) < 0) {
		ret = errno == ENOTTY ? 0 : -errno;
	} else {
		attrs.attributes = 0;
		if (__kvm_ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &attrs) < 0)
			ret = -errno;
	}
	close(fd);
	return ret;
}
