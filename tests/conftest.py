"""Shared fixtures: the sandbox server (a real sshd on loopback) and an isolated ssh HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxError, start_sandbox
from sandbox.server import SSHD
from tests.helpers import Project, target_yaml


@pytest.fixture(autouse=True, scope="session")
def scan_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """edgesync's caches (the import scans) go to a folder of the session, not ~/.cache."""
    folder = tmp_path_factory.mktemp("edgesync-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGESYNC_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sshd for the whole session; fails (never skips) when it cannot run."""
    if not SSHD.exists():
        pytest.fail(
            f"{SSHD} is missing: the end-to-end tests need OpenSSH's server "
            "(Debian/Ubuntu: apt-get install -y openssh-server)",
            pytrace=False,
        )
    try:
        server = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    except SandboxError as error:
        pytest.fail(f"could not start the sandbox sshd: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox with a fresh server tree and docker state."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def ssh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no ssh agent, so nothing reads the real ~/.ssh or agent."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def project(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> Project:
    """An empty local repository whose edgesync.yaml targets the sandbox server."""
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True)
    p.config.write_text(
        target_yaml(
            host=sandbox.host,
            port=sandbox.port,
            project_dir=sandbox.project_dir,
            identity_file=sandbox.client_key,
            known_hosts=sandbox.known_hosts,
        )
    )
    return p
