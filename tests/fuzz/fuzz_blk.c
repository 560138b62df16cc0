/* fuzz: virtio-blk behind virtio-mmio, fed request chains by a hostile driver; checked at the backend, in the used ring and in RAM. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "fuzz.h"
#include "fuzz_vdev.h"
#include "log.h"
#include "mmio.h"

#define SECTORS 64
#define SLOT 0x3000ULL /* one honest request's buffers: header at 0, data at 0x100, status at 0x2f00 */
#define MAX_CHAINS 16

/* What the shadow says about a chain the device will consume, taken before it runs. */
struct chain {
	uint16_t head;
	bool valid, used, refused; /* refused: for private memory only (IOERR) */
	uint64_t in_len, out_len, status_gpa;
	uint32_t type;
};

struct t {
	struct vq_drv d;
	struct virtio_blk blk[2]; /* read-write, read-only */
	struct virtio_blk *b;
	struct virtio_mmio mmio;
	uint8_t disk[SECTORS * 512];
	struct blk_io *pending[BLK_MAX_INFLIGHT];
	unsigned int npending, nchains;
	struct chain chain[VQ_MAX_SIZE];
	bool strict;      /* no buffer overlaps a ring: RAM is predictable byte for byte */
	bool irq;
	unsigned long ios, answered, broken, strict_rounds, ok; /* coverage */
};

static void set_irq(void *opaque, bool level)
{
	((struct t *)opaque)->irq = level;
}

/* The backend sees only sane I/O: in the disk, in RAM, in buffers of the right direction. */
static int be_submit(void *opaque, struct blk_io *io)
{
	struct t *t = opaque;
	struct vq_req *r = io->req;
	bool rw = io->op == BLK_OP_READ || io->op == BLK_OP_WRITE;
	uint64_t sum = 0;

	CHECK(!t->b->read_only || io->op == BLK_OP_READ || io->op == BLK_OP_FLUSH);
	if (io->op != BLK_OP_FLUSH)
		CHECK(io->len && !(io->offset % 512) && !(io->len % 512) &&
		      io->offset <= sizeof(t->disk) && io->len <= sizeof(t->disk) - io->offset);
	CHECK(!rw || (io->niov >= 1 && io->niov <= BLK_SEG_MAX));
	for (unsigned int i = 0; rw && i < io->niov; i++) {
		uint8_t *p = io->iov[i].iov_base;
		size_t n = io->iov[i].iov_len;
		bool in_seg = false;

		for (unsigned int k = 0; k < r->nr_segs; k++)
			in_seg |= r->seg[k].write == (io->op == BLK_OP_READ) &&
				  p >= (uint8_t *)r->seg[k].hva &&
				  p + n <= (uint8_t *)r->seg[k].hva + r->seg[k].len;
		CHECK(in_seg && n && p >= t->d.ram && p + n <= t->d.ram + MEM &&
		      !hits_guard((uint64_t)(p - t->d.ram), n));
		sum += n;
	}
	CHECK(!rw || sum == io->len);
	/* Data is every byte of its direction but the header or the status byte, no more. */
	CHECK(io->op != BLK_OP_READ || io->len == r->in_len - 1);
	CHECK(io->op != BLK_OP_WRITE || io->len == r->out_len - 16);
	t->ios++;
	if (fuzz_one_in(t->d.f, 16))
		return -EIO;
	t->pending[t->npending++] = io;
	return 0;
}

static const struct blk_backend_ops be_ops = { .submit = be_submit };

