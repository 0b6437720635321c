"""Minimal, deterministic reproductions of what the suite found (one scenario each).

    python -m faults.repro            # every scenario
    python -m faults.repro NAME ...   # some of them

Each scenario puts the sandbox in a known state, drives edgesync through its CLI, waits for an
exact point of the server-side protocol (observed on the server's files), injects one fault
there, and returns what is wrong afterwards (an empty list when the product holds). The slow
`mv` (0.3 s) holds each step of the swap long enough to hit it every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from faults import judge, procs
from faults.diskfull import TMPFS_SIZE, take_space
from faults.model import push_one
from faults.rig import Rig, Run
from faults.suite import Suite
from faults.workload import SMALL, write_tree
from tools.netproxy import Proxy

STEP = 0.3  # seconds each server-side mv sleeps
Scenario = Callable[[Rig], list[str]]


def _wait(what: str, condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the push never reached: {what}")
        time.sleep(0.005)


def _release_dirs(project: Path) -> list[Path]:
    return list((project / ".edgesync").glob("releases/*/before"))


def _judge(rig: Rig, run: Run, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Problems of the at-rest state: a broken folder, or a half state after a failure exit."""
    st = rig.state()
    s = judge.shape(st.files, st.folders, before, after)
    problems = list(s.broken)
    if run.code != 0 and s.whole == "half":
        problems.append(
            f"exit {run.code} ({run.last_line()}) but the server is half new: {s.detail}; "
            f"journal: {st.journal}"
        )
    return problems


def _bravo_swapped(rig: Rig) -> bool:
    """`push bravo`: bravo/ swapped in, its shared files not yet put."""
    fd = rig.sb.functions_dir
    return (fd / "bravo").is_dir() and any(
        (b / "bravo").is_dir() for b in _release_dirs(rig.sb.project_dir)
    )


def _recorded_is_installed(rig: Rig, after: dict[str, str]) -> list[str]:
    """A release in the history means the server holds its version."""
    st = rig.state()
    managed, _ = judge.split(st.files)
    if st.history_ids and managed != after:
        return ["the release is in the history, but the server is not its version"]
    return []


def _kill_session_once_bravo_swapped(rig: Rig, slow: float, *, group: bool) -> Run:
    """`push bravo` from the old state, its server session SIGKILLed (alone, or with its
    whole process group) once bravo/ is swapped in; the push's run, the server at rest."""
    rig.seed(rig.workload.old)
    rig.slow_mv(slow)
    spawned = rig.spawn("push", "bravo", "--yes", "--no-logs")
    _wait("bravo swapped in", lambda: _bravo_swapped(rig))
    session = procs.by_role(procs.scan(rig.marker)).get("session")
    assert session is not None, "no session shell running"
    procs.kill(session.pgid if group else session.pid, group=group)
    run = spawned.wait()
    rig.quiesce(60)
    rig.slow_mv(None)
    return run


def apply_killed_mid_swap(rig: Rig) -> list[str]:
    """SIGKILL apply.sh (only) once `push bravo` swapped bravo/ in, before its shared files.

    The session shell survives: the release should be undone (or finished) before the push
    exits with an error that says so."""
    w = rig.workload
    rig.seed(w.old)
    rig.slow_mv(STEP)
    spawned = rig.spawn("push", "bravo", "--yes", "--no-logs")
    _wait("bravo swapped in", lambda: _bravo_swapped(rig))
    apply = procs.by_role(procs.scan(rig.marker)).get("apply")
    assert apply is not None, "no apply.sh running"
    procs.kill(apply.pid)
    run = spawned.wait()
    rig.quiesce(60)
    rig.slow_mv(None)
    return _judge(rig, run, w.hashes("old"), push_one(w.hashes("old"), w, "bravo"))


