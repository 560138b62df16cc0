/* Unit test: the I/O bus refuses overlaps, dispatches by base-relative offset, keeps spaces apart. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "test.h"

/* What a device saw last, and how often it was called. */
struct probe {
	unsigned int id;
	unsigned int reads, writes;
	uint64_t offset;
	unsigned int len;
	uint8_t wdata[8];
};

static int probe_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct probe *p = opaque;
	uint8_t *d = data;
	unsigned int i;

	p->reads++;
	p->offset = offset;
	p->len = len;
	/* Data that names the device and the offset, so a misrouted read shows. */
	for (i = 0; i < len; i++)
		d[i] = (uint8_t)(p->id * 16 + offset + i);
	return 0;
}

static int probe_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	struct probe *p = opaque;

	p->writes++;
	p->offset = offset;
	p->len = len;
	memcpy(p->wdata, data, len < sizeof(p->wdata) ? len : sizeof(p->wdata));
	return 0;
}

static const struct bus_device_ops probe_ops = { .read = probe_read, .write = probe_write };

static struct bus *make_bus(void)
{
	struct bus *bus = NULL;

	if (bus_create(&bus)) {
		fprintf(stderr, "bus_create failed\n");
		exit(1);
	}
	return bus;
}

static int reg(struct bus *bus, enum bus_space s, uint64_t base, uint64_t len, struct probe *p)
{
	return bus_register(bus, s, base, len, &probe_ops, p, "probe");
}

static void test_overlap(void)
{
	struct bus *bus = make_bus();
	struct probe p = { .id = 1 };

	CHECK_EQ(reg(bus, BUS_PIO, 0x100, 0x10, &p), 0);
	CHECK_EQ(reg(bus, BUS_PIO, 0x100, 0x10, &p), -EEXIST);  /* exact */
	CHECK_EQ(reg(bus, BUS_PIO, 0xf8, 0x10, &p), -EEXIST);   /* over the start */
	CHECK_EQ(reg(bus, BUS_PIO, 0x108, 0x10, &p), -EEXIST);  /* over the end */
	CHECK_EQ(reg(bus, BUS_PIO, 0xff, 2, &p), -EEXIST);      /* first byte only */
	CHECK_EQ(reg(bus, BUS_PIO, 0x10f, 1, &p), -EEXIST);     /* last byte only */
	CHECK_EQ(reg(bus, BUS_PIO, 0x0, 0x1000, &p), -EEXIST);  /* containing */
	CHECK_EQ(reg(bus, BUS_PIO, 0x104, 4, &p), -EEXIST);     /* contained */
	CHECK_EQ(reg(bus, BUS_PIO, 0xf0, 0x10, &p), 0);         /* adjacent below */
	CHECK_EQ(reg(bus, BUS_PIO, 0x110, 0x10, &p), 0);        /* adjacent above */
	/* A range spanning a gap between two devices still overlaps both. */
	CHECK_EQ(reg(bus, BUS_PIO, 0x200, 0x10, &p), 0);
	CHECK_EQ(reg(bus, BUS_PIO, 0x11f, 0xe2, &p), -EEXIST);
	CHECK_EQ(reg(bus, BUS_PIO, 0x120, 0xe0, &p), 0);        /* exactly the gap */
	bus_destroy(bus);
}

static void test_invalid(void)
{
	struct bus *bus = make_bus();
	struct probe p = { .id = 1 };

	CHECK_EQ(reg(bus, BUS_PIO, 0x100, 0, &p), -EINVAL);
	CHECK_EQ(reg(bus, BUS_MMIO, UINT64_MAX, 2, &p), -EINVAL);
	CHECK_EQ(reg(bus, BUS_MMIO, 0xfffffffffffff000ULL, 0x2000, &p), -EINVAL);
	CHECK_EQ(reg(bus, BUS_MMIO, 2, UINT64_MAX, &p), -EINVAL);
	CHECK_EQ(reg(bus, BUS_NR_SPACES, 0x100, 1, &p), -EINVAL);
	CHECK_EQ(bus_register(bus, BUS_PIO, 0x100, 1, NULL, &p, "null"), -EINVAL);
	/* Nothing above was registered. */
	CHECK(bus_device_name(bus, BUS_PIO, 0x100) == NULL);
	/* Ranges may end at the very top, or cover all of the space but one byte. */
	CHECK_EQ(reg(bus, BUS_MMIO, UINT64_MAX, 1, &p), 0);
	CHECK_EQ(reg(bus, BUS_MMIO, 0, UINT64_MAX, &p), 0);
	bus_destroy(bus);
}

