/* fuzz: split virtqueues (vq_configure, vq_pop, vq_pop_unpinned, vq_push, copies, indirect tables, event indices) against a hostile driver, checked by a reference walk. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_vq.h"
#include "log.h"
#include "virtqueue.h"

#define MAX_HELD 8
#define MAX_POPS 4096 /* per round: far beyond any honest ring, so a livelock shows */

struct st {
	struct vq_drv d;
	struct virtqueue vq;
	struct vq_req *req[MAX_HELD + 1];
	unsigned long good, bad, broken, refused; /* outcomes seen: a fuzzer stuck on one tests little */
	unsigned long indirect, irqs, no_irqs;
	/* EVENT_IDX: the used idx at the last interrupt decision, as the device must keep it. */
	uint16_t sig;
	bool sig_valid;
};

static void configure(struct st *s)
{
	struct vq_drv *d = &s->d;
	struct fuzz *f = d->f;
	uint16_t size = fuzz_one_in(f, 16) ? (uint16_t)fuzz_value(f, 64, 2) :
			fuzz_one_in(f, 8) ? VQ_MAX_SIZE : (uint16_t)(1u << fuzz_below(f, 9));
	uint64_t dt = drv_pick_ring(f, DESC, 16), a = drv_pick_ring(f, AVAIL, 2);
	uint64_t u = drv_pick_ring(f, USED, 4), feat = fuzz_next(f);
	int ret;

	/* The ring features, each taken half the time. */
	vq_set_features(&s->vq, feat);
	d->indirect = feat >> VIRTIO_RING_F_INDIRECT_DESC & 1;
	d->event_idx = feat >> VIRTIO_RING_F_EVENT_IDX & 1;
	s->sig_valid = false;
	ret = vq_configure(&s->vq, size, dt, a, u);

	if (ret) {
		/* All or nothing: a refused layout explains itself and leaves the queue unconfigured. */
		CHECK(!drv_layout_ok(size, dt, a, u));
		CHECK_EQ(ret, -EINVAL);
		CHECK(s->vq.error[0] && !s->vq.ready && !s->vq.size);
		s->refused++;
		size = (uint16_t)(1u << fuzz_below(f, 9));
		dt = DESC, a = AVAIL, u = USED;
		CHECK_EQ(vq_configure(&s->vq, size, dt, a, u), 0);
	} else {
		CHECK(drv_layout_ok(size, dt, a, u));
	}
	d->size = size, d->desc = dt, d->avail = a, d->used = u;
	d->avail_idx = 0;
	if (fuzz_one_in(f, 4)) { /* a queue that has run a while: its indices near the wrap */
		d->avail_idx = (uint16_t)(0xffff - fuzz_below(f, 2 * size));
		s->vq.last_avail = s->vq.used_idx = d->avail_idx;
	}
	drv_kick(d);
}

/*
 * Honest chains of random shape over distinct descriptors, published in the
 * avail ring.  With INDIRECT, some are 0 to 2 direct descriptors and then a
 * table with the rest (virtio 1.2 §2.7.5.3.2 allows the mix).
 */
static void build_chains(struct vq_drv *d)
{
	struct fuzz *f = d->f;
	uint16_t next = (uint16_t)fuzz_below(f, d->size), left = d->size, nchains;

	nchains = (uint16_t)(1 + fuzz_below(f, d->size < 16 ? d->size : 16));
	for (uint16_t c = 0; c < nchains && left; c++) {
		uint16_t len = (uint16_t)(1 + fuzz_below(f, fuzz_one_in(f, 8) ? 160 : 6)), head = next;
		uint16_t nread = (uint16_t)fuzz_below(f, len + 1u), ndirect = len;
		bool ind = d->indirect && fuzz_one_in(f, 3);

		if (ind)
			ndirect = (uint16_t)fuzz_below(f, len < 3 ? len : 3);
		if (ind && ndirect + 1 > left)
			ind = false, ndirect = len;
		if (!ind)
			ndirect = len = len < left ? len : left;
		for (uint16_t k = 0; k < ndirect; k++, left--) {
			uint32_t n = (uint32_t)(1 + fuzz_below(f, 4096));
			uint16_t i = next;

			next = (uint16_t)((next + 1) & (d->size - 1));
			drv_put_desc(d, i, BUF + fuzz_below(f, BUF_LEN - n), n,
				     (k >= nread ? VIRTQ_DESC_F_WRITE : 0) |
				     (k + 1 < len ? VIRTQ_DESC_F_NEXT : 0), next);
		}
		if (ind) {
			struct desc x;

			drv_put_table(d, len - ndirect, nread > ndirect ? nread - ndirect : 0, &x);
			drv_put_desc(d, next, x.addr, x.len, x.flags, x.next);
			next = (uint16_t)((next + 1) & (d->size - 1));
			left--;
		}
		drv_publish(d, head);
	}
	drv_kick(d);
}

