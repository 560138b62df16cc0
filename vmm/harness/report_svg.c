/*
 * `veil stress --report`: one SVG document, self-contained (no scripts, no
 * external fonts or styles), drawn from the run's latency histograms and its
 * per-second conversion counts.  Two panels: each operation kind's latency
 * distribution as a step histogram over a log time axis (the share of that
 * kind's samples in each tenth of a decade, so kinds with very different
 * counts compare), and conversions per second on a log count axis.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "report_svg.h"

#define W 960
#define H 892
#define PLOT_L 84
#define PLOT_R (W - 32)
#define LAT_T 120
#define LAT_B 400
#define LEG_T 462
#define RATE_T 592
#define RATE_B 804
#define BINS_PER_DECADE 10
#define MAX_DECADES 20 /* 1 ns to 10^20 ns holds any uint64_t */
#define MAX_BINS (MAX_DECADES * BINS_PER_DECADE)

static const char *const colors[] = { "#1f6fb4", "#e3700e", "#2a9d3a", "#c8282b", "#7b4fb0",
				      "#8c564b" };

/* Text content or an attribute value: the five XML specials escaped, other controls dropped. */
static void put_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c == '\'')
			fputs("&apos;", f);
		else if (c >= 0x20 || c == '\t' || c == '\n')
			fputc(c, f);
	}
}

/* A duration in the unit that suits it: "640 ns", "25.2 µs", "4.22 ms", "1.5 s". */
static void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.3g \xc2\xb5s", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.3g ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3g s", ns / 1e9);
}

/* A count, short: 950, 12.5k, 3.2M. */
static void fmt_count(char *buf, size_t len, double v)
{
	if (v < 1e3)
		snprintf(buf, len, "%.0f", v);
	else if (v < 1e6)
		snprintf(buf, len, "%.3gk", v / 1e3);
	else if (v < 1e9)
		snprintf(buf, len, "%.3gM", v / 1e6);
	else
		snprintf(buf, len, "%.3gG", v / 1e9);
}

static int bin_of(uint64_t ns)
{
	int b = (int)floor(log10(ns ? (double)ns : 1.0) * BINS_PER_DECADE + 1e-9);

	return b < 0 ? 0 : b >= MAX_BINS ? MAX_BINS - 1 : b;
}

/* The latency panel's scales: decades [lo, hi) across, 0..ymax percent up. */
struct lat_axes {
	int lo, hi;
	double ymax;
};

static double lat_x(const struct lat_axes *a, double bin)
{
	return PLOT_L + (bin - a->lo * BINS_PER_DECADE) * (PLOT_R - PLOT_L) /
			((a->hi - a->lo) * BINS_PER_DECADE);
}

static double lat_y(const struct lat_axes *a, double pct)
{
	return LAT_B - pct * (LAT_B - LAT_T) / a->ymax;
}

/* Each series' share of its samples per bin; returns the first and last non-empty bin. */
static void lat_bins(const struct lat *l, double *pct, int *first, int *last)
{
	uint64_t n = lat_count(l);
	unsigned int i;

	memset(pct, 0, MAX_BINS * sizeof(*pct));
	*first = MAX_BINS;
	*last = -1;
	for (i = 0; n && i < LAT_BUCKETS; i++) {
		uint64_t c = lat_bucket_count(l, i);
		int b;

		if (!c)
			continue;
		b = bin_of(lat_bucket_value(i));
		pct[b] += 100.0 * (double)c / (double)n;
		*first = b < *first ? b : *first;
		*last = b > *last ? b : *last;
	}
}

/* The smallest of 1, 2, 2.5, 5 times a power of ten at or above v. */
static double nice_ceil(double v)
{
	static const double steps[] = { 1, 2, 2.5, 5, 10 };
	double p = pow(10, floor(log10(v > 0 ? v : 1)));
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(steps); i++)
		if (steps[i] * p >= v - 1e-9)
			return steps[i] * p;
	return 10 * p;
}

static void lat_axes_fit(const struct report_svg *r, double pct[][MAX_BINS],
			 struct lat_axes *a)
{
	uint64_t mn = UINT64_MAX, mx = 0;
	unsigned int s;
	int b;

