/*
 * Unit test: the stress report's SVG writer, driven with made-up histograms.
 * Writes the SVG to argv[1] for tests/unit/report_svg.sh to check as XML;
 * here, that text is escaped, every kind appears once even without samples,
 * and a write error is reported.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lat.h"
#include "report_svg.h"
#include "test.h"

#define TITLE "a <title> & \"quotes\" 'too'\x01"

static char *svg_of(const struct report_svg *r, int *ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	*ret = report_svg_print(f, r);
	fclose(f);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)); hay++)
		n++;
	return n;
}

int main(int argc, char **argv)
{
	static const uint64_t guest[] = { 900, 1200, 0, 800, 1000 }, host[] = { 5, 50, 500, 5000, 50000 };
	struct lat l[4];
	struct report_svg_series series[4] = {
		{ "guest_convert", "guest conversions", &l[0] },
		{ "host_convert", "host conversions", &l[1] },
		{ "punch", "punches", &l[2] },
		{ "dma", "DMA <reads>", &l[3] },
	};
	struct report_svg_rate rates[2] = {
		{ "guest_convert", "by the guest", guest },
		{ "host_convert", "by the host", host },
	};
	struct report_svg r = { .title = TITLE, .subtitle = "sub & title", .detail = "why: <none>",
				.series = series, .nr_series = 4, .rates = rates, .nr_rates = 2,
				.nr_secs = 5 };
	unsigned int i;
	FILE *f;
	char *svg;
	int ret = -1;

	for (i = 0; i < 4; i++)
		CHECK_EQ(lat_init(&l[i]), 0);
	for (i = 0; i < 1000; i++) /* around 1 us, a tail to 4 ms */
		lat_add(&l[0], 300 + (i * 7919) % 1500 + (i % 100 == 0 ? 4000000 : 0));
	for (i = 0; i < 10; i++)
		lat_add(&l[1], 100 + i);
	/* l[2], punches: none at all, still one series */
	lat_add(&l[3], 0);
	lat_add(&l[3], 10ULL * 1000000000ULL); /* 0 ns and 10 s: the axis stretches */

	svg = svg_of(&r, &ret);
	CHECK(svg != NULL);
	CHECK_EQ(ret, 0);
	if (svg) {
		CHECK(strstr(svg, "a &lt;title&gt; &amp; &quot;quotes&quot; &apos;too&apos;</text>"));
		CHECK(!strchr(svg, '\x01'));
		CHECK(strstr(svg, "DMA &lt;reads&gt;"));
		CHECK(strstr(svg, "why: &lt;none&gt;"));
		CHECK_EQ(count(svg, "data-kind="), 4);
		CHECK_EQ(count(svg, "data-kind=\"punch\" data-n=\"0\""), 1);
		CHECK_EQ(count(svg, "data-rate="), 2);
		CHECK(strstr(svg, "data-total=\"55555\""));
		CHECK(strstr(svg, "data-per-sec=\"900 1200 0 800 1000\""));
		CHECK(strstr(svg, ">10 s</text>")); /* the axis reaches the slowest sample */
	}
	if (argc > 1) {
		f = fopen(argv[1], "w");
		CHECK(f != NULL);
		if (f) {
			CHECK_EQ(fputs(svg ? svg : "", f) >= 0, 1);
			CHECK_EQ(fclose(f), 0);
		}
	}
	free(svg);

	/* A device that is full: the writer says so rather than leaving half a picture unnoticed. */
	f = fopen("/dev/full", "w");
	if (f) {
		setvbuf(f, NULL, _IONBF, 0);
		CHECK_EQ(report_svg_print(f, &r), -EIO);
		fclose(f);
	}

	/* No seconds at all (a run stopped in its first second): still a whole document. */
	r.nr_secs = 0;
	svg = svg_of(&r, &ret);
	CHECK_EQ(ret, 0);
	CHECK(svg && strstr(svg, "before its first second") && strstr(svg, "</svg>"));
	free(svg);
	for (i = 0; i < 4; i++)
		lat_free(&l[i]);
	return test_failures ? 1 : 0;
}
