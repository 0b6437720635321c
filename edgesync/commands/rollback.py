"""`edgesync rollback`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from edgesync import rollback as core
from edgesync.commands.push import restart_and_watch
from edgesync.errors import UsageError
from edgesync.output import Output
from edgesync.session import Session


def rollback(
    ctx: typer.Context,
    release: Annotated[
        str | None,
        typer.Argument(help="The release to undo, with every later one (default: the latest)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also replace files changed on the server by hand.")
    ] = False,
    no_restart: Annotated[bool, typer.Option("--no-restart", help="Do not restart.")] = False,
    no_logs: Annotated[bool, typer.Option("--no-logs", help="Do not show logs.")] = False,
    logs_seconds: Annotated[
        float, typer.Option("--logs-seconds", min=0, help="How long to show the logs.")
    ] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Restore the server to the state before a release, undoing every later release too.

    The rollback is recorded as a release of its own, so it can be rolled back.

    Example: edgesync rollback 20261123T101500Z-3f2a --yes
    """
    session: Session = ctx.obj
    out = Output(json_mode=json_)
    planned = core.plan(session, release)
    rb = planned.rollback
    what = [f"restore {f.name}/" for f in rb.plan.functions]
    what += [f"restore {p.path}" for p in rb.plan.puts]
    what += [f"remove {d.path}" + ("/" if d.is_function else "") for d in rb.plan.deletes]
    out.info(
        f"rolling back {', '.join(rb.undone)} on {session.target.name}: "
        + ("; ".join(what) or "nothing to change")
    )
    if planned.drift:
        out.warn("changed on the server outside edgesync: " + ", ".join(planned.drift))
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("rollback needs confirmation", hint="pass --yes")
        if not typer.confirm(f"Roll back {session.target.name}?", default=False):
            raise typer.Exit(1)
    result = core.execute(session, planned, force)
    restarted = restart_and_watch(session, out, result, no_restart, no_logs, logs_seconds)
    if json_:
        out.emit_json(
            {
                "target": result.target,
                "release": result.release,
                "rolled_back": list(rb.undone),
                "functions": list(result.functions),
                "files": [{"path": p, "action": "restore"} for p in result.uploaded]
                + [{"path": p, "action": "delete"} for p in result.deleted],
                "restarted": restarted,
            }
        )
    else:
        out.line(
            f"released {result.release} on {result.target}: rolled back "
            f"{', '.join(rb.undone)} (state before {rb.before_release})"
            + ("" if restarted else " (not restarted)")
        )
