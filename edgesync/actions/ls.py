"""`ls`: every function locally and on the server, with its deployment state."""

from __future__ import annotations

from dataclasses import replace

from edgesync.actions.common import jwt_warnings, local_tree, server_snapshot, server_view
from edgesync.context import Server, Workspace
from edgesync.history import drifted, last_release_of
from edgesync.local import deps
from edgesync.manifest import top_of
from edgesync.plan import function_states
from edgesync.remote.snapshot import start_snapshot
from edgesync.results import LsResult
from edgesync.ui import UI


def list_functions(ws: Workspace, server: Server, ui: UI) -> LsResult:
    """Functions side by side: not deployed, only on server, differs, in sync."""
    pending = start_snapshot(server.shell, server.target)  # the server lists while we scan
    tree = local_tree(ws, ui)
    stuck = deps.blocked(tree, tree.functions)  # local work: done while the listing comes
    loads = deps.all_dependencies(tree, tree.functions)
    snapshot = server_snapshot(server, ui, pending=pending)
    remote = server_view(snapshot, tree.rules).manifest
    states = function_states(tree.manifest, remote, tree.functions, loads)
    drift = () if snapshot.journal else drifted(remote, snapshot.history)
    last = last_release_of(snapshot.history)
    states = tuple(
        replace(
            s,
            changed_on_server=tuple(p for p in drift if top_of(p) == s.name),
            last_release=last.get(s.name),
            problems=tuple(line for line in stuck[s.name].describe().splitlines())
            if s.name in stuck
            else (),
        )
        for s in states
    )
    warnings = jwt_warnings(ws, server)
    for warning in warnings:
        ui.warn(warning)
    return LsResult(server.target.name, server.where(), states, tuple(warnings))