static void be_complete(struct t *t, struct blk_io *io)
{
	uint64_t off = io->offset;

	for (unsigned int i = 0; i < io->niov; off += io->iov[i].iov_len, i++) {
		if (io->op == BLK_OP_READ)
			memcpy(io->iov[i].iov_base, t->disk + off, io->iov[i].iov_len);
		else if (io->op == BLK_OP_WRITE)
			memcpy(t->disk + off, io->iov[i].iov_base, io->iov[i].iov_len);
	}
	if (io->op == BLK_OP_DISCARD || io->op == BLK_OP_WRITE_ZEROES)
		memset(t->disk + io->offset, 0, io->len);
	io->result = fuzz_one_in(t->d.f, 16) ? -EIO : (int)(io->len >> fuzz_one_in(t->d.f, 16));
	blk_io_done(io);
}

/* Bring-up with the layout sometimes bad; true if the queue runs. */
static bool bring_up(struct t *t)
{
	struct vq_drv *d = &t->d;
	struct fuzz *f = d->f;
	uint16_t size = fuzz_one_in(f, 16) ? (uint16_t)fuzz_value(f, 64, 2) :
			(uint16_t)(1u << fuzz_below(f, 9));
	uint64_t dt = drv_pick_ring(f, DESC, 16), a = drv_pick_ring(f, AVAIL, 2);
	uint64_t u = drv_pick_ring(f, USED, 4);
	struct virtqueue *vq = &t->b->vdev.vq[0];
	bool ok = drv_mmio_up(d, &t->mmio, t->b->vdev.features & fuzz_next(f), size, dt, a, u);

	if (ok && fuzz_one_in(f, 4)) /* a queue that has run a while: its indices near the wrap */
		vq->last_avail = vq->used_idx = d->avail_idx = (uint16_t)(0xffff - fuzz_below(f, 2 * size));
	/* Rings on top of each other change under the device: only crashes are checked then. */
	t->strict = ok && drv_rings_apart(d);
	if (ok)
		drv_kick(d);
	return ok;
}

/* One honest request of a random type in slot c, from descriptor *next on. */
static void build_one(struct t *t, unsigned int c, uint16_t *next, uint16_t *left)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
					  VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
					  VIRTIO_BLK_T_WRITE_ZEROES };
	struct fuzz *f = t->d.f;
	uint64_t slot = BUF + c * SLOT, data = slot + 0x100;
	uint32_t type = fuzz_one_in(f, 16) ? (uint32_t)fuzz_next(f) : types[fuzz_below(f, 6)];
	uint64_t hdr[2] = { type, fuzz_one_in(f, 8) ? fuzz_interesting(f) : fuzz_below(f, SECTORS + 4) };
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct desc ds[6];
	unsigned int n = 0, ndata = (unsigned int)fuzz_below(f, 4);

	drv_put(&t->d, slot, hdr, sizeof(hdr));
	ds[n++] = (struct desc){ slot, fuzz_one_in(f, 16) ? (uint32_t)fuzz_below(f, 32) : 16, 0, 0 };
	if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES) {
		uint64_t seg[2] = { fuzz_below(f, SECTORS + 4), fuzz_below(f, 8) | fuzz_below(f, 3) << 32 };

		drv_put(&t->d, data, seg, sizeof(seg));
		ds[n++] = (struct desc){ data, fuzz_one_in(f, 8) ? 32 : 16, 0, 0 };
		ndata = 0;
	}
	for (unsigned int k = 0; k < ndata; k++) {
		uint32_t len = fuzz_one_in(f, 4) ? (uint32_t)(1 + fuzz_below(f, 2048)) :
			       (uint32_t)(512 * (1 + fuzz_below(f, 4)));

		ds[n++] = (struct desc){ data, len, dev_writes ? VIRTQ_DESC_F_WRITE : 0, 0 };
		data += len;
	}
	if (!fuzz_one_in(f, 16))
		ds[n++] = (struct desc){ slot + 0x2f00, 1 + (uint32_t)fuzz_below(f, 2),
					 VIRTQ_DESC_F_WRITE, 0 };
	if (n > *left)
		return;
	drv_publish(&t->d, *next);
	for (unsigned int k = 0; k < n; k++, (*left)--) {
		uint16_t i = *next;

		*next = (uint16_t)((*next + 1) & (t->d.size - 1));
		drv_put_desc(&t->d, i, ds[k].addr, ds[k].len,
			     (uint16_t)(ds[k].flags | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0)), *next);
	}
}

