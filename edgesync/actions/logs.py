"""`logs`: the functions service's log lines, attributed and filtered here."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from edgesync.context import Server, Workspace
from edgesync.errors import UsageError
from edgesync.loglines import LogLine, attribute, select
from edgesync.manifest import ROUTER
from edgesync.remote.compose import stream_logs
from edgesync.remote.snapshot import read_folders

_SINCE_RE = re.compile(r"\d+[smhd]|\d{4}-\d\d-\d\d[T0-9:.Z+-]*")


@dataclass(frozen=True)
class LogQuery:
    """What to show: validated before anything connects."""

    function: str | None
    grep: re.Pattern[str] | None
    follow: bool
    tail: int
    since: str | None


def query(
    function: str | None = None,
    *,
    grep: str | None = None,
    follow: bool = False,
    tail: int = 100,
    since: str | None = None,
) -> LogQuery:
    """Validate the options (exit 2 for a bad regular expression or --since)."""
    pattern = None
    if grep is not None:
        try:
            pattern = re.compile(grep, re.IGNORECASE)
        except re.error as e:
            raise UsageError(f"--grep {grep!r} is not a valid regular expression: {e}") from None
    if since is not None and not _SINCE_RE.fullmatch(since):
        raise UsageError(f"--since {since!r}: use e.g. 30s, 10m, 2h, 1d or 2026-11-23T14:00:00Z")
    return LogQuery(function, pattern, follow, tail, since)


def check_function(ws: Workspace, server: Server, name: str) -> None:
    """Refuse a function that is neither local nor on the server (exit 2, closest names)."""
    local_dir = ws.config.functions_dir
    local = {p.name for p in local_dir.iterdir() if p.is_dir()} if local_dir.is_dir() else set()
    if name in local:
        return
    remote = read_folders(server.shell, server.target)
    if name in remote:
        return
    known = sorted((local | remote) - {ROUTER})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    raise UsageError(
        f"no function named '{name}' locally or on the server",
        hint=f"did you mean {', '.join(close)}?" if close else "see `edgesync ls`",
    )


def logs(server: Server, q: LogQuery) -> Iterator[LogLine]:
    """The matching lines, as they arrive (forever with `follow`, until closed)."""
    raw = stream_logs(server.shell, server.target, tail=q.tail, since=q.since, follow=q.follow)
    yield from select(attribute(raw), [q.function] if q.function else (), q.grep)
