"""Connecting in the background (`Connection.connect_soon`): the same connection and the
same errors as connecting on first use, and closing never waits for a handshake."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgesync import context
from edgesync.commands import _common as commands_common
from edgesync.config import Target
from edgesync.errors import ConnectError
from edgesync.remote import ssh
from sandbox import Sandbox
from tests.helpers import Project, cli


def connection(sandbox: Sandbox, port: int | None = None) -> ssh.Connection:
    endpoint = ssh.resolve_endpoint(
        sandbox.host,
        port=port or sandbox.port,
        identity_file=sandbox.client_key,
        known_hosts_file=sandbox.known_hosts,
        label="t",
    )
    return ssh.Connection(endpoint, connect_timeout=5)


def test_commands_wait_for_the_background_connection(sandbox: Sandbox, ssh_home: Path) -> None:
    with connection(sandbox) as conn:
        conn.connect_soon()
        conn.connect_soon()  # once is enough
        assert conn.run("echo one").stdout == b"one\n"
        assert conn.run("echo two").stdout == b"two\n"  # the same connection
        assert conn.channels_opened == 2


def test_its_errors_come_with_the_first_command(sandbox: Sandbox, ssh_home: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lazy, early = connection(sandbox, port), connection(sandbox, port)
    early.connect_soon()
    with pytest.raises(ConnectError) as first_use:
        lazy.run("true")
    with pytest.raises(ConnectError) as background:
        early.run("true")
    assert background.value.message == first_use.value.message
    assert "connection refused" in background.value.message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (no SSH banner)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()


def test_closing_does_not_wait_for_a_handshake(
    sandbox: Sandbox, ssh_home: Path, silent_port: int
) -> None:
    conn = connection(sandbox, silent_port)
    conn.connect_soon()
    time.sleep(0.2)  # connected over TCP, waiting for the banner
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 1.0
    conn.close()  # still idempotent


def test_importing_the_ssh_layer_leaves_invoke_out() -> None:
    """paramiko imports invoke for `Match exec` only; edgesync imports it when a config has one."""
    code = "import sys, edgesync.remote.ssh; print(sys.modules.get('invoke'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "None"


def test_a_listing_started_early_raises_in_the_caller(sandbox: Sandbox, ssh_home: Path) -> None:
    from edgesync.config import load_config
    from edgesync.remote.snapshot import start_snapshot

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ssh_home / "edgesync.yaml"
    config.write_text(
        f"targets:\n  t:\n    host: 127.0.0.1\n    port: {port}\n    project_dir: /srv/x\n"
    )
    target = load_config(config).target("t")
    pending = start_snapshot(connection(sandbox, port), target)
    with pytest.raises(ConnectError, match="connection refused"):
        pending.result()


def test_a_command_takes_the_server_the_cli_started(
    project: Project, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI opens the server as soon as the global options are parsed; the command
    then uses that one (one connection), and nothing prepared is left behind."""
    early: list[str] = []
    late: list[str] = []
    real = context.open_server

    def opening(into: list[str]) -> Callable[[Target, context.Options], context.Server]:
        def open_server(target: Target, options: context.Options) -> context.Server:
            into.append(target.name)
            return real(target, options)

        return open_server

    monkeypatch.setattr(context, "open_server", opening(early))  # what prepare_server calls
    monkeypatch.setattr(commands_common, "open_server", opening(late))  # the command's own
    r = project.run("ls")
    assert r.code == 0, r.err
    assert (early, late) == (["sandbox"], [])
    assert context._prepared == {}
    r = project.run("--accept-new-host-key", "ls")  # writes known_hosts: not before its time
    assert r.code == 0, r.err
    assert (early, late) == (["sandbox"], ["sandbox"])


def test_a_server_prepared_for_a_command_that_fails_first_is_closed(
    project: Project, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[context.Server] = []
    real = context.open_server

    def keeping(target: Target, options: context.Options) -> context.Server:
        opened.append(real(target, options))
        return opened[-1]

    monkeypatch.setattr(context, "open_server", keeping)
    r = project.run("ls", "--no-such-option")
    assert r.code == 2
    assert len(opened) == 1
    assert context._prepared == {}
    shell = opened[0].shell
    assert isinstance(shell, ssh.Connection)
    assert shell._client is None  # closed (or left to close itself once its handshake ends)


def test_a_config_error_is_reported_by_the_command_as_before(tmp_path: Path) -> None:
    config = tmp_path / "edgesync.yaml"
    config.write_text("targets:\n  a:\n    host: h\n    bogus: 1\n")
    r = cli("-c", str(config), "ls")
    assert r.code == 3
    assert "bogus" in r.err
    assert context._prepared == {}
