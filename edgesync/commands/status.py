"""`edgesync status`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import status as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def status(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Functions to request (default: every function on the server).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Request the functions on the server now: up, boot error or no answer, with latency.

    The same request a push verifies with (an OPTIONS request unless edgesync.yaml
    `verify:` says otherwise). Exit 7 when one does not answer as it should.

    Example: edgesync status wpp-provision
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    finish(out, action.status(ws, server(ctx, ws), out, names or ()))