static void check_req(struct st *s, const struct vq_req *r, bool pin)
{
	struct vq_seg want[VQ_MAX_SEGS];
	uint64_t in = 0, out = 0;
	unsigned int nr, k;

	CHECK(r->head < s->d.size);
	CHECK_EQ(drv_ref_walk(&s->d, r->head, pin, want, &nr), 0);
	CHECK_EQ(r->nr_segs, nr);
	/* An indirect table may hold more than the queue: VQ_MAX_SEGS bounds it still. */
	CHECK(r->nr_segs <= (s->d.indirect ? VQ_MAX_SEGS : s->d.size) && r->nr_out <= r->nr_segs);
	CHECK_EQ(r->nr_pins, pin ? r->nr_segs : 0);
	for (k = 0; k < r->nr_segs && k < nr; k++) {
		const struct vq_seg *g = &r->seg[k];

		CHECK(g->gpa == want[k].gpa && g->len == want[k].len && g->write == want[k].write);
		CHECK_EQ(g->write, k >= r->nr_out);
		CHECK(pin ? g->hva == s->d.ram + g->gpa : g->hva == NULL);
		*(g->write ? &in : &out) += g->len;
	}
	CHECK(r->in_len == in && r->out_len == out);
}

/* The model of a copy: between the shadow at the segments' GPAs, as one stream from off, and flat. */
static void shadow_copy(uint8_t *shadow, const struct vq_seg *seg, unsigned int nr, uint64_t off,
			uint8_t *flat, uint64_t len, bool to_shadow)
{
	for (unsigned int k = 0; k < nr && len; k++) {
		uint64_t m = seg[k].len;

		if (off >= m) {
			off -= m;
			continue;
		}
		m = m - off < len ? m - off : len;
		if (to_shadow)
			memcpy(shadow + seg[k].gpa + off, flat, m);
		else
			memcpy(flat, shadow + seg[k].gpa + off, m);
		flat += m, len -= m, off = 0;
	}
}

/* The device's copies land exactly where the segments' GPAs say, and nowhere else. */
static void copies(struct st *s, struct vq_req *r)
{
	struct fuzz *f = s->d.f;
	uint8_t buf[8192], want[8192];
	uint64_t off = fuzz_below(f, r->in_len + r->out_len + 8), n = fuzz_below(f, 8192), got;

	for (unsigned int k = r->nr_out; k < r->nr_segs; k++) /* the rings stay out of it */
		if (r->seg[k].gpa < BUF || r->seg[k].gpa + r->seg[k].len > BUF + BUF_LEN)
			return;
	for (uint64_t i = 0; i < n; i++)
		buf[i] = (uint8_t)fuzz_next(f);
	got = vq_copy_to(r, off, buf, n);
	CHECK_EQ(got, off < r->in_len ? (n < r->in_len - off ? n : r->in_len - off) : 0);
	shadow_copy(s->d.shadow, r->seg + r->nr_out, r->nr_segs - r->nr_out, off, buf, got, true);
	got = vq_copy_from(r, off, buf, n);
	CHECK_EQ(got, off < r->out_len ? (n < r->out_len - off ? n : r->out_len - off) : 0);
	shadow_copy(s->d.shadow, r->seg, r->nr_out, off, want, got, false);
	CHECK(memcmp(buf, want, got) == 0);
}

/* Completes r; the used element and idx go into the shadow, as the only device writes to RAM. */
static void push(struct st *s, struct vq_req *r)
{
	struct vq_drv *d = &s->d;
	uint32_t written = (uint32_t)fuzz_value(d->f, r->in_len, 4), elem[2] = { r->head };
	uint16_t idx = (uint16_t)(s->vq.used_idx + 1);

	elem[1] = written < r->in_len ? written : (uint32_t)r->in_len;
	memcpy(d->shadow + d->used + 4 + 8ULL * (s->vq.used_idx & (d->size - 1)), elem, 8);
	memcpy(d->shadow + d->used + 2, &idx, 2);
	CHECK_EQ(vq_push(&s->vq, r, written), 0);
	CHECK(r->nr_pins == 0 && r->nr_segs == 0);
	CHECK_EQ(s->vq.used_idx, idx);
	if (idx == s->sig) /* the used idx came round to the last decision: the next one interrupts */
		s->sig_valid = false;
}

