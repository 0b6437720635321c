"""`edgesync check`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import check as action
from edgesync.commands._common import JsonOption, finish, output, workspace


def check(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Functions to check (default: all).", show_default=False),
    ] = None,
    check_remote: Annotated[
        bool, typer.Option("--check-remote", help="Also fetch remote modules (npm:, jsr:, https:).")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Check that each function can be deployed and loads, without a server.

    Resolves every import as Deno does (exit 9 for one that leaves the functions
    folder or names a missing file), then loads each function's module graph
    with the local Deno, as the runtime will: for CI before merge.

    Example: edgesync check wpp-create
    """
    out = output(ctx, json_mode=json_)
    finish(out, action.check(workspace(ctx), out, names or (), remote=check_remote))
