"""The pre-flight checks a function again only when something it loads changed."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgesync.local import preflight as pf
from edgesync.local.tree import LocalTree, scan_local

FILES = {
    "fn-a/index.ts": "import { x } from '../_shared/x.ts';\nDeno.serve(() => new Response(x));\n",
    "fn-b/index.ts": "import { y } from '../_shared/y.ts';\nDeno.serve(() => new Response(y));\n",
    "_shared/x.ts": "export const x = 'x';\n",
    "_shared/y.ts": "export const y = 'y';\n",
}


@pytest.fixture
def deno() -> str:
    found = pf.deno_binary()
    if found is None:
        pytest.fail("Deno is missing: the pre-flight runs it (pip install deno)")
    return found


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The functions `deno info` ran for (a fresh cache folder for each test)."""
    monkeypatch.setenv("EDGESYNC_CACHE_DIR", str(tmp_path / "cache"))
    ran: list[str] = []
    real = subprocess.run

    def run(args: list[str], **kw: Any) -> Any:
        ran.append(Path(kw["cwd"]).name)
        return real(args, **kw)

    monkeypatch.setattr(subprocess, "run", run)
    return ran


def write(root: Path, files: dict[str, str]) -> LocalTree:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return scan_local(root)


def check(tree: LocalTree, deno: str) -> list[str]:
    fresh = dataclasses.replace(tree)  # a new run: no resolver, no graphs yet
    return [p.describe() for p in pf.preflight(fresh, ["fn-a", "fn-b"], deno=deno)]


def test_a_function_that_loaded_is_not_checked_again(
    tmp_path: Path, deno: str, checks: list[str]
) -> None:
    tree = write(tmp_path / "functions", FILES)
    assert check(tree, deno) == []
    assert sorted(checks) == ["fn-a", "fn-b"]
    checks.clear()
    assert check(tree, deno) == []
    assert checks == []


def test_a_change_in_what_it_loads_checks_it_again(
    tmp_path: Path, deno: str, checks: list[str]
) -> None:
    root = tmp_path / "functions"
    check(write(root, FILES), deno)
    checks.clear()
    broken = write(root, {"_shared/x.ts": "export const = 1\n"})  # fn-a loads it
    problems = check(broken, deno)
    assert checks == ["fn-a"]
    assert len(problems) == 1 and problems[0].startswith("fn-a: _shared/x.ts")
    checks.clear()
    assert check(broken, deno) == problems  # a failure is never remembered
    assert checks == ["fn-a"]


def test_a_config_deno_would_discover_checks_it_again(
    tmp_path: Path, deno: str, checks: list[str]
) -> None:
    root = tmp_path / "functions"
    check(write(root, FILES), deno)
    checks.clear()
    check(write(root, {"fn-b/deno.json": '{"imports": {}}\n'}), deno)
    assert checks == ["fn-b"]


def test_another_deno_checks_everything_again(
    tmp_path: Path, deno: str, checks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = write(tmp_path / "functions", FILES)
    check(tree, deno)
    checks.clear()
    other = tmp_path / "deno"
    other.symlink_to(deno)
    assert check(tree, str(other)) == []
    assert sorted(checks) == ["fn-a", "fn-b"]
