"""`restart`: restart the functions service, watch its logs (and, later, verify)."""

from __future__ import annotations

from edgesync.actions.common import restart_and_watch
from edgesync.context import Server, Workspace
from edgesync.errors import EdgesyncError, VerifyError
from edgesync.manifest import ROUTER
from edgesync.remote.snapshot import read_folders
from edgesync.results import RestartResult
from edgesync.ui import UI


def restart(
    ws: Workspace,
    server: Server,
    ui: UI,
    *,
    watch_logs: bool = True,
    logs_seconds: float = 10.0,
    verify: bool = True,
    recreate: bool = False,
) -> RestartResult:
    """Restart the service the way a push does, request the local functions deployed on the
    server (verify; one never pushed is not there to answer), and show what the service
    logs while they boot."""
    functions: list[str] = []
    if verify:
        on_server = read_folders(server.shell, server.target)
        functions = [f for f in ws.tree.functions if f != ROUTER and f in on_server]
    done = restart_and_watch(
        server,
        ui,
        release=None,
        functions=functions,
        watch_logs=watch_logs,
        logs_seconds=logs_seconds,
        verify_with=ws.config if verify else None,
        recreate=recreate,
    )
    checks = done.verification.checks if done.verification else ()
    error: EdgesyncError | None = done.error
    if done.verification is not None and not done.verification.ok:
        bad = ", ".join(c.function for c in done.verification.failed)
        error = VerifyError(f"after the restart, not booting: {bad}", hint="see `edgesync logs`")
    return RestartResult(server.target.name, done.restarted, done.command, checks, error=error)
