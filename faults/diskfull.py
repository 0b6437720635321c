"""Disk full: a small tmpfs as the server's project folder, filled at points of a push.

The tmpfs is mounted below the rig's root (root is needed; where mounting is not permitted
the cases are skipped with the reason). A second edgesync config targets it on the same
sandbox server. A filler file takes all free space but `leave` bytes at one point:

    before/L    before the push starts
    upload/L    when the server's `tar -x` starts (upload+S: S seconds later)
    swap/L      when the journal appears (the swap begins)
    history/L   when the server copies or appends the history's new line (the commit point;
                the server's `cp`/`cat` of those files sleep first so the fill lands before)
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from faults import judge, procs
from faults.model import Case, Outcome
from faults.rig import marker_of
from faults.suite import QUIESCE_SECONDS, Suite

TMPFS_SIZE = "48m"
HISTORY_SLEEP = 0.4
FULL_SLACK = 64 << 10  # a fill counts as landed when at most leave + this stayed free


class DiskFull:
    """The tmpfs project and its cases."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.rig = suite.rig
        self.mount = self.rig.root / "tmpfs-project"
        self.config: Path | None = None
        self.mounted = False
        self.line_bytes = 0  # a push's history line
        self.history_bytes = 0  # history.jsonl of the released image

    def setup(self) -> str | None:
        """Mount and seed; the reason when disk-full cases cannot run here, else None."""
        self.mount.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return "not root: cannot mount a tmpfs"
        p = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(self.mount)],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            return f"mounting a tmpfs is not permitted here: {p.stderr.strip() or p.returncode}"
        self.mounted = True
        rig = self.rig
        self.config = rig.direct_config(self.mount)
        rig.seed(rig.workload.old, self.mount)
        rig.save_image("tmpfs-old", self.mount)
        # the sandbox's functions service serves the main project, not this one: no requests
        r = rig.edgesync("push", "--yes", "--no-logs", "--no-verify", config=self.config)
        history = self.mount / ".edgesync" / "history.jsonl"
        if r.code != 0 or not history.is_file():
            return f"a clean push to the tmpfs failed (exit {r.code}): {r.last_line()}"
        self.line_bytes = self.history_bytes = history.stat().st_size
        rig.save_image("tmpfs-released", self.mount)
        self.suite.base_ids["tmpfs-released"] = rig.state(self.mount).history_ids
        self.suite.base_ids["tmpfs-old"] = ()
        return None

    def teardown(self) -> None:
        if self.mounted:
            self.rig.quiesce(10)
            p = subprocess.run(["umount", str(self.mount)], capture_output=True)
            if p.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mount)], capture_output=True)
            self.mounted = False

    def cases(self, start: int) -> list[Case]:
        line, hist = self.line_bytes, self.history_bytes
        points = [
            ("all", "before/0"),
            ("all", "before/65536"),
            ("all", "upload/0"),
            ("all", "upload+0.3/0"),
            ("all", "swap/0"),
            ("all", "history/0"),
            ("all", "history/4096"),
            ("all", f"history/{line // 2}"),
            ("all", f"history/{max(0, line - 512)}"),
            ("rollback", "history/0"),
            ("rollback", f"history/{hist // 2}"),
            ("rollback", f"history/{hist + line // 2}"),
        ]
        return [Case(i, "disk-full", s, p) for i, (s, p) in enumerate(points, start)]

    def run(self, case: Case) -> Outcome:
        rig, suite = self.rig, self.suite
        assert self.config is not None
        out = Outcome(case)
        started = time.monotonic()
        sc = suite.scopes[case.scope]
        image = "tmpfs-old" if case.scope == "all" else "tmpfs-released"
        rig.restore(image, self.mount)
        trigger, leave_text = case.point.split("/")
        leave = int(leave_text)
        filler = self.mount / "filler.bin"
        if trigger == "history":
            rig.slow_history(HISTORY_SLEEP)
        fill = _Filler(filler, leave)
        if trigger == "before":
            fill.now("before the push")
        watcher = _Trigger(self.mount, trigger, fill)
        watcher.start()
        run = rig.edgesync(*sc.args, "--no-verify", config=self.config)
        watcher.stop()
        leftovers = rig.quiesce(QUIESCE_SECONDS)
        rig.slow_mv(None)
        filler.unlink(missing_ok=True)
        out.fault = fill.said or f"missed: {trigger} never came"
        out.landed = fill.full
        out.exit_codes = (run.code,)
        out.summary = run.last_line()
        if leftovers:
            out.violations.append("server processes still ran: " + "; ".join(leftovers[:3]))
        st = rig.state(self.mount)
        verdict = judge.at_rest(sc, st, suite.base_ids.get(image, ()), run, lock_expected=False)
        out.at_rest = verdict.shape.whole
        out.violations += verdict.violations
        out.false_success, out.false_failure = verdict.false_success, verdict.false_failure
        if verdict.half_pending or st.journal is not None:
            out.repaired = True
            out.notes.append(f"at rest: {verdict.shape.whole}, journal {st.journal}")
        suite.clear_lock(st, out, self.config)
        suite.converge(sc, out, self.config, ("--no-verify",))
        out.seconds = time.monotonic() - started
        out.decide()
        return out


class _Filler:
    """Takes all free space of a filesystem but `leave` bytes, once."""

    def __init__(self, path: Path, leave: int) -> None:
        self.path = path
        self.leave = leave
        self.said = ""
        self.full = False  # the filesystem really was that full afterwards

    def now(self, when: str) -> None:
        if self.said:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            take_space(fd, self.path.parent, self.leave)
        finally:
            os.close(fd)
        free = _free(self.path.parent)
        self.full = free <= self.leave + FULL_SLACK
        self.said = f"filled the disk {when}, leaving {self.leave} B ({free} B free after)"


def _free(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def take_space(fd: int, folder: Path, leave: int) -> None:
    """Grow the file `fd` until `folder`'s filesystem has at most `leave` bytes free.

    In chunks: the push keeps writing and deleting meanwhile, so one allocation of "all that
    is free" can fail as a whole."""
    offset = os.fstat(fd).st_size
    chunk = 8 << 20
    for _ in range(10_000):
        want = _free(folder) - leave
        if want <= 0:
            return
        size = min(chunk, want)
        try:
            os.posix_fallocate(fd, offset, size)
            offset += size
        except OSError:
            if chunk <= 4096:
                return
            chunk //= 2


class _Trigger(threading.Thread):
    """Fills the disk when the push reaches a point (see the module doc)."""

    def __init__(self, project: Path, trigger: str, fill: _Filler) -> None:
        super().__init__(daemon=True, name="faults-diskfull")
        self.project = project
        self.trigger = trigger
        self.fill = fill
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        marker = marker_of(self.project)
        name, _, delay_text = self.trigger.partition("+")
        delay = float(delay_text or 0)
        seen: float | None = None
        while not self._halt.is_set() and not self.fill.said:
            if seen is None and self._reached(name, marker):
                seen = time.monotonic()
            if seen is not None and time.monotonic() >= seen + delay:
                self.fill.now(f"at {self.trigger}")
            self._halt.wait(0.005)

    def _reached(self, name: str, marker: bytes) -> bool:
        if name == "swap":
            return (self.project / ".edgesync" / "journal").is_file()
        found = procs.scan(marker)
        if name == "upload":
            return any(p.role == "tar" for p in found)
        if name == "history":
            return any(
                a.endswith((b"/history.new", b"/history.json")) for p in found for a in p.argv
            )
        return False