	a->ymax = 0;
	for (s = 0; s < r->nr_series; s++) {
		const struct lat *l = r->series[s].lat;

		if (!lat_count(l))
			continue;
		mn = lat_min(l) < mn ? lat_min(l) : mn;
		mx = lat_max(l) > mx ? lat_max(l) : mx;
		for (b = 0; b < MAX_BINS; b++)
			a->ymax = pct[s][b] > a->ymax ? pct[s][b] : a->ymax;
	}
	if (mn > mx) /* no samples at all */
		mn = 100, mx = 100000;
	a->lo = bin_of(mn) / BINS_PER_DECADE;
	a->hi = bin_of(mx) / BINS_PER_DECADE + 1;
	if (a->hi - a->lo < 3) /* at least three decades, so the axis reads as one */
		a->hi = a->lo + 3;
	if (a->hi > MAX_DECADES) {
		a->hi = MAX_DECADES;
		a->lo = a->hi - 3 < a->lo ? a->hi - 3 : a->lo;
	}
	a->ymax = a->ymax * 1.05 > 100 ? 100 : nice_ceil(a->ymax > 0 ? a->ymax * 1.05 : 10);
}

static void axis_label(FILE *f, double x, double y, const char *anchor, const char *text)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", x, y, anchor);
	put_text(f, text);
	fputs("</text>\n", f);
}

static void lat_grid(FILE *f, const struct lat_axes *a)
{
	char buf[32];
	int d, k;

	fputs("<g class=\"grid\" stroke=\"#d8d8d8\" stroke-width=\"1\">\n", f);
	for (d = a->lo; d <= a->hi; d++)
		for (k = 1; k < (d < a->hi ? 10 : 2); k++) {
			double x = lat_x(a, d * BINS_PER_DECADE + log10(k) * BINS_PER_DECADE);

			fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"%s/>\n", x, LAT_T,
				x, LAT_B, k == 1 ? "" : " stroke-opacity=\"0.45\"");
		}
	for (k = 0; k <= 5; k++)
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", PLOT_L,
			lat_y(a, a->ymax * k / 5), PLOT_R, lat_y(a, a->ymax * k / 5));
	fputs("</g>\n<g class=\"ticks\" font-size=\"12\" fill=\"#333\">\n", f);
	for (d = a->lo; d <= a->hi; d++) {
		fmt_ns(buf, sizeof(buf), pow(10, d));
		axis_label(f, lat_x(a, d * BINS_PER_DECADE), LAT_B + 18, "middle", buf);
	}
	for (k = 0; k <= 5; k++) {
		snprintf(buf, sizeof(buf), "%g%%", a->ymax * k / 5);
		axis_label(f, PLOT_L - 8, lat_y(a, a->ymax * k / 5) + 4, "end", buf);
	}
	axis_label(f, (PLOT_L + PLOT_R) / 2.0, LAT_B + 36, "middle",
		   "latency (log scale; each bar a tenth of a decade)");
	fprintf(f, "<text transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\">"
		"share of the kind&apos;s samples</text>\n</g>\n", (LAT_T + LAT_B) / 2);
}

/* The series' outline: up each bin's left edge, across its top, down at the last. */
static void lat_path(FILE *f, const struct lat_axes *a, const double *pct, int first, int last)
{
	int b;

	fprintf(f, "<path d=\"M%.1f %d", lat_x(a, first), LAT_B);
	for (b = first; b <= last; b++)
		fprintf(f, " L%.1f %.1f L%.1f %.1f", lat_x(a, b), lat_y(a, pct[b]), lat_x(a, b + 1),
			lat_y(a, pct[b]));
	fprintf(f, " L%.1f %d Z\"", lat_x(a, last + 1), LAT_B);
}

/* A marker on the axis at a percentile, labelled in the legend. */
static void lat_mark(FILE *f, const struct lat_axes *a, uint64_t ns, const char *color)
{
	double x = lat_x(a, log10(ns ? (double)ns : 1.0) * BINS_PER_DECADE);

	fprintf(f, "<path d=\"M%.1f %d l-4 8 h8 Z\" fill=\"%s\"/>\n", x, LAT_B, color);
}

static void lat_legend(FILE *f, const struct report_svg_series *s, unsigned int i,
		       const char *color)
{
	const struct lat *l = s->lat;
	char p50[24], p99[24], mx[24], line[160];
	double y = LEG_T + 19.0 * i;

	fmt_ns(p50, sizeof(p50), (double)lat_percentile(l, 50));
	fmt_ns(p99, sizeof(p99), (double)lat_percentile(l, 99));
	fmt_ns(mx, sizeof(mx), (double)lat_max(l));
	if (lat_count(l))
		snprintf(line, sizeof(line), "%llu samples \xc2\xb7 median %s \xc2\xb7 p99 %s \xc2\xb7 max %s",
			 (unsigned long long)lat_count(l), p50, p99, mx);
	else
		snprintf(line, sizeof(line), "no samples");
	fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\" "
		"fill-opacity=\"0.35\" stroke=\"%s\"/>\n", PLOT_L, y - 9, color, color);
	axis_label(f, PLOT_L + 22, y, "start", s->label);
	axis_label(f, PLOT_L + 190, y, "start", line);
}