static void test_spaces(void)
{
	struct bus *bus = make_bus();
	struct probe pio = { .id = 1 }, mmio = { .id = 2 };
	uint8_t v = 0;

	CHECK_EQ(reg(bus, BUS_PIO, 0x3f8, 8, &pio), 0);
	CHECK_EQ(reg(bus, BUS_MMIO, 0x3f8, 8, &mmio), 0);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x3f9, &v, 1, false), 0);
	CHECK_EQ(mmio.reads, 1);
	CHECK_EQ(pio.reads, 0);
	CHECK_EQ(v, 2 * 16 + 1);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x3fa, &v, 1, true), 0);
	CHECK_EQ(pio.writes, 1);
	CHECK_EQ(mmio.writes, 0);
	CHECK_EQ(bus_dispatch(bus, BUS_NR_SPACES, 0x3f8, &v, 1, false), -ENOENT);
	bus_destroy(bus);
}

static void test_dispatch_offsets(void)
{
	struct bus *bus = make_bus();
	struct probe p = { .id = 3 };
	uint8_t buf[4] = { 0xde, 0xad, 0xbe, 0xef }, r[4] = { 0 };

	CHECK_EQ(reg(bus, BUS_MMIO, 0xfed00000ULL, 0x1000, &p), 0);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0xfed00010ULL, buf, 4, true), 0);
	CHECK_EQ(p.writes, 1);
	CHECK_EQ(p.offset, 0x10);
	CHECK_EQ(p.len, 4);
	CHECK(memcmp(p.wdata, buf, 4) == 0);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0xfed00ffcULL, r, 4, false), 0);
	CHECK_EQ(p.reads, 1);
	CHECK_EQ(p.offset, 0xffc);
	CHECK_EQ(r[0], (uint8_t)(3 * 16 + 0xffc));
	CHECK_EQ(r[3], (uint8_t)(3 * 16 + 0xfff));
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0xfed00000ULL, r, 1, false), 0);
	CHECK_EQ(p.offset, 0);
	bus_destroy(bus);
}

static void test_dispatch_misses(void)
{
	struct bus *bus = make_bus();
	struct probe a = { .id = 1 }, b = { .id = 2 };
	uint8_t r[8];

	CHECK_EQ(reg(bus, BUS_PIO, 0x100, 8, &a), 0);
	CHECK_EQ(reg(bus, BUS_PIO, 0x108, 8, &b), 0);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x10f, r, 2, false), -ENOENT); /* past b's end */
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x10e, r, 4, true), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x106, r, 4, false), -ENOENT); /* a into b */
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0xff, r, 2, false), -ENOENT);  /* into a's start */
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0xff, r, 1, false), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x110, r, 1, true), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x0, r, 1, false), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x100, r, 0, false), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x100, r, 1, false), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, UINT64_MAX, r, 2, false), -ENOENT);
	CHECK_EQ(a.reads + a.writes + b.reads + b.writes, 0);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x10c, r, 4, false), 0);
	CHECK_EQ(b.reads, 1);
	CHECK_EQ(b.offset, 4);
	bus_destroy(bus);
}

/* A device may leave out read or write: reads float high, writes are dropped. */
static void test_partial_ops(void)
{
	static const struct bus_device_ops write_only = { .write = probe_write };
	static const struct bus_device_ops read_only = { .read = probe_read };
	struct bus *bus = make_bus();
	struct probe w = { .id = 1 }, r = { .id = 2 };
	uint8_t v[2] = { 0x12, 0x34 };

	CHECK_EQ(bus_register(bus, BUS_PIO, 0x80, 1, &write_only, &w, "wo"), 0);
	CHECK_EQ(bus_register(bus, BUS_PIO, 0x90, 2, &read_only, &r, "ro"), 0);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x80, v, 1, false), 0);
	CHECK_EQ(v[0], 0xff);
	CHECK_EQ(v[1], 0x34);
	CHECK_EQ(w.reads + w.writes, 0);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x90, v, 2, true), 0);
	CHECK_EQ(r.reads + r.writes, 0);
	bus_destroy(bus);
}