/* One pop, its outcome predicted from the shadow: 0 empty, -1 broken ring, 1 popped (held or pushed). */
static int pop_one(struct st *s, unsigned int *held)
{
	struct vq_drv *d = &s->d;
	uint16_t last = s->vq.last_avail, pending = (uint16_t)(drv_get16(d, d->avail + 2) - last);
	struct vq_req *r = s->req[*held];
	bool pin = !fuzz_one_in(d->f, 8);
	struct vq_seg want[VQ_MAX_SEGS];
	unsigned int nr, bad;
	uint16_t head;
	int ret;

	if (!pending && d->event_idx) {
		/* Found empty, the device asks for a kick at last (avail_event), then looks again. */
		memcpy(d->shadow + d->used + 4 + 8ULL * d->size, &last, 2);
		pending = (uint16_t)(drv_get16(d, d->avail + 2) - last);
	}
	head = drv_get16(d, d->avail + 4 + 2ULL * (last & (d->size - 1)));
	ret = pin ? vq_pop(&s->vq, r) : vq_pop_unpinned(&s->vq, r);

	if (!pending) {
		CHECK_EQ(ret, 0);
		return 0;
	}
	if (pending > d->size || head >= d->size) {
		/* A broken ring consumes nothing and keeps saying so: NEEDS_RESET, not a loop. */
		CHECK_EQ(ret, -EPROTO);
		CHECK(s->vq.error[0] && s->vq.last_avail == last);
		CHECK_EQ(vq_pop(&s->vq, r), -EPROTO);
		s->broken++;
		return -1;
	}
	CHECK_EQ(s->vq.last_avail, (uint16_t)(last + 1));
	CHECK_EQ(r->head, head);
	bad = drv_ref_walk(d, head, pin, want, &nr);
	if (bad) {
		if (!(vqe_bit(ret) & bad))
			fprintf(stderr, "head %u: vq_pop %d, expected one of mask 0x%x\n", head, ret, bad);
		CHECK(vqe_bit(ret) & bad);
		CHECK(s->vq.error[0] && r->nr_pins == 0);
		if (ret == -EACCES && r->nr_segs) {
			/* Refused for private memory: the chain described unpinned (vq_fail_status). */
			unsigned int n2;

			CHECK(!drv_ref_walk(d, head, false, want, &n2) && n2 == r->nr_segs);
		} else {
			CHECK_EQ(r->nr_segs, 0);
		}
		s->bad++;
		push(s, r);
		return 1;
	}
	CHECK_EQ(ret, 1);
	s->good++;
	check_req(s, r, pin);
	if (pin)
		copies(s, r);
	if (*held < MAX_HELD && fuzz_one_in(d->f, 3))
		(*held)++; /* completed later, out of order */
	else
		push(s, r);
	return 1;
}

/* The device side: pop until empty or broken (true); then complete what it held. */
static bool serve(struct st *s)
{
	unsigned int held = 0, pops;
	int ret = 1;

	for (pops = 0; pops < MAX_POPS && ret > 0 && !test_failures; pops++)
		ret = pop_one(s, &held);
	CHECK(pops < MAX_POPS);
	while (held) {
		unsigned int k = (unsigned int)fuzz_below(s->d.f, held);
		struct vq_req *r = s->req[k];

		push(s, r);
		s->req[k] = s->req[--held];
		s->req[held] = r;
	}
	return ret < 0;
}

/*
 * The interrupt decision after a round: without EVENT_IDX, NO_INTERRUPT
 * decides; with it, whether the used idx crossed used_event since the last
 * decision (or there was none).  An interrupt lost here hangs a driver.
 */
