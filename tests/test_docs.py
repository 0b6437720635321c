"""Every command has help with an example, and the README shows every command."""

from __future__ import annotations

import pytest
import typer

from edgesync.cli import app
from tests.helpers import REPO_ROOT, cli

COMMANDS = [
    "init",
    "diff",
    "ls",
    "push",
    "logs",
    "history",
    "rollback",
    "repair",
    "restart",
    "check",
    "status",
    "lock status",
    "lock release",
    "secrets list",
    "secrets set",
    "secrets unset",
    "secrets diff",
]


def test_command_list_is_complete() -> None:
    group = typer.main.get_command(app)
    names = set()
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        names |= {f"{name} {sub}" for sub in subs} if subs else {name}
    assert names == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    r = cli(*command.split(), "--help")
    assert r.code == 0
    assert "Example: edgesync " + command.split()[0] in " ".join(r.out.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_shows_every_command(command: str) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"edgesync {command}" in readme
