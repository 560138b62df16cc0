#!/usr/bin/env python3
"""Checks a `veil stress --report` SVG: well-formed XML, exactly one latency series per
operation kind with sane numbers, the per-second conversion rates, and drawing inside the
canvas.  Prints each problem and exits 1 if there was one.

usage: check_report_svg.py SVG [--json STRESS_JSON] [--seconds N] [--nonempty]
                               [--title TEXT] [--n KIND=N ...]
"""
import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET

KINDS = ("guest_convert", "host_convert", "punch", "dma")
RATES = ("guest_convert", "host_convert")
SVG = "{http://www.w3.org/2000/svg}"
problems = []


def bad(msg):
    problems.append(msg)


def ints(s):
    return [int(x) for x in s.split()] if s.strip() else []


def check_coords(el, w, h):
    text = el.get("d") or el.get("points") or ""
    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]
    if el.get("d"):
        # Relative moves (the median markers' "l-4 8 h8") are small; absolute ones are pairs.
        nums = [n for n in nums if abs(n) > 8]
    for n in nums:
        if n < 0 or n > max(w, h):
            bad("%s <%s> has coordinate %g outside the %gx%g canvas" % (
                el.get("data-kind") or "", el.tag.replace(SVG, ""), n, w, h))
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("svg")
    ap.add_argument("--json")
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--nonempty", action="store_true")
    ap.add_argument("--title")
    ap.add_argument("--n", action="append", default=[])
    a = ap.parse_args()
    try:
        root = ET.parse(a.svg).getroot()
    except (ET.ParseError, OSError) as e:
        print("not well-formed XML: %s" % e)
        return 1
    if root.tag != SVG + "svg":
        bad("the root is <%s>, not an SVG <svg>" % root.tag)
    w, h = float(root.get("width", 0)), float(root.get("height", 0))
    if not (100 < w < 5000 and 100 < h < 5000):
        bad("canvas %gx%g" % (w, h))
    if a.title is not None:
        texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
        if a.title not in texts:
            bad("no text element reads %r" % a.title)
    for el in root.iter():
        if el.tag in (SVG + "script", SVG + "image", SVG + "foreignObject") or \
                any(k.endswith("href") for k in el.attrib):
            bad("not self-contained: <%s %s>" % (el.tag, el.attrib))
    series = [el for el in root.iter() if "data-kind" in el.attrib]
    kinds = [el.get("data-kind") for el in series]
    if sorted(kinds) != sorted(KINDS):
        bad("data-kind series are %r, not one each of %r" % (kinds, KINDS))
    report = json.load(open(a.json)) if a.json else None
    want_n = dict(x.split("=") for x in a.n)
    for el in series:
        k = el.get("data-kind")
        try:
            n, p50, p99, mx = (int(el.get(x)) for x in ("data-n", "data-p50-ns", "data-p99-ns",
                                                        "data-max-ns"))
            bins = [float(x) for x in el.get("data-bins", "").split()]
        except (TypeError, ValueError) as e:
            bad("%s: numbers unreadable: %s" % (k, e))
            continue
        if k in want_n and n != int(want_n[k]):
            bad("%s: %d samples, expected %s" % (k, n, want_n[k]))
        if a.nonempty and n == 0:
            bad("%s: no samples" % k)
        if n and not (0 < p50 if a.nonempty else 0 <= p50) <= p99 <= mx < 10**12:
            bad("%s: median %d, p99 %d, max %d ns not rising or not sane" % (k, p50, p99, mx))
        if n and (abs(sum(bins) - 100) > 0.5 or min(bins) < 0):
            bad("%s: bins %r do not share out 100%%" % (k, bins))
        if not n and bins:
            bad("%s: no samples but bins %r" % (k, bins))
        paths = list(el.iter(SVG + "path"))
        if n and not paths:
            bad("%s: nothing drawn" % k)
        for p in paths:
            check_coords(p, w, h)
        if report:
            lat = report.get("latency_us", {}).get(k, {})
            if lat.get("n") != n:
                bad("%s: %d samples, the JSON report says %r" % (k, n, lat.get("n")))
            if n and abs(p50 / 1e3 - lat.get("p50", -1)) > 0.002:
                bad("%s: median %d ns, the JSON report says %r us" % (k, p50, lat.get("p50")))
    rates = [el for el in root.iter() if "data-rate" in el.attrib]
    if sorted(el.get("data-rate") for el in rates) != sorted(RATES):
        bad("data-rate series are %r, not one each of %r" % (
            [el.get("data-rate") for el in rates], RATES))
    for el in rates:
        k = el.get("data-rate")
        per, total, secs = ints(el.get("data-per-sec", "")), int(el.get("data-total", -1)), \
            int(el.get("data-seconds", -1))
        if len(per) != secs or sum(per) != total:
            bad("%s: per-second %r does not add up to %d over %d s" % (k, per, total, secs))
        if a.seconds is not None and secs != a.seconds:
            bad("%s: %d seconds recorded, the run asked for %d" % (k, secs, a.seconds))
        if a.nonempty and (not per or min(per) == 0):
            bad("%s: a second without conversions: %r" % (k, per))
        for p in el.iter(SVG + "polyline"):
            check_coords(p, w, h)
        if report:
            key = {"guest_convert": "guest_conversions", "host_convert": "host_conversions"}[k]
            if total > report.get(key, 0):
                bad("%s: %d per-second conversions in all, more than the report's %s %r" % (
                    k, total, key, report.get(key)))
            if a.nonempty and total < report.get(key, 0) / 3:
                bad("%s: %d per-second conversions in all, under a third of the report's %r" % (
                    k, total, report.get(key)))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
