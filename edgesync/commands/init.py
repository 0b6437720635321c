"""`edgesync init`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import init as action
from edgesync.commands._common import finish, options, output


def init(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Server host name or ~/.ssh/config alias.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="SSH user on the server.")] = None,
    port: Annotated[int | None, typer.Option(help="SSH port.", min=1, max=65535)] = None,
    project_dir: Annotated[
        str | None,
        typer.Option(help="Absolute path of the Supabase compose project on the server."),
    ] = None,
    identity_file: Annotated[str | None, typer.Option(help="Private key file.")] = None,
    target: Annotated[str, typer.Option("--name", help="Name of the target.")] = "production",
    functions_dir: Annotated[
        str | None, typer.Option(help="Local functions folder (default: detected).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing edgesync.yaml.")] = False,
) -> None:
    """Write a commented edgesync.yaml for this repository.

    Detects supabase/functions; asks for what the flags do not give, but only
    on a terminal.

    Example: edgesync init --host api.example.com --user automation --project-dir /srv/supabase
    """
    out = output(ctx)
    result = action.init(
        options(ctx).cwd,
        out,
        host=host,
        user=user,
        port=port,
        project_dir=project_dir,
        identity_file=identity_file,
        target=target,
        functions_dir=functions_dir,
        force=force,
    )
    finish(out, result)
