/*
 * unit: a long-term pin that will not release stops the punch or conversion
 * that needed it (I1, I5, I6).  With a release forced to fail (-EINTR, which
 * io_uring_unregister_buffers can return on 6.1 kernels), gmem_discard,
 * gmem_convert and gmem_roundtrip fail with nothing changed and the pin
 * named; a read_fixed through a real io_uring registered buffer over
 * detached (memfd) gmem then lands in the guest's page, not in an orphan.
 */
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "gmem.h"
#include "test.h"

#define MEM (4ULL << 20)
#define PAGE 4096ULL
#define GPA 0x10000ULL

static uint8_t pattern[PAGE];

struct ring_reg {
	struct io_uring *ring; /* NULL: no ring, only the bookkeeping */
	struct iovec iov;
	int fail;              /* the release returns this and keeps the pin */
	bool held;
	unsigned int releases, restores;
};

static int reg_release(void *opaque)
{
	struct ring_reg *r = opaque;
	int ret = 0;

	r->releases++;
	if (r->fail)
		return r->fail;
	if (r->ring)
		ret = io_uring_unregister_buffers(r->ring);
	if (!ret)
		r->held = false;
	return ret;
}

static int reg_restore(void *opaque)
{
	struct ring_reg *r = opaque;
	int ret = 0;

	r->restores++;
	if (r->ring)
		ret = io_uring_register_buffers(r->ring, &r->iov, 1);
	if (!ret)
		r->held = true;
	return ret;
}

static const struct gmem_longterm_ops reg_ops = {
	.release = reg_release, .restore = reg_restore, .name = "test-ring",
};

static struct gmem *make(enum gmem_model model, bool revoke)
{
	struct gmem_config cfg = {
		.vm_fd = -1, .model = model, .revoke_host_mapping = revoke,
		.drain_timeout_ns = 200000000ULL, .max_retries = 4,
	};
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct gmem *gm = NULL;

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &gm), 0);
	return gm;
}

static uint64_t gen(struct gmem *gm, uint64_t gpa)
{
	uint64_t g = 0;

	CHECK_EQ(gmem_generation(gm, gpa, &g), 0);
	return g;
}

/* Shared, generation as before, every byte still `byte`. */
static void check_unchanged(struct gmem *gm, uint64_t gpa, uint64_t gen0, uint8_t byte)
{
	uint8_t buf[PAGE], want[PAGE];
	bool private = true;

	CHECK_EQ(gmem_attr_is_private(gm, gpa, &private), 0);
	CHECK(!private);
	CHECK_EQ(gen(gm, gpa), gen0);
	memset(want, byte, PAGE);
	CHECK_EQ(gmem_read(gm, gpa, buf, PAGE), 0);
	CHECK(memcmp(buf, want, PAGE) == 0);
}

/* A fixed-buffer read of one page from the pipe into buf, completed by writing `data`. */
static int read_fixed(struct io_uring *ring, int p[2], void *buf, const void *data)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int res;

	io_uring_prep_read_fixed(sqe, p[0], buf, PAGE, 0, 0);
	CHECK_EQ(io_uring_submit(ring), 1);
	CHECK_EQ(write(p[1], data, PAGE), (long)PAGE);
	CHECK_EQ(io_uring_wait_cqe(ring, &cqe), 0);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* The reproducer: discard with a release that fails, then the device's write. */
