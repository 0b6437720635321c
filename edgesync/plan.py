"""Pure comparison of a local and a remote manifest. No I/O here.

`compare` answers "what differs" per top-level entry (function, shared folder,
top-level file); `function_states` answers "is each function deployed".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from edgesync.manifest import (
    ENTRY_FILES,
    FUNCTION_NAME_RE,
    ROUTER,
    Kind,
    Manifest,
    classify,
    top_of,
)


class Status(str, Enum):
    """How a file or an entry compares, local against the server."""

    ADDED = "added"  # only local: not on the server yet
    MODIFIED = "modified"
    REMOVED = "removed"  # only on the server
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)  # one per file compared
class FileChange:
    """One file's status; `path` is relative to the functions folder."""

    path: str
    status: Status


@dataclass(frozen=True)
class EntryDiff:
    """One function, shared folder or top-level file and its files."""

    name: str
    kind: Kind
    status: Status
    files: tuple[FileChange, ...]

    @property
    def changed(self) -> tuple[FileChange, ...]:
        """The files that are not unchanged."""
        return tuple(f for f in self.files if f.status is not Status.UNCHANGED)


@dataclass(frozen=True)
class Comparison:
    """The result of `diff`: every entry considered, in display order."""

    entries: tuple[EntryDiff, ...]
    changed_on_server: frozenset[str] = frozenset()  # edited on the server outside edgesync

    @property
    def in_sync(self) -> bool:
        """True when no entry differs."""
        return all(e.status is Status.UNCHANGED for e in self.entries)

    def counts(self) -> dict[Status, int]:
        """How many entries have each status."""
        out = {s: 0 for s in Status}
        for e in self.entries:
            out[e.status] += 1
        return out


_KIND_ORDER = {Kind.FUNCTION: 0, Kind.SHARED: 1, Kind.ROOT: 2}


def entry_names(local: Manifest, remote: Manifest) -> dict[str, Kind]:
    """Every top-level name on either side that edgesync manages, with its kind.

    A folder is a function when either side holds it with an entry file.
    """
    names: dict[str, Kind] = {}
    for manifest in (local, remote):
        for top in manifest.folders:
            kind = manifest.kind_of(top)
            if kind is not None and names.get(top) is not Kind.FUNCTION:
                names[top] = kind
        for path in manifest.files:
            if "/" not in path:
                kind = classify(path, is_folder=False)
                if kind is not None:
                    names.setdefault(path, kind)
    return names


def compare(
    local: Manifest,
    remote: Manifest,
    selection: Mapping[str, Collection[str] | None] | None = None,
) -> Comparison:
    """Compare by content hash.

    `selection` limits the result: name -> None keeps the whole entry, name ->
    paths keeps only those files (a function's shared dependencies). Without a
    selection every managed entry is compared except the router `main/`.
    """
    kinds = entry_names(local, remote)
    if selection is None:
        selected: Mapping[str, Collection[str] | None] = {n: None for n in kinds if n != ROUTER}
    else:
        selected = selection
    entries = []
    for name, only in selected.items():
        kind = kinds.get(name) or classify(name, is_folder=True) or Kind.SHARED
        entries.append(_compare_entry(name, kind, local, remote, only))
    entries.sort(key=lambda e: (_KIND_ORDER[e.kind], e.name))
    return Comparison(tuple(entries))


def _compare_entry(
    name: str, kind: Kind, local: Manifest, remote: Manifest, only: Collection[str] | None
) -> EntryDiff:
    lfiles = local.under(name)
    rfiles = remote.under(name)
    paths: Iterable[str] = sorted(set(lfiles) | set(rfiles))
    if only is not None:
        paths = [p for p in paths if p in only]
    files = []
    for path in paths:
        lf, rf = lfiles.get(path), rfiles.get(path)
        if rf is None:
            status = Status.ADDED
        elif lf is None:
            status = Status.REMOVED
        else:
            status = Status.UNCHANGED if lf.sha256 == rf.sha256 else Status.MODIFIED
        files.append(FileChange(path, status))
    on_server = bool(rfiles) or name in remote.folders
    on_local = bool(lfiles) or name in local.folders
    if not on_server and on_local:
        entry_status = Status.ADDED
    elif on_server and not on_local:
        entry_status = Status.REMOVED
    elif any(f.status is not Status.UNCHANGED for f in files):
        entry_status = Status.MODIFIED
    else:
        entry_status = Status.UNCHANGED
    return EntryDiff(name, kind, entry_status, tuple(files))


class Deployment(str, Enum):
    """A function's state for `ls`."""

    NOT_DEPLOYED = "not deployed"
    ONLY_ON_SERVER = "only on server"
    DIFFERS = "differs"
    IN_SYNC = "in sync"