/*
 * From the shadow: which chains the device consumes and what each may
 * write; true if the ring breaks.  RAM stays predictable (strict) unless
 * the device's writes land on what it reads later: rings, headers, each other.
 */
static bool predict(struct t *t)
{
	struct vq_drv *d = &t->d;
	uint16_t last = t->b->vdev.vq[0].last_avail;
	uint16_t pending = (uint16_t)(drv_get16(d, d->avail + 2) - last);
	struct vq_seg segs[VQ_MAX_SEGS];
	unsigned int nr;

	t->nchains = 0;
	drv_allow(d, d->used + 2, 4 + 8ULL * d->size); /* used idx, ring, avail_event */
	if (pending > d->size)
		return true;
	for (uint16_t k = 0; k < pending; k++) {
		struct chain *c = &t->chain[t->nchains++];
		uint8_t hdr[16] = { 0 };
		uint64_t got = 0;

		*c = (struct chain){ .head = drv_get16(d, d->avail + 4 + 2ULL * ((last + k) & (d->size - 1))) };
		if (c->head >= d->size)
			return true;
		unsigned int bad = drv_ref_walk(d, c->head, true, segs, &nr);

		if (bad) {
			/*
			 * Refused only for private memory: the device re-walks the chain without
			 * pinning and, if that holds and its last buffer is writable, fails the
			 * request with IOERR in the status byte, when that byte is shared RAM.
			 */
			if (bad == VQE_ACCES &&
			    !drv_ref_walk(d, c->head, false, segs, &nr) && nr && segs[nr - 1].write) {
				uint64_t at = segs[nr - 1].gpa + segs[nr - 1].len - 1;

				if (at < MEM && !hits_guard(at, 1)) {
					c->refused = true;
					c->status_gpa = at;
					if (drv_allow(d, at, 1))
						t->strict = false;
				}
			}
			continue;
		}
		for (unsigned int i = 0; i < nr; i++) {
			uint64_t m = segs[i].len < 16 - got ? segs[i].len : 16 - got;

			*(segs[i].write ? &c->in_len : &c->out_len) += segs[i].len;
			if (segs[i].write && drv_allow(d, segs[i].gpa, segs[i].len))
				t->strict = false;
			if (!segs[i].write && m) {
				memcpy(hdr + got, d->shadow + segs[i].gpa, m);
				got += m;
			}
		}
		c->valid = c->in_len > 0;
		c->status_gpa = segs[nr - 1].gpa + segs[nr - 1].len - 1;
		c->type = c->out_len >= 16 ? (uint32_t)fuzz_get(hdr, 4) : UINT32_MAX;
	}
	if (drv_allowed_any(d, d->desc, 16ULL * d->size) || drv_allowed_any(d, d->avail, 6 + 2ULL * d->size))
		t->strict = false;
	for (unsigned int k = 0; k < t->nchains && t->strict; k++)
		if (!drv_ref_walk(d, t->chain[k].head, true, segs, &nr))
			for (unsigned int i = 0; i < nr; i++)
				if (!segs[i].write && drv_allowed_any(d, segs[i].gpa, segs[i].len))
					t->strict = false;
	return false;
}

