"""The resolver against the reference: Deno's own module graph, for every corpus function.

For each function of `tests/corpus/<style>/supabase/functions`, `deno info --json`
runs on its entry file with the import map the Supabase CLI would use (chosen here
independently of edgesync, from `GetFunctionConfig` / `ShouldUseDenoJsonDiscovery`
in supabase/cli): `--import-map FILE`, or Deno's own discovery from the entry's
folder when the chosen file is a deno.json beside the entry (or nothing is chosen).
The local modules Deno reaches must be exactly the resolver's `modules`, and the
imports Deno cannot load (or that leave the functions folder) exactly its problems.

Deno comes from the `deno` PyPI package (a dev dependency); without it these tests
fail, they never skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from edgesync.local.graph import ENTRY_FILES, FunctionGraph, Resolver
from edgesync.manifest import FUNCTION_NAME_RE, is_ignored

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CORPUS = Path(__file__).resolve().parent / "corpus"


# --------------------------------------------------------------------------- the corpus


def _functions_dir(style: Path) -> Path:
    return style / "supabase" / "functions"


def _config_toml(style: Path) -> dict[str, Any]:
    path = style / "supabase" / "config.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def _settings(style: Path, name: str) -> dict[str, Any]:
    table = _config_toml(style).get("functions", {}).get(name, {})
    return table if isinstance(table, dict) else {}


def _corpus_functions(style: Path) -> list[str]:
    """Top-level folders with an entry file (index.* or a config.toml entrypoint)."""
    root = _functions_dir(style)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name
        if not FUNCTION_NAME_RE.match(name):
            continue
        if _settings(style, name).get("entrypoint") or any(
            (folder / e).is_file() for e in ENTRY_FILES
        ):
            found.append(name)
    return found


CASES = [
    (style.name, name)
    for style in sorted(p for p in CORPUS.iterdir() if p.is_dir())
    for name in _corpus_functions(style)
]


def _kept_files(root: Path) -> list[str]:
    """Every file under `root` that edgesync keeps, relative and '/'-separated."""
    kept = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if not is_ignored(rel):
                kept.append(rel)
    return kept


# --------------------------------------------------------------------------- Deno


@dataclass(frozen=True)
class DenoRun:
    """One `deno info --json` of a function's entry."""

    style: str
    name: str
    entry: Path
    import_map: Path | None  # the file the Supabase CLI chose (None: nothing)
    discovery: bool
    returncode: int
    data: dict[str, Any]
    stderr: str


def _deno_bin() -> str:
    try:
        import deno  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        pytest.fail(
            "Deno is not installed: the resolver is checked against `deno info`. "
            "Install the dev dependencies (make install) or `pip install deno`.",
            pytrace=False,
        )
    path = str(deno.find_deno_bin())
    if not os.path.isfile(path):
        pytest.fail(f"the deno package has no binary at {path}", pytrace=False)
    return path


def _supabase_choice(style: Path, name: str, entry: Path) -> tuple[Path | None, bool]:
    """The import map the Supabase CLI passes for `name`, and whether Deno discovers it."""
    settings = _settings(style, name)
    supabase = style / "supabase"
    fn_dir = _functions_dir(style) / name
    chosen: Path | None = None
    if settings.get("import_map"):
        chosen = (supabase / settings["import_map"]).resolve()
    else:
        for folder in (entry.parent, fn_dir):
            for config in ("deno.json", "deno.jsonc"):
                if (folder / config).is_file():
                    chosen = folder / config
                    break
            if chosen:
                break
        if chosen is None and (fn_dir / "import_map.json").is_file():
            chosen = fn_dir / "import_map.json"
        if chosen is None and (_functions_dir(style) / "import_map.json").is_file():
            chosen = _functions_dir(style) / "import_map.json"
    discovery = chosen is None or (
        chosen.name in ("deno.json", "deno.jsonc") and chosen.parent == entry.parent
    )
    return chosen, discovery


def _entry(style: Path, name: str) -> Path:
    entrypoint = _settings(style, name).get("entrypoint")
    if isinstance(entrypoint, str) and entrypoint:
        return (style / "supabase" / entrypoint).resolve()
    folder = _functions_dir(style) / name
    return next(folder / e for e in ENTRY_FILES if (folder / e).is_file())


