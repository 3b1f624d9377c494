#!/usr/bin/env python3
"""Prints the import graph of a crate's top-level modules and fails on a circle.

    scripts/import-graph.py crudauth/src [--show] [--max-lines N] [--limit FILE=N ...]

A module's edges are the `crate::<module>` paths in its files (comments and doc comments
excluded; the crate root lib.rs, which only declares and re-exports, is skipped). Used by
`.ci/run` so the one-way layering of the runtime cannot quietly regress.
"""
import os
import re
import sys


def top_module(root, path):
    rel = os.path.relpath(path, root)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def main():
    root = sys.argv[1]
    show = "--show" in sys.argv
    limits = {}
    max_lines = None
    args = sys.argv[2:]
    for i, arg in enumerate(args):
        if arg == "--max-lines":
            max_lines = int(args[i + 1])
        elif arg == "--limit":
            name, n = args[i + 1].split("=")
            limits[name] = int(n)
    too_long = []
    graph = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            module = top_module(root, path)
            if module in ("lib", "main"):
                continue
            edges = graph.setdefault(module, set())
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
            rel = os.path.relpath(path, root)
            limit = limits.get(rel, max_lines)
            if limit is not None and len(lines) > limit:
                too_long.append(f"{rel}: {len(lines)} lines (limit {limit})")
            if True:
                for line in lines:
                    code = line.split("//", 1)[0]
                    for target in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code):
                        if target != module:
                            edges.add(target)
                    # `use super::x` inside a folder module stays inside it.
    modules = set(graph)
    for m in graph:
        graph[m] = {t for t in graph[m] if t in modules}
    if show:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m]))}")
    # Tarjan's strongly connected components.
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for line in too_long:
        print("too long:", line)
    if out:
        for comp in out:
            print("import circle:", " <-> ".join(comp))
    if out or too_long:
        sys.exit(1)
    print(f"{root}: {len(graph)} modules, no import circle")


if __name__ == "__main__":
    main()
