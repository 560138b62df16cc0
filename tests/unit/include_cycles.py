#!/usr/bin/env python3
"""No include circles between the modules of a folder (vmm/, gmem/).

A module is a .c file with its header: the same name, or the folder's
prefix and the name (gmem/pin.c: gmem_pin.h or gmem_pins.h).  A header with no .c of its
own (gmem_internal.h, vdev.h) is a shared declaration: whoever includes it is
taken to include what it includes.  Module A depends on B when A.c or A.h
includes B.h, directly or through shared headers.  The test fails on any
cycle of such dependencies and prints it.
"""
import os
import re
import sys

INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(path):
    with open(path, encoding="utf-8") as f:
        return [os.path.basename(i) for i in INC.findall(f.read())]


def graph(folder):
    files = {f for f in os.listdir(folder) if f.endswith((".c", ".h"))}
    mods = {f[:-2] for f in files if f.endswith(".c")}
    prefix = os.path.basename(os.path.normpath(folder)) + "_"

    def owner(hdr):
        """The module a header belongs to, or None for a shared header."""
        name = hdr[:-2]
        for n in (name, name[len(prefix):] if name.startswith(prefix) else None):
            if n and n in mods:
                return n
            if n and n.endswith("s") and n[:-1] in mods:
                return n[:-1]
        return None

    shared = {f for f in files if f.endswith(".h") and owner(f) is None}

    def expand(hdr, seen):
        out = set()
        for i in includes(os.path.join(folder, hdr)):
            if i not in files or i in seen:
                continue
            seen.add(i)
            out.add(i)
            if i in shared:
                out |= expand(i, seen)
        return out

    g = {m: set() for m in mods}
    for m in mods:
        own = [m + ".c"] + [h for h in files if h.endswith(".h") and owner(h) == m]
        for f in own:
            seen = {f}
            direct = [i for i in includes(os.path.join(folder, f)) if i in files]
            for i in direct:
                reach = {i} | (expand(i, seen) if i in shared else set())
                for h in reach:
                    o = owner(h) if h.endswith(".h") else None
                    if o and o != m:
                        g[m].add(o)
    return g


def cycles(g):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1]
    bad = 0
    for folder in sys.argv[2:]:
        g = graph(os.path.join(root, folder))
        for c in cycles(g):
            bad += 1
            edges = ", ".join(f"{a}->{b}" for a in c for b in sorted(g[a]) if b in c)
            print(f"FAIL: {folder}/: modules include each other in a circle: {edges}")
        print(f"{folder}/: {len(g)} modules, {sum(len(v) for v in g.values())} dependencies")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
