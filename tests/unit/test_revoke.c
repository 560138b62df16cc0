/*
 * unit: revocation of veil's mapping of private pages stays within its VMA
 * budget whatever the guest does, private pages stay refused past it, and a
 * failing mprotect never leaves a partial effect, even under destructive
 * conversions (I3, I5, I6).  Detached (memfd) gmem, no KVM.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem.h"
#include "test.h"

#define PAGE 4096ULL
#define BIG (512ULL << 20) /* 65536 alternate private pages: past the kernel's 65530 VMAs */
#define SLACK 256          /* mappings the process itself (allocator, sanitizers) may add */

static struct gmem *make(uint64_t size, bool destructive, unsigned int budget)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = GMEM_MODEL_HOST, .revoke_host_mapping = true,
		.destructive = destructive, .drain_timeout_ns = 200000000ULL,
		.max_revoked_extents = budget,
	};
	struct gmem_layout l = { .nr = 1, .r = { { 0, size } } };
	struct gmem *gm = NULL;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &gm), 0);
	return gm;
}

static uintptr_t base_of(struct gmem *gm)
{
	void *hva = NULL;

	CHECK_EQ(gmem_translate(gm, 0, PAGE, &hva), 0);
	return (uintptr_t)hva;
}

/* Lines of /proc/self/maps: VMAs; with `inside`, only revoked ones in [lo, hi). */
static unsigned int maps_count(bool inside, uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long start, end;
	unsigned int n = 0;
	char line[512], perms[8];

	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f)) {
		if (!inside) {
			n++;
			continue;
		}
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && start >= lo && end <= hi &&
		    strncmp(perms, "---", 3) == 0)
			n++;
	}
	if (f)
		fclose(f);
	return n;
}

static unsigned int revoked_vmas(struct gmem *gm, uint64_t size)
{
	uintptr_t base = base_of(gm);

	return maps_count(true, base, base + size);
}

static bool refused(struct gmem *gm, uint64_t gpa)
{
	uint64_t v;

	return gmem_read(gm, gpa, &v, sizeof(v)) == -EACCES;
}

/* A guest making every other page of 512 MiB private: no ENOMEM, a bounded number of VMAs. */
static void test_alternate_pages_within_budget(void)
{
	struct gmem *gm = make(BIG, false, 0);
	uint64_t pages = BIG / PAGE, p, fails = 0, v = 0x77, got = 0;
	unsigned int before = maps_count(false, 0, 0), after;
	struct gmem_conv_result res;
	struct gmem_stats st;
	int first_err = 0;

	CHECK_EQ(gmem_write(gm, BIG - PAGE, &v, sizeof(v)), 0);
	for (p = 1; p < pages; p += 2) {
		int ret = gmem_convert(gm, p * PAGE, PAGE, true, &res);

		if (ret && !fails++) {
			first_err = ret;
			fprintf(stderr, "page %llu: %s (culprit '%s')\n", (unsigned long long)p,
				strerror(-ret), res.culprit);
		}
	}
	CHECK_EQ(fails, 0);
	CHECK_EQ(first_err, 0);
	after = maps_count(false, 0, 0);
	fprintf(stderr, "VMAs: %u before, %u after %llu alternate private pages\n", before, after,
		(unsigned long long)(pages / 2));
	CHECK(after <= before + 2 * GMEM_REVOKE_MAX_EXTENTS + SLACK);
	CHECK(after >= before + 2 * GMEM_REVOKE_MAX_EXTENTS - SLACK); /* revocation did happen */
	CHECK_EQ(revoked_vmas(gm, BIG), GMEM_REVOKE_MAX_EXTENTS);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.conversions, pages / 2);
	CHECK_EQ(st.revoked_extents, GMEM_REVOKE_MAX_EXTENTS);
	CHECK_EQ(st.revoke_skipped, pages / 2 - GMEM_REVOKE_MAX_EXTENTS);
	/* Revoked or map-only, a private page is refused; its shared neighbours are not. */
	CHECK(refused(gm, PAGE));
	CHECK(refused(gm, BIG - PAGE));
	CHECK_EQ(gmem_read(gm, BIG - 2 * PAGE, &got, sizeof(got)), 0);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.refused_private, 2);

	for (p = 1, fails = 0; p < pages; p += 2)
		fails += gmem_convert(gm, p * PAGE, PAGE, false, &res) != 0;
	CHECK_EQ(fails, 0);
	CHECK_EQ(revoked_vmas(gm, BIG), 0);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.revoked_extents, 0);
	after = maps_count(false, 0, 0);
	fprintf(stderr, "VMAs: %u once they are shared again\n", after);
	CHECK(after <= before + SLACK);
	CHECK_EQ(gmem_read(gm, BIG - PAGE, &got, sizeof(got)), 0);
	CHECK_EQ(got, v); /* not destructive: contents kept, map-only or not */
	gmem_destroy(gm);
}

