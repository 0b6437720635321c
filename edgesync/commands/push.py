"""`edgesync push`."""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated

import typer

from edgesync import push as core
from edgesync.deploy import PushResult
from edgesync.errors import LockedError, RemoteError, UsageError
from edgesync.output import Output, Progress
from edgesync.session import Session


def push(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Functions to push (default: every function that differs). Each brings the "
            "shared files it imports.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show the plan; change nothing.")
    ] = False,
    no_restart: Annotated[
        bool, typer.Option("--no-restart", help="Upload only; do not restart the service.")
    ] = False,
    no_logs: Annotated[
        bool, typer.Option("--no-logs", help="Do not show the service's logs after restarting.")
    ] = False,
    logs_seconds: Annotated[
        float, typer.Option("--logs-seconds", min=0, help="How long to show the logs.")
    ] = 10.0,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also delete functions and shared files that exist only on the "
            "server (never main/ or .env).",
        ),
    ] = False,
    changed: Annotated[
        bool,
        typer.Option(
            "--changed",
            help="Only functions whose files (or imported shared files) changed in git since "
            "the server's latest release; falls back to comparing content when that commit "
            "is not in the local history.",
        ),
    ] = False,
    require_clean: Annotated[
        bool | None,
        typer.Option(
            "--require-clean/--no-require-clean",
            help="Refuse to push uncommitted changes (default: on when $CI is set).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite files changed on the server outside edgesync (exit 8 otherwise).",
        ),
    ] = False,
    lock_wait: Annotated[
        float,
        typer.Option(
            "--lock-wait",
            min=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for another deploy's lock instead of failing.",
        ),
    ] = 0.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Upload what differs, atomically; restart the service; show the pushed functions' logs.

    A function folder on the server becomes an exact copy of the local one; the
    shared files it imports are updated file by file. Each push is recorded as a
    release on the server.

    Example: edgesync push wpp-provision
    """
    session: Session = ctx.obj
    out = Output(json_mode=json_)
    chosen = list(names or ())
    if changed and chosen:
        raise UsageError("--changed chooses the functions itself: give no names with it")
    for warning in session.local.warnings:
        out.warn(warning)
    if require_clean if require_clean is not None else bool(os.environ.get("CI")):
        core.require_clean(session)
    state = core.server_state(session)
    if changed:
        selection = core.changed_functions(session, state)
        out.info(selection.note)
        if selection.names is not None:
            if not selection.names:
                _nothing(out, session)
                return
            chosen = list(selection.names)
    planned = core.make_plan(session, chosen, prune, state)
    plan = planned.plan
    if plan.empty:
        _nothing(out, session)
        return
    if not json_:
        out.comparison(plan.comparison, session.target.name, session.where(), summary=False)
    if planned.drift:
        out.warn("changed on the server outside edgesync: " + ", ".join(planned.drift))
    if dry_run:
        if json_:
            out.emit_json(
                {
                    "target": session.target.name,
                    "dry_run": True,
                    "functions": [f.name for f in plan.functions],
                    "files": [{"path": p, "action": "upload"} for p in plan.uploads]
                    + [{"path": p, "action": "delete"} for p in plan.removed],
                    "changed_on_server": list(planned.drift),
                }
            )
        else:
            out.line("dry run: nothing was changed")
        return
    core.check_drift(planned, force)
    if plan.deletes and not yes:
        gone = ", ".join(d.path for d in plan.deletes)
        if not sys.stdin.isatty():
            raise UsageError(
                f"--prune would delete {gone} from the server", hint="pass --yes to confirm"
            )
        if not typer.confirm(f"Delete {gone} from {session.target.name}?", default=False):
            raise typer.Exit(1)
    total = sum(session.local.manifest.files[p].size for p in plan.uploads)
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            with Progress(out, total, "uploading") as bar:
                plan, result = core.execute(
                    session,
                    planned,
                    chosen,
                    prune,
                    force,
                    bar.advance,
                    on_replan=lambda p: out.warn(
                        "the server changed while planning; planned again"
                    ),
                )
            break
        except LockedError as e:
            if time.monotonic() >= deadline:
                raise
            out.info(f"waiting for the lock: {e.message}")
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    if result.recovered:
        out.warn(f"an interrupted push ({result.recovered}) was found and rolled back first")
    restarted = restart_and_watch(session, out, result, no_restart, no_logs, logs_seconds)
    out.push_result(result, restarted)
    _summary(session, result, restarted)


def restart_and_watch(
    session: Session,
    out: Output,
    result: PushResult,
    no_restart: bool,
    no_logs: bool,
    logs_seconds: float,
) -> bool:
    """Restart after a release and show its functions' logs; False when not restarted."""
    if result.release is None or no_restart:
        return False
    try:
        since, command = core.restart(session)
    except RemoteError as e:
        out.push_result(result, restarted=False)
        _summary(session, result, False)
        raise RemoteError(
            e.message + f" — the files are deployed and release {result.release} is recorded",
            hint=e.hint or "fix the service, then restart it (or push again)",
        ) from e
    out.info(f"restarted: {command}")
    if not no_logs and logs_seconds > 0 and not out.json_mode:
        out.info(
            f"logs of {', '.join(result.functions) or 'the service'} "
            f"for {logs_seconds:g}s (Ctrl-C to stop):"
        )
        try:
            for line in core.watch_logs(session, result.functions, since, logs_seconds):
                out.log_line(line)
        except KeyboardInterrupt:
            pass
    return True


def _nothing(out: Output, session: Session) -> None:
    """Nothing to push: say so (text or JSON) and in the CI step summary."""
    result = PushResult(session.target.name, None, (), (), (), 0, None, 0.0)
    out.push_result(result, restarted=False)
    _summary(session, result, False)


def _summary(session: Session, result: PushResult, restarted: bool) -> None:
    """Append to $GITHUB_STEP_SUMMARY when CI provides it."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        core.append_step_summary(path, core.step_summary(result, session.git, restarted))