static void test_discard_stops_and_write_lands(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, false);
	struct io_uring ring;
	struct ring_reg reg = { .ring = &ring };
	struct gmem_conv_result res;
	uint8_t fill[PAGE], view[PAGE];
	uint64_t gen0, bytes0, bytes;
	struct gmem_stats st;
	void *hva;
	int p[2];

	memset(fill, 0xee, PAGE);
	CHECK_EQ(gmem_write(gm, GPA, fill, PAGE), 0);
	if (io_uring_queue_init(4, &ring, 0)) {
		fprintf(stderr, "no io_uring here: the registered-buffer half is not run\n");
		gmem_destroy(gm);
		return;
	}
	CHECK(pipe(p) == 0);
	CHECK_EQ(gmem_translate(gm, GPA, PAGE, &hva), 0);
	reg.iov = (struct iovec){ hva, PAGE };
	CHECK_EQ(io_uring_register_buffers(&ring, &reg.iov, 1), 0);
	reg.held = true;
	CHECK_EQ(gmem_longterm_register(gm, GPA, PAGE, &reg_ops, &reg), 0);
	gen0 = gen(gm, GPA);
	CHECK_EQ(gmem_allocated_bytes(gm, &bytes0), 0);

	reg.fail = -EINTR;
	CHECK_EQ(gmem_discard(gm, GPA, PAGE, &res), -EBUSY);
	CHECK_STR_CONTAINS(res.culprit, "long-term pin test-ring at GPA 0x10000");
	CHECK_STR_CONTAINS(res.culprit, strerror(EINTR));
	check_unchanged(gm, GPA, gen0, 0xee); /* not punched */
	CHECK_EQ(gmem_allocated_bytes(gm, &bytes), 0);
	CHECK_EQ(bytes, bytes0);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.punches, 0);
	CHECK_EQ(st.conversion_errors, 1);
	/* The device's write through the pin that stayed: it is in the guest's page. */
	CHECK_EQ(read_fixed(&ring, p, hva, pattern), (int)PAGE);
	CHECK_EQ(gmem_read(gm, GPA, view, PAGE), 0);
	CHECK(memcmp(view, pattern, PAGE) == 0);

	/* Once it releases, the punch goes ahead and the pin comes back over the new page. */
	reg.fail = 0;
	CHECK_EQ(gmem_discard(gm, GPA, PAGE, &res), 0);
	CHECK_EQ(reg.releases, 2);
	CHECK_EQ(reg.restores, 1);
	CHECK(reg.held);
	CHECK_EQ(gen(gm, GPA), gen0 + 1);
	CHECK_EQ(gmem_read(gm, GPA, view, PAGE), 0);
	CHECK_EQ(view[0], 0);
	CHECK_EQ(view[PAGE - 1], 0);
	CHECK_EQ(read_fixed(&ring, p, hva, pattern), (int)PAGE);
	CHECK_EQ(gmem_read(gm, GPA, view, PAGE), 0);
	CHECK(memcmp(view, pattern, PAGE) == 0);

	gmem_longterm_unregister(gm, &reg);
	io_uring_queue_exit(&ring);
	close(p[0]);
	close(p[1]);
	gmem_destroy(gm);
}

/*
 * Two pins over the range; the first releases, the second will not.  The
 * conversion fails with nothing changed, and the first is restored.
 */
static void test_convert_and_roundtrip_stop(void)
{
	struct gmem *gm = make(GMEM_MODEL_HOST, true);
	struct ring_reg a = { .held = true }, b = { .held = true, .fail = -EINTR };
	uint64_t gen0 = gen(gm, GPA), gen1 = gen(gm, GPA + PAGE);
	struct gmem_conv_result res;
	uint8_t fill[2 * PAGE];
	struct gmem_stats st;
	bool private = false;

	memset(fill, 0x5a, sizeof(fill));
	CHECK_EQ(gmem_write(gm, GPA, fill, sizeof(fill)), 0);
	CHECK_EQ(gmem_longterm_register(gm, GPA + PAGE, PAGE, &reg_ops, &b), 0);
	CHECK_EQ(gmem_longterm_register(gm, GPA, PAGE, &reg_ops, &a), 0); /* tried first */

	CHECK_EQ(gmem_convert(gm, GPA, 2 * PAGE, true, &res), -EBUSY);
	CHECK_STR_CONTAINS(res.culprit, "long-term pin test-ring at GPA 0x11000");
	CHECK_EQ(a.releases, 1);
	CHECK_EQ(a.restores, 1); /* released for the failed conversion, and back */
	CHECK(a.held && b.held);
	check_unchanged(gm, GPA, gen0, 0x5a);
	check_unchanged(gm, GPA + PAGE, gen1, 0x5a);

	CHECK_EQ(gmem_roundtrip(gm, GPA, 2 * PAGE, &res), -EBUSY);
	CHECK_STR_CONTAINS(res.culprit, "would not release");
	CHECK_EQ(a.restores, 2);
	CHECK(a.held && b.held);
	check_unchanged(gm, GPA, gen0, 0x5a);
	check_unchanged(gm, GPA + PAGE, gen1, 0x5a);
	gmem_get_stats(gm, &st);
	CHECK_EQ(st.conversions, 0);
	CHECK_EQ(st.conversion_errors, 2);

	/* It releases now: the conversion goes ahead, and both come back on the way to shared. */
	b.fail = 0;
	CHECK_EQ(gmem_convert(gm, GPA, 2 * PAGE, true, &res), 0);
	CHECK(!a.held && !b.held);
	CHECK_EQ(gmem_attr_is_private(gm, GPA + PAGE, &private), 0);
	CHECK(private);
	CHECK_EQ(gen(gm, GPA + PAGE), gen1 + 1);
	CHECK_EQ(gmem_convert(gm, GPA, 2 * PAGE, false, &res), 0);
	CHECK(a.held && b.held);
	check_unchanged(gm, GPA + PAGE, gen1 + 2, 0x5a);
	CHECK_EQ(gmem_roundtrip(gm, GPA, 2 * PAGE, &res), 0);
	check_unchanged(gm, GPA, gen0 + 3, 0x5a);
	gmem_destroy(gm);
}

