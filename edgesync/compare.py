"""The read-only core behind `diff` and `ls`: local tree + remote manifest -> results."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from edgesync.errors import UsageError
from edgesync.local import LocalTree, dependencies
from edgesync.manifest import Manifest, top_of
from edgesync.plan import (
    Comparison,
    FunctionState,
    Status,
    compare,
    entry_names,
    function_states,
    selection_for,
)
from edgesync.releases import drifted
from edgesync.remote.files import remote_state
from edgesync.session import Session

PATCH_LIMIT = 2 << 20  # bytes read per side for --patch


@dataclass(frozen=True)
class Patch:
    """A unified diff of one file, or a note that it is binary."""

    path: str
    text: str | None  # None: binary


@dataclass(frozen=True)
class DiffResult:
    """What `diff` found."""

    target: str
    where: str
    comparison: Comparison
    patches: tuple[Patch, ...]


def all_dependencies(tree: LocalTree, names: Sequence[str]) -> dict[str, frozenset[str]]:
    """Shared files each named local function imports (nothing for other names)."""
    return {n: dependencies(tree, n) for n in names if n in tree.functions}


def check_names(names: Sequence[str], local: Manifest, remote: Manifest) -> None:
    """Refuse names that are neither local nor on the server (exit 2, closest names)."""
    known = entry_names(local, remote)
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        raise UsageError(
            f"no function or shared folder named '{name}' locally or on the server",
            hint=f"did you mean {', '.join(close)}?" if close else "see `edgesync ls`",
        )


def diff(session: Session, names: Sequence[str] = (), patch: bool = False) -> DiffResult:
    """Compare the local tree with the server, limited to `names` and what they import."""
    tree = session.local
    state = remote_state(session.connection, session.target)
    remote = state.manifest
    selection = None
    if names:
        check_names(names, tree.manifest, remote)
        selection = selection_for(names, all_dependencies(tree, names))
    comp = compare(tree.manifest, remote, selection)
    shown = {f.path for e in comp.entries for f in e.files}
    comp = replace(comp, changed_on_server=frozenset(drifted(remote, state.history)) & shown)
    patches = tuple(_patches(session, comp)) if patch else ()
    return DiffResult(session.target.name, session.where(), comp, patches)


def list_functions(session: Session) -> tuple[str, str, tuple[FunctionState, ...]]:
    """(target, where, states) for `ls`."""
    tree = session.local
    state = remote_state(session.connection, session.target)
    deps = all_dependencies(tree, tree.functions)
    states = function_states(tree.manifest, state.manifest, tree.functions, deps)
    drift = drifted(state.manifest, state.history)
    last: dict[str, str] = {}
    for rec in state.history:  # oldest first: later releases win
        for name in [*rec.get("functions", []), *rec.get("deleted_functions", [])]:
            last[name] = str(rec.get("id"))
    states = tuple(
        replace(
            s,
            changed_on_server=tuple(p for p in drift if top_of(p) == s.name),
            last_release=last.get(s.name),
        )
        for s in states
    )
    return session.target.name, session.where(), states


def _patches(session: Session, comp: Comparison) -> list[Patch]:
    out = []
    root = session.local.root
    remote_root = session.target.remote_functions_dir
    for entry in comp.entries:
        for f in entry.changed:
            old = b""
            new = b""
            if f.status is not Status.ADDED:
                old = session.connection.read_file(str(remote_root / f.path), PATCH_LIMIT)
            if f.status is not Status.REMOVED:
                with (root / f.path).open("rb") as fh:
                    new = fh.read(PATCH_LIMIT)
            out.append(_unified(f.path, old, new, f.status))
    return out


def _unified(path: str, old: bytes, new: bytes, status: Status) -> Patch:
    try:
        if b"\0" in old or b"\0" in new:
            raise UnicodeDecodeError("utf-8", b"", 0, 1, "NUL byte")
        old_text, new_text = old.decode("utf-8"), new.decode("utf-8")
    except UnicodeDecodeError:
        return Patch(path, None)
    a = "/dev/null" if status is Status.ADDED else f"server/{path}"
    b = "/dev/null" if status is Status.REMOVED else f"local/{path}"
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), a, b
    )
    text = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    return Patch(path, text)
