/* Fuzz helpers: a hostile virtqueue driver over a detached gmem, with a shadow of what RAM must hold. */
#ifndef VEIL_FUZZ_VQ_H
#define VEIL_FUZZ_VQ_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "gmem.h"
#include "virtio_drv.h"
#include "virtio.h"
#include "virtqueue.h"

#define MiB (1ULL << 20)
#define MEM (2 * MiB)
#define GUARD 0x1f0000ULL  /* private pages, 0xa5 inside: never to be pinned, read or written */
#define GUARD_LEN 0x8000ULL
#define DESC 0x10000ULL
#define AVAIL 0x20000ULL
#define USED 0x30000ULL
#define TBL 0x40000ULL     /* where honest indirect tables go */
#define TBL_LEN 0x40000ULL
#define BUF 0x100000ULL    /* where honest buffers go */
#define BUF_LEN 0x40000ULL

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vq_drv {
	struct fuzz *f;
	struct gmem *gm;
	uint8_t *ram;    /* the host mapping of GPA 0: where every pinned segment must point */
	uint8_t *shadow; /* what RAM must hold: the driver's writes and every write the device may make */
	uint8_t *allowed; /* a bit per byte the device may write: fuzz_vdev.h */
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx; /* the next one to publish */
	bool indirect, event_idx; /* the ring features the device took */
	uint64_t tbl_next;  /* where the next honest indirect table goes, from TBL */
	uint64_t tbl_last, tbl_last_len; /* the last one written, for drv_damage */
};

/* MEM bytes of RAM from GPA 0, the guard made private; exits if that cannot be had. */
static inline void drv_setup(struct vq_drv *d, struct fuzz *f)
{
	void *hva;

	*d = (struct vq_drv){ .f = f, .gm = test_gmem(MEM, 20), .shadow = calloc(1, MEM),
			      .allowed = calloc(1, MEM / 8) };
	if (!d->shadow || !d->allowed || gmem_translate(d->gm, 0, MEM, &hva))
		exit(1);
	d->ram = hva;
	memset(d->ram + GUARD, 0xa5, GUARD_LEN);
	memset(d->shadow + GUARD, 0xa5, GUARD_LEN);
	CHECK_EQ(gmem_attr_set_private(d->gm, GUARD, GUARD_LEN, true), 0);
}

static inline void drv_teardown(struct vq_drv *d)
{
	free(d->allowed);
	free(d->shadow);
	gmem_destroy(d->gm);
}

/* A driver write: to RAM and to the shadow. */
static inline void drv_put(struct vq_drv *d, uint64_t gpa, const void *p, uint64_t len)
{
	CHECK_EQ(gmem_write(d->gm, gpa, p, len), 0);
	memcpy(d->shadow + gpa, p, len);
}

static inline uint16_t drv_get16(const struct vq_drv *d, uint64_t gpa)
{
	return (uint16_t)fuzz_get(d->shadow + gpa, 2);
}

static inline bool hits_guard(uint64_t gpa, uint64_t len)
{
	return gpa < GUARD + GUARD_LEN && GUARD < gpa + len;
}

/* Ring addresses: mostly the honest ones, sometimes misaligned, private, off the end or overlapping. */
static inline uint64_t drv_pick_ring(struct fuzz *f, uint64_t honest, uint64_t align)
{
	switch (fuzz_below(f, 24)) {
	case 0: return fuzz_interesting(f);
	case 1: return honest + 1 + fuzz_below(f, align);
	case 2: return GUARD - 0x1000 + fuzz_below(f, 0x2000) / align * align;
	case 3: return MEM - (1 + fuzz_below(f, 64)) * align;
	case 4: return fuzz_below(f, MEM) / align * align;
	case 5: return DESC; /* on top of the descriptor table */
	default: return honest;
	}
}

