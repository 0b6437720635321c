"""`edgesync lock status` and `edgesync lock release`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from edgesync.errors import UsageError
from edgesync.output import Output, render_lock
from edgesync.remote.state import lock_status, release_lock
from edgesync.session import Session

lock_app = typer.Typer(
    help="Inspect or clear the server's deploy lock.", no_args_is_help=True, add_completion=False
)


@lock_app.command("status")
def status(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Who holds the deploy lock, since when, and whether that deploy still runs.

    Example: edgesync lock status
    """
    session: Session = ctx.obj
    st = lock_status(session.connection, session.target)
    render_lock(Output(json_mode=json_), session.target.name, st)


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
    session: Session = ctx.obj
    out = Output()
    st = lock_status(session.connection, session.target)
    if not st.held:
        out.line(f"{session.target.name}: not locked")
        return
    render_lock(out, session.target.name, st)
    if st.server_process == "running" and not force:
        raise UsageError(
            "that deploy is still running on the server: releasing its lock could let two "
            "deploys mix",
            hint="wait for it, or pass --force if you are sure",
        )
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("releasing the lock needs confirmation", hint="pass --yes")
        if not typer.confirm("Release this lock?", default=False):
            raise typer.Exit(1)
    release_lock(session.connection, session.target)
    out.line(f"{session.target.name}: lock released")