/* A budget of 4: past it, map-only; restoring part of an extent returns the whole extent. */
static void test_small_budget(void)
{
	struct gmem *gm = make(2ULL << 20, false, 4);
	struct gmem_conv_result res;
	struct gmem_stats st;
	uint64_t v = 0xfeed, got = 0;
	unsigned int i;
	const uint64_t first[] = { 1, 3, 5, 7 };

	for (i = 0; i < 4; i++)
		CHECK_EQ(gmem_convert(gm, first[i] * PAGE, PAGE, true, &res), 0);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 4);
	CHECK_EQ(gmem_convert(gm, 9 * PAGE, PAGE, true, &res), 0); /* a fifth extent: map-only */
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 4);
	CHECK(refused(gm, 9 * PAGE));
	CHECK_EQ(gmem_convert(gm, 2 * PAGE, PAGE, true, &res), 0); /* joins 1 and 3: one fewer */
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 3);
	CHECK_EQ(gmem_convert(gm, 11 * PAGE, PAGE, true, &res), 0);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 4);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.revoked_extents, 4);
	CHECK_EQ(st.revoke_skipped, 1);
	/* Page 2 back to shared would split [1, 4) into two extents, a fifth: all of it returns. */
	CHECK_EQ(gmem_convert(gm, 2 * PAGE, PAGE, false, &res), 0);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 3);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.revoked_extents, 3);
	CHECK_EQ(st.revoke_skipped, 2);
	CHECK_EQ(gmem_write(gm, 2 * PAGE, &v, sizeof(v)), 0);
	CHECK_EQ(gmem_read(gm, 2 * PAGE, &got, sizeof(got)), 0);
	CHECK_EQ(got, v);
	CHECK(refused(gm, 1 * PAGE)); /* still private, now by the map alone */
	CHECK(refused(gm, 3 * PAGE));
	CHECK_EQ(gmem_convert(gm, 1 * PAGE, 3 * PAGE, false, &res), 0);
	CHECK_EQ(gmem_read(gm, 3 * PAGE, &got, sizeof(got)), 0);
	gmem_destroy(gm);
}

struct mp_fault {
	int fail;      /* what a failing call returns; 0: none fails */
	int only_prot; /* -1: every call fails; else only calls with this prot */
	unsigned int calls;
};

static int faulty_mprotect(void *addr, size_t len, int prot, void *opaque)
{
	struct mp_fault *f = opaque;

	f->calls++;
	if (f->fail && (f->only_prot < 0 || f->only_prot == prot))
		return f->fail;
	return mprotect(addr, len, prot) < 0 ? -errno : 0;
}

/* The memfd behind the (only) detached gmem: where the guest's private writes go. */
static int backing_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	char path[300], target[256];
	struct dirent *e;
	int fd = -1;
	ssize_t n;

	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			if (strstr(target, "memfd:veil-ram"))
				fd = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	CHECK(fd >= 0);
	return fd;
}

/*
 * Under --destructive a conversion punches.  A revocation that fails on the
 * way to private keeps the page map-only (the conversion succeeds); a
 * restore that fails on the way to shared refuses the conversion before the
 * punch, so the guest's private data is still there.
 */
