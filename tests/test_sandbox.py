"""The sandbox server itself, driven with the system ``ssh`` client like an operator would."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shlex
import subprocess
import termios
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paramiko
import pytest

from sandbox import Sandbox, SandboxError, start_sandbox
from sandbox.server import ServiceDown

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "academyos"
PREFIX = "supabase-edge-functions  | "


def ssh(sandbox: Sandbox, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run one command on the sandbox through the system ssh client."""
    return subprocess.run(
        sandbox.ssh_command(command, *options),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def in_project(sandbox: Sandbox, command: str) -> subprocess.CompletedProcess[str]:
    """``cd <project_dir> && <command>``, as edgesync runs it."""
    return ssh(sandbox, f"cd {shlex.quote(str(sandbox.project_dir))} && {command}")


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_session_path_finds_the_stand_in_docker(sandbox: Sandbox) -> None:
    r = ssh(
        sandbox,
        "command -v docker; command -v docker-compose; echo $PATH; echo $EDGESYNC_SANDBOX_STATE",
    )
    assert r.returncode == 0, r.stderr
    docker, compose, path, state = r.stdout.splitlines()
    assert docker == str(sandbox.root / "bin" / "docker")
    assert compose == str(sandbox.root / "bin" / "docker-compose")
    assert path.split(":")[0] == str(sandbox.root / "bin")  # no rc file put anything first
    assert state == str(sandbox.state_dir)


def test_compose_restart_is_recorded_and_boots_the_router(sandbox: Sandbox) -> None:
    r = in_project(sandbox, "docker compose restart functions --no-deps")
    assert r.returncode == 0, r.stderr
    assert " Container supabase-edge-functions  Restarting" in r.stderr
    assert " Container supabase-edge-functions  Started" in r.stderr
    assert sandbox.calls() == [
        {
            "argv": ["compose", "restart", "functions", "--no-deps"],
            "cwd": str(sandbox.project_dir),
            "prog": "docker",
        }
    ]
    assert sandbox.log_lines() == ["main function started", "main function started"]
    assert sandbox.restart_count() == 1


def test_compose_v1_and_docker_restart(sandbox: Sandbox) -> None:
    r = in_project(sandbox, "docker-compose restart functions")
    assert r.returncode == 0, r.stderr
    assert "Restarting supabase-edge-functions ... done" in r.stderr
    r = ssh(sandbox, "docker restart supabase-edge-functions")
    assert (r.returncode, r.stdout) == (0, "supabase-edge-functions\n")
    assert [c["prog"] for c in sandbox.calls()] == ["docker-compose", "docker"]
    assert sandbox.restart_count() == 2


def test_compose_file_is_found_in_parent_folders_only(sandbox: Sandbox) -> None:
    r = ssh(sandbox, f"cd {sandbox.functions_dir} && docker compose restart functions")
    assert r.returncode == 0, r.stderr
    r = ssh(sandbox, "cd / && docker compose restart functions")
    assert (r.returncode, r.stderr) == (1, "no configuration file provided: not found\n")
    r = ssh(sandbox, f"docker compose --project-directory {sandbox.project_dir} ps --services")
    assert r.returncode == 0, r.stderr
    assert "functions" in r.stdout.split()


def test_unknown_service_and_container(sandbox: Sandbox) -> None:
    r = in_project(sandbox, "docker compose restart edge-functions")
    assert (r.returncode, r.stderr) == (1, "no such service: edge-functions\n")
    r = ssh(sandbox, "docker logs functions")
    assert r.returncode == 1
    assert r.stderr == "Error response from daemon: No such container: functions\n"
    assert sandbox.restart_count() == 0


def test_request_logs_like_the_router(sandbox: Sandbox) -> None:
    hello = sandbox.request("hello")
    assert (hello.status, hello.json()) == (200, "Hello from Edge Functions!")
    missing = sandbox.request("wpp-provision")
    assert missing.status == 500
    assert missing.json() == {
        "msg": "InvalidWorkerCreation: worker boot error: could not find an appropriate entrypoint"
    }
    assert sandbox.log_lines() == [
        "main function started",
        "serving the request with /home/deno/functions/hello",
        "serving the request with /home/deno/functions/wpp-provision",
        "worker boot error: could not find an appropriate entrypoint",
        "InvalidWorkerCreation: worker boot error: could not find an appropriate entrypoint",
    ]


def test_compose_logs_prefix_tail_and_timestamps(sandbox: Sandbox) -> None:
    (sandbox.functions_dir / "greet").mkdir()
    (sandbox.functions_dir / "greet" / "index.ts").write_text(
        "Deno.serve(() => { console.log('request handled'); return new Response('hi') })\n"
    )
    assert sandbox.request("greet").text == "hi"
    r = in_project(sandbox, "docker compose logs functions")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        PREFIX + "main function started",
        PREFIX + "serving the request with /home/deno/functions/greet",
        PREFIX + "[Info] request handled",
    ]
    r = in_project(sandbox, "docker compose logs --no-log-prefix --tail=2 functions")
    assert r.stdout.splitlines() == [
        "serving the request with /home/deno/functions/greet",
        "[Info] request handled",
    ]
    r = in_project(sandbox, "docker-compose logs --no-color -n 1 functions")
    assert r.stdout == "supabase-edge-functions | [Info] request handled\n"
    r = ssh(sandbox, "docker logs -t --tail 1 supabase-edge-functions")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \[Info\] request handled\n", r.stdout
    ), r.stdout


