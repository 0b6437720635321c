"""The root command: global options, and the one place errors become exit codes.

Command modules are imported when their command runs (or shows its own help):
`edgesync --version` and `edgesync --help` import typer and nothing heavy —
no paramiko, rich tables, PyYAML, GitPython or the resolver. The root help's
one-line summaries come from `COMMANDS`; a test keeps them equal to the
commands' docstrings.
"""

from __future__ import annotations

import importlib
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from edgesync import __version__
from edgesync.errors import Declined, EdgesyncError
from edgesync.remote import credentials

if TYPE_CHECKING:
    from edgesync.output import Output

# name -> (module, attribute, the first paragraph of its help), in `--help` order.
# The attribute is a command function, or a typer.Typer for a group of subcommands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("init", "init", "Write a commented edgesync.yaml for this repository."),
    "diff": ("diff", "diff", "Compare local functions with the server, by content."),
    "ls": ("ls", "ls", "List functions locally and on the server, side by side."),
    "push": (
        "push",
        "push",
        "Upload what differs, atomically; restart the service; show the pushed functions' logs.",
    ),
    "logs": ("logs", "logs", "Show the functions service's logs, filtered here."),
    "history": ("history", "history", "Show the releases recorded on the server, newest first."),
    "rollback": (
        "rollback",
        "rollback",
        "Restore the server to the state before a release, undoing every later release too.",
    ),
    "repair": ("repair", "repair", "Put edgesync's state on the server back in order."),
    "restart": (
        "restart",
        "restart",
        "Restart the functions service and show its logs while it boots.",
    ),
    "check": (
        "check",
        "check",
        "Check that each function can be deployed and loads, without a server.",
    ),
    "status": (
        "status",
        "status",
        "Request the functions on the server now: up, boot error or no answer, with latency.",
    ),
    "lock": ("lock", "lock_app", "Inspect or clear the server's deploy lock."),
    "secrets": (
        "secrets",
        "secrets_app",
        "The functions' secrets on the server (names and digests shown, values never).",
    ),
}


# Commands that always open an SSH connection: the CLI starts connecting as soon as the
# global options are parsed, while the command's module is imported (`LazyGroup.invoke`).
CONNECTING = frozenset(
    {"diff", "ls", "push", "logs", "history", "rollback", "restart", "status", "lock", "repair"}
)


def load_command(name: str, *, markup: Any = None) -> Any:
    """The click command `name`, built from its module in `edgesync.commands` (imported now)."""
    module_name, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(f"edgesync.commands.{module_name}"), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        command: Any = typer.main.get_group_from_info(
            holder.registered_groups[0],
            pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=app.suggest_commands,
            rich_markup_mode=markup,
        )
    else:
        holder.command(name)(target)
        command = typer.main.get_command_from_info(
            holder.registered_commands[0],
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=markup,
        )
    tidy_help(command)
    native_coercion(command)
    return command


class NativeCoercion:
    """A parameter's value conversion for the plain cases (a string, a whole number, a path
    that does not exist yet, a list of strings), done here instead of by typer, which builds
    a pydantic TypeAdapter for every parameter of a command that runs (pydantic's import
    alone is ~0.2 s at every start). Anything else, and every value that does not convert
    plainly, goes to typer's own conversion: same results, same error messages."""

    NUMBER = re.compile(r"[0-9]+")
    DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")

    def __init__(self, param: Any) -> None:
        self.param = param
        self.info = param.type_descriptor.parameter_info
        self.kind = param.type_descriptor.annotation

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """As typer's RuntimeParam.coerce: None and multi-value handling, then the value."""
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        native = self.convert(value)
        if native is not None:
            return native
        if multi and isinstance(value, str):
            raise typer.BadParameter("Value must be an iterable.", ctx=ctx, param=param)
        from typer._coercion import build_runtime_param  # typer's own: pydantic comes with it

        return build_runtime_param(self.param.type_descriptor)._coerce_value(
            value, param=param, ctx=ctx
        )

    def convert(self, value: Any) -> Any:
        """The value converted, or None when typer's conversion must decide."""
        kind, info = self.kind, self.info
        if (kind is str and isinstance(value, str)) or (kind is bool and isinstance(value, bool)):
            return value
        if kind in (int, float) and not info.clamp and not isinstance(value, bool):
            plain = self.NUMBER if kind is int else self.DECIMAL
            text = isinstance(value, str) and plain.fullmatch(value) is not None
            same = type(value) is kind or (kind is float and type(value) is int)
            number = kind(value) if text or same else None
            low, high = info.min, info.max
            if number is None or (low is not None and number < low):
                return None
            return number if high is None or number <= high else None
        if kind is Path and _plain_path(info) and isinstance(value, str) and value:
            return _checked_path(Path(value), info)
        if kind == list[str] and isinstance(value, (list, tuple)):
            return list(value) if all(isinstance(v, str) for v in value) else None
        return None


