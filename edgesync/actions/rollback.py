"""`rollback`: plan from the history, confirm, apply as a release of its own, restart."""

from __future__ import annotations

from dataclasses import replace

from edgesync.actions.common import (
    locked_session,
    restart_and_watch,
    send_release,
    server_snapshot,
    server_view,
)
from edgesync.context import Server, Workspace
from edgesync.errors import Declined, EdgesyncError, UsageError, VerifyError
from edgesync.history import (
    Release,
    RollbackPlan,
    build_bundle,
    drifted,
    refuse_drift,
    refuse_links,
    replaced_on_server,
    rollback_plan,
)
from edgesync.local import deps
from edgesync.local.tree import ExcludeRules
from edgesync.plan import through_links
from edgesync.remote.release import ReleaseSession
from edgesync.remote.snapshot import ServerSnapshot
from edgesync.results import RollbackPreview, RollbackResult
from edgesync.ui import UI

DRIFT_HINT = "rollback --force replaces them anyway (they are kept in the new release)"


class Superseded(EdgesyncError):
    """`only_if_latest`: another release came after the one to roll back (nothing was done)."""

    def __init__(self, release: str, later: Release) -> None:
        who = "@".join(x for x in (later.user, later.host) if x)
        super().__init__(
            f"release {later.id}{f' by {who}' if who else ''} came after {release}, "
            "so it was not rolled back"
        )
        self.later = later


def _refuse_superseded(snapshot: ServerSnapshot, release: str | None) -> None:
    """Superseded when `release` is given and is not the latest release."""
    latest = snapshot.history.latest
    if release is not None and latest is not None and latest.id != release:
        raise Superseded(release, latest)


def _plan(
    snapshot: ServerSnapshot, release: str | None, rules: ExcludeRules, *, allow_failed: bool
) -> tuple[RollbackPlan, tuple[str, ...]]:
    """The rollback plan, and the files it replaces that were changed by hand."""
    history, remote = snapshot.history, server_view(snapshot, rules).manifest
    rb = rollback_plan(
        history.releases, snapshot.kept_releases, remote, release, allow_failed=allow_failed
    )
    touched = replaced_on_server(rb.plan, remote)  # a rollback replaces all of it
    return rb, tuple(p for p in drifted(remote, history.releases) if p in touched)


def _to_verify(ws: Workspace, result: RollbackResult) -> tuple[str, ...]:
    """The functions a rollback brought back, and the local ones loading a restored file."""
    gone = set(result.deleted)
    restored = [n for n in result.functions if n not in gone]
    files = [p for p in result.restored if "/" in p and p.split("/", 1)[0] not in restored]
    # a function the rollback removes is not there to answer
    loading = [n for n in deps.affected(ws.tree, files) if n not in gone] if files else ()
    return tuple(sorted({*restored, *loading}))


def _same(a: RollbackPlan, b: RollbackPlan) -> bool:
    return (a.plan.functions, a.plan.puts, a.plan.deletes, a.undone) == (
        b.plan.functions,
        b.plan.puts,
        b.plan.deletes,
        b.undone,
    )


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
    lock_wait: float = 0.0,
    verify: bool = True,
    allow_failed: bool = False,
    reason: str = "",
    only_if_latest: bool = False,
) -> RollbackResult:
    """Restore the state before `release` (default: the latest), undoing every later one.

    The plan is shown and confirmed from a snapshot read without the lock, then
    made again under the lock; if the server changed in between, nothing is done.
    `only_if_latest` (the automatic rollback of a release that did not boot):
    Superseded, and nothing done, when another release came after `release`
    (checked again under the lock: another deploy's release is never undone).
    """
    target = server.target
    snapshot = server_snapshot(server, ui, full_history=True)
    latest_only = release if only_if_latest else None
    _refuse_superseded(snapshot, latest_only)
    rb, drift = _plan(snapshot, release, ws.rules, allow_failed=allow_failed)
    steps = [f"restore {f.name}/" for f in rb.plan.functions]
    steps += [f"restore {p.path}" for p in rb.plan.puts]
    steps += [f"remove {d.path}" + ("/" if d.is_function else "") for d in rb.plan.deletes]
    if rb.secrets is not None:
        steps.append(f"restore the secrets in {rb.secrets.file}")
    ui.show(RollbackPreview(target.name, rb.undone, tuple(steps), drift))
    refuse_drift(drift, force=force, hint=DRIFT_HINT)
    if not yes:
        if not ui.interactive:
            raise UsageError("rollback needs confirmation", hint="pass --yes")
        if not ui.confirm(f"Roll back {target.name}?"):
            raise Declined("nothing was rolled back")

    def work(session: ReleaseSession, snapshot: ServerSnapshot) -> RollbackResult:
        try:
            _refuse_superseded(snapshot, latest_only)  # under the lock: the one that counts
        except Superseded:
            session.cancel()
            raise
        now, now_drift = _plan(snapshot, release, ws.rules, allow_failed=allow_failed)
        if links := through_links(now.plan, snapshot.symlinks):
            session.cancel()
            refuse_links(links, target.remote_functions_dir.as_posix())
        if not _same(now, rb) or (now_drift and not force):
            session.cancel()
            raise UsageError(
                "the server changed since the rollback was planned; nothing was done",
                hint="run the rollback again to see the new plan",
            )
        bundle = build_bundle(
            now.plan,
            kind="rollback",
            remote=server_view(snapshot, ws.rules).manifest,
            expected=now.expected,
            history=snapshot.history,
            kept=snapshot.kept_releases,
            keep=target.keep_releases,
            actor=ws.actor(),
            target=target.name,
            rid=session.rid,
            rolled_back=now.undone,
            restores_before=now.before_release,
            reason=reason,
            secrets=now.secrets,
            secrets_digests=({}, now.secrets_digests) if now.secrets else None,
        )
        # The releases being undone keep their backups until retention removes them.
        send_release(server, ui, session, bundle, ws.config.functions_dir, 0)
        return RollbackResult(
            target=target.name,
            release=bundle.rid,
            rolled_back=now.undone,
            before_release=now.before_release,
            functions=tuple(
                sorted(
                    {f.name for f in now.plan.functions}
                    | {d.path for d in now.plan.deletes if d.is_function}
                )
            ),
            restored=tuple(f.name for f in now.plan.functions)
            + tuple(p.path for p in now.plan.puts),
            deleted=now.plan.removed,
            recovered=snapshot.recovered,
            secrets_restored=now.secrets is not None,
        )

    result = locked_session(ws, server, ui, lock_wait=lock_wait, work=work, full_history=True)
    if not restart:
        return result
    restarted = restart_and_watch(
        server,
        ui,
        release=result.release,
        functions=_to_verify(ws, result),
        watch_logs=watch_logs,
        logs_seconds=logs_seconds,
        verify_with=ws.config if verify else None,
        recreate=result.secrets_restored,
    )
    checked = restarted.verification
    error: EdgesyncError | None = restarted.error
    if checked is not None and not checked.ok:
        error = VerifyError(
            "after the rollback, "
            + "; ".join(
                f"{c.function}: {c.outcome.value} {c.detail}".strip() for c in checked.failed
            ),
            hint="the release it went back to does not boot either: see `edgesync logs`",
        )
    return replace(
        result,
        restarted=restarted.restarted,
        restart_command=restarted.command,
        verification=checked.checks if checked else (),
        error=error,
    )