def test_logs_since(sandbox: Sandbox) -> None:
    sandbox.wait_until_serving()  # its boot line must not land after the truncation
    now = datetime.now(timezone.utc)
    sandbox.service_log.write_text("")
    sandbox.append_log("three hours ago", at=now - timedelta(hours=3))
    sandbox.append_log("thirty minutes ago", at=now - timedelta(minutes=30))
    sandbox.append_log("just now", at=now)
    r = in_project(sandbox, "docker compose logs --no-log-prefix --since 1h functions")
    assert r.stdout.splitlines() == ["thirty minutes ago", "just now"]
    r = in_project(sandbox, "docker compose logs --no-log-prefix --since=10m functions")
    assert r.stdout.splitlines() == ["just now"]
    stamp = (now - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = ssh(sandbox, f"docker logs --since {stamp} supabase-edge-functions")
    assert r.stdout.splitlines() == ["three hours ago", "thirty minutes ago", "just now"]
    r = ssh(sandbox, "docker logs --since yesterday supabase-edge-functions")
    assert r.returncode == 1 and "failed to parse value as time or duration" in r.stderr


def test_deny_switch(sandbox: Sandbox) -> None:
    (sandbox.state_dir / "deny").touch()
    for command in (
        "docker compose restart functions --no-deps",
        "docker compose logs functions",
        "docker logs supabase-edge-functions",
    ):
        r = in_project(sandbox, command)
        assert r.returncode == 1
        assert r.stderr.startswith(
            "permission denied while trying to connect to the Docker daemon socket at "
            "unix:///var/run/docker.sock"
        )
    assert len(sandbox.calls()) == 3
    assert sandbox.restart_count() == 0


def test_fail_restart_switch_leaves_the_container_down(sandbox: Sandbox) -> None:
    (sandbox.state_dir / "fail-restart").touch()
    r = in_project(sandbox, "docker compose restart functions --no-deps")
    assert r.returncode == 1
    assert "Cannot restart container supabase-edge-functions" in r.stderr
    assert sandbox.container()["status"] == "exited"
    with pytest.raises(ServiceDown):
        sandbox.request("hello")
    assert sandbox.log_lines() == ["main function started"]
    assert sandbox.runtime_processes() == []


def test_up_recreates_only_when_asked_or_changed(sandbox: Sandbox) -> None:
    sandbox.request("hello")
    r = in_project(sandbox, "docker compose up -d --no-deps functions")
    assert r.returncode == 0, r.stderr
    assert r.stderr == " Container supabase-edge-functions  Running\n"
    r = in_project(sandbox, "docker compose up -d --force-recreate --no-deps functions")
    assert r.returncode == 0, r.stderr
    assert " Container supabase-edge-functions  Recreated" in r.stderr
    assert sandbox.log_lines() == ["main function started"]  # a new container, a new log
    env = sandbox.project_dir / ".env"
    env.write_text(env.read_text().replace("VERIFY_JWT=false", "VERIFY_JWT=true"))
    r = in_project(sandbox, "docker compose up -d functions")
    assert " Container supabase-edge-functions  Recreated" in r.stderr
    assert sandbox.container()["recreate_count"] == 2


def test_compose_ps(sandbox: Sandbox) -> None:
    r = in_project(sandbox, "docker compose ps functions")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "IMAGE", "COMMAND"]
    assert row.startswith("supabase-edge-functions   supabase/edge-runtime:v")
    assert "Up " in row