def _checked_path(path: Path, info: Any) -> Path | None:
    """typer's checks of an existing path: None (typer then says why) when one fails."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return path  # a path that does not exist is typer's value too, unless `exists`
    fails = (
        (not info.file_okay and stat.S_ISREG(mode))
        or (not info.dir_okay and stat.S_ISDIR(mode))
        or (info.readable and not os.access(path, os.R_OK))
        or (info.writable and not os.access(path, os.W_OK))
    )
    return None if fails else path


def _plain_path(info: Any) -> bool:
    return not (
        info.exists or info.resolve_path or info.path_type or info.allow_dash or info.parser
    )


def _native(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not hasattr(param, "_runtime_param") or param._runtime_param:
        return
    if descriptor.file_annotation is None and descriptor.parameter_info.parser is None:
        param._runtime_param = NativeCoercion(param)


def native_coercion(command: Any) -> None:
    """NativeCoercion for every parameter of `command` (and its loaded subcommands) whose
    conversion needs no pydantic; a typer without this hook is left as it is."""
    for param in command.params:
        _native(param)
    made = command.get_help_option  # -h/--help is made on first use: hooked then

    def help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            _native(option)
        return option

    command.get_help_option = help_option
    subs = getattr(command, "commands", {})
    for sub in subs.loaded.values() if isinstance(subs, LazyCommands) else subs.values():
        native_coercion(sub)


class LazyCommands(Mapping[str, Any]):
    """The root group's commands by name, each imported and built on first use."""

    def __init__(self, markup: Any) -> None:
        self.markup = markup
        self.loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        if name not in self.loaded:
            self.loaded[name] = load_command(name, markup=self.markup)
        return self.loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS  # without importing it (Mapping's would)

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TyperGroup):
    """The root group: lists its commands without importing them.

    Listing them (`--help`, shell completion) uses stand-ins that carry the name
    and the summary from `COMMANDS`; running a command, or asking for its own
    help, imports its module.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.rich_markup_mode)  # type: ignore[assignment]
        self.listing = 0

    def list_commands(self, ctx: Any) -> list[str]:  # noqa: ARG002 - click's signature
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:  # noqa: ARG002 - click's signature
        if cmd_name not in COMMANDS:
            return None
        if self.listing and cmd_name not in self.commands.loaded:  # type: ignore[attr-defined]
            return typer.core.TyperCommand(name=cmd_name, help=COMMANDS[cmd_name][2])
        return self.commands[cmd_name]

    def invoke(self, ctx: Any) -> Any:
        """Start connecting before the command's module is imported (see `CONNECTING`)."""
        # the command name and its words (typer's vendored click names the first _protected_args)
        words = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        if (
            words
            and words[0] in CONNECTING
            and not ctx.resilient_parsing
            and not ctx.params.get("accept_new_host_key")  # known_hosts is written then
            and not any(w in ("-h", "--help") for w in words)
        ):
            from edgesync.context import prepare_server

            _setup_logging(bool(ctx.params.get("verbose")))
            prepare_server(_options(ctx.params))
        return super().invoke(ctx)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing += 1
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing -= 1

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        self.listing += 1
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self.listing -= 1


app = typer.Typer(
    name="edgesync",
    help="Deploy Supabase Edge Functions to a self-hosted Supabase server over SSH.",
    no_args_is_help=True,
    add_completion=True,
    cls=LazyGroup,
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
    ctx.obj = _options(
        {
            "config": config,
            "target": target,
            "verbose": verbose,
            "quiet": quiet,
            "accept_new_host_key": accept_new_host_key,
        }
    )


def _options(params: Mapping[str, Any]) -> Any:
    """The global options (`context.Options`) from the root group's parameters (the
    servers `LazyGroup.invoke` prepares are found again by them: equal values)."""
    from edgesync.context import Options  # config, yaml, the local tree: only for a command

    return Options(
        config_path=params.get("config"),
        target_name=params.get("target"),
        verbose=bool(params.get("verbose")),
        quiet=bool(params.get("quiet")),
        accept_new_host_key=bool(params.get("accept_new_host_key")),
    )


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
    after_command = argv[i + 1 :]
    if "--" in after_command:
        after_command = after_command[: after_command.index("--")]
    if not any(
        w in _GLOBAL_FLAGS or w in _GLOBAL_VALUES or w.split("=", 1)[0] in _GLOBAL_VALUES
        for w in after_command
    ):
        return argv  # nothing to hoist: the command's module need not be imported for it
    command = root
    end = i
    while end < len(argv) and argv[end] in getattr(command, "commands", {}):
        command = command.commands[argv[end]]  # imports that command's module (it runs next)
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
    """No `<bool>` beside flags and no `<list[str]>` beside arguments in --help.

    Subcommands that are not loaded yet get it when they are (`load_command`).
    """
    for param in command.params:
        if getattr(param, "is_flag", False) or param.param_type_name == "argument":
            param.display_type_rich = lambda ctx: None  # noqa: ARG005 - typer's signature
    subs = getattr(command, "commands", {})
    for sub in subs.loaded.values() if isinstance(subs, LazyCommands) else subs.values():
        tidy_help(sub)


def _setup_logging(verbose: bool) -> None:
    import logging

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
    native_coercion(command)
    verbose = False
    try:
        args = hoist_global_options(list(sys.argv[1:] if argv is None else argv), command)
        verbose = "-v" in args or "--verbose" in args
        rv = command.main(args=args, prog_name="edgesync", standalone_mode=False)
    except Declined as e:  # the user said no: not an error, but not a success either
        _output().info(e.message)
        return e.exit_code
    except EdgesyncError as e:
        _output().error(e.message, e.hint)
        return e.exit_code
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.TyperException as e:  # usage errors: unknown option, bad value (exit 2)
        show = getattr(e, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            _output().error(e.format_message())
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _output().error("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if verbose:
            import traceback

            traceback.print_exc()
        _output().error(
            f"unexpected error: {type(e).__name__}: {e}",
            hint="this is a bug in edgesync; run again with -v for the traceback",
        )
        return 1
    finally:
        context = sys.modules.get("edgesync.context")  # not imported by --version, --help
        if context is not None:
            context.close_prepared()  # a server started for a command that never took it
    return rv if isinstance(rv, int) else 0


def _output() -> Output:
    """Where the errors of `run` go (rich is imported only when there is one to show)."""
    from edgesync.output import Output

    return Output()
