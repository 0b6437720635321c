"""`edgesync push`."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from edgesync import push as core
from edgesync.deploy import PushResult
from edgesync.errors import RemoteError, UsageError
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
    if changed:
        selection = core.changed_functions(session)
        out.info(selection.note)
        if selection.names is not None:
            if not selection.names:
                _nothing(out, session, json_)
                return
            chosen = list(selection.names)
    plan = core.make_plan(session, chosen, prune)
    if plan.empty:
        _nothing(out, session, json_)
        return
    if not json_:
        out.comparison(plan.comparison, session.target.name, session.where(), summary=False)
    if dry_run:
        if json_:
            out.emit_json(
                {
                    "target": session.target.name,
                    "dry_run": True,
                    "functions": [f.name for f in plan.functions],
                    "files": [{"path": p, "action": "upload"} for p in plan.uploads]
                    + [{"path": p, "action": "delete"} for p in plan.removed],
                }
            )
        else:
            out.line("dry run: nothing was changed")
        return
    if plan.deletes and not yes:
        gone = ", ".join(d.path for d in plan.deletes)
        if not sys.stdin.isatty():
            raise UsageError(
                f"--prune would delete {gone} from the server", hint="pass --yes to confirm"
            )
        if not typer.confirm(f"Delete {gone} from {session.target.name}?", default=False):
            raise typer.Exit(1)
    total = sum(session.local.manifest.files[p].size for p in plan.uploads)
    with Progress(out, total, "uploading") as bar:
        plan, result = core.execute(
            session,
            plan,
            chosen,
            prune,
            bar.advance,
            on_replan=lambda p: out.warn("the server changed while planning; planned again"),
        )
    if result.recovered:
        out.warn(f"an interrupted push ({result.recovered}) was found and rolled back first")
    restarted = False
    if result.release is not None and not no_restart:
        try:
            since, command = core.restart(session)
        except RemoteError as e:
            out.push_result(result, restarted=False)
            _summary(session, result, False)
            raise RemoteError(
                e.message + f" — the files are deployed and release {result.release} is recorded",
                hint=e.hint or "fix the service, then restart it (or push again)",
            ) from e
        restarted = True
        out.info(f"restarted: {command}")
        if not no_logs and logs_seconds > 0 and not json_:
            out.info(
                f"logs of {', '.join(result.functions) or 'the service'} "
                f"for {logs_seconds:g}s (Ctrl-C to stop):"
            )
            try:
                for line in core.watch_logs(session, result.functions, since, logs_seconds):
                    out.log_line(line)
            except KeyboardInterrupt:
                pass
    out.push_result(result, restarted)
    _summary(session, result, restarted)


def _nothing(out: Output, session: Session, json_: bool) -> None:
    if json_:
        out.emit_json(
            {
                "target": session.target.name,
                "release": None,
                "functions": [],
                "files": [],
                "restarted": False,
            }
        )
    else:
        out.line(f"in sync: nothing to push to {session.target.name}")
    _summary(session, None, False)


def _summary(session: Session, result: PushResult | None, restarted: bool) -> None:
    """Append to $GITHUB_STEP_SUMMARY when CI provides it."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    if result is None:
        result = PushResult(session.target.name, None, (), (), (), 0, None, 0.0)
    core.append_step_summary(path, core.step_summary(result, session.git, restarted))
