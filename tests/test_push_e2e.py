"""`push` end to end through the real sshd: atomic, recorded, restarted, recoverable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from tests.helpers import Project

WPP = "export async function wpp() { return fetch('https://wpp', { signal: AbortSignal.timeout(10000) }) }\n"
CORS = "export const cors = { 'Access-Control-Allow-Origin': '*' }\n"
PROVISION = (
    "import { wpp } from '../_shared/wpp.ts'\nimport { cors } from '../_shared/cors.ts'\n"
    "Deno.serve(async () => { console.log('provision'); await wpp(); return new Response('ok', { headers: cors }) })\n"
)


@pytest.fixture
def project(project: Project, sandbox: Sandbox) -> Project:
    p = project
    p.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())
    p.write("wpp-provision/index.ts", PROVISION)
    p.write("wpp-provision/deno.json", "{}\n")
    p.write("_shared/wpp.ts", WPP)
    p.write("_shared/cors.ts", CORS)
    p.write("_shared/unrelated.ts", "export {}\n")
    p.write(".env", "SECRET=local-only\n")
    p.write("wpp-provision/.env", "SECRET=local-only\n")
    return p


def state(sandbox: Sandbox) -> Path:
    return sandbox.project_dir / ".edgesync"


def history(sandbox: Sandbox) -> list[dict[str, Any]]:
    path = state(sandbox) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_push_one_function_with_its_shared_files(project: Project, sandbox: Sandbox) -> None:
    env_before = (sandbox.functions_dir / ".env").read_bytes()
    main_before = snapshot(sandbox.functions_dir / "main")
    r = project.run("push", "wpp-provision", "--json", "--no-logs")
    assert r.code == 0, r.err
    data = r.json()
    assert data["target"] == "sandbox" and data["restarted"] is True
    assert data["functions"] == ["wpp-provision"]
    assert sorted(f["path"] for f in data["files"]) == [
        "_shared/cors.ts",
        "_shared/wpp.ts",
        "wpp-provision/deno.json",
        "wpp-provision/index.ts",
    ]
    assert all(f["action"] == "upload" for f in data["files"])
    fd = sandbox.functions_dir
    assert (fd / "wpp-provision/index.ts").read_text() == PROVISION
    assert (fd / "_shared/wpp.ts").read_text() == WPP
    assert not (fd / "_shared/unrelated.ts").exists()  # not imported: not pushed
    assert not (fd / "wpp-provision/.env").exists()  # a local .env never travels
    assert (fd / ".env").read_bytes() == env_before
    assert snapshot(fd / "main") == main_before
    # restarted once, in the project folder, the documented way
    restarts = [c for c in sandbox.calls() if "restart" in c["argv"]]
    assert len(restarts) == 1
    assert restarts[0]["cwd"] == str(sandbox.project_dir)
    assert restarts[0]["argv"] == ["compose", "restart", "functions", "--no-deps"]
    # recorded
    (release,) = history(sandbox)
    assert release["id"] == data["release"]
    assert release["functions"] == ["wpp-provision"]
    assert {f["path"] for f in release["files"]} == {f["path"] for f in data["files"]}
    # each uploaded file's hash is recorded once, in `after` (what drift and rollback read)
    assert all(len(release["after"][f["path"]]) == 64 for f in release["files"])
    assert release["user"] and release["host"] and release["edgesync"]
    # nothing left behind: no lock, no staging
    assert not (state(sandbox) / "lock").exists()
    assert list((state(sandbox) / "staging").iterdir()) == []
    # the second push is a no-op: no release, no restart
    r = project.run("push", "wpp-provision")
    assert r.code == 0 and "in sync" in r.out
    assert len(history(sandbox)) == 1
    assert len([c for c in sandbox.calls() if "restart" in c["argv"]]) == 1


def test_push_mirrors_the_function_folder(project: Project, sandbox: Sandbox) -> None:
    project.write("wpp-provision/old.ts", "old\n")
    assert project.run("push", "wpp-provision", "--no-logs").code == 0
    (project.functions / "wpp-provision/old.ts").unlink()
    project.write("wpp-provision/index.ts", PROVISION + "// v2\n")
    r = project.run("push", "wpp-provision", "--json", "--no-logs")
    assert r.code == 0, r.err
    files = {(f["path"], f["action"]) for f in r.json()["files"]}
    assert files == {("wpp-provision/index.ts", "upload"), ("wpp-provision/old.ts", "delete")}
    assert not (sandbox.functions_dir / "wpp-provision/old.ts").exists()
    assert (sandbox.functions_dir / "wpp-provision/deno.json").exists()  # kept, not re-sent
    assert (sandbox.functions_dir / "wpp-provision/index.ts").read_text().endswith("// v2\n")
    # the replaced folder is kept in the release
    rid = r.json()["release"]
    before = state(sandbox) / "releases" / rid / "before" / "wpp-provision"
    assert (before / "old.ts").read_text() == "old\n"


def test_shared_files_are_never_lost_without_prune(project: Project, sandbox: Sandbox) -> None:
    (sandbox.functions_dir / "_shared").mkdir()
    (sandbox.functions_dir / "_shared/server-only.ts").write_text("keep me\n")
    assert project.run("push", "--no-logs").code == 0
    assert (sandbox.functions_dir / "_shared/server-only.ts").read_text() == "keep me\n"
    assert (sandbox.functions_dir / "_shared/unrelated.ts").exists()  # push-all: every file


def test_dry_run_changes_nothing(project: Project, sandbox: Sandbox) -> None:
    before = snapshot(sandbox.project_dir)
    r = project.run("push", "--dry-run")
    assert r.code == 0, r.err
    assert "wpp-provision" in r.out and "dry run" in r.out
    assert snapshot(sandbox.project_dir) == before
    assert not state(sandbox).exists()
    assert [c for c in sandbox.calls() if "restart" in c["argv"]] == []


def test_unknown_function(project: Project, sandbox: Sandbox) -> None:
    r = project.run("push", "wpp-provison")
    assert r.code == 2
    assert "'wpp-provison' is not a local function" in r.err and "wpp-provision" in r.err
    assert not state(sandbox).exists()


def test_lock_held(project: Project, sandbox: Sandbox) -> None:
    lock = state(sandbox) / "lock"
    lock.mkdir(parents=True)
    (lock / "info.json").write_text(
        json.dumps(
            {
                "user": "anna",
                "host": "laptop",
                "pid": 4242,
                "since": "2026-11-23T10:00:00+00:00",
                "commit": "abc12345",
            }
        )
    )
    r = project.run("push", "wpp-provision")
    assert r.code == 6
    assert "anna@laptop since 2026-11-23T10:00:00+00:00" in r.err and "4242" in r.err
    assert not (sandbox.functions_dir / "wpp-provision").exists()
    assert lock.exists()  # someone else's lock is left alone


def test_failing_restart(project: Project, sandbox: Sandbox) -> None:
    (sandbox.state_dir / "fail-restart").touch()
    r = project.run("push", "wpp-provision")
    assert r.code == 5
    assert "restart failed" in r.err
    assert "files are deployed" in r.err and "is recorded" in r.err
    assert len(history(sandbox)) == 1
    assert (sandbox.functions_dir / "wpp-provision/index.ts").exists()


def test_docker_permission_denied_hint(project: Project, sandbox: Sandbox) -> None:
    (sandbox.state_dir / "deny").touch()
    r = project.run("push", "wpp-provision")
    assert r.code == 5
    assert "docker group" in r.err and "sudo docker compose" in r.err


def test_restart_command_override(project: Project, sandbox: Sandbox) -> None:
    project.config.write_text(
        project.config.read_text() + "    restart_command: docker restart supabase-edge-functions\n"
    )
    assert project.run("push", "wpp-provision", "--no-logs").code == 0
    restarts = [c for c in sandbox.calls() if "restart" in c["argv"]]
    assert restarts[-1]["argv"] == ["restart", "supabase-edge-functions"]
    assert restarts[-1]["cwd"] == str(sandbox.project_dir)


def test_no_restart(project: Project, sandbox: Sandbox) -> None:
    r = project.run("push", "wpp-provision", "--no-restart", "--json")
    assert r.code == 0 and r.json()["restarted"] is False
    assert [c for c in sandbox.calls() if "restart" in c["argv"]] == []


def test_prune(project: Project, sandbox: Sandbox) -> None:
    (sandbox.functions_dir / "legacy").mkdir()
    (sandbox.functions_dir / "legacy/index.ts").write_text("old\n")
    r = project.run("push", "--prune")  # no TTY, no --yes: refused
    assert r.code == 2 and "--yes" in r.err
    assert (sandbox.functions_dir / "legacy").exists()
    r = project.run("push", "--prune", "--yes", "--json", "--no-logs")
    assert r.code == 0, r.err
    assert not (sandbox.functions_dir / "legacy").exists()
    assert (sandbox.functions_dir / "main").is_dir() and (sandbox.functions_dir / ".env").exists()
    assert {"path": "legacy", "action": "delete"} in r.json()["files"]
    (release,) = history(sandbox)
    assert release["deleted_functions"] == ["legacy"]


def test_logs_after_push_show_the_function_and_boot_errors(
    project: Project, sandbox: Sandbox
) -> None:
    sandbox.append_log("serving the request with /home/deno/functions/hello")
    sandbox.append_log("[Info] old line from hello")
    r = project.run("push", "wpp-provision", "--logs-seconds", "1")
    assert r.code == 0, r.err
    assert "main function started" in r.out  # the restart is visible
    assert "old line from hello" not in r.out


def test_failed_swap_is_undone(project: Project, sandbox: Sandbox) -> None:
    """A failure in the middle of the swap puts back what was already replaced."""
    assert project.run("push", "wpp-provision", "--no-logs").code == 0
    old = snapshot(sandbox.functions_dir)
    project.write("wpp-provision/index.ts", PROVISION + "// v2\n")
    project.write("_shared/sub/x.ts", "x\n")
    project.write("wpp-provision/index.ts", PROVISION + "import '../_shared/sub/x.ts'\n")
    (sandbox.functions_dir / "_shared/sub").write_text("a file where a folder must go\n")
    r = project.run("push", "wpp-provision", "--no-logs")
    assert r.code == 5, (r.out, r.err)
    assert snapshot(sandbox.functions_dir) == {
        **old,
        "_shared/sub": b"a file where a folder must go\n",
    }
    assert not (state(sandbox) / "lock").exists() and not (state(sandbox) / "journal").exists()
    assert len(history(sandbox)) == 1


def test_interrupted_swap_is_repaired_by_the_next_push(project: Project, sandbox: Sandbox) -> None:
    """A journal left by a server process killed mid-swap: the next push undoes it, then pushes."""
    (sandbox.functions_dir / "wpp-provision").mkdir()
    (sandbox.functions_dir / "wpp-provision/index.ts").write_text("// old\n")
    r = project.run("push", "wpp-provision", "--json", "--no-logs")
    rid = r.json()["release"]
    # pretend the history line was never written: the release did not complete
    (state(sandbox) / "history.jsonl").write_text("")
    (state(sandbox) / "journal").write_text(rid + "\n")
    project.write("wpp-provision/index.ts", PROVISION + "// v3\n")
    r = project.run("push", "wpp-provision", "--no-logs")
    assert r.code == 0, r.err
    assert f"({rid}) was found and rolled back" in r.err
    assert (sandbox.functions_dir / "wpp-provision/index.ts").read_text().endswith("// v3\n")
    assert not (state(sandbox) / "journal").exists()


def test_killed_push_leaves_old_or_new(project: Project, sandbox: Sandbox, tmp_path: Path) -> None:
    (sandbox.functions_dir / "wpp-provision").mkdir()
    (sandbox.functions_dir / "wpp-provision/index.ts").write_text("// old\n")
    old = snapshot(sandbox.functions_dir)
    with (project.functions / "wpp-provision/big.bin").open("wb") as f:
        f.write(os.urandom(1 << 20) * 96)  # 96 MiB: slow enough to kill mid-upload
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgesync", "-c", str(project.config), "push", "--no-logs"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    staged = state(sandbox) / "staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hits = list(staged.glob("*/new/wpp-provision/big.bin")) if staged.exists() else []
        if hits and hits[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    else:
        proc.kill()
        pytest.fail("the upload never started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the server notices the dropped channel, cleans up and unlocks
    deadline = time.monotonic() + 20
    while (state(sandbox) / "lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (state(sandbox) / "lock").exists()
    assert snapshot(sandbox.functions_dir) == old  # wholly old
    assert history(sandbox) == []
    # the next push completes
    (project.functions / "wpp-provision/big.bin").write_bytes(b"small now\n")
    r = project.run("push", "--no-logs")
    assert r.code == 0, r.err
    assert (sandbox.functions_dir / "wpp-provision/big.bin").read_bytes() == b"small now\n"
    assert list(staged.iterdir()) == []
