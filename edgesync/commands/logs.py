"""`edgesync logs`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import logs as action
from edgesync.commands._common import JsonOption, output, server, workspace


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
    json_: JsonOption = False,
) -> None:
    """Show the functions service's logs, filtered here.

    With FUNCTION, the router's `serving the request with …/FUNCTION` lines and the
    lines that follow each of them.

    With --json, one JSON object per line: {"function", "line"}.

    Example: edgesync logs --grep provision
    """
    out = output(ctx, json_mode=json_)
    query = action.query(function, grep=grep, follow=follow, tail=tail, since=since)
    ws = workspace(ctx)
    srv = server(ctx, ws)
    if function is not None and follow:  # a typo would wait forever
        action.check_function(ws, srv, function)
    shown = 0
    try:
        for line in action.logs(srv, query):
            out.log_line(line)
            shown += 1
    except KeyboardInterrupt:
        return
    if not shown and not follow:
        if function is not None:  # a function no longer deployed may still have lines
            action.check_function(ws, srv, function)
        what = [f"of {function}" if function else "", f"matching {grep!r}" if grep else ""]
        detail = " ".join(w for w in what if w)
        out.info(f"no log lines {detail} in the last {tail} lines".replace("  ", " "))
