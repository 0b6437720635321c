"""The pre-flight: load each function's module graph with the local Deno, as the runtime will.

`deno info --json` from the entry file's folder, so that Deno discovers the
same deno.json the self-hosted runtime does (it is given no other import map),
without the network unless asked: a local module that is missing or does not
parse is found here, before anything is uploaded. Remote modules (`npm:`,
`jsr:`, `https:`) are the runtime's to fetch and are not judged offline.

A function that loaded is not checked again while nothing it loaded changed: the
modules of its Deno graph (by content hash), the config files Deno discovers for
it and the Deno binary are kept per functions folder (`scancache.cache_dir()`).
"""

from __future__ import annotations

import hashlib
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

from edgesync.local import scancache
from edgesync.local.deps import graph, resolver
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
    """Every problem loading the named local functions (a few Deno processes at a time;
    none for a function that loaded before and whose modules did not change)."""
    names = [n for n in functions if n in tree.function_names]
    passed = _Passed(tree, deno, remote=remote)
    todo = [n for n in names if not passed.still(n)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda name: _check(tree, name, deno, remote=remote), todo))
    for name, (problems, modules) in zip(todo, found, strict=True):
        if not problems and modules is not None:
            passed.remember(name, modules)
    passed.save()
    return [p for problems, _ in found for p in problems]


class _Passed:
    """The functions that loaded in an earlier pre-flight, with what they loaded."""

    FORMAT = 1

    def __init__(self, tree: LocalTree, deno: str, *, remote: bool) -> None:
        self.tree = tree
        self.hashes = {path: e.sha256 for path, e in tree.manifest.files.items()}
        folder = scancache.cache_dir()
        self.path = folder / f"preflight-{scancache.folder_key(tree.root)}.json" if folder else None
        try:
            st = os.stat(deno)
            self.deno = f"{deno} {st.st_size} {st.st_mtime_ns} remote={remote}"
        except OSError:
            self.deno = ""
        self.passed: dict[str, dict[str, str]] = {}
        self.changed = False
        if self.path is not None and self.deno:
            try:
                with open(self.path, encoding="utf-8") as f:
                    data = json.load(f)
                if data.get("format") == self.FORMAT and data.get("deno") == self.deno:
                    self.passed = {
                        str(k): {str(p): str(h) for p, h in v.items()}
                        for k, v in data["passed"].items()
                    }
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                self.passed = {}

    def inputs(self, name: str, modules: Sequence[str]) -> dict[str, str] | None:
        """What the function's check depended on: its modules and the config files Deno
        discovers for it, by content hash; None when one is not a file of the tree."""
        found: dict[str, str] = {}
        for path in modules:
            sha = self.hashes.get(path)
            if sha is None:
                return None  # outside the tree, or ignored: not worth trusting
            found[path] = sha
        for config in resolver(self.tree).discovered_configs(name):
            try:
                with open(config, "rb") as f:
                    found["config:" + config] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                return None
        return found

    def still(self, name: str) -> bool:
        """True when the function loaded before and none of its inputs changed since."""
        before = self.passed.get(name)
        if before is None:
            return False
        modules = [p for p in before if not p.startswith("config:")]
        return self.inputs(name, modules) == before

    def remember(self, name: str, modules: Sequence[str]) -> None:
        found = self.inputs(name, modules)
        if found is not None and self.deno:
            self.passed[name] = found
            self.changed = True

    def save(self) -> None:
        if self.changed and self.path is not None:
            known = self.tree.function_names
            passed = {k: v for k, v in self.passed.items() if k in known}
            scancache.write_json(
                self.path, {"format": self.FORMAT, "deno": self.deno, "passed": passed}
            )


def _check(
    tree: LocalTree, name: str, deno: str, *, remote: bool
) -> tuple[list[LoadProblem], list[str] | None]:
    """The problems of one function, and the local modules of its graph (None: unknown)."""
    entry = graph(tree, name).entry
    if entry is None:
        return [], None  # the resolver already says "no entry file"
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
        return [LoadProblem(name, entry, 0, f"deno info could not run: {e}")], None
    if done.returncode != 0:
        first = next((ln for ln in done.stderr.splitlines() if ln.strip()), "deno info failed")
        return [LoadProblem(name, entry, _line_in(first), first.removeprefix("error: "))], None
    data = json.loads(done.stdout)
    return _problems(name, tree.root, data), _local_modules(tree.root, data)


def _local_modules(root: Path, data: dict[str, Any]) -> list[str] | None:
    """The local files of Deno's graph (relative paths); None when one is outside `root`."""
    found = []
    for module in data.get("modules", []):
        url = str(module.get("specifier", ""))
        if url.startswith("file:"):
            rel = _rel(url, root)
            if rel.startswith("/"):
                return None
            found.append(rel)
    return found


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
