"""`edgesync repair`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import repair as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def repair(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOption = False,
) -> None:
    """Put edgesync's state on the server back in order.

    Undoes a release that was interrupted mid-swap, and rewrites the history
    without lines no command can read (the old file is kept beside it).

    Example: edgesync repair --yes
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    finish(out, action.repair(ws, server(ctx, ws), out, yes=yes))
