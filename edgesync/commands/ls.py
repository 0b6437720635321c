"""`edgesync ls`."""

from __future__ import annotations

import typer

from edgesync.actions.ls import list_functions
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def ls(ctx: typer.Context, json_: JsonOption = False) -> None:
    """List functions locally and on the server, side by side.

    States: not deployed (only local), only on server, differs (its files or
    the shared files it imports), in sync.

    Example: edgesync ls
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    finish(out, list_functions(ws, server(ctx, ws), out))