def test_logs_follow_dies_with_the_ssh_channel(sandbox: Sandbox) -> None:
    """Without a pty the follower notices a closed channel at its next write, like docker."""
    command = f"cd {sandbox.project_dir} && docker compose logs -f --tail 1 functions"
    client = subprocess.Popen(
        sandbox.ssh_command(command), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline() == PREFIX + "main function started\n"
        wait_for(sandbox.followers)
        sandbox.request("hello")
        assert (
            client.stdout.readline() == PREFIX + "serving the request with "
            "/home/deno/functions/hello\n"
        )
    finally:
        client.kill()
        client.wait()
    sandbox.request("hello")  # the next line hits the closed channel
    wait_for(lambda: not sandbox.followers())
    assert not list((sandbox.state_dir / "followers").iterdir())


def controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is its stdin."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_logs_follow_dies_on_hangup_with_a_pty(sandbox: Sandbox) -> None:
    """On a terminal (`ssh -t`) the follower dies with the hangup, like docker.

    The terminal is a local one: sshd can only give a session a terminal when it
    runs as root, and the stand-in behaves the same under either.
    """
    master, slave = pty.openpty()
    env = {
        **os.environ,
        "PATH": f"{sandbox.root / 'bin'}:{os.environ['PATH']}",
        "EDGESYNC_SANDBOX_STATE": str(sandbox.state_dir),
    }
    follower = subprocess.Popen(
        ["docker", "logs", "-f", "supabase-edge-functions"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=sandbox.project_dir,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    try:
        wait_for(sandbox.followers)
    finally:
        os.close(master)  # the terminal hangs up
    follower.wait(timeout=20)
    wait_for(lambda: not sandbox.followers())


def test_sftp_subsystem(sandbox: Sandbox, ssh_home: Path) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(sandbox.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        sandbox.host,
        sandbox.port,
        sandbox.user,
        key_filename=str(sandbox.client_key),
        allow_agent=False,
        look_for_keys=False,
    )
    try:
        names = client.open_sftp().listdir(str(sandbox.functions_dir))
    finally:
        client.close()
    assert sorted(names) == [".env", "hello", "main"]


def test_server_tree_is_the_official_layout(sandbox: Sandbox) -> None:
    compose = (sandbox.project_dir / "docker-compose.yml").read_text()
    assert "container_name: supabase-edge-functions" in compose
    assert "./volumes/functions:/home/deno/functions:Z" in compose
    router = (sandbox.functions_dir / "main" / "index.ts").read_text()
    assert "serving the request with ${servicePath}" in router
    assert "OPENAI_API_KEY=sk-sandbox-secret" in (sandbox.functions_dir / ".env").read_text()


def test_reset_with_overlay(sandbox: Sandbox, tmp_path: Path) -> None:
    (sandbox.functions_dir / "stale").mkdir()
    (sandbox.state_dir / "deny").touch()
    overlay = tmp_path / "overlay"
    (overlay / "hello").mkdir(parents=True)
    (overlay / "hello" / "index.ts").write_text("// overlaid\n")
    sandbox.reset(overlay)
    assert not (sandbox.functions_dir / "stale").exists()
    assert not (sandbox.state_dir / "deny").exists()
    assert (sandbox.functions_dir / "hello" / "index.ts").read_text() == "// overlaid\n"
    assert (sandbox.functions_dir / "main" / "index.ts").exists()
    assert sandbox.calls() == []
    assert sandbox.wait_until_serving()
    assert sandbox.log_lines() == ["main function started"]


def test_seed_example(sandbox: Sandbox) -> None:
    sandbox.seed_example(EXAMPLE)
    remote, local = sandbox.functions_dir, EXAMPLE / "supabase" / "functions"
    before = EXAMPLE / "server-before" / "volumes" / "functions"
    assert not (remote / "wpp-provision").exists()
    for rel in ("wpp-qr/index.ts", "wpp-status/index.ts", "_shared/cors.ts", "_shared/types.ts"):
        assert (remote / rel).read_text() == (local / rel).read_text()
    for rel in ("wpp-create/index.ts", "_shared/wpp.ts"):
        assert (remote / rel).read_text() == (before / rel).read_text() != (local / rel).read_text()
    assert "sk-sandbox-secret" in (remote / ".env").read_text()  # the local .env never lands


def test_start_stop_and_busy_port(sandbox_server: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="already in use"):
        start_sandbox(tmp_path / "busy", port=sandbox_server.port)
    with start_sandbox(tmp_path / "second") as second:
        assert second.running() and second.port != sandbox_server.port
        r = ssh(second, "true")
        assert r.returncode == 0, r.stderr
    assert not second.running()
    second.stop()  # idempotent
    assert ssh(second, "true").returncode == 255
