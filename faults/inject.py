"""Running one edgesync command with a fault: a client kill, a cut connection, a server kill.

Every faulted run goes through `tools/netproxy.py` (a little latency and a bandwidth cap, so
the upload takes a while) with the server's `mv` slowed down, so the push's phases all last
long enough for a kill to land in them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from faults import procs
from faults.rig import Rig, Run
from tools.netproxy import Direction, Proxy

SLOW_MV_SECONDS = 0.02
PROXY_DELAY_MS = 2.0
PROXY_BANDWIDTH = 4_000_000  # bytes per second, each way
POLL = 0.01  # while a kill is pending, or calibrating
IDLE_POLL = 0.05


@dataclass
class Windows:
    """When each server role was first and last seen, relative to the start of the run."""

    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)

    def lifetime(self, role: str) -> float | None:
        watch = "session" if role == "group" else role
        if watch not in self.first:
            return None
        return max(0.01, self.last[watch] - self.first[watch])


class Monitor(threading.Thread):
    """Watches the server's processes of a push; optionally SIGKILLs one of them.

    `role` is session / tar / apply / undo, or group (the session's whole process group); the
    kill happens `delay` seconds after that process was first seen.
    """

    def __init__(
        self, rig: Rig, started: float, role: str | None = None, delay: float = 0.0
    ) -> None:
        super().__init__(daemon=True, name="faults-monitor")
        self.rig = rig
        self.started = started
        self.role = role
        self.delay = delay
        self.calibrating = role is None
        self.windows = Windows()
        self.result = ""  # what happened to the kill
        self.landed = False
        self._halt = threading.Event()
        self._pids: dict[str, int] = {}

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        marker = self.rig.marker
        while not self._halt.is_set():
            now = time.monotonic() - self.started
            roles = procs.by_role(procs.scan(marker))
            for role, proc in roles.items():
                self.windows.first.setdefault(role, now)
                self.windows.last[role] = now
                self._pids.setdefault(role, proc.pid)
            pending = self.role is not None and not self.result
            if pending:
                self._maybe_kill(roles, now)
            self._halt.wait(POLL if pending or self.calibrating else IDLE_POLL)

    def _maybe_kill(self, roles: dict[str, procs.Proc], now: float) -> None:
        assert self.role is not None
        watch = "session" if self.role == "group" else self.role
        first = self.windows.first.get(watch)
        if first is None or now < first + self.delay:
            return
        proc = roles.get(watch)
        if proc is None or proc.pid != self._pids.get(watch):
            self.result = f"missed: {watch} ended before +{self.delay:.3f}s"
            return
        if self.role == "group":
            if proc.pgid != proc.pid:
                self.result = f"missed: the session {proc.pid} leads no process group"
                return
            procs.kill(proc.pgid, group=True)
        else:
            procs.kill(proc.pid)
        self.landed = True
        self.result = (
            f"SIGKILL {'process group of ' if self.role == 'group' else ''}{watch} "
            f"(pid {proc.pid}) {now - first:.3f}s after it started, {self.phase()}"
        )

    def phase(self) -> str:
        state = self.rig.sb.project_dir / ".edgesync"
        if (state / "journal").is_file():
            return "during the swap (journal present)"
        staged = list((state / "staging").glob("*/apply.sh"))
        return "after the upload" if staged else "before the swap"


@dataclass(frozen=True)
class Faulted:
    """The faulted run and what the fault did."""

    run: Run
    fault: str
    landed: bool
    holder_killed: bool  # the server process holding the lock was killed
    windows: Windows
    bytes_c2s: int = 0
    bytes_s2c: int = 0


def _proxy(rig: Rig, **faults: object) -> Proxy:
    return Proxy(
        rig.sb.host,
        rig.sb.port,
        delay_ms=PROXY_DELAY_MS,
        bandwidth_bytes_per_s=PROXY_BANDWIDTH,
        faulty_connections=1,
        **faults,  # type: ignore[arg-type]
    ).start()


def run_faulted(
    rig: Rig,
    args: tuple[str, ...],
    *,
    kind: str,
    value: float = 0.0,
    project_dir: Path | None = None,
) -> Faulted:
    """Run `edgesync ARGS` with one fault (`kind`; `value`: seconds or bytes).

    kind: clean, client-kill, cut-c2s, cut-s2c, server-<role>.
    """
    faults: dict[str, object] = {}
    if kind.startswith("cut-"):
        direction: Direction = "c2s" if kind == "cut-c2s" else "s2c"
        faults = {"cut_after_bytes": int(value), "cut_direction": direction}
    proxy = _proxy(rig, **faults)
    try:
        config = rig.proxy_config(proxy.port, project_dir)
        rig.slow_mv(SLOW_MV_SECONDS)
        role = kind.removeprefix("server-") if kind.startswith("server-") else None
        started = time.monotonic()
        monitor = Monitor(rig, started, role, value if role else 0.0)
        monitor.start()
        spawned = rig.spawn(*args, config=config)
        fault, landed = "", True
        if kind == "client-kill":
            deadline = spawned.started + value
            while spawned.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            if spawned.process.poll() is None:
                run = spawned.kill()
                fault = f"SIGKILL the client {value:.3f}s after it started"
            else:
                run = spawned.wait()
                fault, landed = f"missed: the client ended before {value:.3f}s", False
        else:
            run = spawned.wait()
        monitor.stop()
        stats = proxy.stats
        if kind.startswith("cut-"):
            landed = stats.cuts > 0
            fault = f"cut the connection after {int(value)} bytes {kind[4:]}" + (
                "" if landed else " (missed: fewer bytes went that way)"
            )
        if role is not None:
            fault, landed = monitor.result or f"missed: no {role} process seen", monitor.landed
        holder_killed = landed and role in ("session", "group")
        return Faulted(
            run,
            fault or "none",
            landed,
            holder_killed,
            monitor.windows,
            stats.bytes_c2s,
            stats.bytes_s2c,
        )
    finally:
        proxy.close()
        rig.drop_proxy_config(proxy.port)
