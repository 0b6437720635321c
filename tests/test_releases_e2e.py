"""Releases you can trust: history, rollback, retention, lock commands, drift. Real sshd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edgesync.remote import scripts
from edgesync.remote.shell import sh_script
from sandbox import Sandbox
from tests.helpers import Project, serve


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def history(sandbox: Sandbox) -> list[dict[str, Any]]:
    path = sandbox.project_dir / ".edgesync/history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def restarts(sandbox: Sandbox) -> int:
    return sandbox.log_lines().count("main function started")


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> Project:
    project.write("hello/index.ts", serve("local hello v1"))
    project.write("fn-a/index.ts", serve("a v1", "../_shared/x.ts"))
    project.write("_shared/x.ts", "export const x = 1\n")
    return project


def test_push_push_rollback_and_rollback_of_rollback(repo: Project, sandbox: Sandbox) -> None:
    original = snapshot(sandbox.functions_dir)
    assert repo.run("push", "--no-logs").code == 0
    repo.write("fn-a/index.ts", serve("a v2", "../_shared/x.ts"))
    (repo.functions / "hello/index.ts").unlink()
    repo.write("hello/index.tsx", serve("hello as tsx"))
    repo.write("_shared/x.ts", "export const x = 2\n")
    assert repo.run("push", "--no-logs").code == 0
    after_second = snapshot(sandbox.functions_dir)
    first, second = (r["id"] for r in history(sandbox))
    ls = {f["name"]: f for f in repo.run("ls", "--json").json()["functions"]}
    assert ls["fn-a"]["last_release"] == second and ls["hello"]["last_release"] == second
    assert f"release={second}" in repo.run("ls").out

    r = repo.run("history", "--json")
    assert r.code == 0, r.err
    releases = r.json()["releases"]
    assert [x["id"] for x in releases] == [second, first]  # newest first
    assert set(releases[0]) >= {
        "id",
        "time",
        "user",
        "host",
        "commit",
        "dirty",
        "functions",
        "files",
    }

    before = restarts(sandbox)
    r = repo.run("rollback", first, "--yes", "--json", "--no-logs")
    assert r.code == 0, r.err
    data = r.json()
    assert data["rolled_back"] == [first, second] and data["restarted"] is True
    assert snapshot(sandbox.functions_dir) == original  # byte for byte
    assert restarts(sandbox) == before + 1
    rollback_id = data["release"]
    assert history(sandbox)[-1]["kind"] == "rollback"

    # the rollback is a release: rolling it back restores the state after the second push
    r = repo.run("rollback", "--yes", "--no-logs")
    assert r.code == 0, r.err
    assert snapshot(sandbox.functions_dir) == after_second
    assert history(sandbox)[-1]["rolled_back"] == [rollback_id]
    text = repo.run("history").out
    assert f"rollback of {rollback_id}" in text


def test_rollback_needs_confirmation_without_tty(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs").code == 0
    before = snapshot(sandbox.functions_dir)
    r = repo.run("rollback")
    assert r.code == 2 and "--yes" in r.err
    assert snapshot(sandbox.functions_dir) == before
    r = repo.run("rollback", "20990101T000000Z-dead", "--yes")
    assert r.code == 2 and "no release '20990101T000000Z-dead'" in r.err


def test_retention_after_twelve_pushes(repo: Project, sandbox: Sandbox) -> None:
    for i in range(12):
        repo.write("fn-a/index.ts", serve(f"a v{i}"))
        assert repo.run("push", "--no-logs", "--no-restart").code == 0
    ids = [r["id"] for r in history(sandbox)]
    assert len(ids) == 12  # history lines stay
    kept = {p.name for p in (sandbox.project_dir / ".edgesync/releases").iterdir()}
    assert kept == set(ids[-10:])  # backups of the last keep_releases (10) only
    r = repo.run("rollback", ids[1], "--yes")
    assert r.code == 2
    assert f"the backups of release {ids[1]} were removed" in r.err
    assert repo.run("rollback", ids[2], "--yes", "--no-logs").code == 0
    assert (sandbox.functions_dir / "fn-a/index.ts").read_text() == serve("a v1")


def test_keep_releases_setting(repo: Project, sandbox: Sandbox) -> None:
    repo.config.write_text(repo.config.read_text() + "    keep_releases: 2\n")
    for i in range(4):
        repo.write("fn-a/index.ts", serve(f"a v{i}"))
        assert repo.run("push", "--no-logs", "--no-restart").code == 0
    assert len(list((sandbox.project_dir / ".edgesync/releases").iterdir())) == 2


def hold_lock(sandbox: Sandbox, rid: str = "20260101T000000Z-hold") -> subprocess.Popen[bytes]:
    """A real push's server side that took the lock and waits for its upload forever."""
    info = json.dumps(
        {
            "user": "anna",
            "host": "laptop",
            "pid": 4242,
            "since": "2026-11-23T10:00:00+00:00",
            "commit": "abc12345",
        }
    )
    cmd = sh_script(
        scripts.load("session"),
        sandbox.project_dir / ".edgesync",
        sandbox.functions_dir,
        rid,
        info,
        "token-of-the-other-deploy",
        600,
        sandbox.project_dir,
        scripts.load("snapshot"),
    )
    proc = subprocess.Popen(
        sandbox.ssh_command(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lock = sandbox.project_dir / ".edgesync/lock/pid"
    deadline = time.monotonic() + 20
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists()
    return proc


def test_stale_lock_from_a_killed_push(repo: Project, sandbox: Sandbox) -> None:
    proc = hold_lock(sandbox)
    pid = int((sandbox.project_dir / ".edgesync/lock/pid").read_text())
    r = repo.run("lock", "status", "--json")
    assert r.json()["held"] is True and r.json()["server_process"] == "running"
    r = repo.run("lock", "release", "--yes")  # refused while that deploy still runs
    assert r.code == 2 and "still running" in r.err
    os.kill(pid, signal.SIGKILL)  # the push's process on the server dies (kill -9)
    proc.kill()
    proc.wait()
    r = repo.run("push", "--no-logs")
    assert r.code == 6
    assert "anna@laptop since 2026-11-23T10:00:00+00:00" in r.err
    assert "edgesync lock status" in r.err and "edgesync lock release" in r.err
    r = repo.run("lock", "status")
    assert "locked by anna@laptop" in r.out and "stale" in r.out
    r = repo.run("lock", "release")
    assert r.code == 2 and "--yes" in r.err  # no terminal: no silent release
    r = repo.run("lock", "release", "--yes")
    assert r.code == 0 and "lock released" in r.out
    assert repo.run("lock", "status").out.strip() == "sandbox: not locked"
    assert repo.run("push", "--no-logs").code == 0


def test_a_lock_whose_apply_still_runs_is_not_stale(repo: Project, sandbox: Sandbox) -> None:
    """The session shell killed alone leaves apply.sh running: the lock is not abandoned."""
    proc = hold_lock(sandbox)
    lock = sandbox.project_dir / ".edgesync/lock"
    os.kill(int((lock / "pid").read_text()), signal.SIGKILL)
    proc.kill()
    proc.wait()
    # what apply.sh leaves beside the session's pid (the `:` keeps sh from exec'ing sleep)
    apply = subprocess.Popen(["sh", "-c", "sleep 60; :", f"{lock.parent}/staging/r/apply.sh"])
    try:
        (lock / "apply.pid").write_text(f"{apply.pid}\n")
        assert repo.run("lock", "status", "--json").json()["server_process"] == "running"
        r = repo.run("lock", "release", "--yes")
        assert r.code == 2 and "still running" in r.err
        (lock / "apply.pid").write_text(f"{os.getpid()}\n")  # alive, but not an apply.sh
        assert repo.run("lock", "status", "--json").json()["server_process"] == "gone"
        (lock / "apply.pid").write_text(f"{apply.pid}\n")
    finally:
        apply.kill()
        apply.wait()
    assert repo.run("lock", "status", "--json").json()["server_process"] == "gone"
    assert repo.run("lock", "release", "--yes").code == 0


def test_lock_wait(repo: Project, sandbox: Sandbox) -> None:
    proc = hold_lock(sandbox)
    r = repo.run("push", "--no-logs")
    assert r.code == 6
    # the other deploy ends (its client disconnects) after a second
    ender = threading.Timer(1.0, proc.kill)
    ender.start()
    try:
        t = time.monotonic()
        r = repo.run("push", "--no-logs", "--lock-wait", "30")
        assert r.code == 0, r.err
        assert time.monotonic() - t >= 0.9
        assert "waiting for the lock" in r.err
    finally:
        ender.cancel()
        proc.kill()
        proc.wait()


def test_drift_refused_then_forced(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs").code == 0
    hand = sandbox.functions_dir / "fn-a/index.ts"
    hand.write_text("// hotfix made on the server\n")
    (sandbox.functions_dir / "fn-a/extra.ts").write_text("// added by hand\n")
    data = repo.run("diff", "--json").json()
    assert data["changed_on_server"] == ["fn-a/extra.ts", "fn-a/index.ts"]
    r = repo.run("diff")
    assert "fn-a/index.ts  (changed on server)" in r.out
    ls = {f["name"]: f for f in repo.run("ls", "--json").json()["functions"]}
    assert ls["fn-a"]["changed_on_server"] == ["fn-a/extra.ts", "fn-a/index.ts"]

    repo.write("fn-a/index.ts", serve("a v2"))
    r = repo.run("push", "--no-logs")
    assert r.code == 8
    assert "fn-a/index.ts" in r.err and "--force" in r.err
    assert hand.read_text() == "// hotfix made on the server\n"
    r = repo.run("push", "--no-logs", "--force", "--json")
    assert r.code == 0, r.err
    rid = r.json()["release"]
    kept = sandbox.project_dir / ".edgesync/releases" / rid / "before/fn-a/index.ts"
    assert kept.read_text() == "// hotfix made on the server\n"  # the overwritten version is kept
    assert repo.run("diff", "--json").json()["changed_on_server"] == []
    # a change to a file the push does not touch is reported but does not block
    (sandbox.functions_dir / "_shared/x.ts").write_text("export const x = 99\n")
    repo.write("fn-a/index.ts", serve("a v3"))
    (repo.functions / "_shared/x.ts").write_text("export const x = 99\n")
    assert repo.run("push", "fn-a", "--no-logs").code == 0


@pytest.mark.parametrize("first", ["function", "file", "added file"])
def test_rollback_over_a_file_put_into_a_function_restored_whole(
    repo: Project, sandbox: Sandbox, first: str
) -> None:
    """fn-a loads a file from b's folder: `push fn-a` puts it on its own, `push b` swaps b
    whole. A rollback of both restores b whole; the file's own change must neither steal
    a file from b's backup nor land over the restored copy out of order."""
    repo.write("b/index.ts", serve("b v1"))
    repo.write("b/x.ts", "export const x = 'x0'\n")
    repo.write("fn-a/index.ts", serve("a v1", "../_shared/x.ts", "../b/x.ts"))
    assert repo.run("push", "--no-logs").code == 0
    base = snapshot(sandbox.functions_dir)

    def push_b() -> None:
        repo.write("b/index.ts", serve("b v2"))
        r = repo.run("push", "b", "--no-logs")
        assert r.code == 0, r.err

    def push_file() -> None:
        if first == "added file":
            repo.write("b/new.ts", "export const n = 1\n")
            repo.write(
                "fn-a/index.ts", serve("a v2", "../_shared/x.ts", "../b/x.ts", "../b/new.ts")
            )
        else:
            repo.write("b/x.ts", "export const x = 'x1'\n")
        r = repo.run("push", "fn-a", "--no-logs")
        assert r.code == 0, r.err

    steps = [push_b, push_file] if first == "function" else [push_file, push_b]
    for step in steps:
        step()
    oldest = history(sandbox)[-2]
    assert {op.get("name", op.get("path")) for op in oldest["ops"]} & {"b", "b/x.ts", "b/new.ts"}
    r = repo.run("rollback", oldest["id"], "--yes", "--no-logs")
    assert r.code == 0, r.err
    assert snapshot(sandbox.functions_dir) == base
