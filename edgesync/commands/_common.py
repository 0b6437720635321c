"""What every command does around its action: load the workspace, open the server, render."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.context import (
    Options,
    Server,
    Workspace,
    open_server,
    prepared_workspace,
    take_prepared_server,
)
from edgesync.output import Output
from edgesync.results import PushResult, Result

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def options(ctx: typer.Context) -> Options:
    """The global options given before the command."""
    opts = ctx.obj
    assert isinstance(opts, Options)
    return opts


def output(ctx: typer.Context, *, json_mode: bool = False) -> Output:
    """Where this command's results and messages go (--quiet: no progress lines)."""
    opts = options(ctx)
    return Output(json_mode=json_mode, verbose=opts.verbose, quiet=opts.quiet)


def workspace(ctx: typer.Context) -> Workspace:
    """edgesync.yaml and its chosen target (as loaded when the CLI started connecting)."""
    opts = options(ctx)
    return prepared_workspace(opts) or Workspace.load(opts)


def server(ctx: typer.Context, ws: Workspace) -> Server:
    """The target's server; its connection closes when the command ends."""
    opts = options(ctx)
    srv = take_prepared_server(ws, opts) or open_server(ws.target, opts)
    ctx.call_on_close(srv.close)
    return srv


def finish(out: Output, result: Result) -> None:
    """Render the result, then end with the error it carries (if any)."""
    out.render(result)
    if isinstance(result, PushResult):
        out.step_summary(result)
    error = getattr(result, "error", None)
    if error is not None:
        raise error