/* xorshift64: a fixed seed keeps the "random" order the same on every run. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define NR_RANDOM 300
#define SLOT 0x100

/* Device i owns [i*SLOT + start, +len) inside its own slot, so none overlap. */
struct rdev {
	struct probe p;
	uint64_t base, len;
	char name[16];
};

static void random_setup(struct rdev *d, unsigned int *order, uint64_t *seed)
{
	unsigned int i, j, t;

	for (i = 0; i < NR_RANDOM; i++) {
		uint64_t start = rng_next(seed) % (SLOT / 2);

		d[i].p = (struct probe){ .id = i };
		d[i].base = 0x10000 + (uint64_t)i * SLOT + start;
		d[i].len = 1 + rng_next(seed) % (SLOT - start - 1);
		snprintf(d[i].name, sizeof(d[i].name), "dev%u", i);
		order[i] = i;
	}
	for (i = NR_RANDOM - 1; i > 0; i--) {
		j = (unsigned int)(rng_next(seed) % (i + 1));
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

static void random_check_one(struct bus *bus, struct rdev *d, uint64_t *seed)
{
	uint64_t off = rng_next(seed) % d->len;
	const char *name;
	uint8_t v = 0;

	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, d->base + off, &v, 1, false), 0);
	CHECK_EQ(d->p.reads, 1);
	CHECK_EQ(d->p.offset, off);
	CHECK_EQ(v, (uint8_t)(d->p.id * 16 + off));
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, d->base + d->len, &v, 1, false), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, d->base - 1, &v, 1, false), -ENOENT);
	name = bus_device_name(bus, BUS_MMIO, d->base + d->len - 1);
	CHECK(name && strcmp(name, d->name) == 0);
}

static void test_random(void)
{
	static struct rdev d[NR_RANDOM];
	unsigned int order[NR_RANDOM], i;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct bus *bus = make_bus();

	random_setup(d, order, &seed);
	for (i = 0; i < NR_RANDOM; i++) {
		struct rdev *r = &d[order[i]];

		CHECK_EQ(bus_register(bus, BUS_MMIO, r->base, r->len, &probe_ops, &r->p, r->name), 0);
		/* Registering it again, at any point of the sequence, is refused. */
		CHECK_EQ(bus_register(bus, BUS_MMIO, r->base, 1, &probe_ops, &r->p, r->name), -EEXIST);
	}
	for (i = 0; i < NR_RANDOM; i++)
		random_check_one(bus, &d[i], &seed);
	for (i = 0; i < NR_RANDOM; i++)
		CHECK_EQ(d[i].p.writes, 0);
	bus_destroy(bus);
}

static void test_device_name(void)
{
	struct bus *bus = make_bus();
	struct probe p = { .id = 1 };
	const char *n;

	CHECK_EQ(bus_register(bus, BUS_PIO, 0x3f8, 8, &probe_ops, &p, "uart8250"), 0);
	CHECK_EQ(bus_register(bus, BUS_PIO, 0x501, 4, &probe_ops, &p, "debug-exit"), 0);
	n = bus_device_name(bus, BUS_PIO, 0x3f8);
	CHECK(n && strcmp(n, "uart8250") == 0);
	n = bus_device_name(bus, BUS_PIO, 0x3ff);
	CHECK(n && strcmp(n, "uart8250") == 0);
	n = bus_device_name(bus, BUS_PIO, 0x504);
	CHECK(n && strcmp(n, "debug-exit") == 0);
	CHECK(bus_device_name(bus, BUS_PIO, 0x400) == NULL);
	CHECK(bus_device_name(bus, BUS_PIO, 0x505) == NULL);
	CHECK(bus_device_name(bus, BUS_MMIO, 0x3f8) == NULL);
	bus_destroy(bus);
}

/* A device that acts for the writing vCPU: records the caller the bus names. */
struct caller_probe {
	unsigned int writes, reads;
	unsigned int vcpu;
	uint64_t offset;
};

static int caller_write(void *opaque, unsigned int vcpu, uint64_t offset, const void *data,
			unsigned int len)
{
	struct caller_probe *p = opaque;

	(void)data;
	(void)len;
	p->writes++;
	p->vcpu = vcpu;
	p->offset = offset;
	return 0;
}