static void test_mprotect_failure_destructive(void)
{
	struct gmem *gm = make(2ULL << 20, true, 0);
	struct mp_fault f = { .fail = -ENOMEM, .only_prot = PROT_NONE };
	const uint64_t gpa = 0x20000;
	uint8_t data[PAGE], view[PAGE], zero[PAGE] = { 0 };
	struct gmem_conv_result res;
	uint64_t gen0 = 0, gen1 = 0, calls0;
	struct gmem_stats st;
	bool private = false;
	int fd = backing_fd();

	gmem_get_stats(gm, &st);
	calls0 = st.protect_calls;
	gmem_set_mprotect_fn(gm, faulty_mprotect, &f);
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, true, &res), 0);
	CHECK_EQ(f.calls, 2); /* the revoke, then undoing it */
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 0);
	CHECK(refused(gm, gpa));
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.protect_calls - calls0, 2); /* both counted, failed or not */
	CHECK(st.protect_ns > 0);
	CHECK_EQ(st.revoke_skipped, 1);
	CHECK_EQ(st.revoked_extents, 0);
	f.fail = 0;
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, false, &res), 0);
	/* Not even the undo works: still private and refused, recorded as perhaps revoked. */
	f.fail = -ENOMEM;
	f.only_prot = -1;
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, true, &res), 0);
	CHECK(refused(gm, gpa));
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.revoked_extents, 1);
	f.fail = 0;
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, false, &res), 0);
	CHECK_EQ(gmem_read(gm, gpa, view, PAGE), 0);
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, true, &res), 0);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 1);

	memset(data, 0xa5, PAGE);
	CHECK_EQ(pwrite(fd, data, PAGE, (off_t)gpa), (long)PAGE); /* the guest's private data */
	CHECK_EQ(gmem_generation(gm, gpa, &gen0), 0);
	f.fail = -ENOMEM;
	f.calls = 0;
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, false, &res), -ENOMEM);
	CHECK_EQ(f.calls, 2); /* the range, then its whole extent */
	CHECK_STR_CONTAINS(res.culprit, "mprotect(PROT_READ|PROT_WRITE) of GPA 0x20000");
	CHECK_EQ(gmem_attr_is_private(gm, gpa, &private), 0);
	CHECK(private);
	CHECK_EQ(gmem_generation(gm, gpa, &gen1), 0);
	CHECK_EQ(gen1, gen0);
	CHECK_EQ(pread(fd, view, PAGE, (off_t)gpa), (long)PAGE);
	CHECK(memcmp(view, data, PAGE) == 0); /* not punched */
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.conversion_errors, 1);
	CHECK_EQ(st.revoked_extents, 1);

	f.fail = 0;
	CHECK_EQ(gmem_convert(gm, gpa, PAGE, false, &res), 0);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 0);
	CHECK_EQ(gmem_read(gm, gpa, view, PAGE), 0);
	CHECK(memcmp(view, zero, PAGE) == 0); /* destructive: zeroed once it succeeded */
	gmem_destroy(gm);
}

/* Lazy restore: shares one page at a time cost no mprotect; the first access restores the run. */
static void test_lazy_restore(void)
{
	struct gmem *gm = make(2ULL << 20, false, 8);
	struct gmem_conv_result res;
	struct gmem_stats st;
	uint64_t calls0, v = 0x1a2b, got = 0;
	unsigned int i;

	gmem_set_lazy_restore(gm, true);
	CHECK_EQ(gmem_convert(gm, 2 * PAGE, 16 * PAGE, true, &res), 0); /* pages 2..17 */
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 1);
	gmem_get_stats(gm, &st);
	calls0 = st.protect_calls;
	for (i = 4; i < 12; i++)
		CHECK_EQ(gmem_convert(gm, i * PAGE, PAGE, false, &res), 0);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.protect_calls, calls0); /* nothing restored yet */
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 1);
	CHECK_EQ(gmem_write(gm, 5 * PAGE, &v, sizeof(v)), 0);
	CHECK_EQ(gmem_read(gm, 11 * PAGE, &got, sizeof(got)), 0);
	CHECK_EQ(gmem_read(gm, 5 * PAGE, &got, sizeof(got)), 0);
	CHECK_EQ(got, v);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.protect_calls, calls0 + 1); /* pages 4..11 in one call */
	CHECK_EQ(st.revoked_extents, 2);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 2);
	CHECK(refused(gm, 3 * PAGE)); /* the private neighbours stay private and unmapped */
	CHECK(refused(gm, 12 * PAGE));
	CHECK_EQ(gmem_convert(gm, 6 * PAGE, PAGE, true, &res), 0);
	CHECK_EQ(revoked_vmas(gm, 2ULL << 20), 3);
	CHECK(refused(gm, 6 * PAGE));
	gmem_destroy(gm);
}

int main(void)
{
	test_small_budget();
	test_mprotect_failure_destructive();
	test_alternate_pages_within_budget();
	test_lazy_restore();
	return test_done("revoke");
}
