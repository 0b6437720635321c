"""`push`: plan, confirm, apply under the lock, restart, watch the logs; returns a PushResult."""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from edgesync.actions.common import local_tree, restart_and_watch, server_snapshot
from edgesync.context import Server, Workspace
from edgesync.errors import Declined, LockedError, UsageError
from edgesync.history import (
    build_bundle,
    drifted,
    installed_by_push,
    refuse_drift,
)
from edgesync.local.imports import all_dependencies
from edgesync.local.tree import LocalTree
from edgesync.manifest import ROUTER
from edgesync.plan import PushPlan, entry_names, plan_push
from edgesync.remote.release import Applied, StalePlan, apply_release, lock_info
from edgesync.remote.snapshot import ServerSnapshot
from edgesync.results import PlanPreview, PushResult
from edgesync.ui import UI
from edgesync.vcs import changed_since, dirty_paths

DRIFT_HINT = (
    "see them with `edgesync diff --patch`; push --force overwrites them "
    "(the server's version is kept in the release)"
)


@dataclass(frozen=True)
class ChangedSelection:
    """What `--changed` chose: function names, or None to fall back to content."""

    names: tuple[str, ...] | None
    base: str | None  # the commit of the server's latest release
    note: str


def changed_functions(tree: LocalTree, snapshot: ServerSnapshot) -> ChangedSelection:
    """Functions whose files, or the files they import, changed in git since the
    commit of the server's latest release."""
    release = snapshot.history.latest
    base = release.commit if release else None
    if not base:
        why = "the server has no release yet" if release is None else "its release has no commit"
        return ChangedSelection(None, None, f"--changed: {why}; comparing content instead")
    changed = changed_since(tree.root, base)
    if changed.paths is None:
        return ChangedSelection(
            None, base, f"--changed: {changed.reason}; comparing content instead"
        )
    deps = all_dependencies(tree, tree.functions)
    chosen = []
    for fn in tree.functions:
        if fn == ROUTER:
            continue
        own = any(p.startswith(fn + "/") for p in changed.paths)
        if own or changed.paths & deps.get(fn, frozenset()):
            chosen.append(fn)
    note = (
        f"--changed since {base[:8]}: {', '.join(chosen)}"
        if chosen
        else f"--changed: no function changed since {base[:8]}"
    )
    return ChangedSelection(tuple(chosen), base, note)


def require_clean_tree(tree: LocalTree) -> None:
    """Refuse to push uncommitted changes under the functions folder (exit 2)."""
    dirty = dirty_paths(tree.root)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise UsageError(
            f"uncommitted changes under {tree.root}: {shown}",
            hint="commit them, or pass --no-require-clean (the default in CI is to refuse)",
        )


@dataclass(frozen=True)
class Planned:
    """A push plan with the server snapshot it was made from."""

    plan: PushPlan
    snapshot: ServerSnapshot
    drift: tuple[str, ...]  # files changed on the server by hand that this push overwrites


def make_plan(
    tree: LocalTree, snapshot: ServerSnapshot, names: Sequence[str], *, prune: bool
) -> Planned:
    """Compare local and server and decide what the push changes (no I/O)."""
    remote = snapshot.manifest
    known = set(tree.functions) | set(tree.shared) | set(tree.root_files)
    for name in names:
        if name in known:
            continue
        on_server = name in entry_names(tree.manifest, remote)
        close = difflib.get_close_matches(name, sorted(known - {ROUTER}), n=3, cutoff=0.5)
        problem = "exists only on the server" if on_server else "is not a local function"
        raise UsageError(
            f"'{name}' {problem} (in {tree.root})",
            hint=f"did you mean {', '.join(close)}?" if close else "see `edgesync ls`",
        )
    deps = all_dependencies(tree, list(names) if names else list(tree.functions))
    plan = plan_push(tree.manifest, remote, tree.functions, names, deps, prune=prune)
    overwritten = {p for p in plan.uploads if p in remote.files} | set(plan.removed)
    overwritten |= {p for d in plan.deletes for p in remote.under(d.path)}
    drift = tuple(p for p in drifted(remote, snapshot.history.releases) if p in overwritten)
    return Planned(plan, snapshot, drift)