/* Whether vq_configure must take this layout. */
static inline bool drv_layout_ok(uint16_t size, uint64_t d, uint64_t a, uint64_t u)
{
	return size && size <= VQ_MAX_SIZE && !(size & (size - 1)) && !(d % 16) && !(a % 2) &&
	       !(u % 4) && d < MEM && MEM - d >= 16ULL * size && !hits_guard(d, 16ULL * size) &&
	       a < MEM && MEM - a >= 6 + 2ULL * size && !hits_guard(a, 6 + 2ULL * size) &&
	       u < MEM && MEM - u >= 6 + 8ULL * size && !hits_guard(u, 6 + 8ULL * size);
}

static inline void drv_put_desc(struct vq_drv *d, uint16_t i, uint64_t addr, uint32_t len,
				uint16_t flags, uint16_t next)
{
	struct desc x = { addr, len, flags, next };

	drv_put(d, d->desc + 16ULL * i, &x, sizeof(x));
}

/* Writes head into the avail ring; the idx goes out with drv_kick. */
static inline void drv_publish(struct vq_drv *d, uint16_t head)
{
	drv_put(d, d->avail + 4 + 2ULL * (d->avail_idx & (d->size - 1)), &head, 2);
	d->avail_idx++;
}

/*
 * A valid descriptor just past the table: a walk that follows next == size
 * finds it instead of the zeros that would fail the chain anyway.
 */
static inline void drv_decoy(struct vq_drv *d)
{
	uint64_t at = d->desc + 16ULL * d->size;

	if (at + 16 <= MEM && !hits_guard(at, 16) &&
	    (at + 16 <= d->avail || at >= d->avail + 6 + 2ULL * d->size) &&
	    (at + 16 <= d->used || at >= d->used + 6 + 8ULL * d->size))
		drv_put_desc(d, d->size, BUF, 1, 0, 0);
}

static inline void drv_kick(struct vq_drv *d)
{
	drv_put(d, d->avail + 2, &d->avail_idx, 2);
	drv_decoy(d);
}

/* What a hostile driver does next: damaged descriptors, loops, index jumps, stray heads. */
static inline void drv_damage(struct vq_drv *d)
{
	static const uint8_t field_off[] = { 0, 8, 12, 14 }, field_w[] = { 8, 4, 2, 2 };
	struct fuzz *f = d->f;
	uint64_t at = d->desc + 16 * fuzz_below(f, d->size);
	uint8_t tbl[16 * 64];
	uint16_t v;
	size_t n, k;

	if (d->tbl_last_len && fuzz_one_in(f, 8)) { /* the last indirect table */
		n = d->tbl_last_len < sizeof(tbl) ? d->tbl_last_len : sizeof(tbl);
		memcpy(tbl, d->shadow + d->tbl_last, n);
		if (fuzz_one_in(f, 2)) {
			k = n;
			fuzz_mutate(f, tbl, &k, n, 0, 0);
		} else { /* one field of one entry: a nested INDIRECT, a loop, a next out of range */
			k = 16 * fuzz_below(f, n / 16);
			fuzz_put(tbl + k + 12, 2, fuzz_value(f, fuzz_get(tbl + k + 12, 2), 2));
			fuzz_put(tbl + k + 14, 2, fuzz_below(f, n / 16 + 2));
		}
		drv_put(d, d->tbl_last, tbl, n);
		return;
	}
	switch (fuzz_below(f, 8)) {
	case 0: case 1: /* one descriptor field */
		k = fuzz_below(f, 4);
		memcpy(tbl, d->shadow + at, 16);
		fuzz_field(f, tbl, 16, field_off[k], field_w[k]);
		drv_put(d, at, tbl, 16);
		break;
	case 2: /* bytes of the table */
		n = 16 * (d->size < 64 ? d->size : 64);
		memcpy(tbl, d->shadow + d->desc, n);
		k = n;
		fuzz_mutate(f, tbl, &k, n, 0, 0);
		drv_put(d, d->desc, tbl, n);
		break;
	case 3: /* the avail idx jumps */
		d->avail_idx = (uint16_t)fuzz_value(f, d->avail_idx, 2);
		drv_put(d, d->avail + 2, &d->avail_idx, 2);
		break;
	case 4: /* a stray head */
		v = (uint16_t)(fuzz_one_in(f, 2) ? fuzz_below(f, d->size) : fuzz_value(f, 0, 2));
		drv_put(d, d->avail + 4 + 2 * fuzz_below(f, d->size), &v, 2);
		break;
	case 5: /* a next just out of range */
		memcpy(tbl, d->shadow + at, 16);
		fuzz_put(tbl + 12, 2, fuzz_get(tbl + 12, 2) | VIRTQ_DESC_F_NEXT);
		fuzz_put(tbl + 14, 2, d->size + fuzz_below(f, 2));
		drv_put(d, at, tbl, 16);
		break;
	case 6: /* a buffer about the longest a device takes, low in RAM */
		drv_put_desc(d, (uint16_t)fuzz_below(f, d->size), fuzz_below(f, 0x80000),
			     VQ_MAX_SEG_LEN - 1 + (uint32_t)fuzz_below(f, 3),
			     (uint16_t)fuzz_below(f, 4), (uint16_t)fuzz_below(f, d->size));
		break;
	default: /* the avail flags */
		v = (uint16_t)fuzz_next(f);
		drv_put(d, d->avail, &v, 2);
		break;
	}
}