static void lat_series(FILE *f, const struct lat_axes *a, const struct report_svg_series *s,
		       unsigned int i, const double *pct)
{
	const char *color = colors[i % ARRAY_SIZE(colors)];
	const struct lat *l = s->lat;
	int first, last, b;

	for (first = 0; first < MAX_BINS && pct[first] == 0; first++)
		;
	for (last = MAX_BINS - 1; last >= 0 && pct[last] == 0; last--)
		;
	fputs("<g class=\"series\" data-kind=\"", f);
	put_text(f, s->kind);
	fprintf(f, "\" data-n=\"%llu\" data-p50-ns=\"%llu\" data-p99-ns=\"%llu\" "
		"data-max-ns=\"%llu\" data-bins=\"", (unsigned long long)lat_count(l),
		(unsigned long long)lat_percentile(l, 50), (unsigned long long)lat_percentile(l, 99),
		(unsigned long long)lat_max(l));
	for (b = first; b <= last; b++)
		fprintf(f, "%s%.4g", b == first ? "" : " ", pct[b]);
	fputs("\">\n<title>", f);
	put_text(f, s->label);
	fputs("</title>\n", f);
	if (last >= first) {
		lat_path(f, a, pct, first, last);
		fprintf(f, " fill=\"%s\" fill-opacity=\"0.13\" stroke=\"%s\" stroke-width=\"1.6\" "
			"stroke-linejoin=\"round\"/>\n", color, color);
		lat_mark(f, a, lat_percentile(l, 50), color);
	}
	lat_legend(f, s, i, color);
	fputs("</g>\n", f);
}

static void lat_panel(FILE *f, const struct report_svg *r)
{
	double pct[8][MAX_BINS];
	unsigned int n = r->nr_series < 8 ? r->nr_series : 8, i;
	struct lat_axes a;

	for (i = 0; i < n; i++) {
		int first, last;

		lat_bins(r->series[i].lat, pct[i], &first, &last);
	}
	lat_axes_fit(r, pct, &a);
	fprintf(f, "<text class=\"panel\" x=\"%d\" y=\"%d\">Latency of each operation</text>\n",
		PLOT_L, LAT_T - 14);
	lat_grid(f, &a);
	for (i = 0; i < n; i++)
		lat_series(f, &a, &r->series[i], i, pct[i]);
	fprintf(f, "<text font-size=\"12\" fill=\"#555\" x=\"%d\" y=\"%.1f\">"
		"&#9650; on the axis: each kind&apos;s median</text>\n", PLOT_L,
		LEG_T + 19.0 * n + 2);
}

/* The rate panel's scales: seconds 0..secs across, decades [lo, hi] of counts up. */
struct rate_axes {
	unsigned int secs;
	int lo, hi;
};

static double rate_x(const struct rate_axes *a, double sec)
{
	return PLOT_L + sec * (PLOT_R - PLOT_L) / a->secs;
}

static double rate_y(const struct rate_axes *a, uint64_t v)
{
	double l = v ? log10((double)v) : a->lo;

	l = l < a->lo ? a->lo : l;
	return RATE_B - (l - a->lo) * (RATE_B - RATE_T) / (a->hi - a->lo);
}

static void rate_axes_fit(const struct report_svg *r, struct rate_axes *a)
{
	uint64_t mn = UINT64_MAX, mx = 0;
	unsigned int i, s;

	for (i = 0; i < r->nr_rates; i++)
		for (s = 0; s < r->nr_secs; s++) {
			uint64_t v = r->rates[i].per_sec[s];

			mn = v && v < mn ? v : mn;
			mx = v > mx ? v : mx;
		}
	if (!mx)
		mn = mx = 1;
	a->secs = r->nr_secs ? r->nr_secs : 1;
	a->lo = (int)floor(log10((double)mn));
	a->hi = (int)ceil(log10((double)mx) + 1e-9);
	if (a->hi <= a->lo)
		a->hi = a->lo + 1;
}

