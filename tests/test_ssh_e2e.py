"""Connecting: host keys, authentication, ssh config, and every way it can fail (exit 4)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from tests.helpers import Project, target_yaml


def make_project(tmp_path: Path, sandbox: Sandbox, **kw: Any) -> Project:
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True, exist_ok=True)
    args: dict[str, Any] = dict(
        host=sandbox.host,
        port=sandbox.port,
        project_dir=sandbox.project_dir,
        identity_file=sandbox.client_key,
        known_hosts=sandbox.known_hosts,
    )
    args.update(kw)
    p.config.write_text(target_yaml(**args))
    return p


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_unknown_host_refused_then_accepted(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    p = make_project(tmp_path, sandbox, known_hosts=None)
    r = p.run("ls")
    assert r.code == 4
    assert f"unknown host key for [127.0.0.1]:{sandbox.port}" in r.err
    assert "SHA256:" in r.err
    assert "--accept-new-host-key" in r.err and "-t sandbox" in r.err
    known = ssh_home / ".ssh" / "known_hosts"
    assert not known.exists()

    r = p.run("--accept-new-host-key", "ls")
    assert r.code == 0, r.err
    assert sandbox.host_key_pub.split()[1] in known.read_text()
    assert known.read_text().startswith(f"[127.0.0.1]:{sandbox.port} ssh-ed25519 ")
    # remembered: now it connects without the flag
    assert p.run("ls").code == 0


def test_changed_host_key_always_refused(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    other = keygen(tmp_path / "other_host_key")
    known = tmp_path / "known_hosts"
    pub = (other.with_suffix(".pub")).read_text().split()
    known.write_text(f"[127.0.0.1]:{sandbox.port} {pub[0]} {pub[1]}\n")
    p = make_project(tmp_path, sandbox, known_hosts=known)
    for args in (("ls",), ("--accept-new-host-key", "ls")):
        r = p.run(*args)
        assert r.code == 4
        assert "HOST KEY CHANGED" in r.err
        assert "ssh-keygen -R" in r.err
    assert known.read_text().count("\n") == 1  # nothing was added


def test_wrong_client_key(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    p = make_project(tmp_path, sandbox, identity_file=keygen(tmp_path / "stranger"))
    r = p.run("ls")
    assert r.code == 4
    assert "authentication failed" in r.err


def test_missing_identity_file(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    p = make_project(tmp_path, sandbox, identity_file=tmp_path / "nope")
    r = p.run("ls")
    assert r.code == 3
    assert "identity_file" in r.err and "does not exist" in r.err


def test_closed_port(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = make_project(tmp_path, sandbox, port=port)
    r = p.run("ls")
    assert r.code == 4
    assert f"connection refused by 127.0.0.1 port {port}" in r.err


def test_unresolvable_host(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    p = make_project(tmp_path, sandbox, host="no-such-host.invalid")
    r = p.run("ls")
    assert r.code == 4
    assert "cannot resolve host 'no-such-host.invalid'" in r.err


def test_ssh_config_alias(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    ssh_dir = ssh_home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "config").write_text(
        "Host edge-sandbox\n"
        f"  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n"
    )
    (ssh_dir / "known_hosts").write_text(sandbox.known_hosts.read_text())
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True)
    p.config.write_text(
        f"targets:\n  sandbox:\n    host: edge-sandbox\n    project_dir: {sandbox.project_dir}\n"
    )
    r = p.run("ls")
    assert r.code == 0, r.err
    assert "hello" in r.out


def test_proxy_jump(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    """ProxyJump through the sandbox itself to the sandbox: two real SSH hops."""
    ssh_dir = ssh_home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "config").write_text(
        "Host jump\n"
        f"  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n"
        "Host behind\n"
        f"  HostName localhost\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n  ProxyJump jump\n"
    )
    key = sandbox.host_key_pub
    (ssh_dir / "known_hosts").write_text(
        f"[{sandbox.host}]:{sandbox.port} {key}\n[localhost]:{sandbox.port} {key}\n"
    )
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True)
    p.config.write_text(
        f"targets:\n  sandbox:\n    host: behind\n    project_dir: {sandbox.project_dir}\n"
    )
    r = p.run("-v", "ls")
    assert r.code == 0, r.err
    assert "hello" in r.out


@pytest.mark.parametrize(
    ("yaml_text", "code", "message"),
    [
        ("targets:\n  p:\n    host: h\n   project_dir: /p\n", 3, "edgesync.yaml:4: invalid YAML"),
        (
            "targets:\n  p:\n    hots: h\n    project_dir: /p\n",
            3,
            "edgesync.yaml:3: targets.p.hots: unknown key",
        ),
    ],
)
def test_config_errors_through_the_process(
    tmp_path: Path, yaml_text: str, code: int, message: str
) -> None:
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True)
    p.config.write_text(yaml_text)
    r = p.run_process("diff")
    assert r.code == code
    assert message in r.err
    assert "Traceback" not in r.err
    assert r.err.count("error:") == 1


def test_unknown_target_through_the_process(tmp_path: Path, sandbox: Sandbox) -> None:
    p = make_project(tmp_path, sandbox)
    r = p.run_process("-t", "prod", "diff")
    assert r.code == 3
    assert "unknown target 'prod'" in r.err and "Traceback" not in r.err