def _run_deno(deno: str, denodir: Path, style: Path, name: str) -> DenoRun:
    entry = _entry(style, name)
    chosen, discovery = _supabase_choice(style, name, entry)
    args = [deno, "info", "--json", "--no-remote", "--no-npm"]
    if not discovery and chosen is not None:
        args += ["--import-map", str(chosen)]
    env = {
        **os.environ,
        "DENO_DIR": str(denodir),
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PACKAGE_JSON": "1",  # as the Supabase CLI runs it without a package.json
        "NO_COLOR": "1",
    }
    # Deno discovers deno.json from the working directory: the runtime starts at the entry.
    done = subprocess.run(
        [*args, entry.name],
        cwd=entry.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    data = json.loads(done.stdout) if done.returncode == 0 else {}
    return DenoRun(style.name, name, entry, chosen, discovery, done.returncode, data, done.stderr)


@pytest.fixture(scope="session")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus in a temporary folder, so no deno.json above the repository joins in."""
    target = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS, target, dirs_exist_ok=True)
    return target


@pytest.fixture(scope="session")
def deno_runs(
    corpus_copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], DenoRun]:
    """`deno info` for every corpus function, run in parallel once per session."""
    deno = _deno_bin()
    denodir = tmp_path_factory.mktemp("deno_dir")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(
            lambda case: _run_deno(deno, denodir, corpus_copy / case[0], case[1]), CASES
        )
        return {(run.style, run.name): run for run in runs}


@pytest.fixture(scope="session")
def resolvers(corpus_copy: Path) -> Iterator[dict[str, Resolver]]:
    """One Resolver per corpus style, shared by its functions (as edgesync uses it)."""
    made: dict[str, Resolver] = {}
    for style in sorted(p for p in corpus_copy.iterdir() if p.is_dir()):
        root = _functions_dir(style)
        toml = style / "supabase" / "config.toml"
        made[style.name] = Resolver(root, _kept_files(root), toml if toml.is_file() else None)
    yield made


# --------------------------------------------------------------------------- Deno's graph


def _path_of(url: str) -> str:
    return unquote(urlsplit(url).path)


def _deno_error_reason(message: str) -> str:
    if message.startswith("Module not found"):
        return "missing"
    if "ERR_UNSUPPORTED_DIR_IMPORT" in message or message.startswith("Expected a JavaScript"):
        return "unsupported"
    return f"deno error: {message}"


def _outside_config(root: Path) -> bool:
    """True when Deno's discovery finds a deno.json above the functions folder."""
    return any(
        (folder / name).is_file() for folder in root.parents for name in ("deno.json", "deno.jsonc")
    )


def _expected(  # noqa: C901 - one comparison per kind of Deno result
    run: DenoRun, root: Path, files: frozenset[str], graph: FunctionGraph
) -> tuple[set[str], set[tuple[str, int, str]]]:
    """The local modules Deno loads for the function and the imports it cannot deploy."""
    modules = {m["specifier"]: m for m in run.data["modules"]}
    mapped_outside = {
        (p.file, p.line)
        for p in graph.problems
        if p.reason == "outside" and "mapped by" in p.detail
    }
    outside_config = _outside_config(root)

    def rel(url: str) -> str:
        return os.path.relpath(_path_of(url), root).replace(os.sep, "/")

    loaded: set[str] = set()
    problems: set[tuple[str, int, str]] = set()
    seen: set[str] = set()
    pending = list(run.data["roots"])
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        here = rel(url)
        loaded.add(here)
        for dep in modules[url].get("dependencies", []):
            for kind in ("code", "type"):
                resolved = dep.get(kind)
                if resolved is None:
                    continue
                line = resolved["span"]["start"]["line"] + 1
                raw = dep["specifier"]
                if outside_config and (here, line) in mapped_outside and not raw.startswith("."):
                    # Resolved through a deno.json above the functions folder: the
                    # server will not have it (edgesync reports it instead).
                    problems.add((here, line, "outside"))
                    continue
                if "error" in resolved:
                    problems.add((here, line, "unmapped"))
                    continue
                target = resolved["specifier"]
                if not target.startswith("file:"):
                    continue  # remote: fetched by the runtime
                target_rel = rel(target)
                top = target_rel.split("/", 1)[0]
                error = modules.get(target, {}).get("error")
                if target_rel.startswith("../"):
                    problems.add((here, line, "outside"))
                elif top == "main" and run.name != "main":
                    problems.add((here, line, "router"))
                elif error is not None:
                    problems.add((here, line, _deno_error_reason(error)))
                elif target_rel not in files:
                    problems.add((here, line, "missing"))  # a file edgesync ignores
                else:
                    pending.append(target)
    return loaded, problems


# --------------------------------------------------------------------------- the tests


def test_corpus_is_varied() -> None:
    """Every style folder holds at least one function, and there are many styles."""
    styles = {style for style, _ in CASES}
    assert len(styles) >= 15
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == styles


@pytest.mark.parametrize(("style", "name"), CASES, ids=[f"{s}/{n}" for s, n in CASES])
def test_resolver_matches_deno(
    style: str,
    name: str,
    deno_runs: dict[tuple[str, str], DenoRun],
    resolvers: dict[str, Resolver],
) -> None:
    """Modules, chosen map and problems equal what `deno info` reports for the function."""
    run = deno_runs[(style, name)]
    resolver = resolvers[style]
    graph = resolver.function(name)
    root = Path(resolver.root)

    assert graph.entry == run.entry.relative_to(root).as_posix()
    if run.import_map is not None and root in run.import_map.parents:
        chosen = run.import_map.relative_to(root).as_posix()
        assert chosen in graph.config_files
        if not run.discovery:
            assert graph.import_map == chosen

    if run.returncode != 0:
        # Deno refuses the whole graph (unreadable config or import map).
        assert any(p.reason == "bad-config" for p in graph.problems), run.stderr
        return
    modules, problems = _expected(run, root, resolver.files, graph)
    assert graph.modules == modules
    found = {(p.file, p.line, p.reason) for p in graph.problems if p.line > 0}
    assert found == problems, [p for p in graph.problems if p.line > 0]