/* The errors a malformed chain may be refused with, as bits of a mask. */
enum { VQE_INVAL = 1, VQE_LOOP = 2, VQE_2BIG = 4, VQE_FAULT = 8, VQE_ACCES = 16 };

static inline unsigned int vqe_bit(int err)
{
	switch (err) {
	case -EINVAL: return VQE_INVAL;
	case -ELOOP: return VQE_LOOP;
	case -E2BIG: return VQE_2BIG;
	case -EFAULT: return VQE_FAULT;
	case -EACCES: return VQE_ACCES;
	default: return 0;
	}
}

/* What is wrong with one descriptor, as VQE_ bits; 0 if nothing. */
static inline unsigned int ref_desc(const struct desc *x, bool writable, bool pin)
{
	unsigned int bad = 0;
	uint64_t end;

	if ((x->flags & ~3) || !x->len || (writable && !(x->flags & VIRTQ_DESC_F_WRITE)))
		bad |= VQE_INVAL;
	if (pin && x->len > VQ_MAX_SEG_LEN)
		bad |= VQE_2BIG;
	if (__builtin_add_overflow(x->addr, x->len, &end) || (pin && end > MEM))
		bad |= VQE_FAULT;
	else if (pin && hits_guard(x->addr, x->len))
		bad |= VQE_ACCES;
	return bad;
}

/* What is wrong with a descriptor that points to an indirect table, as VQE_ bits. */
static inline unsigned int ref_table(const struct desc *x)
{
	unsigned int bad = 0;
	uint64_t end;

	if ((x->flags & VIRTQ_DESC_F_NEXT) || (x->flags & ~7) || !x->len || x->len % 16)
		bad |= VQE_INVAL;
	if (x->len / 16 > VQ_MAX_INDIRECT)
		bad |= VQE_2BIG;
	if (__builtin_add_overflow(x->addr, x->len, &end) || end > MEM)
		bad |= VQE_FAULT;
	else if (hits_guard(x->addr, x->len))
		bad |= VQE_ACCES;
	return bad;
}

/* One buffer descriptor of the reference walk: 0 and appended, or its VQE_ bits. */
static inline unsigned int ref_seg(const struct desc *x, bool *writable, bool pin,
				   struct vq_seg *segs, unsigned int *nr)
{
	unsigned int bad;

	if (*nr == VQ_MAX_SEGS)
		return VQE_2BIG;
	bad = ref_desc(x, *writable, pin);
	if (bad)
		return bad;
	*writable = x->flags & VIRTQ_DESC_F_WRITE;
	segs[(*nr)++] = (struct vq_seg){ .gpa = x->addr, .len = x->len, .write = *writable };
	return 0;
}

