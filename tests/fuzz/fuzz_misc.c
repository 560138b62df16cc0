/* fuzz: the small parsers and models: parse_size and parse_uint against a reference, the 8250 UART against a FIFO model. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "log.h"
#include "parse.h"
#include "uart8250.h"
#include "virtio_devs.h"

/* ---- parse_size, parse_uint ---- */

/* The reference: digits, then for a size one k/m/g/t, no more; overflow found with 128 bits. */
static int ref_parse(const char *s, bool size, uint64_t *out)
{
	unsigned __int128 v = 0;
	unsigned int shift = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned int)(*p - '0');
		if (v > UINT64_MAX)
			return -ERANGE; /* the digits alone overflow, whatever follows */
	}
	if (size && *p && strchr("kKmMgGtT", *p)) {
		shift = strchr("kK", *p) ? 10 : strchr("mM", *p) ? 20 : strchr("gG", *p) ? 30 : 40;
		p++;
	}
	if (*p)
		return -EINVAL;
	if ((v << shift) > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)(v << shift);
	return 0;
}

static unsigned long parsed[3], uart_ops; /* accepted, -EINVAL, -ERANGE: coverage */

/* One string to parse_size (size) or parse_uint, against the reference. */
static void check_parse(const char *buf, bool size)
{
	uint64_t got = 0xfeedULL, want = 0xfeedULL;
	int ret, exp;

	exp = ref_parse(buf, size, &want);
	ret = size ? parse_size(buf, &got) : parse_uint(buf, &got);
	if (ret != exp || got != want)
		fprintf(stderr, "parse_%s(\"%s\") = %d, %llu; expected %d, %llu\n", size ? "size" : "uint",
			buf, ret, (unsigned long long)got, exp, (unsigned long long)want);
	CHECK_EQ(ret, exp);
	CHECK(got == want); /* the value on success; untouched on failure */
	parsed[ret == 0 ? 0 : ret == -EINVAL ? 1 : 2]++;
}

static void fuzz_parse(struct fuzz *f)
{
	static const char *const seeds[] = {
		"0", "1", "123", "64K", "64m", "2G", "4096", "18446744073709551615",
		"18446744073709551616", "17179869183G", "17179869184G", "16777215k", "007",
		"1T", "-1", " 1", "1 ", "0x10", "", "k", "1kk", "99999999999999999999999999",
	};
	static const char alphabet[] = "0123456789kKmMgGtT -+x.\t";
	char buf[64];
	size_t len;

	strcpy(buf, seeds[fuzz_below(f, ARRAY_SIZE(seeds))]);
	len = strlen(buf);
	for (unsigned int n = (unsigned int)fuzz_below(f, 4); n; n--) {
		fuzz_mutate(f, (uint8_t *)buf, &len, sizeof(buf) - 1, 0, 0);
		if (len && fuzz_one_in(f, 2)) /* mostly characters a user would type */
			buf[fuzz_below(f, len)] = alphabet[fuzz_below(f, sizeof(alphabet) - 1)];
	}
	buf[len] = '\0';
	check_parse(buf, fuzz_one_in(f, 2));
}

/* ---- the 8250 UART ---- */

enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

/* What the guest must see of the receive path, whatever it does to the other registers. */
struct model {
	uint8_t fifo[UART8250_FIFO_SIZE];
	unsigned int head, count;
	uint8_t lcr, mcr;
	int level;
	unsigned long tx, tx_seen;
};

static void host_tx(void *opaque, uint8_t byte)
{
	(void)byte;
	((struct model *)opaque)->tx_seen++;
}

static void host_irq(void *opaque, int level)
{
	((struct model *)opaque)->level = level;
}

static void model_push(struct model *m, uint8_t b)
{
	if (m->count < UART8250_FIFO_SIZE)
		m->fifo[(m->head + m->count++) % UART8250_FIFO_SIZE] = b;
}