def push(
    ws: Workspace,
    server: Server,
    ui: UI,
    names: Sequence[str] = (),
    *,
    dry_run: bool = False,
    restart: bool = True,
    watch_logs: bool = True,
    logs_seconds: float = 10.0,
    prune: bool = False,
    changed: bool = False,
    require_clean: bool | None = None,
    force: bool = False,
    lock_wait: float = 0.0,
    yes: bool = False,
) -> PushResult:
    """Upload what differs for `names` (default: everything), atomically, then restart."""
    target = server.target.name
    if changed and names:
        raise UsageError("--changed chooses the functions itself: give no names with it")
    tree = local_tree(ws, ui)
    if require_clean if require_clean is not None else bool(os.environ.get("CI")):
        require_clean_tree(tree)
    snapshot = server_snapshot(server, ui)
    chosen = _chosen(tree, snapshot, ui, names, changed=changed)
    if chosen is None:
        return PushResult(target, None)
    planned = make_plan(tree, snapshot, chosen, prune=prune)
    plan = planned.plan
    if plan.empty:
        return PushResult(target, None)
    ui.show(PlanPreview(target, server.where(), plan.comparison))
    if planned.drift:
        ui.warn("changed on the server outside edgesync: " + ", ".join(planned.drift))
    if dry_run:
        return PushResult(
            target,
            None,
            functions=tuple(f.name for f in plan.functions),
            uploaded=plan.uploads,
            deleted=plan.removed,
            dry_run=True,
            changed_on_server=planned.drift,
        )
    refuse_drift(planned.drift, force=force, hint=DRIFT_HINT)
    if plan.deletes and not yes:
        _confirm_deletes(ui, plan, target)
    result = _apply_waiting(
        ws, server, ui, planned, chosen, prune=prune, force=force, wait=lock_wait
    )
    if result.recovered:
        ui.warn(f"an interrupted push ({result.recovered}) was found and rolled back first")
    if result.release is None or not restart:
        return result
    restarted = restart_and_watch(
        server,
        ui,
        release=result.release,
        functions=result.functions,
        watch_logs=watch_logs,
        logs_seconds=logs_seconds,
    )
    return replace(
        result,
        restarted=restarted.restarted,
        restart_command=restarted.command,
        error=restarted.error,
    )


def _chosen(
    tree: LocalTree, snapshot: ServerSnapshot, ui: UI, names: Sequence[str], *, changed: bool
) -> list[str] | None:
    """The names to push ([]: everything that differs); None when --changed found nothing."""
    if not changed:
        return list(names)
    selection = changed_functions(tree, snapshot)
    ui.info(selection.note)
    if selection.names is None:  # compare content instead
        return []
    return list(selection.names) or None


def _confirm_deletes(ui: UI, plan: PushPlan, target: str) -> None:
    gone = ", ".join(d.path for d in plan.deletes)
    if not ui.interactive:
        raise UsageError(
            f"--prune would delete {gone} from the server", hint="pass --yes to confirm"
        )
    if not ui.confirm(f"Delete {gone} from {target}?"):
        raise Declined("nothing was deleted or pushed")


def _apply_waiting(
    ws: Workspace,
    server: Server,
    ui: UI,
    planned: Planned,
    names: Sequence[str],
    *,
    prune: bool,
    force: bool,
    wait: float,
) -> PushResult:
    """Apply, waiting up to `wait` seconds for another deploy's lock."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return _apply(ws, server, ui, planned, names, prune=prune, force=force)
        except LockedError as e:
            if time.monotonic() >= deadline:
                raise
            ui.info(f"waiting for the lock: {e.message}")
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def _apply(
    ws: Workspace,
    server: Server,
    ui: UI,
    planned: Planned,
    names: Sequence[str],
    *,
    prune: bool,
    force: bool,
) -> PushResult:
    """Apply the plan; if the server changed meanwhile, plan again once and retry."""
    started = time.monotonic()
    tree = ws.tree
    try:
        applied, rid = _send(ws, server, ui, planned)
        recovered = applied.recovered
    except StalePlan as stale:
        planned = make_plan(tree, server_snapshot(server, ui), names, prune=prune)
        ui.warn("the server changed while planning; planned again")
        if planned.plan.empty:
            return PushResult(server.target.name, None, recovered=stale.recovered)
        refuse_drift(planned.drift, force=force, hint=DRIFT_HINT)
        applied, rid = _send(ws, server, ui, planned)
        recovered = applied.recovered or stale.recovered
    plan = planned.plan
    return PushResult(
        target=server.target.name,
        release=rid,
        functions=tuple(f.name for f in plan.functions),
        uploaded=plan.uploads,
        deleted=plan.removed,
        bytes_sent=applied.bytes_sent,
        recovered=recovered,
        seconds=time.monotonic() - started,
        commit=ws.git.short,
    )


def _send(ws: Workspace, server: Server, ui: UI, planned: Planned) -> tuple[Applied, str]:
    """Build the release bundle and send it with a progress bar."""
    tree = ws.tree
    plan = planned.plan
    actor = ws.actor()
    bundle = build_bundle(
        plan,
        kind="push",
        remote=planned.snapshot.manifest,
        expected=installed_by_push(plan, tree.manifest),
        history=planned.snapshot.history,
        kept=planned.snapshot.kept_releases,
        keep=server.target.keep_releases,
        actor=actor,
        target=server.target.name,
    )
    total = sum(tree.manifest.files[p].size for p in plan.uploads)
    with ui.progress(total, "uploading") as advance:
        applied = apply_release(
            server.shell,
            server.target,
            bundle,
            tree.root,
            lock_info(actor, bundle.record.time),
            advance,
        )
    return applied, bundle.rid