/* §2b: the kernel answers EAGAIN at a page while a pin of ours holds it. */
struct pin_kernel {
	struct ring_reg *pins[2];
	uint64_t gpas[2];
	unsigned int calls;
};

static int pin_attrs2(int fd, uint64_t off, uint64_t size, uint64_t attrs, uint64_t *eoff,
		      void *opaque)
{
	struct pin_kernel *k = opaque;
	unsigned int i;

	(void)fd;
	k->calls++;
	for (i = 0; i < 2 && attrs; i++) {
		if (k->pins[i]->held && k->gpas[i] >= off && k->gpas[i] < off + size) {
			*eoff = k->gpas[i];
			return -EAGAIN;
		}
	}
	return 0;
}

static void test_inplace_eagain_stops(void)
{
	struct gmem *gm = make(GMEM_MODEL_IN_PLACE, false);
	struct ring_reg a = { .held = true }, b = { .held = true, .fail = -EINTR };
	struct pin_kernel k = { .pins = { &a, &b }, .gpas = { 0x2000, 0x4000 } };
	uint64_t gen0 = gen(gm, 0x4000);
	struct gmem_conv_result res;
	bool private = true;

	gmem_set_attrs2_fn(gm, pin_attrs2, &k);
	CHECK_EQ(gmem_longterm_register(gm, 0x4000, PAGE, &reg_ops, &b), 0);
	CHECK_EQ(gmem_longterm_register(gm, 0x2000, PAGE, &reg_ops, &a), 0);
	CHECK_EQ(gmem_convert(gm, 0x0, 0x8000, true, &res), -EBUSY);
	CHECK_EQ(k.calls, 2); /* EAGAIN at a, released; EAGAIN at b, which stays: no futile retries */
	CHECK_STR_CONTAINS(res.culprit, "long-term pin test-ring at GPA 0x4000");
	CHECK(!strstr(res.culprit, "a reference the kernel holds"));
	CHECK_EQ(a.restores, 1);
	CHECK(a.held && b.held);
	CHECK_EQ(gmem_attr_is_private(gm, 0x4000, &private), 0);
	CHECK(!private);
	CHECK_EQ(gen(gm, 0x4000), gen0);

	b.fail = 0;
	k.calls = 0;
	CHECK_EQ(gmem_convert(gm, 0x0, 0x8000, true, &res), 0);
	CHECK_EQ(k.calls, 3);
	CHECK_EQ(gmem_attr_is_private(gm, 0x4000, &private), 0);
	CHECK(private);
	CHECK_EQ(gen(gm, 0x4000), gen0 + 1);
	gmem_destroy(gm);
}

int main(void)
{
	unsigned int i;

	for (i = 0; i < PAGE; i++)
		pattern[i] = (uint8_t)(i * 13 + 1); /* 01 0e 1b ... */
	test_discard_stops_and_write_lands();
	test_convert_and_roundtrip_stop();
	test_inplace_eagain_stops();
	return test_done("longterm");
}
