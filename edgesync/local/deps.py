"""What the local functions load, for planning: the resolver (`graph.py`) applied to a tree.

A function's own folder is deployed whole; what it loads from elsewhere (shared
modules, another function's file, the deno.json and import map that apply,
static files) are its dependencies, put file by file. A function whose graph
has problems (an import that leaves the functions folder, reaches `main/`, or
names a file that does not exist) cannot be deployed as it is: it is "blocked".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from edgesync.local import scancache
from edgesync.local.graph import FunctionGraph, Problem, Resolver
from edgesync.local.tree import LocalTree
from edgesync.manifest import ROUTER, top_of


def resolver(tree: LocalTree) -> Resolver:
    """The tree's resolver, made once (it caches parsed files and graphs), with the
    import scans of earlier runs (`scancache`)."""
    cached = tree.cache.get("resolver")
    if isinstance(cached, Resolver):
        return cached
    toml = tree.root.parent / "config.toml"
    files = tree.manifest.files
    made = Resolver(
        tree.root,
        files.keys(),
        toml if toml.is_file() else None,
        scanned=scancache.load(tree.root),
        hashes={path: entry.sha256 for path, entry in files.items()},
    )
    tree.cache["resolver"] = made
    return made


def save_scans(tree: LocalTree) -> None:
    """Keep what the resolver scanned for the next run (when it scanned anything new)."""
    made = tree.cache.get("resolver")
    if isinstance(made, Resolver) and made.newly_scanned:
        hashes = {entry.sha256 for entry in tree.manifest.files.values()}
        scancache.save(tree.root, made.scanned, hashes)
        made.newly_scanned = 0


def graph(tree: LocalTree, name: str) -> FunctionGraph:
    """What the local function `name` loads (cached)."""
    return resolver(tree).function(name)


def outside(g: FunctionGraph) -> frozenset[str]:
    """The files a function loads from outside its own folder."""
    prefix = g.name + "/"
    return frozenset(p for p in g.files if not p.startswith(prefix))


def all_dependencies(tree: LocalTree, names: Iterable[str]) -> dict[str, frozenset[str]]:
    """For each named local function, the files it loads from outside its folder."""
    found = {n: outside(graph(tree, n)) for n in names if n in tree.function_names}
    save_scans(tree)
    return found


@dataclass(frozen=True)
class Blocked:
    """A function that cannot be deployed as it is, and why."""

    name: str
    problems: tuple[Problem, ...]

    def describe(self) -> str:
        """One line per problem: `fn: file:line: import 'x' resolves outside …`."""
        return "\n".join(f"{self.name}: {_problem_line(p)}" for p in self.problems)


def _problem_line(p: Problem) -> str:
    where = f"{p.file}:{p.line}" if p.line else p.file
    what = f"import {p.specifier!r}: " if p.specifier else ""
    return f"{where}: {what}{p.detail}"


def blocked(tree: LocalTree, names: Iterable[str]) -> dict[str, Blocked]:
    """The named local functions whose code cannot be deployed as it is."""
    out = {}
    for name in names:
        if name in tree.function_names:
            g = graph(tree, name)
            if g.problems:
                out[name] = Blocked(name, g.problems)
    save_scans(tree)
    return out


def notes(tree: LocalTree, names: Iterable[str]) -> list[str]:
    """Notes about settings the self-hosted server ignores (config.toml, import maps)."""
    out: list[str] = []
    for name in names:
        if name in tree.function_names:
            out += [f"{name}: {n}" for n in graph(tree, name).notes]
    return list(dict.fromkeys(out))


def disabled(tree: LocalTree, names: Iterable[str]) -> list[str]:
    """Functions `[functions.NAME] enabled = false` in config.toml turns off."""
    r = resolver(tree)
    return [n for n in names if n in tree.function_names and not r.enabled(n)]


def affected(
    tree: LocalTree, changed: Collection[str], functions: Collection[str] | None = None
) -> tuple[str, ...]:
    """Local functions (except `main`) whose loaded code includes any of `changed`."""
    names = functions if functions is not None else tree.functions
    changed_set = set(changed)
    changed_tops = {top_of(p) for p in changed_set if "/" in p}
    out = []
    for name in names:
        if name == ROUTER or name not in tree.function_names:
            continue
        if name in changed_tops or not changed_set.isdisjoint(graph(tree, name).files):
            out.append(name)
    save_scans(tree)
    return tuple(sorted(out))


def importers_of(tree: LocalTree, changed: Collection[str]) -> Mapping[str, tuple[str, ...]]:
    """For each changed file outside function folders, the functions that load it."""
    wanted = set(changed)
    users: dict[str, list[str]] = {}
    for name in tree.functions:
        if name != ROUTER:
            for path in wanted & outside(graph(tree, name)):
                users.setdefault(path, []).append(name)
    return {path: tuple(sorted(users[path])) for path in changed if path in users}
