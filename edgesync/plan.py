"""Pure comparison of a local and a remote manifest. No I/O here.

`compare` answers "what differs" per top-level entry (function, shared folder,
top-level file); `function_states` answers "is each function deployed".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from edgesync.manifest import ENTRY_FILES, ROUTER, Kind, Manifest, classify, top_of


class Status(str, Enum):
    """How a file or an entry compares, local against the server."""

    ADDED = "added"  # only local: not on the server yet
    MODIFIED = "modified"
    REMOVED = "removed"  # only on the server
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
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
    """Every top-level name on either side that edgesync manages, with its kind."""
    names: dict[str, Kind] = {}
    for manifest in (local, remote):
        for top in manifest.folders:
            kind = classify(top, True)
            if kind is not None:
                names[top] = kind
        for path in manifest.files:
            if "/" not in path:
                kind = classify(path, False)
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
        selected: Mapping[str, Collection[str] | None] = {
            n: None for n in kinds if n != ROUTER
        }
    else:
        selected = selection
    entries = []
    for name, only in selected.items():
        kind = kinds.get(name) or classify(name, True) or Kind.FUNCTION
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


def function_states(
    local: Manifest,
    remote: Manifest,
    local_functions: Collection[str],
    deps: Mapping[str, Collection[str]],
) -> tuple[FunctionState, ...]:
    """Every function on either side (except `main`), with its deployment state."""
    remote_functions = {
        top for top in remote.folders if classify(top, True) is Kind.FUNCTION
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
