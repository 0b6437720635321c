"""Releases that survive crashes and races, through the real sshd: the lock, recovery, history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgesync.remote import scripts
from edgesync.remote.shell import sh_script
from sandbox import Sandbox
from tests.helpers import Project, serve


def state(sandbox: Sandbox) -> Path:
    return sandbox.project_dir / ".edgesync"


def history_ids(sandbox: Sandbox) -> list[str]:
    path = state(sandbox) / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> Project:
    project.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())
    project.write("fn-a/index.ts", serve("a v1", "../_shared/x.ts"))
    project.write("fn-b/index.ts", serve("b v1"))
    project.write("_shared/x.ts", "export const x = 1\n")
    return project


def hold_lock(
    sandbox: Sandbox, *, idle: int = 600, token: str = "other"
) -> subprocess.Popen[bytes]:
    """Another deploy's server session: it holds the lock and waits for its upload."""
    info = json.dumps({"user": "anna", "host": "laptop", "pid": 4242, "since": "t0"})
    cmd = sh_script(
        scripts.load("session"),
        state(sandbox),
        sandbox.functions_dir,
        f"20260101T000000Z-{token}",
        info,
        token,
        idle,
        sandbox.project_dir,
        scripts.load("snapshot"),
    )
    proc = subprocess.Popen(
        sandbox.ssh_command(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    pid = state(sandbox) / "lock/pid"
    while not (pid.exists() and pid.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (state(sandbox) / "lock/pid").exists()
    return proc


# --------------------------------------------------------------------------- recovery


def test_an_interrupted_release_is_undone_then_planned_from_what_is_there(
    repo: Project, sandbox: Sandbox
) -> None:
    """The false success: the next push must not plan from the listing taken before the undo."""
    assert repo.run("push", "--no-logs").code == 0
    v1 = tree(sandbox.functions_dir)
    repo.write("fn-a/index.ts", serve("a v2", "../_shared/x.ts"))
    repo.write("_shared/x.ts", "export const x = 2\n")
    r = repo.run("push", "--no-logs", "--json")
    assert r.code == 0, r.err
    r2 = r.json()["release"]
    # the server process of r2 died after its swap, before writing the history
    lines = (state(sandbox) / "history.jsonl").read_text().splitlines()
    (state(sandbox) / "history.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    (state(sandbox) / "journal").write_text(r2 + "\n")
    r = repo.run("push", "--no-logs")
    assert r.code == 0, r.err
    assert f"({r2}) was found and rolled back" in r.err
    assert "in sync" not in r.out  # the undo put v1 back: v2 must be pushed again
    after = tree(sandbox.functions_dir)
    assert after["fn-a/index.ts"] == serve("a v2", "../_shared/x.ts").encode()
    assert after["_shared/x.ts"] == b"export const x = 2\n"
    assert after != v1
    assert repo.run("diff", "--exit-code").code == 0
    assert not (state(sandbox) / "journal").exists()


def test_a_journal_of_a_committed_release_is_not_undone(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs").code == 0
    (rid,) = history_ids(sandbox)
    committed = tree(sandbox.functions_dir)
    # killed after the history was written, before the journal was removed
    (state(sandbox) / "journal").write_text(rid + "\n")
    r = repo.run("push", "--no-logs")
    assert r.code == 0, r.err
    assert "rolled back" not in r.err
    assert tree(sandbox.functions_dir) == committed
    assert not (state(sandbox) / "journal").exists()


def test_diff_during_a_swap_does_not_call_it_drift(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs").code == 0
    (sandbox.functions_dir / "fn-a/index.ts").write_text("// half swapped\n")
    (state(sandbox) / "journal").write_text("20261125T000000Z-beef\n")
    r = repo.run("diff", "--json")
    assert r.code == 0, r.err
    assert r.json()["changed_on_server"] == []
    assert "is being applied on the server, or was interrupted" in r.err


# --------------------------------------------------------------------------- history


def test_an_unreadable_history_line_is_skipped_and_repaired(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    history = state(sandbox) / "history.jsonl"
    good = history.read_text()
    history.write_text(good + '{"id": "20261125T000000Z-dead", "ops": [{"op"\n')  # disk full
    for command in (["diff"], ["ls"], ["history"], ["push", "--no-logs"]):
        r = repo.run(*command)
        assert r.code == 0, (command, r.err)
        assert "history.jsonl line 2" in r.err
    r = repo.run("repair")
    assert r.code == 2 and "--yes" in r.err
    r = repo.run("repair", "--yes")
    assert r.code == 0, r.err
    assert "removed 1 unreadable history line" in r.out
    assert history.read_text() == good
    (backup,) = state(sandbox).glob("history.jsonl.bak-*")
    assert "dead" in backup.read_text()
    assert "line 2" not in repo.run("diff").err
    assert "nothing to repair" in repo.run("repair", "--yes").out


def test_a_wrongly_typed_history_line_never_crashes(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs").code == 0
    history = state(sandbox) / "history.jsonl"
    history.write_text(
        history.read_text() + '{"id": 5, "ops": [{"op": "function"}]}\n' + "[" * 100000 + "\n"
    )
    for command in (["diff"], ["ls"], ["history"], ["rollback", "--yes", "--no-logs"]):
        r = repo.run(*command)
        assert r.code in (0, 2), (command, r.err)
        assert "unexpected error" not in r.err


# --------------------------------------------------------------------------- the lock


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        ("folder without info", "records no holder"),
        ("garbled info", "records no holder"),
        ("plain file", "a file named lock"),
        ("symlink", "a symlink named lock"),
    ],
)
def test_any_lock_can_be_seen_and_cleared(
    repo: Project, sandbox: Sandbox, tmp_path: Path, make: str, shown: str
) -> None:
    lock = state(sandbox) / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep\n")
    if make == "folder without info":
        lock.mkdir()
    elif make == "garbled info":
        lock.mkdir()
        (lock / "info.json").write_text("{not json")
    elif make == "plain file":
        lock.write_text("?")
    else:
        lock.symlink_to(elsewhere)
    r = repo.run("push", "--no-logs")
    assert r.code == 6
    assert "edgesync lock release" in r.err
    r = repo.run("lock", "status")
    assert r.code == 0 and shown in r.out, r.out
    r = repo.run("lock", "release", "--yes")
    assert r.code == 0 and "lock released" in r.out, r.err
    assert not lock.exists() and not lock.is_symlink()
    assert (elsewhere / "precious").read_text() == "keep\n"  # a link is removed, not followed
    assert repo.run("push", "--no-logs").code == 0


def test_an_unwritable_state_folder_is_exit_5_not_locked(repo: Project, sandbox: Sandbox) -> None:
    state(sandbox).write_text("a file where edgesync keeps its state\n")
    r = repo.run("push", "--no-logs")
    assert r.code == 5, r.err
    assert "cannot write" in r.err and "project_dir" in r.err, r.err
    assert "locked" not in r.err


def test_a_symlinked_state_folder_is_refused(
    repo: Project, sandbox: Sandbox, tmp_path: Path
) -> None:
    target = tmp_path / "other"
    (target / "staging/victim").mkdir(parents=True)
    (target / "staging/victim/file").write_text("not edgesync's\n")
    state(sandbox).symlink_to(target)
    r = repo.run("push", "--no-logs")
    assert r.code == 5 and "symbolic link" in r.err, r.err
    assert (target / "staging/victim/file").read_text() == "not edgesync's\n"


def test_only_the_holder_removes_its_lock(repo: Project, sandbox: Sandbox) -> None:
    first = hold_lock(sandbox, token="first")
    assert repo.run("lock", "release", "--yes", "--force").code == 0
    second = hold_lock(sandbox, token="second")
    try:
        first.kill()  # the first deploy's client goes away: its server side cleans up
        first.wait()
        time.sleep(2)
        assert (state(sandbox) / "lock/token").read_text().strip() == "second"
    finally:
        second.kill()
        second.wait()
    deadline = time.monotonic() + 20
    while (state(sandbox) / "lock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (state(sandbox) / "lock").exists()


def test_a_stalled_upload_is_given_up_and_unlocked(repo: Project, sandbox: Sandbox) -> None:
    proc = hold_lock(sandbox, idle=4)  # its client stays connected but sends nothing
    try:
        deadline = time.monotonic() + 30
        while (state(sandbox) / "lock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not (state(sandbox) / "lock").exists()
        assert proc.poll() is not None or proc.wait(timeout=10) is not None
    finally:
        proc.kill()
        proc.wait()
    assert repo.run("push", "--no-logs").code == 0


# --------------------------------------------------------------------------- races


@pytest.mark.parametrize("count", [2, 5])
def test_concurrent_pushes_of_a_new_function_never_nest(
    repo: Project, sandbox: Sandbox, count: int
) -> None:
    repo.write("wpp-provision/index.ts", serve("new on the server"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "edgesync", "-c", str(repo.config), "push", "wpp-provision"]
            + ["--no-logs", "--lock-wait", "60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ},
        )
        for _ in range(count)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * count, [err.decode() for _, err in results]
    fd = sandbox.functions_dir / "wpp-provision"
    assert sorted(p.name for p in fd.iterdir()) == ["index.ts"]  # no wpp-provision/wpp-provision
    assert len(history_ids(sandbox)) == 1  # the others found it in sync
    assert not any("changed on the server" in err.decode() for _, err in results)
    assert not (state(sandbox) / "lock").exists()


def test_concurrent_pushes_without_waiting_are_refused_honestly(
    repo: Project, sandbox: Sandbox
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "edgesync", "-c", str(repo.config), "push", "--no-logs"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ},
        )
        for _ in range(5)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert set(codes) <= {0, 6} and codes.count(0) >= 1, (codes, errors)
    assert repo.run("diff", "--exit-code").code == 0


def test_a_killed_server_session_leaves_a_lock_that_can_be_cleared(
    repo: Project, sandbox: Sandbox
) -> None:
    proc = hold_lock(sandbox, token="killed")
    pid = int((state(sandbox) / "lock/pid").read_text())
    os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.wait()
    r = repo.run("lock", "status")
    assert "stale" in r.out
    assert repo.run("lock", "release", "--yes").code == 0
    assert repo.run("push", "--no-logs").code == 0


# --------------------------------------------------------------------------- symlinks


@pytest.mark.parametrize("link", ["_shared", "fn-b"])
def test_a_symlinked_folder_on_the_server_is_never_written_through(
    repo: Project, sandbox: Sandbox, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.ts").write_text("not the server's functions\n")
    (sandbox.functions_dir / link).symlink_to(outside)
    r = repo.run("diff")
    assert f"{link} is a symbolic link on the server" in r.err
    r = repo.run("push", "--no-logs")
    assert r.code == 5, r.err
    assert "symbolic link" in r.err and link in r.err
    assert sorted(p.name for p in outside.iterdir()) == ["precious.ts"]
    assert (sandbox.functions_dir / link).is_symlink()
    assert not (state(sandbox) / "lock").exists()


# --------------------------------------------------------------------------- modes


def test_uploads_keep_the_local_mode_and_never_widen_the_servers(
    repo: Project, sandbox: Sandbox
) -> None:
    repo.write("fn-b/secret-config.ts", "export const k = 1\n").chmod(0o600)
    repo.write("fn-b/tool.sh", "#!/bin/sh\n").chmod(0o755)
    repo.write("_shared/x.ts", "export const x = 2\n")
    server(sandbox, "_shared/x.ts", "export const x = 1\n")
    (sandbox.functions_dir / "_shared/x.ts").chmod(0o600)  # tightened on the server
    r = repo.run("push", "--no-logs")
    assert r.code == 0, r.err
    fd = sandbox.functions_dir
    assert (fd / "fn-b/secret-config.ts").stat().st_mode & 0o777 == 0o600
    assert (fd / "fn-b/tool.sh").stat().st_mode & 0o777 == 0o755
    assert (fd / "_shared/x.ts").stat().st_mode & 0o777 == 0o600
    assert (fd / "_shared/x.ts").read_text() == "export const x = 2\n"


def server(sandbox: Sandbox, rel: str, text: str) -> None:
    path = sandbox.functions_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_links_inside_the_state_folder_are_never_followed(
    repo: Project, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    secret = tmp_path / "secret"
    secret.write_text('{"user": "leaked-secret"}\n')
    lock = state(sandbox) / "lock"
    lock.mkdir()
    (lock / "info.json").symlink_to(secret)
    r = repo.run("lock", "status")
    assert "leaked-secret" not in r.out and "records no holder" in r.out
    assert repo.run("lock", "release", "--yes").code == 0
    assert secret.exists()
    history = state(sandbox) / "history.jsonl"
    history.rename(tmp_path / "real-history")
    history.symlink_to(secret)
    r = repo.run("push", "--no-logs")
    assert r.code == 5 and "symbolic link" in r.err
    assert secret.read_text() == '{"user": "leaked-secret"}\n'
