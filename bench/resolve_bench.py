"""Benchmark of edgesync.local.graph on generated trees; prints a table, asserts nothing.

Each tree has N functions of 5 files (index.ts, handler.ts, util.ts, types.ts,
index.test.ts), 50 shared modules in `_shared/` and a `functions/deno.json` with an
alias prefix, so every function goes through the import map, relative imports,
type-only imports and remote specifiers. Times are the best of 3 runs, each with a
fresh Resolver (cold caches), page cache warm.

    .venv/bin/python bench/resolve_bench.py [N ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgesync.local.graph import Resolver  # noqa: E402

SHARED = 50


def make_tree(root: Path, functions: int) -> list[str]:
    """Write a functions folder with `functions` functions; return its relative files."""
    files: dict[str, str] = {
        "deno.json": '{ "imports": { "@shared/": "./_shared/", "zod": "npm:zod@3" } }\n',
        "_shared/cors.ts": 'export const cors = { "Access-Control-Allow-Origin": "*" };\n',
    }
    for i in range(SHARED):
        files[f"_shared/db{i}.ts"] = (
            'import { cors } from "./cors.ts";\n'
            'import { z } from "zod";\n'
            f"export const table{i} = () => [cors, z];\n"
        )
    for n in range(functions):
        fn = f"fn-{n:04d}"
        files[f"{fn}/index.ts"] = (
            'import { serve } from "https://deno.land/std@0.168.0/http/server.ts";\n'
            'import { handle } from "./handler.ts";\n'
            'import type { Input } from "./types.ts";\n'
            'import { cors } from "@shared/cors.ts";\n'
            "// a comment mentioning import('./nothing.ts') is not an import\n"
            "serve((req: Request) => handle(req as unknown as Input, cors));\n"
        )
        files[f"{fn}/handler.ts"] = (
            'import { util } from "./util.ts";\n'
            f'import {{ table{n % SHARED} }} from "../_shared/db{n % SHARED}.ts";\n'
            f"export const handle = (i: unknown, c: unknown) => util(i, c, table{n % SHARED});\n"
        )
        files[f"{fn}/util.ts"] = (
            "export const util = (...xs: unknown[]) => new Response(JSON.stringify(xs));\n"
        )
        files[f"{fn}/types.ts"] = "export interface Input { body: string }\n"
        files[f"{fn}/index.test.ts"] = (
            'import { assert } from "jsr:@std/assert@1";\nimport "./index.ts";\nassert(true);\n'
        )
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of `runs` timings of `work()`, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(size: int) -> tuple[int, float, float]:
    """(files, seconds for one function, seconds for all) on a tree of `size` functions."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "supabase" / "functions"
        files = make_tree(root, size)
        names = sorted({f.split("/", 1)[0] for f in files if f.startswith("fn-")})
        graph = Resolver(root, files, None).function(names[0])
        assert len(graph.modules) == 6 and not graph.problems, graph  # sanity

        def one() -> object:
            return Resolver(root, files, None).function(names[len(names) // 2])

        def every() -> object:
            resolver = Resolver(root, files, None)
            return [resolver.function(name) for name in names]

        return len(files), best_of(3, one), best_of(3, every)


def main(sizes: list[int]) -> None:
    """Print one row per tree size."""
    print(f"{'functions':>9}  {'files':>6}  {'one function':>12}  {'all functions':>13}")
    for size in sizes:
        files, t_one, t_all = measure(size)
        print(f"{size:>9}  {files:>6}  {t_one:>11.4f}s  {t_all:>12.3f}s")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 1000])
