"""Server processes of a push, found by their command line in /proc.

Every process of edgesync's server session names the state folder (`<project>/.edgesync`) in
its command line: the session shell (`sh -c <session.sh> sh <state> ...`), its `tar -x ... -C
<state>/staging/<id>`, `sh <state>/staging/<id>/apply.sh ...`, `sh <state>/releases/<id>/undo.sh
...`. Roles:

    session  the session shell (the process group leader; its forked subshells share its
             command line and are not it)
    tar      the upload's `tar -x`
    apply    `sh .../staging/<id>/apply.sh`
    undo     `sh .../releases/<id>/undo.sh`
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROLES = ("session", "tar", "apply", "undo")
SESSION_MARK = b"EDGESYNC-SNAPSHOT-END"


@dataclass(frozen=True)
class Proc:
    """One process: pid, parent, process group and argv."""

    pid: int
    ppid: int
    pgid: int
    argv: tuple[bytes, ...]

    @property
    def role(self) -> str | None:
        """session / tar / apply / undo, or None (a helper such as cp or mv)."""
        a = self.argv
        if len(a) >= 3 and a[0].endswith(b"sh") and a[1] == b"-c" and SESSION_MARK in a[2]:
            return "session"
        if a and a[0].endswith(b"tar") and b"-x" in a:
            return "tar"
        if len(a) >= 2 and a[0].endswith(b"sh") and a[1].endswith(b"/apply.sh"):
            return "apply"
        if len(a) >= 2 and a[0].endswith(b"sh") and a[1].endswith(b"/undo.sh"):
            return "undo"
        return None

    def show(self) -> str:
        """A short, readable command line."""
        parts = []
        for arg in self.argv[:6]:
            text = arg.decode("utf-8", "replace")
            parts.append(text if len(text) <= 60 else text[:57].replace("\n", " ") + "...")
        return f"{self.pid} " + " ".join(parts)


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, pgid, state) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2]), fields[0]


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def scan(marker: bytes) -> list[Proc]:
    """Live (not zombie) processes whose command line contains `marker`."""
    found = []
    own = os.getpid()
    for pid in _pids():
        if pid == own:
            continue
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker not in raw:
            continue
        st = _stat(pid)
        if st is None or st[2] == "Z":
            continue
        found.append(Proc(pid, st[0], st[1], tuple(raw.rstrip(b"\0").split(b"\0"))))
    return found


def by_role(procs: Iterable[Proc]) -> dict[str, Proc]:
    """The first process of each role; the session is the one no other session forked."""
    procs = list(procs)
    out: dict[str, Proc] = {}
    sessions = [p for p in procs if p.role == "session"]
    pids = {p.pid for p in sessions}
    for p in sessions:
        if p.ppid not in pids:
            out["session"] = p
            break
    for p in procs:
        role = p.role
        if role is not None and role != "session" and role not in out:
            out[role] = p
    return out


def with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment holds name=value (a sandbox's SSH sessions)."""
    wanted = f"{name}={value}".encode()
    own = os.getpid()
    found = []
    for pid in _pids():
        if pid == own:
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if wanted in env.split(b"\0"):
            st = _stat(pid)
            if st is not None and st[2] != "Z":
                found.append(pid)
    return found


def describe(pids: Iterable[int]) -> list[str]:
    """Command lines of `pids`, for messages."""
    out = []
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        argv = raw.rstrip(b"\0").split(b"\0")
        out.append(Proc(pid, 0, 0, tuple(argv)).show())
    return out


def kill(pid: int, *, group: bool = False) -> bool:
    """SIGKILL a process (or its process group); False when it was already gone."""
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of `pids` lives; returns those still alive after `timeout`."""
    alive = list(pids)
    deadline = time.monotonic() + timeout
    while alive:
        alive = [p for p in alive if _live(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return alive


def _live(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] != "Z"


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL every pid (leftovers after a case), ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
