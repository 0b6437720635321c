"""`edgesync history`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.output import Output, render_history
from edgesync.push import server_state
from edgesync.session import Session


def history(
    ctx: typer.Context,
    number: Annotated[int, typer.Option("-n", "--number", min=1, help="How many.")] = 20,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Show the releases recorded on the server, newest first.

    Example: edgesync history -n 5
    """
    session: Session = ctx.obj
    state = server_state(session)
    releases = list(reversed(state.history))[:number]
    render_history(Output(json_mode=json_), session.target.name, releases)