static void uart_op(struct fuzz *f, struct uart8250 *u, struct model *m)
{
	unsigned int reg = (unsigned int)fuzz_below(f, fuzz_one_in(f, 16) ? 16 : 8);
	unsigned int len = fuzz_one_in(f, 16) ? 1u << fuzz_below(f, 4) : 1;
	uint8_t buf[16], v = (uint8_t)(fuzz_one_in(f, 2) ? fuzz_next(f) : fuzz_below(f, 4));
	size_t n;
	int ret;

	if (fuzz_one_in(f, 8)) { /* host input */
		for (n = 0; n < sizeof(buf); n++)
			buf[n] = (uint8_t)fuzz_next(f);
		n = fuzz_below(f, sizeof(buf) + 1);
		CHECK_EQ(uart8250_rx(u, buf, n), n < UART8250_FIFO_SIZE - m->count ? n : UART8250_FIFO_SIZE - m->count);
		for (size_t i = 0; i < n; i++)
			model_push(m, buf[i]);
	} else if (fuzz_one_in(f, 2)) {
		ret = uart8250_bus_ops.write(u, reg, &v, len);
		CHECK_EQ(ret, len == 1 && reg < 8 ? 0 : -EINVAL);
		if (ret)
			return;
		if (reg == RBR && !(m->lcr & 0x80)) {
			if (m->mcr & 0x10)
				model_push(m, v); /* loopback */
			else
				m->tx++;
		}
		if (reg == FCR && (v & 2))
			m->head = m->count = 0;
		if (reg == LCR)
			m->lcr = v;
		if (reg == MCR)
			m->mcr = v & 0x1f;
	} else {
		memset(buf, 0x5a, sizeof(buf));
		ret = uart8250_bus_ops.read(u, reg, buf, len);
		CHECK_EQ(ret, len == 1 && reg < 8 ? 0 : -EINVAL);
		CHECK(ret || len != 1 || buf[1] == 0x5a); /* one byte, no more */
		if (ret)
			return;
		if (reg == RBR && !(m->lcr & 0x80)) {
			CHECK_EQ(buf[0], m->count ? m->fifo[m->head] : 0);
			if (m->count)
				m->head = (m->head + 1) % UART8250_FIFO_SIZE, m->count--;
		}
		if (reg == LSR)
			CHECK_EQ(buf[0] & 0x61, 0x60 | (m->count ? 1 : 0));
		if (reg == IIR)
			CHECK((buf[0] & 0x0f) == 1 || (buf[0] & 0x0f) == 2 || (buf[0] & 0x0f) == 4);
	}
	CHECK_EQ(m->tx_seen, m->tx);
}

static void fuzz_uart(struct fuzz *f)
{
	struct model m = { 0 };
	struct uart8250_config cfg = { .tx = host_tx, .set_irq = host_irq, .opaque = &m };
	struct uart8250 *u;
	uint8_t iir;
	int level;

	if (uart8250_create(&cfg, &u))
		exit(1);
	for (unsigned int n = 1 + (unsigned int)fuzz_below(f, 200); n && !test_failures; n--) {
		uart_op(f, u, &m);
		uart_ops++;
		/* The line is up exactly when IIR reports a cause (read before the read acks it). */
		if (!fuzz_one_in(f, 4))
			continue;
		level = m.level;
		CHECK_EQ(uart8250_bus_ops.read(u, IIR, &iir, 1), 0);
		CHECK_EQ(level, !(iir & 1));
	}
	uart8250_destroy(u);
}

#ifdef VEIL_LIBFUZZER
/* --disk's spec: a file name, then only the options it knows; the name is what precedes the first comma. */
static void check_disk_spec(const char *spec)
{
	char *copy = strdup(spec), err[128] = "";
	const char *comma = strchr(spec, ',');
	size_t name_len = comma ? (size_t)(comma - spec) : strlen(spec);
	struct vm_disk_cfg cfg;
	bool ok = name_len > 0, ro = false, direct = false;
	int ret;

	for (const char *o = comma; ok && o; o = strchr(o + 1, ',')) {
		const char *end = strchr(o + 1, ',');
		size_t n = end ? (size_t)(end - o - 1) : strlen(o + 1);

		if (n == 2 && !memcmp(o + 1, "ro", 2))
			ro = true;
		else if (n == 6 && !memcmp(o + 1, "direct", 6))
			direct = true;
		else
			ok = false;
	}
	ret = vm_disk_parse(copy, &cfg, err, sizeof(err));
	CHECK_EQ(ret, ok ? 0 : -EINVAL);
	if (!ret) {
		CHECK(strlen(cfg.path) == name_len && !memcmp(cfg.path, spec, name_len));
		CHECK(cfg.read_only == ro && cfg.direct == direct);
	} else {
		CHECK(err[0] != '\0');
	}
	free(copy);
}

/*
 * The first byte picks the parser; for the three string parsers the rest
 * is the string itself (up to a NUL), for the UART the choices of fuzz_uart.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz f;
	char *s;

	fuzz_lf_begin(&f, "fuzz_misc", data, size);
	log_set_level(LOG_ERR);
	s = strndup(size ? (const char *)data + 1 : "", size ? size - 1 : 0);
	switch (size ? data[0] % 5 : 0) {
	case 0: check_parse(s, true); break;
	case 1: check_parse(s, false); break;
	case 2: check_disk_spec(s); break;
	case 3: f.in_pos = 1; fuzz_uart(&f); break;
	default: f.in_pos = 1; fuzz_parse(&f); break;
	}
	free(s);
	fuzz_lf_end(&f);
	return 0;
}
#else
int main(void)
{
	struct fuzz f;

	fuzz_init(&f, "fuzz_misc", 0x6d697363, 100000);
	FUZZ_FOR_EACH(&f, i) {
		fuzz_parse(&f);
		if (fuzz_one_in(&f, 8))
			fuzz_uart(&f);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_misc: parsed %lu, -EINVAL %lu, -ERANGE %lu; %lu UART accesses\n", parsed[0],
	       parsed[1], parsed[2], uart_ops);
	if (!test_failures && f.iters >= 1000)
		CHECK(parsed[0] > f.iters / 10 && parsed[1] > f.iters / 10 && parsed[2] > f.iters / 100 &&
		      uart_ops > f.iters);
	return test_done("fuzz_misc");
}
#endif
