"""`edgesync diff`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import diff as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def diff(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Functions or shared folders to compare (default: all). A function brings "
            "the shared files it imports.",
            show_default=False,
        ),
    ] = None,
    patch: Annotated[
        bool, typer.Option("--patch", "-p", help="Show unified diffs of changed text files.")
    ] = False,
    json_: JsonOption = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when anything differs.")
    ] = False,
) -> None:
    """Compare local functions with the server, by content.

    Shows, per function, shared folder and top-level file, what is added (only
    local, not deployed), modified, removed (only on the server) or unchanged.
    The router main/ and .env files are never compared.

    Example: edgesync diff wpp-create --patch
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    result = action.diff(ws, server(ctx, ws), out, names or (), patch=patch)
    finish(out, result)
    if exit_code and not result.in_sync:
        raise typer.Exit(1)
