"""`edgesync logs`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import logs as action
from edgesync.commands._common import server, workspace
from edgesync.output import Output


def logs(
    ctx: typer.Context,
    function: Annotated[
        str | None,
        typer.Argument(help="Only the lines attributed to this function.", show_default=False),
    ] = None,
    grep: Annotated[
        str | None, typer.Option("--grep", "-g", help="Case-insensitive regular expression.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", min=0, help="Lines from the end.")] = 100,
    since: Annotated[
        str | None, typer.Option(help="Only lines since: 10m, 2h, or a timestamp.")
    ] = None,
) -> None:
    """Show the functions service's logs, filtered here.

    With FUNCTION, the router's `serving the request with …/FUNCTION` lines and the
    lines that follow each of them.

    Example: edgesync logs --grep provision
    """
    out = Output()
    query = action.query(function, grep=grep, follow=follow, tail=tail, since=since)
    ws = workspace(ctx)
    try:
        for line in action.logs(server(ctx, ws), query):
            out.log_line(line)
    except KeyboardInterrupt:
        pass
