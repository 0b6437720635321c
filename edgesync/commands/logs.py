"""`edgesync logs`."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from edgesync.errors import UsageError
from edgesync.logs import attribute, select
from edgesync.output import Output
from edgesync.remote.compose import stream_logs
from edgesync.session import Session


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
    session: Session = ctx.obj
    out = Output()
    pattern = None
    if grep is not None:
        try:
            pattern = re.compile(grep, re.IGNORECASE)
        except re.error as e:
            raise UsageError(f"--grep {grep!r} is not a valid regular expression: {e}") from None
    if since is not None and not re.fullmatch(r"\d+[smhd]|\d{4}-\d\d-\d\d[T0-9:.Z+-]*", since):
        raise UsageError(f"--since {since!r}: use e.g. 30s, 10m, 2h, 1d or 2026-11-23T14:00:00Z")
    raw = stream_logs(session.connection, session.target, tail=tail, since=since, follow=follow)
    try:
        for line in select(attribute(raw), [function] if function else (), pattern):
            out.log_line(line)
    except KeyboardInterrupt:
        pass
