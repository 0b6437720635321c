"""Steps several actions share: reading the server with its warnings, restarting, watching."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from edgesync.context import Server, Workspace
from edgesync.errors import RemoteError
from edgesync.local.tree import LocalTree
from edgesync.loglines import BOOT_RE, LogLine, attribute
from edgesync.remote import compose
from edgesync.remote.snapshot import ServerSnapshot, read_snapshot
from edgesync.ui import UI


def local_tree(ws: Workspace, ui: UI) -> LocalTree:
    """The local tree, its warnings shown once."""
    tree = ws.tree
    for warning in tree.warnings:
        ui.warn(warning)
    return tree


def server_snapshot(server: Server, ui: UI) -> ServerSnapshot:
    """The server's files, history and kept backups (one command); unreadable records warned."""
    snapshot = read_snapshot(server.shell, server.target)
    for skipped in snapshot.history.skipped:
        ui.warn(f"skipped an unreadable release record: {skipped}")
    return snapshot


@dataclass(frozen=True)
class Restarted:
    """How a restart after a release went."""

    restarted: bool
    command: str | None = None
    error: RemoteError | None = None


def restart_and_watch(
    server: Server,
    ui: UI,
    *,
    release: str,
    functions: Sequence[str],
    watch_logs: bool,
    logs_seconds: float,
) -> Restarted:
    """Restart the service after a release and show its functions' log lines.

    A failed restart is returned, not raised: the release is recorded and the
    caller shows it before the error.
    """
    try:
        since, command = compose.restart(server.shell, server.target)
    except RemoteError as e:
        return Restarted(
            restarted=False,
            error=RemoteError(
                e.message + f" — the files are deployed and release {release} is recorded",
                hint=e.hint or "fix the service, then restart it (or push again)",
            ),
        )
    ui.info(f"restarted: {command}")
    if watch_logs and logs_seconds > 0:
        ui.info(
            f"logs of {', '.join(functions) or 'the service'} "
            f"for {logs_seconds:g}s (Ctrl-C to stop):"
        )
        try:
            for line in pushed_logs(server, functions, since, logs_seconds):
                ui.log_line(line)
        except KeyboardInterrupt:
            pass
    return Restarted(restarted=True, command=command)


def pushed_logs(
    server: Server, functions: Sequence[str], since: str, seconds: float
) -> Iterator[LogLine]:
    """The pushed functions' log lines (and any worker boot error) for a few seconds."""
    raw = compose.stream_logs(
        server.shell,
        server.target,
        tail=None,
        since=since or None,
        follow=True,
        seconds=seconds,
    )
    wanted = set(functions)
    for line in attribute(raw):
        if line.function in wanted or line.is_boot_error or BOOT_RE.search(line.text):
            yield line