static int caller_plain_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	(void)opaque, (void)offset, (void)data, (void)len;
	return -EPERM; /* write_vcpu takes precedence: never called */
}

static int caller_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct caller_probe *p = opaque;

	(void)offset;
	p->reads++;
	memset(data, 0x5a, len);
	return 0;
}

/*
 * The bus hands write_vcpu the index its caller passed (the exit's vCPU),
 * whatever the data says, and BUS_NO_VCPU through plain bus_dispatch().
 */
static void test_write_vcpu(void)
{
	static const struct bus_device_ops ops = {
		.read = caller_read, .write = caller_plain_write, .write_vcpu = caller_write,
	};
	struct caller_probe p = { 0 };
	struct bus *bus = make_bus();
	uint32_t v = 7;

	CHECK_EQ(bus_register(bus, BUS_PIO, 0x548, 4, &ops, &p, "svc"), 0);
	CHECK_EQ(bus_dispatch_vcpu(bus, BUS_PIO, 0x548, &v, 4, true, 3), 0);
	CHECK_EQ(p.writes, 1);
	CHECK_EQ(p.vcpu, 3);
	CHECK_EQ(bus_dispatch_vcpu(bus, BUS_PIO, 0x54a, &v, 2, true, 0), 0);
	CHECK_EQ(p.vcpu, 0);
	CHECK_EQ(p.offset, 2);
	CHECK_EQ(bus_dispatch(bus, BUS_PIO, 0x548, &v, 4, true), 0);
	CHECK_EQ(p.writes, 3);
	CHECK_EQ(p.vcpu, BUS_NO_VCPU);
	CHECK_EQ(bus_dispatch_vcpu(bus, BUS_PIO, 0x548, &v, 4, false, 1), 0);
	CHECK_EQ(p.reads, 1);
	CHECK_EQ(v, 0x5a5a5a5a);
	CHECK_EQ(bus_dispatch_vcpu(bus, BUS_PIO, 0x54c, &v, 4, true, 1), -ENOENT);
	CHECK_EQ(p.writes, 3);
	bus_destroy(bus);
}

/* An unregistered range is gone: dispatch misses, its neighbours stay, the room is reusable. */
static void test_unregister(void)
{
	struct bus *bus = make_bus();
	struct probe a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 };
	uint8_t v = 0;

	CHECK_EQ(reg(bus, BUS_MMIO, 0x1000, 0x100, &a), 0);
	CHECK_EQ(reg(bus, BUS_MMIO, 0x2000, 0x100, &b), 0);
	CHECK_EQ(reg(bus, BUS_MMIO, 0x3000, 0x100, &c), 0);
	CHECK_EQ(bus_unregister(bus, BUS_MMIO, 0x2010), -ENOENT); /* inside, not its base */
	CHECK_EQ(bus_unregister(bus, BUS_PIO, 0x2000), -ENOENT);  /* other space */
	CHECK_EQ(bus_unregister(bus, BUS_MMIO, 0x2000), 0);
	CHECK_EQ(bus_unregister(bus, BUS_MMIO, 0x2000), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x2000, &v, 1, false), -ENOENT);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x1004, &v, 1, false), 0);
	CHECK_EQ(a.reads, 1);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x3004, &v, 1, false), 0);
	CHECK_EQ(c.reads, 1);
	CHECK(bus_device_name(bus, BUS_MMIO, 0x2000) == NULL);
	CHECK_EQ(reg(bus, BUS_MMIO, 0x2000, 0x100, &b), 0);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x2000, &v, 1, false), 0);
	CHECK_EQ(b.reads, 1);
	CHECK_EQ(bus_unregister(bus, BUS_MMIO, 0x1000), 0);
	CHECK_EQ(bus_unregister(bus, BUS_MMIO, 0x3000), 0);
	CHECK_EQ(bus_unregister(bus, BUS_MMIO, 0x2000), 0);
	CHECK_EQ(bus_dispatch(bus, BUS_MMIO, 0x2000, &v, 1, false), -ENOENT);
	bus_destroy(bus);
}

int main(void)
{
	test_unregister();
	test_overlap();
	test_invalid();
	test_spaces();
	test_dispatch_offsets();
	test_dispatch_misses();
	test_partial_ops();
	test_random();
	test_device_name();
	test_write_vcpu();
	bus_destroy(NULL);
	return test_done("test_bus");
}
