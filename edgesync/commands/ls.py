"""`edgesync ls`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync import compare
from edgesync.output import Output
from edgesync.session import Session


def ls(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """List functions locally and on the server, side by side.

    States: not deployed (only local), only on server, differs (its files or
    the shared files it imports), in sync.

    Example: edgesync ls
    """
    session: Session = ctx.obj
    out = Output(json_mode=json_)
    for warning in session.local.warnings:
        out.warn(warning)
    target, where, states = compare.list_functions(session)
    out.function_states(states, target, where)