def apply_killed_while_its_commit_runs(rig: Rig) -> list[str]:
    """SIGKILL apply.sh (only) while the `mv` that commits the history is still running (it
    sleeps first). That mv goes on alone and commits the release: the session must not
    undo the release under a committed record, nor say that nothing changed."""
    w = rig.workload
    rig.seed(w.old)
    rig.slow_history(0.2)
    rig.slow_mv(STEP)  # the commit's mv: 0.5 s left at the kill; the undo's mvs: 0.3 s each
    spawned = rig.spawn("push", "bravo", "--yes", "--no-logs")

    def committing() -> procs.Proc | None:
        for p in procs.scan(rig.marker):
            if (
                p.argv[1:2]
                and p.argv[1].endswith(b"/mv")
                and any(b"history.new" in a for a in p.argv)
            ):
                return p
        return None

    _wait("the history's mv running", lambda: committing() is not None)
    apply = procs.by_role(procs.scan(rig.marker)).get("apply")
    assert apply is not None, "no apply.sh running"
    procs.kill(apply.pid)
    run = spawned.wait()
    rig.quiesce(60)
    rig.slow_mv(None)
    after = push_one(w.hashes("old"), w, "bravo")
    problems = _judge(rig, run, w.hashes("old"), after) + _recorded_is_installed(rig, after)
    st = rig.state()
    if run.code != 0 and st.history_ids:
        problems.append(f"exit {run.code} although the release was committed: {run.last_line()}")
    return problems


def session_group_killed_mid_swap(rig: Rig) -> list[str]:
    """SIGKILL the session's whole process group at the same point. The client reconnects
    and reports; it should not say "nothing changed" while the server is half new."""
    w = rig.workload
    run = _kill_session_once_bravo_swapped(rig, STEP, group=True)
    problems = _judge(rig, run, w.hashes("old"), push_one(w.hashes("old"), w, "bravo"))
    if "nothing changed" in run.text() and rig.state().journal:
        problems.append("the client said 'nothing changed' while a journal names its release")
    return problems


def session_killed_alone_mid_swap(rig: Rig) -> list[str]:
    """SIGKILL the session shell (only) once `push bravo` swapped bravo/ in: apply.sh goes
    on alone and commits. Nothing may undo the release while apply.sh still runs, and the
    push must not say "nothing was changed" about a release that is recorded."""
    w = rig.workload
    # slow: apply.sh has seconds of work left when its session dies
    run = _kill_session_once_bravo_swapped(rig, 1.0, group=False)
    after = push_one(w.hashes("old"), w, "bravo")
    problems = _judge(rig, run, w.hashes("old"), after) + _recorded_is_installed(rig, after)
    st = rig.state()
    if st.history_ids and "nothing was changed" in run.text():
        problems.append(f"said nothing changed about a recorded release: {run.last_line()}")
    if st.lock is not None:
        problems.append("the lock the killed session left is still there (the next push waits)")
    return problems


def undo_killed_between_rm_and_mv(rig: Rig) -> list[str]:
    """A push that finds an interrupted release runs its undo.sh; SIGKILL that `sh` (and the
    `mv` it is running) after undo_function removed the live folder, before the old one is back.
    The session shell survives: it should not leave a function missing."""
    w = rig.workload
    suite = Suite(rig, lambda _text: None)
    suite.prepare(["interrupted"])
    rig.restore("interrupted")
    rig.slow_mv(STEP)
    fd = rig.sb.functions_dir
    spawned = rig.spawn("push", "--yes", "--no-logs")

    def gap() -> bool:
        return any(
            (b / f).is_dir() and not (fd / f).exists()
            for b in _release_dirs(rig.sb.project_dir)
            for f in ("alpha", "bravo", "charlie", "delta")
        )

    _wait("a function folder removed and not yet put back", gap)
    undo = procs.by_role(procs.scan(rig.marker)).get("undo")
    assert undo is not None, "no undo.sh running"
    # the mv it started (sleeping in the slow wrapper) goes too: the state of a kill that
    # lands between undo_function's rm -rf and its mv. Stopped first, so it forks no more.
    os.kill(undo.pid, signal.SIGSTOP)
    procs.kill_all([p.pid for p in procs.scan(rig.marker) if p.ppid == undo.pid])
    procs.kill(undo.pid)
    run = spawned.wait()
    rig.quiesce(60)
    rig.slow_mv(None)
    st = rig.state()
    s = judge.shape(st.files, st.folders, w.hashes("old"), w.hashes("new"))
    problems = [f"after exit {run.code} ({run.last_line()}): {b}" for b in s.broken]
    return problems


class CannotMount(RuntimeError):
    """Mounting a tmpfs is not permitted here: the disk-full scenarios cannot run."""


