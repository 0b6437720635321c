"""`edgesync secrets list/set/unset/diff`."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from edgesync.actions import secrets as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace
from edgesync.errors import UsageError

secrets_app = typer.Typer(
    help="The functions' secrets on the server (names and digests shown, values never).",
    no_args_is_help=True,
    add_completion=False,
)

NoApply = Annotated[
    bool,
    typer.Option("--no-apply", help="Only write the file; do not recreate the service."),
]
Yes = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Wire the file into compose without asking, if needed."),
]
NoVerify = Annotated[
    bool, typer.Option("--no-verify", help="Do not request the functions afterwards.")
]


def _read_value(name: str) -> str:
    """One value from standard input: typed without echo on a terminal, else one line."""
    if sys.stdin.isatty():
        return getpass.getpass(f"{name}: ")
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None


@secrets_app.command("list")
def list_(ctx: typer.Context, json_: JsonOption = False) -> None:
    """The variables the functions get: names, where each comes from, and a digest.

    Example: edgesync secrets list
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    finish(out, action.list_secrets(server(ctx, ws), out))


@secrets_app.command("set")
def set_(
    ctx: typer.Context,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            help="NAME=VALUE, or NAME - to type the value (read without echo).",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", metavar="FILE", help="Set every NAME=VALUE of an env file."),
    ] = None,
    no_apply: NoApply = False,
    yes: Yes = False,
    no_verify: NoVerify = False,
    json_: JsonOption = False,
) -> None:
    """Set secrets, recreate the functions service with them, and verify the functions.

    Recorded as a release: `edgesync rollback` brings the previous values back.

    Example: edgesync secrets set WPP_TOKEN -
    """
    out = output(ctx, json_mode=json_)
    values, typed = action.read_assignments(assignments or [])
    if from_file is not None:
        values = {**action.parse_values(_read_file(from_file), str(from_file)), **values}
    if not values and not typed:
        raise UsageError("nothing to set", hint="NAME=VALUE, NAME -, or --from-file FILE")
    ws = workspace(ctx)
    result = action.change_secrets(
        ws,
        server(ctx, ws),
        out,
        set_values=values,
        typed=typed,
        read_value=_read_value,
        apply=not no_apply,
        yes=yes,
        watch_logs=not json_,
        verify=not no_verify,
    )
    finish(out, result)


@secrets_app.command("unset")
def unset(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Names to remove.", show_default=False)],
    no_apply: NoApply = False,
    yes: Yes = False,
    no_verify: NoVerify = False,
    json_: JsonOption = False,
) -> None:
    """Remove secrets, recreate the functions service, and verify the functions.

    Example: edgesync secrets unset OLD_TOKEN
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    result = action.change_secrets(
        ws,
        server(ctx, ws),
        out,
        unset=names,
        apply=not no_apply,
        yes=yes,
        watch_logs=not json_,
        verify=not no_verify,
    )
    finish(out, result)


@secrets_app.command("diff")
def diff(
    ctx: typer.Context,
    from_file: Annotated[
        Path, typer.Option("--from-file", metavar="FILE", help="A local env file to compare.")
    ],
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when a name differs.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Compare a local env file's values with the server's, by digest (values never shown).

    Example: edgesync secrets diff --from-file .env.production
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    result = action.diff_secrets(server(ctx, ws), _read_file(from_file), str(from_file))
    finish(out, result)
    if exit_code and not result.in_sync:
        raise typer.Exit(1)