@dataclass(frozen=True)
class FunctionState:
    """One function as `ls` shows it."""

    name: str
    local: bool
    remote: bool
    state: Deployment
    changed_files: tuple[str, ...]  # its own files that differ
    changed_deps: tuple[str, ...]  # imported files outside its folder that differ
    remote_has_entry: bool  # False: the server would answer InvalidWorkerCreation
    changed_on_server: tuple[str, ...] = ()  # its files edited on the server outside edgesync
    last_release: str | None = None  # the newest release that replaced or removed its folder
    problems: tuple[str, ...] = ()  # why it cannot be deployed as it is (one line each)


def function_states(
    local: Manifest,
    remote: Manifest,
    local_functions: Collection[str],
    deps: Mapping[str, Collection[str]],
) -> tuple[FunctionState, ...]:
    """Every function on either side (except `main`), with its deployment state."""
    local_functions = frozenset(local_functions)
    # A server folder is a function when it holds an entry file, when it is one locally, or
    # when it is named like one and not shared code locally: without an entry file the
    # router answers it with a boot error (flagged below).
    remote_functions = {
        top
        for top in remote.folders
        if remote.kind_of(top) is Kind.FUNCTION
        or top in local_functions
        or (FUNCTION_NAME_RE.match(top) and not top.startswith("_") and top not in local.folders)
    }
    names = sorted((set(local_functions) | remote_functions) - {ROUTER})
    out = []
    for name in names:
        entry = _compare_entry(name, Kind.FUNCTION, local, remote, None)
        dep_paths = sorted(deps.get(name, ()))
        dep_changed = tuple(
            p
            for p in dep_paths
            if (lf := local.files.get(p)) is not None
            and ((rf := remote.files.get(p)) is None or rf.sha256 != lf.sha256)
        )
        is_local, is_remote = name in local_functions, name in remote_functions
        if not is_remote:
            state = Deployment.NOT_DEPLOYED
        elif not is_local:
            state = Deployment.ONLY_ON_SERVER
        elif entry.changed or dep_changed:
            state = Deployment.DIFFERS
        else:
            state = Deployment.IN_SYNC
        has_entry = any(f"{name}/{e}" in remote.files for e in ENTRY_FILES)
        out.append(
            FunctionState(
                name=name,
                local=is_local,
                remote=is_remote,
                state=state,
                changed_files=tuple(f.path for f in entry.changed),
                changed_deps=dep_changed,
                remote_has_entry=has_entry or not is_remote,
            )
        )
    return tuple(out)


def selection_for(
    names: Iterable[str], deps: Mapping[str, Collection[str]]
) -> dict[str, Collection[str] | None]:
    """Named entries whole, plus the files outside them that they import."""
    chosen: dict[str, set[str] | None] = {}
    names = list(names)
    for name in names:
        chosen[name] = None
    for name in names:
        for path in deps.get(name, ()):
            top = top_of(path)
            if top in chosen and chosen[top] is None:
                continue
            bucket = chosen.setdefault(top, set())
            assert bucket is not None
            bucket.add(path)
    return dict(chosen)


@dataclass(frozen=True)
class ReplaceFunction:
    """Swap a whole function folder for a staged copy that mirrors the local one."""

    name: str
    existed: bool
    upload: tuple[str, ...]  # paths sent from here
    keep: tuple[str, ...]  # unchanged paths copied on the server
    delete: tuple[str, ...]  # paths only on the server, gone after the swap
    source: str | None = None  # rollback: a folder under the state dir to restore from
    # server paths edgesync ignores (.env, node_modules/, excluded files): copied into the
    # new folder as they are; `preserve_files` counts the regular files among them
    preserve: tuple[str, ...] = ()
    preserve_files: int = 0
    # rollback: files of this folder an older release changed on their own, restored over
    # the restored copy (path, source), and paths that release added, removed from it
    overlay: tuple[tuple[str, str], ...] = ()
    unstage: tuple[str, ...] = ()


@dataclass(frozen=True)
class PutFile:
    """Replace or add one file on its own: shared code, a top-level file, or a file
    another function imports from this function's folder (that folder is not rebuilt)."""

    path: str
    existed: bool
    source: str | None = None  # rollback: a file under the state dir to restore from


@dataclass(frozen=True)
class DeletePath:
    """Remove a server-only function folder or file (only with --prune)."""

    path: str
    is_function: bool


@dataclass(frozen=True)
class PushPlan:
    """What a push will do; empty when local and server already agree."""

    functions: tuple[ReplaceFunction, ...]
    puts: tuple[PutFile, ...]
    deletes: tuple[DeletePath, ...]
    comparison: Comparison

    @property
    def empty(self) -> bool:
        """Nothing to upload, replace or delete."""
        return not (self.functions or self.puts or self.deletes)

    @property
    def uploads(self) -> tuple[str, ...]:
        """Every path whose bytes travel to the server."""
        return tuple(p for f in self.functions for p in f.upload) + tuple(
            p.path for p in self.puts if p.source is None
        )

    @property
    def removed(self) -> tuple[str, ...]:
        """Every path that disappears from the server."""
        return tuple(p for f in self.functions for p in f.delete) + tuple(
            d.path for d in self.deletes
        )


