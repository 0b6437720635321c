"""`edgesync history`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import history as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def history(
    ctx: typer.Context,
    number: Annotated[int, typer.Option("-n", "--number", min=1, help="How many.")] = 20,
    json_: JsonOption = False,
) -> None:
    """Show the releases recorded on the server, newest first.

    Example: edgesync history -n 5
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    finish(out, action.history(server(ctx, ws), out, number=number))
