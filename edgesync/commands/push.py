"""`edgesync push`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgesync.actions import push as action
from edgesync.commands._common import JsonOption, finish, output, server, workspace


def push(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Functions to push (default: every function that differs). Each brings the "
            "shared files it imports.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    no_restart: Annotated[
        bool, typer.Option("--no-restart", help="Upload only; do not restart the service.")
    ] = False,
    no_logs: Annotated[
        bool, typer.Option("--no-logs", help="Do not show the service's logs after restarting.")
    ] = False,
    logs_seconds: Annotated[
        float, typer.Option("--logs-seconds", min=0, help="How long to show the logs.")
    ] = 10.0,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also delete functions and shared files that exist only on the "
            "server (never main/ or .env).",
        ),
    ] = False,
    changed: Annotated[
        bool,
        typer.Option(
            "--changed",
            help="Only functions whose files (or imported shared files) changed in git since "
            "the server's latest release; falls back to comparing content when that commit "
            "is not in the local history.",
        ),
    ] = False,
    require_clean: Annotated[
        bool | None,
        typer.Option(
            "--require-clean/--no-require-clean",
            help="Refuse to push uncommitted changes (default: on when $CI is set).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite files changed on the server outside edgesync (exit 8 otherwise).",
        ),
    ] = False,
    lock_wait: Annotated[
        float,
        typer.Option(
            "--lock-wait",
            min=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for another deploy's lock instead of failing.",
        ),
    ] = 0.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="Do not request the functions after the restart."),
    ] = False,
    no_rollback: Annotated[
        bool,
        typer.Option(
            "--no-rollback", help="Keep a release whose functions do not boot (exit 7 still)."
        ),
    ] = False,
    no_check: Annotated[
        bool,
        typer.Option("--no-check", help="Skip the pre-flight (loading the code with Deno)."),
    ] = False,
    check_remote: Annotated[
        bool,
        typer.Option(
            "--check-remote", help="Let the pre-flight fetch remote modules (npm:, jsr:, https:)."
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Upload what differs, atomically; restart the service; show the pushed functions' logs.

    A function folder on the server becomes an exact copy of the local one; the
    shared files it imports are updated file by file. Each push is recorded as a
    release on the server. Local code that does not load is refused first (exit
    9); after the restart every function the push changed is requested, and a
    release whose functions do not boot is rolled back (exit 7).

    Example: edgesync push wpp-provision
    """
    out = output(ctx, json_mode=json_)
    ws = workspace(ctx)
    result = action.push(
        ws,
        server(ctx, ws),
        out,
        names or (),
        dry_run=dry_run,
        restart=not no_restart,
        watch_logs=not no_logs and not json_,
        logs_seconds=logs_seconds,
        prune=prune,
        changed=changed,
        require_clean=require_clean,
        force=force,
        lock_wait=lock_wait,
        yes=yes,
        verify=not no_verify,
        rollback=not no_rollback,
        check=not no_check,
        check_remote=check_remote,
    )
    finish(out, result)