/* The used element for chain c: its length follows from its status, and the status is defined. */
static void check_used(struct t *t, struct chain *c, uint32_t len)
{
	uint8_t st = t->d.ram[c->status_gpa];

	c->used = true;
	if (c->refused) {
		/* Refused for private memory: IOERR, one byte written, unless the device kept none. */
		CHECK(len <= 1);
		if (len)
			CHECK_EQ(st, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (!c->valid) {
		CHECK_EQ(len, 0);
		return;
	}
	CHECK(st <= VIRTIO_BLK_S_UNSUPP);
	t->ok += st == VIRTIO_BLK_S_OK;
	if (c->type != UINT32_MAX && c->type > VIRTIO_BLK_T_WRITE_ZEROES)
		CHECK_EQ(st, VIRTIO_BLK_S_UNSUPP);
	if (st != VIRTIO_BLK_S_OK || c->type == VIRTIO_BLK_T_OUT || c->type == VIRTIO_BLK_T_FLUSH ||
	    c->type == VIRTIO_BLK_T_DISCARD || c->type == VIRTIO_BLK_T_WRITE_ZEROES)
		CHECK_EQ(len, 1);
	else if (c->type == VIRTIO_BLK_T_IN)
		CHECK_EQ(len, c->in_len);
	else if (c->type == VIRTIO_BLK_T_GET_ID)
		CHECK_EQ(len, 1 + (c->in_len - 1 < BLK_ID_BYTES ? c->in_len - 1 : BLK_ID_BYTES));
}

/* After a round: NEEDS_RESET iff the ring broke; every consumed chain used once; RAM as allowed. */
static void check_round(struct t *t, bool broken, uint16_t used0)
{
	struct vq_drv *d = &t->d;
	uint16_t used_idx, n = (uint16_t)(t->b->vdev.vq[0].used_idx - used0);

	if (t->strict)
		CHECK_EQ(!!(t->b->vdev.status & VIRTIO_STATUS_NEEDS_RESET), broken);
	drv_check_vdev(&t->b->vdev, &(uint32_t){ 0 });
	/* This driver never sets NEEDS_RESET itself: the device did, and says why. */
	if (t->b->vdev.status & VIRTIO_STATUS_NEEDS_RESET)
		CHECK(t->b->vdev.last_error[0]);
	if (t->strict && !broken) {
		memcpy(&used_idx, d->ram + d->used + 2, 2);
		CHECK(!n || used_idx == t->b->vdev.vq[0].used_idx);
		CHECK_EQ(n, t->nchains);
		for (uint16_t k = 0; k < n && k < t->nchains; k++) {
			uint32_t e[2];
			unsigned int i;

			memcpy(e, d->ram + d->used + 4 + 8ULL * ((used0 + k) & (d->size - 1)), 8);
			for (i = 0; i < t->nchains && (t->chain[i].used || t->chain[i].head != e[0]); i++)
				;
			CHECK(i < t->nchains);
			if (i < t->nchains)
				check_used(t, &t->chain[i], e[1]);
		}
		/* With EVENT_IDX: the used idx crossed used_event, so some decision interrupted. */
		if (n && (d->event_idx ?
			  drv_crossed(drv_get16(d, d->avail + 4 + 2ULL * d->size),
					(uint16_t)(used0 + n), used0) :
			  !(drv_get16(d, d->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT)))
			CHECK(t->irq);
	}
	drv_sync(d, t->strict);
}

static void one(struct t *t)
{
	struct fuzz *f = t->d.f;
	unsigned int rounds = 1 + (unsigned int)fuzz_below(f, 3);

	t->b = &t->blk[fuzz_below(f, 2)];
	virtio_mmio_init(&t->mmio, &t->b->vdev);
	mmio_wr(&t->mmio, 0x070, 0);
	if (!bring_up(t)) {
		check_round(t, true, 0);
		return;
	}
	for (unsigned int r = 0; r < rounds && !test_failures; r++) {
		uint16_t next = (uint16_t)fuzz_below(f, t->d.size), left = t->d.size;
		uint16_t used0 = t->b->vdev.vq[0].used_idx;
		unsigned int nreq = 1 + (unsigned int)fuzz_below(f, MAX_CHAINS);
		bool broken;

		for (unsigned int c = 0; c < nreq; c++)
			build_one(t, c, &next, &left);
		drv_kick(&t->d);
		for (unsigned int n = (unsigned int)fuzz_below(f, 4); n; n--)
			drv_damage(&t->d);
		broken = predict(t);
		mmio_wr(&t->mmio, 0x050, 0);
		blk_process(t->b); /* what the I/O thread does on the kick */
		while (t->npending) { /* out of order; each may pop more (a hang is meson's timeout) */
			unsigned int k = (unsigned int)fuzz_below(f, t->npending);
			struct blk_io *io = t->pending[k];

			t->pending[k] = t->pending[--t->npending];
			be_complete(t, io);
		}
		check_round(t, broken, used0);
		t->broken += broken;
		t->strict_rounds += t->strict;
		t->answered += t->nchains;
		mmio_wr(&t->mmio, 0x064, mmio_rd(&t->mmio, 0x060));
		if (broken)
			break;
	}
}

#ifdef VEIL_LIBFUZZER
/* The input is one()'s choices, for up to 4 iterations while it lasts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct t *t;
	static struct fuzz f;

	if (!t) {
		log_set_level(LOG_ERR);
		t = calloc(1, sizeof(*t));
		drv_setup(&t->d, &f);
		for (unsigned int i = 0; i < 2; i++) {
			CHECK_EQ(virtio_blk_init(&t->blk[i], t->d.gm, i ? "fuzz-blk-ro" : "fuzz-blk",
						 sizeof(t->disk), i, "fuzz"), 0);
			t->blk[i].backend = &be_ops;
			t->blk[i].backend_opaque = t;
			t->blk[i].vdev.set_irq = set_irq;
			t->blk[i].vdev.irq_opaque = t;
		}
	}
	fuzz_lf_begin(&f, "fuzz_blk", data, size);
	/* RAM, its shadow and the disk as at the start: every input replays alone. */
	memset(t->d.ram, 0, GUARD);
	memset(t->d.shadow, 0, GUARD);
	memset(t->d.ram + GUARD + GUARD_LEN, 0, MEM - GUARD - GUARD_LEN);
	memset(t->d.shadow + GUARD + GUARD_LEN, 0, MEM - GUARD - GUARD_LEN);
	memset(t->disk, 0, sizeof(t->disk));
	for (unsigned int n = 0; n < 4 && !test_failures && (n == 0 || fuzz_lf_more(&f)); n++)
		one(t);
	fuzz_lf_end(&f);
	return 0;
}
#else
int main(void)
{
	struct t *t = calloc(1, sizeof(*t));
	struct fuzz f;

	log_set_level(LOG_ERR); /* NEEDS_RESET warnings are expected by the thousand */
	fuzz_init(&f, "fuzz_blk", 0x626c6b, 4000);
	drv_setup(&t->d, &f);
	for (unsigned int i = 0; i < 2; i++) {
		CHECK_EQ(virtio_blk_init(&t->blk[i], t->d.gm, i ? "fuzz-blk-ro" : "fuzz-blk",
					 sizeof(t->disk), i, "fuzz"), 0);
		t->blk[i].backend = &be_ops;
		t->blk[i].backend_opaque = t;
		t->blk[i].vdev.set_irq = set_irq;
		t->blk[i].vdev.irq_opaque = t;
	}
	FUZZ_FOR_EACH(&f, i) {
		one(t);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_blk: %lu chains consumed, %lu I/Os submitted, %lu answered OK, %lu rings broken, "
	       "%lu rounds checked byte for byte\n", t->answered, t->ios, t->ok, t->broken,
	       t->strict_rounds);
	if (!test_failures && f.iters >= 1000)
		CHECK(t->answered > f.iters && t->ios > f.iters / 2 && t->ok > f.iters / 2 &&
		      t->broken > f.iters / 50 && t->strict_rounds > f.iters / 2);
	for (unsigned int i = 0; i < 2; i++)
		virtio_blk_destroy(&t->blk[i]);
	drv_teardown(&t->d);
	free(t);
	return test_done("fuzz_blk");
}
#endif
