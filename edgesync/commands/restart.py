"""`edgesync restart`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import restart as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def restart(
    ctx: typer.Context,
    no_logs: Annotated[bool, typer.Option("--no-logs", help="Do not show the logs.")] = False,
    logs_seconds: Annotated[
        float, typer.Option("--logs-seconds", min=0, help="How long to show the logs.")
    ] = 10.0,
    recreate: Annotated[
        bool,
        typer.Option(
            "--recreate",
            help="Recreate the container instead (`up -d --force-recreate`): it reads its "
            "environment and secrets anew.",
        ),
    ] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Do not request the functions afterwards.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Restart the functions service and show its logs while it boots.

    The same restart a push does (`restart_command`, or `{compose} restart
    SERVICE`): after a push with --no-restart, or once the service is fixed.

    Example: edgesync restart
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    result = action.restart(
        ws,
        server(ctx, ws),
        out,
        watch_logs=not no_logs and not json_,
        logs_seconds=logs_seconds,
        verify=not no_verify,
        recreate=recreate,
    )
    finish(out, result)
