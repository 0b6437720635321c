"""The root command: global options, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from edgesync import __version__
from edgesync.commands.check import check
from edgesync.commands.diff import diff
from edgesync.commands.history import history
from edgesync.commands.init import init
from edgesync.commands.lock import lock_app
from edgesync.commands.logs import logs
from edgesync.commands.ls import ls
from edgesync.commands.push import push
from edgesync.commands.repair import repair
from edgesync.commands.restart import restart
from edgesync.commands.rollback import rollback
from edgesync.commands.secrets import secrets_app
from edgesync.commands.status import status
from edgesync.context import Options
from edgesync.errors import Declined, EdgesyncError
from edgesync.output import Output
from edgesync.remote import credentials

app = typer.Typer(
    name="edgesync",
    help="Deploy Supabase Edge Functions to a self-hosted Supabase server over SSH.",
    no_args_is_help=True,
    add_completion=True,
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
            metavar="FILE",
            help="edgesync.yaml to use (default: found from here upwards).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            metavar="NAME",
            help="Target from edgesync.yaml (default: $EDGESYNC_TARGET, else default_target).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log remote commands; tracebacks on bugs.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only results, warnings and errors.")
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
        quiet=quiet,
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
app.command("restart")(restart)
app.command("check")(check)
app.command("status")(status)
app.add_typer(lock_app, name="lock")
app.add_typer(secrets_app, name="secrets")


# Global options are accepted after the command too (`edgesync push -t staging`).
_GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet", "--accept-new-host-key"})
_GLOBAL_VALUES = frozenset({"-c", "--config", "-t", "--target"})


def hoist_global_options(argv: list[str], root: Any) -> list[str]:
    """Move global options that follow the command in front of it.

    `root` is the click group: the command's own options that take a value are
    skipped with their value, so `logs --grep -v` keeps its pattern.
    """
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in _GLOBAL_VALUES else 1
    if i >= len(argv):
        return argv
    command = root
    end = i
    while end < len(argv) and argv[end] in getattr(command, "commands", {}):
        command = command.commands[argv[end]]
        end += 1
    end = max(end, i + 1)
    valued = {
        opt
        for param in getattr(command, "params", ())
        if param.param_type_name == "option" and not getattr(param, "is_flag", False)
        for opt in param.opts
    }
    hoisted: list[str] = []
    rest: list[str] = []
    after = argv[end:]
    j = 0
    while j < len(after):
        word = after[j]
        j += 1
        if word == "--":
            rest += [word, *after[j:]]
            break
        if word in _GLOBAL_FLAGS or ("=" in word and word.split("=", 1)[0] in _GLOBAL_VALUES):
            hoisted.append(word)
        elif word in _GLOBAL_VALUES and j < len(after):
            hoisted += [word, after[j]]
            j += 1
        elif word in valued and j < len(after):
            rest += [word, after[j]]
            j += 1
        else:
            rest.append(word)
    return [*argv[:i], *hoisted, *argv[i:end], *rest]


def tidy_help(command: Any) -> None:
    """No `<bool>` beside flags and no `<list[str]>` beside arguments in --help."""
    for param in command.params:
        if getattr(param, "is_flag", False) or param.param_type_name == "argument":
            param.display_type_rich = lambda ctx: None  # noqa: ARG005 - typer's signature
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


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
    credentials.take_env_key()  # out of the environment before git or anything else runs
    command = typer.main.get_command(app)
    tidy_help(command)
    out = Output()
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv), command)
    verbose = "-v" in args or "--verbose" in args
    try:
        rv = command.main(args=args, prog_name="edgesync", standalone_mode=False)
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
