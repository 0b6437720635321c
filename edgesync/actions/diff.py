"""`diff`: the local tree against the server's snapshot, limited to names and what they import."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace

from edgesync.actions.common import local_tree, server_snapshot, server_view
from edgesync.context import Server, Workspace
from edgesync.errors import UsageError
from edgesync.history import drifted
from edgesync.local import deps
from edgesync.manifest import ROUTER, Manifest
from edgesync.plan import Comparison, Status, compare, entry_names, push_selection
from edgesync.remote.snapshot import start_snapshot
from edgesync.results import DiffResult, Patch
from edgesync.ui import UI

PATCH_LIMIT = 2 << 20  # bytes read per side for --patch


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


def diff(
    ws: Workspace, server: Server, ui: UI, names: Sequence[str] = (), *, patch: bool = False
) -> DiffResult:
    """Compare the local tree with the server: what a push would change.

    Limited to `names` and what they load; functions that cannot be deployed as
    they are (an import that leaves the functions folder, …) are named.
    """
    pending = start_snapshot(server.shell, server.target)  # the server lists while we scan
    tree = local_tree(ws, ui)
    # The import graphs need only the local tree: built while the listing is on its way
    # (at 1,000 functions ~0.25 s that would otherwise follow it). Names that are not
    # local functions are left out by `deps` and judged against the server below.
    candidates = names or [f for f in tree.functions if f != ROUTER]
    stuck = deps.blocked(tree, candidates)
    loads = deps.all_dependencies(tree, [n for n in candidates if n not in stuck])
    snapshot = server_snapshot(server, ui, pending=pending)
    remote = server_view(snapshot, tree.rules).manifest
    if names:
        check_names(names, tree.manifest, remote)
    for note in deps.notes(tree, candidates):
        ui.info(note)
    selection = push_selection(tree.manifest, remote, names, loads)
    comp = compare(tree.manifest, remote, selection)
    shown = {f.path for e in comp.entries for f in e.files}
    # mid-swap, files differ from the history for a moment: that is not drift
    drift = frozenset() if snapshot.journal else frozenset(drifted(remote, snapshot.history))
    drift &= shown
    comp = replace(comp, changed_on_server=drift)
    patches = tuple(_patches(ws, server, comp)) if patch else ()
    return DiffResult(server.target.name, server.where(), comp, patches, tuple(stuck.values()))


def _patches(ws: Workspace, server: Server, comp: Comparison) -> list[Patch]:
    out = []
    root = ws.tree.root
    remote_root = server.target.remote_functions_dir
    for entry in comp.entries:
        for f in entry.changed:
            old = b""
            new = b""
            if f.status is not Status.ADDED:
                old = server.shell.read_file(str(remote_root / f.path), PATCH_LIMIT)
            if f.status is not Status.REMOVED:
                with (root / f.path).open("rb") as fh:
                    new = fh.read(PATCH_LIMIT)
            out.append(unified(f.path, old, new, f.status))
    return out


def unified(path: str, old: bytes, new: bytes, status: Status) -> Patch:
    """A unified diff of two versions of a file, or a binary note."""
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
