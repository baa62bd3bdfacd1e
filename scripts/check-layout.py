#!/usr/bin/env python3
"""scripts/check-layout.py — the tree is what the docs say it is.

  1. Every tracked file sits under a top-level entry README.md documents
     (a stray file such as a literal '$1/' written by a broken script fails).
  2. Every folder of provisioner/lib/ has a README.md whose "May include:"
     line lists the folders it may include from; each #include "..." in the
     folder keeps to it (basic/ includes only basic/; verbs/ may include all).
  3. No include circle between modules (a module is foo.c with foo.h), and
     none between folders.
  4. With --objects DIR (a build tree): no circle between modules in what
     their object files define and use (nm), which catches a circle that
     headers hide (a header declaring what another file defines).

Exit 0 when all hold; otherwise one line per finding and exit 1.
Usage: scripts/check-layout.py [--objects build]
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

TOP = os.environ.get("LAYOUT_TOP") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = "provisioner/lib"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
findings = []


def tracked():
    # tracked and not yet tracked (but not ignored): a new stray file fails before it is committed
    out = subprocess.run(["git", "-C", TOP, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True)
    return sorted({f for f in out.stdout.decode().split("\0") if f and os.path.exists(os.path.join(TOP, f))})


def documented_top():
    """The top-level entries README.md lists in its "Layout" section."""
    text = open(os.path.join(TOP, "README.md"), encoding="utf-8").read()
    m = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        findings.append("README.md: no '## Layout' section listing the top-level entries")
        return set()
    names = set()
    for bullet in re.findall(r"^[-*] ((?:`[^`]+`,? *)+)", m.group(1), re.M):
        names |= {n.rstrip("/") for n in re.findall(r"`([^`]+)`", bullet)}
    return names


def check_top(files):
    allowed = documented_top()
    stray = sorted({f.split("/")[0] for f in files} - allowed)
    for s in stray:
        findings.append(f"{s}: tracked, but not in README.md's layout (a stray file or an undocumented entry)")


def folder_of(path):
    """'lib:<name>' for provisioner/lib/<name>/..., 'lib:' for lib's own files, or basic/verbs."""
    parts = path.split("/")
    if parts[:2] == ["provisioner", "lib"]:
        return "lib:" + (parts[2] if len(parts) > 3 else "")
    if parts[:2] == ["provisioner", "basic"]:
        return "basic"
    if parts[:2] == ["provisioner", "verbs"]:
        return "verbs"
    return None


def resolve(src, inc, headers):
    """Where `#include "inc"` in src lands, as the compiler finds it
    (-Iprovisioner/basic -Iprovisioner/lib -Iprovisioner/verbs)."""
    for cand in (os.path.join(os.path.dirname(src), inc), "provisioner/basic/" + inc,
                 f"{LIB}/{inc}", "provisioner/verbs/" + inc):
        cand = os.path.normpath(cand)
        if cand in headers:
            return cand
    return None


def may_include():
    rules = {"basic": {"basic"}}
    for d in sorted(os.listdir(os.path.join(TOP, LIB))):
        p = os.path.join(TOP, LIB, d)
        if not os.path.isdir(p):
            continue
        readme = os.path.join(p, "README.md")
        if not os.path.exists(readme):
            findings.append(f"{LIB}/{d}: no README.md (what it owns, what it may include)")
            continue
        m = re.search(r"^May include: (.*)$", open(readme, encoding="utf-8").read(), re.M)
        if not m:
            findings.append(f"{LIB}/{d}/README.md: no 'May include:' line")
            continue
        names = {n.strip().rstrip(".").strip("`").rstrip("/") for n in m.group(1).split(",")}
        names.discard("")
        rules["lib:" + d] = {("basic" if n == "basic" else "lib:" + n) for n in names} | {"lib:" + d}
    return rules


def cycles(graph):
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def module(path):
    """foo.c and foo.h are one module; foo-internal.h is foo's private half."""
    base = os.path.splitext(path)[0]
    return base[: -len("-internal")] if base.endswith("-internal") else base


def check_includes(files):
    sources = [f for f in files if f.startswith("provisioner/") and f.endswith((".c", ".h"))]
    headers = {f for f in sources if f.endswith(".h")}
    rules = may_include()
    mod_graph, dir_graph = defaultdict(set), defaultdict(set)
    for src in sources:
        here = folder_of(src)
        text = open(os.path.join(TOP, src), encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            dst = resolve(src, inc, headers)
            if dst is None:
                findings.append(f'{src}: #include "{inc}" is not a header of the tree')
                continue
            there = folder_of(dst)
            if here != "verbs" and here != "lib:" and there != here:
                if there not in rules.get(here, set()):
                    findings.append(f'{src}: #include "{inc}": {here.replace("lib:", "lib/")} may not include '
                                    f'from {there.replace("lib:", "lib/")} (its README.md "May include:")')
            if module(dst) != module(src):
                mod_graph[module(src)].add(module(dst))
            if there != here:
                dir_graph[here].add(there)
    for c in cycles(mod_graph):
        findings.append("include circle between modules: " + " <-> ".join(c))
    for c in cycles(dir_graph):
        findings.append("include circle between folders: " + " <-> ".join(c))


def check_symbols(objdir, files):
    defs, uses = {}, defaultdict(set)
    for src in files:
        if not (src.startswith("provisioner/") and src.endswith(".c")):
            continue
        obj = os.path.join(TOP, objdir, src[:-2] + ".o")
        if not os.path.exists(obj):
            findings.append(f"{obj}: missing (build first)")
            continue
        nm = subprocess.run(["nm", "-g", obj], capture_output=True, text=True, check=True).stdout
        for line in nm.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in "TDBR":
                defs[p[2]] = module(src)
            elif len(p) == 2 and p[0] == "U":
                uses[module(src)].add(p[1])
    graph = defaultdict(set)
    for m, syms in uses.items():
        for s in syms:
            if s in defs and defs[s] != m:
                graph[m].add(defs[s])
    for c in cycles(graph):
        findings.append("call circle between modules (nm): " + " <-> ".join(c))


def main():
    args = sys.argv[1:]
    files = tracked()
    check_top(files)
    check_includes(files)
    if args[:1] == ["--objects"] and len(args) == 2:
        check_symbols(args[1], files)
    elif args:
        print("usage: scripts/check-layout.py [--objects BUILD_DIR]", file=sys.stderr)
        return 2
    for f in findings:
        print("layout: " + f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