def _tmpfs(rig: Rig) -> Path:
    mount = rig.root / "repro-tmpfs"
    mount.mkdir(exist_ok=True)
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise CannotMount(f"cannot mount a tmpfs here: {p.stderr.strip() or p.returncode}")
    return mount


def _umount(mount: Path) -> None:
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        take_space(fd, folder, 0)
    finally:
        os.close(fd)


def disk_full_before_push_keeps_lock(rig: Rig) -> list[str]:
    """The project's disk is full before the push: it fails, and must not leave its lock."""
    mount = _tmpfs(rig)
    try:
        rig.seed(rig.workload.old, mount)
        config = rig.direct_config(mount)
        _fill(mount)
        run = rig.edgesync("push", "--yes", "--no-logs", config=config)
        rig.quiesce(60)
        st = rig.state(mount)
        if st.lock is not None:
            return [
                f"exit {run.code} ({run.last_line()}) and the lock stays: {st.lock} holding "
                f"{', '.join(st.lock_files)} (token: "
                f"{(mount / '.edgesync/lock/token').read_bytes()!r})"
            ]
        return []
    finally:
        rig.quiesce(10)
        _umount(mount)


def disk_full_during_backup_truncates(rig: Rig) -> list[str]:
    """The disk fills when the swap starts: the backup copy of a shared file fails; the undo
    must not put that partial copy in place of the live file."""
    mount = _tmpfs(rig)
    try:
        w = rig.workload
        rig.seed(w.old, mount)
        config = rig.direct_config(mount)
        rig.slow_mv(STEP)
        spawned = rig.spawn("push", "--yes", "--no-logs", config=config)
        _wait("the journal", lambda: (mount / ".edgesync" / "journal").is_file())
        _fill(mount)
        run = spawned.wait()
        rig.quiesce(60)
        rig.slow_mv(None)
        (mount / "filler.bin").unlink()
        st = rig.state(mount)
        s = judge.shape(st.files, st.folders, w.hashes("old"), w.hashes("new"))
        problems = []
        for b in s.broken:
            path = b.split()[2] if b.startswith("shared file") else ""
            size = (mount / "volumes/functions" / path).stat().st_size if path else -1
            problems.append(f"after exit {run.code}: {b}" + (f" ({size} bytes)" if path else ""))
        return problems
    finally:
        rig.quiesce(10)
        _umount(mount)


def push_one_beside_undeployed_function(rig: Rig) -> list[str]:
    """No fault: `push bravo` while foxtrot (local only, never deployed) imports a shared file
    bravo changes. The push must not depend on a function it does not deploy."""
    w = rig.workload
    rig.seed(w.old)
    run = rig.edgesync("push", "bravo", "--yes", "--no-logs")
    managed, _ = judge.split(rig.state().files)
    if run.code != 0 or managed != push_one(w.hashes("old"), w, "bravo"):
        return [f"push bravo exited {run.code}: {run.last_line()}"]
    return []


def rollback_of_release_that_added_a_function(rig: Rig) -> list[str]:
    """No fault: push everything (foxtrot is new on the server), then `rollback`. The rollback
    removes foxtrot; it must not fail because foxtrot no longer answers."""
    w = rig.workload
    rig.seed(w.old)
    first = rig.edgesync("push", "--yes", "--no-logs")
    if first.code != 0:
        return [f"the push before the rollback exited {first.code}: {first.last_line()}"]
    run = rig.edgesync("rollback", "--yes", "--no-logs")
    managed, _ = judge.split(rig.state().files)
    if run.code != 0 or managed != w.hashes("old"):
        return [f"rollback exited {run.code}: {run.last_line()}"]
    return []


