"""Does each function boot? Request it (from the server through Kong, or at the target's
`url`), wait a bounded time for the service to come back, and read its boot errors."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from edgesync.config import Config
from edgesync.context import Server
from edgesync.loglines import BOOT_ERROR_RE, BOOT_RE, LogLine, attribute
from edgesync.remote import compose
from edgesync.remote.probe import (
    PREFLIGHT_HEADERS,
    Answer,
    Probe,
    probe_from_server,
    probe_over_http,
)
from edgesync.ui import UI
from edgesync.verification import Check, Outcome, judge

REQUEST_SECONDS = 15.0  # one request's limit (a cold worker may take a few seconds to boot)


@dataclass(frozen=True)
class Verification:
    """Every requested function's check, and those `verify: false` left out."""

    checks: tuple[Check, ...] = ()
    skipped: tuple[str, ...] = ()
    logs: tuple[LogLine, ...] = ()  # the service's lines since the restart, for those functions

    @property
    def ok(self) -> bool:
        """True when every requested function booted."""
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that did not pass."""
        return tuple(c for c in self.checks if not c.ok)


def probes_for(config: Config, functions: Sequence[str]) -> tuple[list[Probe], list[str]]:
    """The requests for `functions` (edgesync.yaml `verify:`), and the ones turned off."""
    probes, skipped = [], []
    for name in functions:
        setting = config.verify_setting(name)
        if not setting.enabled:
            skipped.append(name)
            continue
        headers = dict(setting.headers)
        if setting.method == "OPTIONS":
            headers = {**PREFLIGHT_HEADERS, **headers}
        probes.append(Probe(name, setting.method, setting.path, headers, setting.status))
    return probes, skipped


def request(server: Server, probes: Sequence[Probe]) -> list[Answer]:
    """One round of requests: to the target's `url` when set, else from the server."""
    if server.target.url:
        return probe_over_http(server.target.url, probes, timeout=REQUEST_SECONDS)
    return probe_from_server(server.shell, server.target, probes, timeout=REQUEST_SECONDS)


def verify(
    config: Config,
    server: Server,
    ui: UI,
    functions: Sequence[str],
    *,
    wait: float,
    since: str | None = None,
) -> Verification:
    """Request every function until it answers or `wait` seconds passed.

    A function answering anything but a boot failure is up; one that does not
    boot is failed at once; no answer at all (the service still restarting)
    is asked again until the time is up. With `since` (the server's time of the
    restart), the service's lines for these functions are read afterwards.
    """
    probes, skipped = probes_for(config, functions)
    if not probes:
        return Verification((), tuple(skipped))
    ui.info(f"requesting {', '.join(p.function for p in probes)} …")
    pending = {p.function: p for p in probes}
    done: dict[str, Check] = {}
    deadline = time.monotonic() + wait
    while pending:
        for answer in request(server, list(pending.values())):
            probe = pending.get(answer.function)
            if probe is None:
                continue
            check = judge(answer, probe)
            if check.outcome is Outcome.NO_ANSWER and time.monotonic() < deadline:
                continue
            done[probe.function] = check
            del pending[probe.function]
        if pending:
            time.sleep(1.0)
    checks = tuple(done[p.function] for p in probes)
    logs: tuple[LogLine, ...] = ()
    if since is not None:
        logs = tuple(_lines(server, [p.function for p in probes], since))
        checks = tuple(_with_boot_error(c, logs) for c in checks)
    return Verification(checks, tuple(skipped), logs)


def _lines(server: Server, functions: Sequence[str], since: str) -> list[LogLine]:
    raw = compose.stream_logs(server.shell, server.target, tail=None, since=since, follow=False)
    wanted = set(functions)
    return [
        ln
        for ln in attribute(raw)
        if ln.function in wanted or ln.is_boot_error or BOOT_RE.search(ln.text)
    ]


def _with_boot_error(check: Check, logs: Sequence[LogLine]) -> Check:
    """A failed check explained by the service's own `worker boot error` line."""
    if check.ok:
        return check
    for line in logs:
        if line.function == check.function and BOOT_ERROR_RE.search(line.text):
            return replace(check, detail=line.text)
    return check