static void rate_grid(FILE *f, const struct rate_axes *a)
{
	unsigned int step = 1, s;
	char buf[32];
	int d;

	while (a->secs / step > 12)
		step = step < 5 ? 5 : step < 10 ? 10 : step * 2;
	fputs("<g class=\"grid\" stroke=\"#d8d8d8\" stroke-width=\"1\">\n", f);
	for (d = a->lo; d <= a->hi; d++)
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", PLOT_L,
			rate_y(a, (uint64_t)pow(10, d)), PLOT_R, rate_y(a, (uint64_t)pow(10, d)));
	for (s = 0; s <= a->secs; s += step)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", rate_x(a, s),
			RATE_T, rate_x(a, s), RATE_B);
	fputs("</g>\n<g class=\"ticks\" font-size=\"12\" fill=\"#333\">\n", f);
	for (d = a->lo; d <= a->hi; d++) {
		fmt_count(buf, sizeof(buf), pow(10, d));
		axis_label(f, PLOT_L - 8, rate_y(a, (uint64_t)pow(10, d)) + 4, "end", buf);
	}
	for (s = 0; s <= a->secs; s += step) {
		snprintf(buf, sizeof(buf), "%u s", s);
		axis_label(f, rate_x(a, s), RATE_B + 18, "middle", buf);
	}
	axis_label(f, (PLOT_L + PLOT_R) / 2.0, RATE_B + 36, "middle", "time into the run");
	fprintf(f, "<text transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\">"
		"conversions per second (log scale)</text>\n</g>\n", (RATE_T + RATE_B) / 2);
}

static void rate_series(FILE *f, const struct rate_axes *a, const struct report_svg *r,
			unsigned int i)
{
	const struct report_svg_rate *rt = &r->rates[i];
	const char *color = colors[i % ARRAY_SIZE(colors)];
	uint64_t total = 0, peak = 0;
	char line[160], mean[24], pk[24];
	unsigned int s;

	for (s = 0; s < r->nr_secs; s++) {
		total += rt->per_sec[s];
		peak = rt->per_sec[s] > peak ? rt->per_sec[s] : peak;
	}
	fputs("<g class=\"rate\" data-rate=\"", f);
	put_text(f, rt->kind);
	fprintf(f, "\" data-total=\"%llu\" data-seconds=\"%u\" data-per-sec=\"",
		(unsigned long long)total, r->nr_secs);
	for (s = 0; s < r->nr_secs; s++)
		fprintf(f, "%s%llu", s ? " " : "", (unsigned long long)rt->per_sec[s]);
	fputs("\">\n<title>", f);
	put_text(f, rt->label);
	fprintf(f, "</title>\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
		color);
	for (s = 0; s < r->nr_secs; s++)
		fprintf(f, "%s%.1f,%.1f", s ? " " : "", rate_x(a, s + 0.5), rate_y(a, rt->per_sec[s]));
	fputs("\"/>\n", f);
	for (s = 0; s < r->nr_secs && r->nr_secs <= 60; s++)
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", rate_x(a, s + 0.5),
			rate_y(a, rt->per_sec[s]), color);
	fmt_count(mean, sizeof(mean), r->nr_secs ? (double)total / r->nr_secs : 0);
	fmt_count(pk, sizeof(pk), (double)peak);
	snprintf(line, sizeof(line), "%llu in all \xc2\xb7 mean %s/s \xc2\xb7 peak %s/s",
		 (unsigned long long)total, mean, pk);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"3\" fill=\"%s\"/>\n",
		PLOT_L, RATE_B + 53 + 19 * (int)i, color);
	axis_label(f, PLOT_L + 22, RATE_B + 58 + 19 * i, "start", rt->label);
	axis_label(f, PLOT_L + 190, RATE_B + 58 + 19 * i, "start", line);
	fputs("</g>\n", f);
}

static void rate_panel(FILE *f, const struct report_svg *r)
{
	struct rate_axes a;
	unsigned int i;

	rate_axes_fit(r, &a);
	fprintf(f, "<text class=\"panel\" x=\"%d\" y=\"%d\">Conversions per second</text>\n",
		PLOT_L, RATE_T - 14);
	rate_grid(f, &a);
	if (!r->nr_secs)
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">the run "
			"ended before its first second</text>\n", (PLOT_L + PLOT_R) / 2,
			(RATE_T + RATE_B) / 2);
	for (i = 0; i < r->nr_rates; i++)
		rate_series(f, &a, r, i);
}

int report_svg_print(FILE *f, const struct report_svg *r)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
		"font-size=\"13\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
		"<style>.panel{font-size:15px;font-weight:bold}</style>\n", W, H, W, H);
	fputs("<text x=\"24\" y=\"34\" font-size=\"18\" font-weight=\"bold\">", f);
	put_text(f, r->title);
	fputs("</text>\n<text x=\"24\" y=\"56\" fill=\"#444\">", f);
	put_text(f, r->subtitle);
	fputs("</text>\n", f);
	if (r->detail && r->detail[0]) {
		fputs("<text x=\"24\" y=\"76\" fill=\"#c8282b\">", f);
		put_text(f, r->detail);
		fputs("</text>\n", f);
	}
	lat_panel(f, r);
	rate_panel(f, r);
	fputs("</svg>\n", f);
	if (fflush(f))
		return errno ? -errno : -EIO;
	return ferror(f) ? -EIO : 0;
}