/* The reference walk of the indirect table x points to, from its entry 0. */
static inline unsigned int ref_walk_table(const struct vq_drv *d, const struct desc *x,
					  bool *writable, bool pin, struct vq_seg *segs,
					  unsigned int *nr)
{
	uint8_t seen[VQ_MAX_INDIRECT] = { 0 };
	unsigned int bad = ref_table(x);
	uint16_t j = 0;

	if (bad)
		return bad;
	for (;;) {
		struct desc e;

		memcpy(&e, d->shadow + x->addr + 16ULL * j, sizeof(e));
		if (seen[j]++)
			return VQE_LOOP;
		bad = ref_seg(&e, writable, pin, segs, nr);
		if (bad || !(e.flags & VIRTQ_DESC_F_NEXT))
			return bad;
		if (e.next >= x->len / 16)
			return VQE_INVAL;
		j = e.next;
	}
}

/*
 * The reference walk of the chain at head, from the shadow: 0 with the
 * segments a device must be given, or the VQE_ bits of the errors it may
 * refuse the first bad descriptor with.  pin: as vq_pop, which also bounds
 * lengths and RAM; else as vq_pop_unpinned.  With d->indirect, a
 * descriptor with INDIRECT ends the chain with its table.
 */
static inline unsigned int drv_ref_walk(const struct vq_drv *d, uint16_t head, bool pin,
				 struct vq_seg *segs, unsigned int *nr)
{
	uint8_t seen[VQ_MAX_SIZE] = { 0 };
	bool writable = false;
	uint16_t i = head;
	unsigned int bad;

	for (*nr = 0;;) {
		struct desc x;

		memcpy(&x, d->shadow + d->desc + 16ULL * i, sizeof(x));
		if (seen[i]++)
			return VQE_LOOP;
		if (d->indirect && (x.flags & VIRTQ_DESC_F_INDIRECT))
			return ref_walk_table(d, &x, &writable, pin, segs, nr);
		bad = ref_seg(&x, &writable, pin, segs, nr);
		if (bad || !(x.flags & VIRTQ_DESC_F_NEXT))
			return bad;
		if (x.next >= d->size)
			return VQE_INVAL;
		i = x.next;
	}
}

/*
 * An honest indirect table of n entries (readable until nread, then
 * writable) in the TBL area, its last entries unused now and then; fills
 * *x, the descriptor that points to it (its WRITE flag set at random: the
 * device must ignore it).
 */
static inline void drv_put_table(struct vq_drv *d, unsigned int n, unsigned int nread,
				 struct desc *x)
{
	struct fuzz *f = d->f;
	unsigned int slack = fuzz_one_in(f, 4) ? (unsigned int)fuzz_below(f, 4) : 0;
	uint64_t len = 16ULL * (n + slack);

	if (d->tbl_next + len > TBL_LEN)
		d->tbl_next = 0;
	*x = (struct desc){ TBL + d->tbl_next, (uint32_t)len,
			    (uint16_t)(VIRTQ_DESC_F_INDIRECT | (fuzz_one_in(f, 4) ? VIRTQ_DESC_F_WRITE : 0)),
			    (uint16_t)fuzz_next(f) };
	for (unsigned int k = 0; k < n + slack; k++) {
		uint32_t blen = (uint32_t)(1 + fuzz_below(f, 4096));
		struct desc e = { BUF + fuzz_below(f, BUF_LEN - blen), blen,
				  (uint16_t)((k >= nread ? VIRTQ_DESC_F_WRITE : 0) |
					     (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
				  (uint16_t)(k + 1) };

		drv_put(d, x->addr + 16ULL * k, &e, sizeof(e));
	}
	d->tbl_last = x->addr, d->tbl_last_len = len;
	d->tbl_next += len;
}

#endif
