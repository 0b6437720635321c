"""`edgesync rollback`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import rollback as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


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
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Do not request the functions afterwards.")
    ] = False,
    allow_failed: Annotated[
        bool,
        typer.Option("--allow-failed", help="Also bring back a release whose functions failed."),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Restore the server to the state before a release, undoing every later release too.

    The rollback is recorded as a release of its own, so it can be rolled back.

    Example: edgesync rollback 20261123T101500Z-3f2a --yes
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    result = action.rollback(
        ws,
        server(ctx, ws),
        out,
        release,
        yes=yes,
        force=force,
        restart=not no_restart,
        watch_logs=not no_logs and not json_,
        logs_seconds=logs_seconds,
        verify=not no_verify,
        allow_failed=allow_failed,
    )
    finish(out, result)
