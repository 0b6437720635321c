"""The root command: global options, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from edgesync import __version__
from edgesync.commands.diff import diff
from edgesync.commands.history import history
from edgesync.commands.init import init
from edgesync.commands.lock import lock_app
from edgesync.commands.logs import logs
from edgesync.commands.ls import ls
from edgesync.commands.push import push
from edgesync.commands.repair import repair
from edgesync.commands.rollback import rollback
from edgesync.context import Options
from edgesync.errors import Declined, EdgesyncError
from edgesync.output import Output

app = typer.Typer(
    name="edgesync",
    help="Deploy Supabase Edge Functions to a self-hosted Supabase server over SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"edgesync {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="edgesync.yaml to use (default: found from here upwards).",
            dir_okay=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="Target from edgesync.yaml (default: $EDGESYNC_TARGET, else default_target).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log remote commands; tracebacks on bugs.")
    ] = False,
    accept_new_host_key: Annotated[
        bool,
        typer.Option(
            "--accept-new-host-key",
            help="Trust and remember an unknown server's host key (a changed key is "
            "always refused).",
        ),
    ] = False,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Deploy Supabase Edge Functions to a self-hosted Supabase server over SSH."""
    _setup_logging(verbose)
    ctx.obj = Options(
        config_path=config,
        target_name=target,
        verbose=verbose,
        accept_new_host_key=accept_new_host_key,
    )


app.command("init")(init)
app.command("diff")(diff)
app.command("ls")(ls)
app.command("push")(push)
app.command("logs")(logs)
app.command("history")(history)
app.command("rollback")(rollback)
app.command("repair")(repair)
app.add_typer(lock_app, name="lock")


def _setup_logging(verbose: bool) -> None:
    # paramiko logs transport trouble itself; we report it as one clear line.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = verbose
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root_log = logging.getLogger("edgesync")
    root_log.handlers[:] = [handler]
    root_log.setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Run edgesync; exit with the documented code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run edgesync and return its exit code instead of exiting."""
    command = typer.main.get_command(app)
    out = Output()
    verbose = bool(argv and ("-v" in argv or "--verbose" in argv)) or (
        argv is None and ("-v" in sys.argv or "--verbose" in sys.argv)
    )
    try:
        rv = command.main(args=argv, prog_name="edgesync", standalone_mode=False)
    except Declined as e:  # the user said no: not an error, but not a success either
        out.info(e.message)
        return e.exit_code
    except EdgesyncError as e:
        out.error(e.message, e.hint)
        return e.exit_code
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.TyperException as e:  # usage errors: unknown option, bad value (exit 2)
        show = getattr(e, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            out.error(e.format_message())
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        out.error("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if verbose:
            traceback.print_exc()
        out.error(
            f"unexpected error: {type(e).__name__}: {e}",
            hint="this is a bug in edgesync; run again with -v for the traceback",
        )
        return 1
    return rv if isinstance(rv, int) else 0