def push_selection(
    local: Manifest,
    remote: Manifest,
    names: Collection[str],
    deps: Mapping[str, Collection[str]],
    skip: Collection[str] = (),
) -> dict[str, Collection[str] | None]:
    """What a push compares: named entries whole with what they load from elsewhere; with
    no names, every function, every `_` folder and top-level file whole (never `main/`,
    nor the functions in `skip`), and from other folders (`utils/`) only the files some
    function loads."""
    if names:
        return selection_for(names, deps)
    whole: dict[str, Collection[str] | None] = {}
    skip = frozenset(skip)
    for name, kind in entry_names(local, remote).items():
        if name == ROUTER or name in skip:
            continue
        if kind is not Kind.SHARED or name.startswith("_"):
            whole[name] = None
    loaded: dict[str, Collection[str] | None] = {}
    for paths in deps.values():
        for path in paths:
            top = top_of(path)
            if top in whole or top == ROUTER:
                continue
            bucket = loaded.setdefault(top, set())
            assert isinstance(bucket, set)
            bucket.add(path)
    return {**whole, **loaded}


def plan_push(
    local: Manifest,
    remote: Manifest,
    local_functions: Collection[str],
    names: Collection[str],
    deps: Mapping[str, Collection[str]],
    *,
    prune: bool = False,
    preserved: Mapping[str, Collection[str]] | None = None,
    preserved_files: Mapping[str, int] | None = None,
    skip: Collection[str] = (),
) -> PushPlan:
    """Decide what a push changes.

    Named functions are mirrored whole; the files they load from outside their
    folder are put file by file, also when they lie in another function's
    folder (which is never rebuilt from a partial selection). No names: see
    `push_selection`. `prune` also deletes what exists only on the server in
    the entries compared whole (never `main/`). `preserved` names the server
    paths under each function that edgesync ignores; they are carried over
    into the new folder (`preserved_files` counts the regular files among them).
    `skip` leaves functions out of a push without names (blocked or disabled).
    """
    local_functions = frozenset(local_functions)
    comp = compare(local, remote, push_selection(local, remote, names, deps, skip))
    whole = set(names) if names else None
    functions: list[ReplaceFunction] = []
    puts: list[PutFile] = []
    deletes: list[DeletePath] = []
    for entry in comp.entries:
        is_whole = whole is None or entry.name in whole
        if entry.kind is Kind.FUNCTION and entry.name in local_functions and is_whole:
            if entry.status is Status.UNCHANGED:
                continue
            by = {s: tuple(f.path for f in entry.files if f.status is s) for s in Status}
            functions.append(
                ReplaceFunction(
                    name=entry.name,
                    existed=entry.status is not Status.ADDED,
                    upload=by[Status.ADDED] + by[Status.MODIFIED],
                    keep=by[Status.UNCHANGED],
                    delete=by[Status.REMOVED],
                    preserve=tuple(sorted((preserved or {}).get(entry.name, ()))),
                    preserve_files=(preserved_files or {}).get(entry.name, 0),
                )
            )
        elif entry.kind is Kind.FUNCTION and entry.name not in local_functions:
            if prune and entry.status is Status.REMOVED and entry.name != ROUTER:
                deletes.append(DeletePath(entry.name, is_function=True))
        else:
            for f in entry.files:
                if f.status in (Status.ADDED, Status.MODIFIED):
                    puts.append(PutFile(f.path, existed=f.status is Status.MODIFIED))
                elif f.status is Status.REMOVED and prune and is_whole:
                    deletes.append(DeletePath(f.path, is_function=False))
    plan = PushPlan(tuple(functions), tuple(puts), tuple(deletes), comp)
    # What is shown is what will happen: no unchanged files, no removals that won't be made.
    touched = set(plan.uploads) | set(plan.removed)
    shown = []
    for e in comp.entries:
        files = tuple(f for f in e.files if f.path in touched or top_of(f.path) in touched)
        if files:
            shown.append(EntryDiff(e.name, e.kind, e.status, files))
    return PushPlan(plan.functions, plan.puts, plan.deletes, Comparison(tuple(shown)))


def through_links(plan: PushPlan, links: Collection[str]) -> tuple[str, ...]:
    """Server symlinks a plan would write, move or delete through (it must not)."""
    if not links:
        return ()
    touched = [f.name for f in plan.functions]
    touched += [p.path for p in plan.puts] + [d.path for d in plan.deletes]
    found = set()
    for path in touched:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in links:
                found.add(prefix)
    return tuple(sorted(found))
