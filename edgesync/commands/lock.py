"""`edgesync lock status` and `edgesync lock release`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import lock as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace

lock_app = typer.Typer(
    help="Inspect or clear the server's deploy lock.", no_args_is_help=True, add_completion=False
)


@lock_app.command("status")
def status(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Who holds the deploy lock, since when, and whether that deploy still runs.

    Example: edgesync lock status
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    finish(out, action.status(server(ctx, ws)))


@lock_app.command("release")
def release(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Release even while its deploy still runs.")
    ] = False,
) -> None:
    """Clear a stale deploy lock (left by a deploy that was killed).

    Example: edgesync lock release --yes
    """
    out = output(ctx)
    ws = workspace(ctx)
    finish(out, action.release(server(ctx, ws), out, yes=yes, force=force))
