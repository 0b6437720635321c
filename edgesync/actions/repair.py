"""`repair`: put edgesync's state on the server back in order, under the lock."""

from __future__ import annotations

from edgesync.actions.common import Again, locked_session
from edgesync.context import Server, Workspace
from edgesync.errors import Declined, UsageError
from edgesync.remote.release import ReleaseSession
from edgesync.remote.snapshot import ServerSnapshot
from edgesync.results import RepairResult
from edgesync.ui import UI


def repair(ws: Workspace, server: Server, ui: UI, *, yes: bool = False) -> RepairResult:
    """Undo an interrupted release and drop unreadable history lines (keeping a backup).

    Taking the lock is what repairs an interrupted release; the history is
    rewritten without the lines no command can read, after confirmation.
    """
    target = server.target
    confirmed = False

    def work(session: ReleaseSession, snapshot: ServerSnapshot) -> RepairResult:
        nonlocal confirmed
        history = snapshot.history
        if not history.skipped:
            session.cancel()
            return RepairResult(target.name, (), None, snapshot.recovered, snapshot.completed)
        if not yes and not confirmed:
            session.cancel()  # never hold the lock while a person decides
            for line in history.skipped:
                ui.warn(f"unreadable: {line}")
            if not ui.interactive:
                raise UsageError(
                    f"repair would remove {len(history.skipped)} unreadable line(s) "
                    "from the history",
                    hint="pass --yes to confirm (the old file is kept as a backup)",
                )
            if not ui.confirm(f"Remove them from the history on {target.name}?"):
                raise Declined("the history was left as it is")
            confirmed = True
            raise Again
        session.repair_history(history.lines)
        backup = f"{target.state_dir}/history.jsonl.bak-{session.rid}"
        return RepairResult(
            target.name, history.skipped, backup, snapshot.recovered, snapshot.completed
        )

    return locked_session(ws, server, ui, lock_wait=0.0, work=work, full_history=True)
