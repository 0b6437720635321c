"""`edgesync init`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgesync.errors import UsageError
from edgesync.output import Output
from edgesync.scaffold import InitAnswers, detect_functions_dir, write_config
from edgesync.session import Session


def _ask(value: str | None, flag: str, question: str, default: str | None = None) -> str | None:
    if value is not None:
        return value
    if not sys.stdin.isatty():
        if default is not None:
            return default
        raise UsageError(f"{flag} is required without a terminal", hint=f"pass {flag} VALUE")
    answer: str = typer.prompt(question, default=default or "", show_default=bool(default))
    return answer.strip() or None


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
    session: Session = ctx.obj
    out = Output()
    repo = Path(session.cwd)
    detected = detect_functions_dir(repo)
    fdir = functions_dir or detected
    if fdir is None:
        fdir = "supabase/functions"
        out.warn(f"no supabase/functions folder in {repo}; writing the default {fdir}")
    answers = InitAnswers(
        host=_ask(host, "--host", "Server host (name or ~/.ssh/config alias)") or "",
        user=_ask(user, "--user", "SSH user (empty: from ssh config / local user)", "") or None,
        port=port,
        project_dir=_ask(
            project_dir,
            "--project-dir",
            "Supabase project folder on the server",
        )
        or "",
        identity_file=identity_file,
        target=target,
        functions_dir=fdir,
    )
    path = write_config(repo, answers, force=force)
    out.line(f"wrote {path}")
    out.info("next: edgesync diff   (an unknown host key is refused: see the README)")
