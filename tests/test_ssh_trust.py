"""Trust boundaries of the SSH layer (issue 12): host names, host keys, ssh config tokens,
credentials in the environment, proxies, algorithms. Every test goes through a real sshd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesync.config import parse_config
from edgesync.errors import ConfigError
from sandbox import Sandbox
from tests.helpers import Project


def repo(tmp_path: Path, target: str) -> Project:
    """A project whose edgesync.yaml has one target `sandbox` with the given YAML lines."""
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True, exist_ok=True)
    lines = ["targets:", "  sandbox:"] + ["    " + line for line in target.strip().splitlines()]
    p.config.write_text("\n".join(lines) + "\n")
    return p


def ssh_config(home: Path, text: str) -> Path:
    """Write ~/.ssh/config below an isolated HOME."""
    folder = home / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "config"
    path.write_text(text)
    return path


def alias_config(sandbox: Sandbox, name: str = "edge-sandbox", extra: str = "") -> str:
    """A Host block reaching the sandbox."""
    return (
        f"Host {name}\n  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n{extra}"
    )


# -- row 2: host names are limited to what OpenSSH accepts ---------------------


@pytest.mark.parametrize(
    "host",
    [
        "edge;id",
        "edge$(id)",
        "edge`id`",
        "edge|id",
        "edge(x)",
        "edge>x",
        "edge<x",
        "edge&x",
        "edge'x",
        'edge"x',
        "edge\\x",
        "edge{x}",
        "edge,other",
        "edge x",
        "edge\tx",
        "edge\x1b]0;x\x07",
        "-oProxyCommand=id",
    ],
)
def test_host_with_shell_metacharacters_is_refused(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, host: str
) -> None:
    p = repo(tmp_path, f"host: {json.dumps(host)}\nproject_dir: {sandbox.project_dir}")
    r = p.run("ls")
    assert r.code == 3, r.err
    assert "edgesync.yaml:3: targets.sandbox.host: " in r.err
    assert "\x1b" not in r.err and "\x07" not in r.err


@pytest.mark.parametrize("user", ["a;b", "$(id)", "-oX", "a b"])
def test_user_with_shell_metacharacters_is_refused(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, user: str
) -> None:
    p = repo(
        tmp_path,
        f"host: {sandbox.host}\nuser: {json.dumps(user)}\nproject_dir: {sandbox.project_dir}",
    )
    r = p.run("ls")
    assert r.code == 3
    assert "edgesync.yaml:4: targets.sandbox.user: not a user name" in r.err


@pytest.mark.parametrize(
    "host", ["api.academyos.ru", "edge-sandbox", "10.0.0.7", "::1", "fe80::1%eth0", "my_host"]
)
def test_ordinary_host_names_and_ipv6_literals_are_accepted(tmp_path: Path, host: str) -> None:
    text = f"targets:\n  t:\n    host: {json.dumps(host)}\n    project_dir: /srv/p\n"
    assert parse_config(text, tmp_path / "edgesync.yaml").targets["t"].host == host


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("deploy@api.example.com", "put the user name in `user`"),
        ("api.example.com:2222", "a port goes in `port`"),
        ("[::1]", "an IPv6 address without []"),
    ],
)
def test_user_or_port_inside_host_is_refused(tmp_path: Path, host: str, message: str) -> None:
    text = f"targets:\n  t:\n    host: {json.dumps(host)}\n    project_dir: /srv/p\n"
    with pytest.raises(ConfigError, match=r"edgesync.yaml:3: targets.t.host: ") as caught:
        parse_config(text, tmp_path / "edgesync.yaml")
    assert message in str(caught.value)


def test_match_exec_never_runs_a_command_built_from_a_bad_host(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """paramiko evaluates `Match exec` (through invoke, by a shell) with %n/%h pasted in:
    CVE-2023-51385's class. The name never gets that far."""
    ssh_config(ssh_home, 'Match exec "test %n = nothing"\n  User nobody\n')
    p = repo(tmp_path, f'host: "edge$(touch${{IFS}}pwned)"\nproject_dir: {sandbox.project_dir}')
    r = p.run_process("ls")  # in the repository folder, where `touch pwned` would land
    assert not (p.root / "pwned").exists()
    assert r.code == 3
    assert "targets.sandbox.host: contains '$', which OpenSSH refuses in host names" in r.err


def test_match_exec_still_works_for_a_valid_alias(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """The same `Match exec` evaluation, for a name that passed the check, reaches the server."""
    ssh_config(
        ssh_home,
        'Match exec "test %n = edge-sandbox"\n'
        f"  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n",
    )
    p = repo(
        tmp_path,
        f"host: edge-sandbox\nknown_hosts_file: {sandbox.known_hosts}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    r = p.run_process("ls")  # invoke reads stdin while `Match exec` runs: give it /dev/null
    assert r.code == 0, r.err
    assert "hello" in r.out
