"""`restart`: restart the functions service, watch its logs (and, later, verify)."""

from __future__ import annotations

from edgesync.actions.common import restart_and_watch
from edgesync.context import Server
from edgesync.results import RestartResult
from edgesync.ui import UI


def restart(
    server: Server, ui: UI, *, watch_logs: bool = True, logs_seconds: float = 10.0
) -> RestartResult:
    """Restart the service the way a push does and show what it logs while it boots."""
    done = restart_and_watch(
        server, ui, release=None, functions=(), watch_logs=watch_logs, logs_seconds=logs_seconds
    )
    return RestartResult(server.target.name, done.restarted, done.command, error=done.error)
