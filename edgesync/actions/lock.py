"""`lock status` and `lock release`: the server's deploy lock."""

from __future__ import annotations

from edgesync.context import Server
from edgesync.errors import Declined, UsageError
from edgesync.remote.lock import LockStatus, read_lock, release_lock
from edgesync.results import LockResult
from edgesync.ui import UI


def _result(server: Server, st: LockStatus, *, released: bool = False) -> LockResult:
    return LockResult(server.target.name, st, released)


def status(server: Server) -> LockResult:
    """Who holds the deploy lock, since when, and whether that deploy still runs."""
    return _result(server, read_lock(server.shell, server.target))


def release(server: Server, ui: UI, *, yes: bool = False, force: bool = False) -> LockResult:
    """Clear a stale lock; refuse while its deploy still runs unless `force`."""
    st = read_lock(server.shell, server.target)
    if not st.held:
        return _result(server, st)
    ui.show(_result(server, st))
    if st.server_process == "running" and not force:
        raise UsageError(
            "that deploy is still running on the server: releasing its lock could let two "
            "deploys mix",
            hint="wait for it, or pass --force if you are sure",
        )
    if not yes:
        if not ui.interactive:
            raise UsageError("releasing the lock needs confirmation", hint="pass --yes")
        if not ui.confirm("Release this lock?"):
            raise Declined("the lock was left in place")
    release_lock(server.shell, server.target)
    return _result(server, st, released=True)
