"""`history`: the releases recorded on the server, newest first."""

from __future__ import annotations

from edgesync.actions.common import server_snapshot
from edgesync.context import Server
from edgesync.results import HistoryResult
from edgesync.ui import UI


def history(server: Server, ui: UI, *, number: int = 20) -> HistoryResult:
    """The newest `number` releases."""
    snapshot = server_snapshot(server, ui, full_history=True)
    releases = tuple(reversed(snapshot.history.releases))[:number]
    return HistoryResult(server.target.name, releases)