static void check_interrupt(struct st *s)
{
	struct vq_drv *d = &s->d;
	uint16_t now = s->vq.used_idx, event = drv_get16(d, d->avail + 4 + 2ULL * d->size);
	bool want = d->event_idx ? !s->sig_valid || drv_crossed(event, now, s->sig) :
				   !(drv_get16(d, d->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	bool got = vq_should_interrupt(&s->vq);

	if (got != want)
		fprintf(stderr, "interrupt %d, expected %d: event_idx %d, used_event %u, used %u, "
			"last decision %u (valid %d)\n", got, want, d->event_idx, event, now, s->sig,
			s->sig_valid);
	CHECK_EQ(got, want);
	if (d->event_idx)
		s->sig = now, s->sig_valid = true;
	*(got ? &s->irqs : &s->no_irqs) += 1;
}

static void one(struct st *s)
{
	struct vq_drv *d = &s->d;
	struct gmem_conv_result res;
	unsigned int rounds = 1 + (unsigned int)fuzz_below(d->f, 4);

	vq_init(&s->vq, d->gm, "fuzz q0");
	configure(s);
	for (unsigned int r = 0; r < rounds && !test_failures; r++) {
		build_chains(d);
		for (unsigned int n = (unsigned int)fuzz_below(d->f, 5); n; n--)
			drv_damage(d);
		if (serve(s)) { /* the driver resets the device and starts over */
			vq_reset(&s->vq);
			configure(s);
			continue;
		}
		check_interrupt(s);
	}
	s->indirect += vq_stats(&s->vq).indirect;
	/* Everything the device wrote is in the shadow; a stray write, or one to the guard, shows. */
	CHECK(memcmp(d->ram, d->shadow, MEM) == 0);
	/*
	 * Every pin is gone: a leaked one makes the non-waiting discard fail.
	 * Not every iteration, as punching and refaulting RAM is slow; a leak
	 * stays, so it still shows, a few iterations late.
	 */
	if (fuzz_one_in(d->f, 16)) {
		CHECK_EQ(gmem_discard_try(d->gm, 0, GUARD, &res), 0);
		memset(d->shadow, 0, GUARD);
	}
	vq_reset(&s->vq);
}

#ifdef VEIL_LIBFUZZER
/* RAM and its shadow back to zeros, the guard aside: every input starts from the same state. */
static void drv_clean(struct vq_drv *d)
{
	memset(d->ram, 0, GUARD);
	memset(d->shadow, 0, GUARD);
	memset(d->ram + GUARD + GUARD_LEN, 0, MEM - GUARD - GUARD_LEN);
	memset(d->shadow + GUARD + GUARD_LEN, 0, MEM - GUARD - GUARD_LEN);
}

/* The input is one()'s choices, for up to 4 iterations while it lasts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st s;
	static struct fuzz f;

	if (!s.d.gm) {
		log_set_level(LOG_ERR);
		drv_setup(&s.d, &f);
		for (unsigned int i = 0; i <= MAX_HELD; i++)
			s.req[i] = calloc(1, sizeof(struct vq_req));
	}
	fuzz_lf_begin(&f, "fuzz_virtqueue", data, size);
	drv_clean(&s.d);
	for (unsigned int n = 0; n < 4 && !test_failures && (n == 0 || fuzz_lf_more(&f)); n++)
		one(&s);
	fuzz_lf_end(&f);
	return 0;
}
#else
int main(void)
{
	struct gmem_conv_result res;
	struct st s = { 0 };
	struct fuzz f;

	fuzz_init(&f, "fuzz_virtqueue", 0x7669727471, 3000);
	drv_setup(&s.d, &f);
	for (unsigned int i = 0; i <= MAX_HELD; i++)
		s.req[i] = calloc(1, sizeof(struct vq_req));
	FUZZ_FOR_EACH(&f, i) {
		one(&s);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_virtqueue: %lu requests, %lu malformed chains, %lu broken rings, "
	       "%lu layouts refused, %lu indirect tables, %lu interrupts, %lu suppressed\n", s.good,
	       s.bad, s.broken, s.refused, s.indirect, s.irqs, s.no_irqs);
	if (!test_failures && f.iters >= 1000)
		CHECK(s.good > f.iters && s.bad > f.iters / 10 && s.broken > f.iters / 20 &&
		      s.refused > f.iters / 20 && s.indirect > f.iters / 10 &&
		      s.irqs > f.iters / 10 && s.no_irqs > f.iters / 10);
	CHECK_EQ(gmem_discard_try(s.d.gm, 0, GUARD, &res), 0);
	for (unsigned int i = 0; i <= MAX_HELD; i++)
		free(s.req[i]);
	drv_teardown(&s.d);
	return test_done("fuzz_virtqueue");
}
#endif
