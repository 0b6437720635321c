"""`rollback`: plan from the history, confirm, apply as a release of its own, restart."""

from __future__ import annotations

from dataclasses import replace

from edgesync.actions.common import restart_and_watch, server_snapshot
from edgesync.context import Server, Workspace
from edgesync.errors import Declined, UsageError
from edgesync.history import build_bundle, drifted, refuse_drift, replaced_on_server, rollback_plan
from edgesync.remote.release import apply_release, lock_info
from edgesync.results import RollbackPreview, RollbackResult
from edgesync.ui import UI

DRIFT_HINT = "rollback --force replaces them anyway (they are kept in the new release)"


def rollback(
    ws: Workspace,
    server: Server,
    ui: UI,
    release: str | None = None,
    *,
    yes: bool = False,
    force: bool = False,
    restart: bool = True,
    watch_logs: bool = True,
    logs_seconds: float = 10.0,
) -> RollbackResult:
    """Restore the state before `release` (default: the latest), undoing every later one."""
    target = server.target
    snapshot = server_snapshot(server, ui)
    history = snapshot.history
    remote = snapshot.manifest
    rb = rollback_plan(history.releases, snapshot.kept_releases, remote, release)
    touched = replaced_on_server(rb.plan, remote)  # a rollback replaces all of it
    drift = tuple(p for p in drifted(remote, history.releases) if p in touched)
    steps = [f"restore {f.name}/" for f in rb.plan.functions]
    steps += [f"restore {p.path}" for p in rb.plan.puts]
    steps += [f"remove {d.path}" + ("/" if d.is_function else "") for d in rb.plan.deletes]
    ui.show(RollbackPreview(target.name, rb.undone, tuple(steps), drift))
    refuse_drift(drift, force=force, hint=DRIFT_HINT)
    if not yes:
        if not ui.interactive:
            raise UsageError("rollback needs confirmation", hint="pass --yes")
        if not ui.confirm(f"Roll back {target.name}?"):
            raise Declined("nothing was rolled back")
    actor = ws.actor()
    # The releases being undone keep their backups until retention removes them.
    bundle = build_bundle(
        rb.plan,
        kind="rollback",
        remote=remote,
        expected=rb.expected,
        history=history,
        kept=snapshot.kept_releases,
        keep=target.keep_releases,
        actor=actor,
        target=target.name,
        rolled_back=rb.undone,
        restores_before=rb.before_release,
    )
    applied = apply_release(
        server.shell, target, bundle, ws.config.functions_dir, lock_info(actor, bundle.record.time)
    )
    result = RollbackResult(
        target=target.name,
        release=bundle.rid,
        rolled_back=rb.undone,
        before_release=rb.before_release,
        functions=tuple(
            sorted(
                {f.name for f in rb.plan.functions}
                | {d.path for d in rb.plan.deletes if d.is_function}
            )
        ),
        restored=tuple(f.name for f in rb.plan.functions) + tuple(p.path for p in rb.plan.puts),
        deleted=rb.plan.removed,
        recovered=applied.recovered,
    )
    if applied.recovered:
        ui.warn(f"an interrupted push ({applied.recovered}) was found and rolled back first")
    if not restart:
        return result
    restarted = restart_and_watch(
        server,
        ui,
        release=bundle.rid,
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