def auto_rollback_reverts_a_later_release(rig: Rig) -> list[str]:
    """No kill: A pushes a bravo that fails to boot, with a restart that takes 8 s; B pushes
    delta with --lock-wait and gets the lock while A restarts. A's automatic rollback (if the
    product rolls back a release that did not boot) must not revert B's release."""
    w = rig.workload
    new, old = w.version("new"), w.version("old")
    seed = {p: b for p, b in new.items() if not p.startswith(("bravo/", "delta/"))}
    seed |= {p: b for p, b in old.items() if p.startswith(("bravo/", "delta/"))}
    rig.seed(seed)
    broken = rig.root / "repo-broken"
    write_tree(
        {**new, "bravo/index.ts": b"throw new Error('boom')\n" + new["bravo/index.ts"]},
        broken / "supabase" / "functions",
        clean=True,
    )
    slow_restart = "restart_command: 'sleep 8; docker compose restart functions --no-deps'"
    config_a = broken / "edgesync.yaml"
    config_a.write_text(
        rig.config_yaml(rig.sb.port, rig.sb.known_hosts, extra=slow_restart).replace(
            "functions_dir: supabase/functions", f"functions_dir: {broken}/supabase/functions"
        )
    )
    a = rig.spawn("push", "bravo", "--yes", "--no-logs", config=config_a)
    time.sleep(1.0)
    b = rig.edgesync("push", "delta", "--yes", "--no-logs", "--lock-wait", "60")
    ra = a.wait()
    rig.quiesce(60)
    managed, _ = judge.split(rig.state().files)
    delta_new = {p: h for p, h in w.hashes("new").items() if p.startswith("delta/")}
    delta_now = {p: h for p, h in managed.items() if p.startswith("delta/")}
    if b.code == 0 and delta_now != delta_new:
        return [
            f"B (push delta) exited 0 but delta/ is no longer new: A (push bravo) exited "
            f"{ra.code}: {ra.last_line()}"
        ]
    return []


def cut_during_restart_after_commit(rig: Rig) -> list[str]:
    """Cut the connection while the service restarts after `push bravo` committed. The push
    cannot confirm the restart, but it must say that the release is deployed and recorded
    (not a bare "connection lost"), and the server must be the new version."""
    w = rig.workload
    rig.seed(w.old)
    flag = rig.root / "restart-started"
    flag.unlink(missing_ok=True)
    restart = f"restart_command: 'touch {flag}; sleep 4; docker compose restart functions'"
    with Proxy(rig.sb.host, rig.sb.port) as proxy:
        config = rig.proxy_config(proxy.address[1])
        config.write_text(config.read_text() + f"    {restart}\n")
        spawned = rig.spawn("push", "bravo", "--yes", "--no-logs", config=config)
        _wait("the restart started", flag.exists)
        proxy.cut()
        run = spawned.wait()
    rig.drop_proxy_config(proxy.address[1])
    rig.quiesce(60)
    problems = _judge(rig, run, w.hashes("old"), push_one(w.hashes("old"), w, "bravo"))
    managed, _ = judge.split(rig.state().files)
    if managed != push_one(w.hashes("old"), w, "bravo"):
        problems.append("the release committed before the cut is not what the server holds")
    if run.code == 0 or "deployed and recorded" not in run.text():
        problems.append(
            f"exit {run.code} without saying the release is deployed: {run.last_line()}"
        )
    return problems


SCENARIOS: dict[str, Scenario] = {
    "apply-killed-mid-swap": apply_killed_mid_swap,
    "apply-killed-while-its-commit-runs": apply_killed_while_its_commit_runs,
    "session-group-killed-mid-swap": session_group_killed_mid_swap,
    "session-killed-alone-mid-swap": session_killed_alone_mid_swap,
    "undo-killed-between-rm-and-mv": undo_killed_between_rm_and_mv,
    "disk-full-before-push-keeps-lock": disk_full_before_push_keeps_lock,
    "disk-full-during-backup-truncates": disk_full_during_backup_truncates,
    "push-one-beside-undeployed-function": push_one_beside_undeployed_function,
    "rollback-of-release-that-added-a-function": rollback_of_release_that_added_a_function,
    "auto-rollback-reverts-a-later-release": auto_rollback_reverts_a_later_release,
    "cut-during-restart-after-commit": cut_during_restart_after_commit,
}


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    failed = 0
    found: dict[str, list[str]] = {}
    with Rig(Path(tempfile.mkdtemp(prefix="edgesync-repro-")), SMALL) as rig:
        for name in names:
            try:
                found[name] = SCENARIOS[name](rig)
            except CannotMount as e:
                print(f"skip {name}: {e}")
    for name, problems in found.items():
        print(f"{'FAIL' if problems else 'ok  '} {name}")
        for p in problems:
            print(f"     - {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
