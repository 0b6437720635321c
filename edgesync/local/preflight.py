"""The pre-flight: load each function's module graph with the local Deno, as the runtime will.

`deno info --json` from the entry file's folder, so that Deno discovers the
same deno.json the self-hosted runtime does (it is given no other import map),
without the network unless asked: a local module that is missing or does not
parse is found here, before anything is uploaded. Remote modules (`npm:`,
`jsr:`, `https:`) are the runtime's to fetch and are not judged offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from edgesync.local.deps import graph
from edgesync.local.tree import LocalTree

_AT_LINE = re.compile(r"file://[^\s:]+:(\d+):\d+")
SECONDS_PER_FUNCTION = 60.0


@dataclass(frozen=True)
class LoadProblem:
    """A local module a function cannot load, with where Deno says it is."""

    function: str
    file: str  # relative to the functions folder (or the absolute path outside it)
    line: int  # 0 when Deno gives none
    message: str

    def describe(self) -> str:
        """`fn: file:line: message`."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.function}: {where}: {self.message}"


def deno_binary() -> str | None:
    """Deno from the `deno` Python package, else from PATH; None when there is none."""
    try:
        import deno  # type: ignore[import-untyped, unused-ignore]

        path = str(deno.find_deno_bin())
        if os.path.isfile(path):
            return path
    except (ImportError, AttributeError, OSError):
        pass
    return shutil.which("deno")


def preflight(
    tree: LocalTree, functions: Sequence[str], *, deno: str, remote: bool = False
) -> list[LoadProblem]:
    """Every problem loading the named local functions (a few Deno processes at a time)."""
    names = [n for n in functions if n in tree.functions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = pool.map(lambda name: _check(tree, name, deno, remote=remote), names)
        return [p for problems in found for p in problems]


def _check(tree: LocalTree, name: str, deno: str, *, remote: bool) -> list[LoadProblem]:
    entry = graph(tree, name).entry
    if entry is None:
        return []  # the resolver already says "no entry file"
    path = tree.root / entry
    args = [deno, "info", "--json", "--no-npm"] + ([] if remote else ["--no-remote"])
    env = {
        **os.environ,
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PROMPT": "1",
        "DENO_NO_PACKAGE_JSON": "1",
        "NO_COLOR": "1",
    }
    try:
        done = subprocess.run(
            [*args, path.name],
            cwd=path.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=SECONDS_PER_FUNCTION,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return [LoadProblem(name, entry, 0, f"deno info could not run: {e}")]
    if done.returncode != 0:
        first = next((ln for ln in done.stderr.splitlines() if ln.strip()), "deno info failed")
        return [LoadProblem(name, entry, _line_in(first), first.removeprefix("error: "))]
    return _problems(name, tree.root, json.loads(done.stdout))


def _rel(url: str, root: Path) -> str:
    path = unquote(urlsplit(url).path)
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def _line_in(message: str) -> int:
    m = _AT_LINE.search(message)
    return int(m.group(1)) if m else 0


def _problems(name: str, root: Path, data: dict[str, Any]) -> list[LoadProblem]:
    """Errors of local modules and of the imports they make, from `deno info --json`."""
    out: list[LoadProblem] = []
    for module in data.get("modules", []):
        url = str(module.get("specifier", ""))
        if not url.startswith("file:"):
            continue  # remote: the runtime fetches it
        here = _rel(url, root)
        if "error" in module:
            message = str(module["error"])
            out.append(LoadProblem(name, here, _line_in(message), message.splitlines()[0]))
        for dep in module.get("dependencies", []):
            for kind in ("code", "type"):
                resolved = dep.get(kind) or {}
                if "error" in resolved:
                    line = int(resolved.get("span", {}).get("start", {}).get("line", -1)) + 1
                    message = f"import {dep.get('specifier')!r}: {resolved['error']}"
                    out.append(LoadProblem(name, here, line, message.splitlines()[0]))
    return list(dict.fromkeys(out))
