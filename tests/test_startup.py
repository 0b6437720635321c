"""Start-up: `--version` and `--help` import no command module and nothing heavy.

Checked with `python -X importtime` in a fresh interpreter, which names every
module the run imported; the time itself is measured by `make bench`, not here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from edgesync import cli

# Never imported by `--version` or `--help`: the SSH stack, YAML, git, the command
# modules and what they pull in (the local tree, the resolver, the remote layer).
HEAVY = (
    "paramiko",
    "invoke",
    "cryptography",
    "yaml",
    "git",
    "edgesync.commands",
    "edgesync.actions",
    "edgesync.context",
    "edgesync.config",
    "edgesync.local",
    "edgesync.output",
    "edgesync.history",
    "edgesync.plan",
)


ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "100", "NO_COLOR": "1"}
# Runs edgesync like its console script, then names every module in sys.modules
# (importtime does not see modules loaded through importlib.import_module).
RUN_AND_LIST = """
import sys
from pathlib import Path
from typing import Any
from edgesync.cli import run
code = run(sys.argv[1:])
print("\\0MODULES", *sorted(sys.modules))
sys.exit(code)
"""


def imported_modules(*args: str) -> set[str]:
    """Every module a fresh `edgesync ARGS` imports (`python -X importtime`, and sys.modules)."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN_AND_LIST, *args],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    timed = {
        line.rsplit("|", 1)[1].strip()
        for line in r.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "typer" in timed  # importtime did report
    listed = r.stdout.rsplit("\0MODULES", 1)[1].split()
    return timed | set(listed)


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"]])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    modules = imported_modules(*args)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == [], f"edgesync {' '.join(args)} imported {heavy}"


def test_version_imports_no_rich() -> None:
    assert not any(m.split(".")[0] == "rich" for m in imported_modules("--version"))


def test_a_command_imports_only_its_own_module() -> None:
    modules = imported_modules("lock", "--help")
    commands = {m for m in modules if m.startswith("edgesync.commands.")}
    assert commands == {"edgesync.commands.lock", "edgesync.commands._common"}
    assert "paramiko" not in modules  # the SSH stack comes with a connection only


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_root_help_summaries_are_the_commands_own(name: str) -> None:
    """The summaries `edgesync --help` shows without importing a command match its help."""
    real = cli.load_command(name)
    stand_in = typer.core.TyperCommand(name=name, help=cli.COMMANDS[name][2])
    assert real.help.split("\n\n", 1)[0].replace("\n", " ") == cli.COMMANDS[name][2]
    for limit in (30, 45, 60, 80, 120, 200):
        assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit)


def test_root_help_lists_every_command_in_order() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "edgesync", "--help"], capture_output=True, text=True, env=ENV
    )
    assert r.returncode == 0
    listed = [
        line.split()[1]
        for line in r.stdout.split("Commands", 1)[1].splitlines()
        if line.startswith("│ ") and line.split()[1].isidentifier()
    ]
    assert listed == list(cli.COMMANDS)


def test_every_command_module_is_registered() -> None:
    """A new module in edgesync/commands/ needs its line in `cli.COMMANDS` to be reachable."""
    folder = Path(cli.__file__).parent / "commands"
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert modules == {module for module, _, _ in cli.COMMANDS.values()}


# --------------------------------------------------------------------------- values

SAMPLES: dict[Any, list[Any]] = {
    str: ["x", "", "-a", "ü", None],
    int: ["5", "0", "1", "-3", "abc", "1e3", " 7", "99999", "4_2", 0, 20, True, None],
    float: ["3", "2.5", ".5", "-1", "abc", "1e2", 0.0, 10.0, 3, None],
    bool: [True, False, None],
    list[str]: [("a", "b"), (), None, ["x"]],
}


def typer_result(param: Any, value: Any, ctx: Any) -> tuple[str, Any]:
    from typer._coercion import build_runtime_param

    try:
        return "ok", build_runtime_param(param.type_descriptor).coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as e:
        return "error", e.format_message()


def native_result(param: Any, value: Any, ctx: Any) -> tuple[str, Any]:
    try:
        return "ok", cli.NativeCoercion(param).coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as e:
        return "error", e.format_message()


def every_param() -> list[tuple[str, Any]]:
    root = typer.main.get_command(cli.app)
    found = [("root", p) for p in root.params]
    for name in cli.COMMANDS:
        command = cli.load_command(name)
        for sub in [command, *getattr(command, "commands", {}).values()]:
            found += [(f"{name} {sub.name}", p) for p in sub.params]
    return found


def test_values_convert_as_typer_converts_them(tmp_path: Path) -> None:
    """Every parameter of every command gives the value, or the error, typer would."""
    readable = tmp_path / "file"
    readable.write_text("x")
    paths = [str(readable), str(tmp_path), str(tmp_path / "missing"), "", "rel/x.yaml", None]
    root = typer.main.get_command(cli.app)
    ctx = root.make_context("edgesync", ["--version"], resilient_parsing=True)
    checked = 0
    for where, param in every_param():
        kind = param.type_descriptor.annotation
        for value in paths if kind is Path else SAMPLES[kind]:
            assert native_result(param, value, ctx) == typer_result(param, value, ctx), (
                where,
                param.name,
                value,
            )
            checked += 1
    assert checked > 300


def test_a_command_run_imports_no_pydantic(tmp_path: Path) -> None:
    """typer converts values with pydantic (~0.2 s to import); edgesync converts the plain
    ones itself (`NativeCoercion`)."""
    config = tmp_path / "edgesync.yaml"
    config.write_text("targets: {}\n")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_AND_LIST,
            "-c",
            str(config),
            "-v",
            "push",
            "a",
            "--dry-run",
            "--logs-seconds",
            "2.5",
            "--lock-wait",
            "3",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert r.returncode == 3, r.stderr  # the config has no target: a config error
    modules = r.stdout.rsplit("\0MODULES", 1)[1].split()
    assert "edgesync.commands.push" in modules
    assert not [m for m in modules if m.startswith("pydantic")]


def test_hoisting_imports_a_command_only_when_a_global_option_follows_it() -> None:
    """`edgesync diff fn` is left as it is without importing diff's module (the CLI starts
    connecting first); `logs --grep -v` needs logs' options to keep -v as the pattern."""
    root = typer.main.get_command(cli.app)
    assert cli.hoist_global_options(["diff", "fn", "--patch"], root) == ["diff", "fn", "--patch"]
    assert root.commands.loaded == {}  # type: ignore[attr-defined]
    assert cli.hoist_global_options(["logs", "--grep", "-v", "-t", "x"], root) == [
        "-t",
        "x",
        "logs",
        "--grep",
        "-v",
    ]
    assert list(root.commands.loaded) == ["logs"]  # type: ignore[attr-defined]
