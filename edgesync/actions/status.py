"""`status`: request the functions on the server now: up, boot error or no answer."""

from __future__ import annotations

from collections.abc import Sequence

from edgesync.actions.verify import probes_for, request
from edgesync.context import Server, Workspace
from edgesync.errors import VerifyError
from edgesync.manifest import FUNCTION_NAME_RE, ROUTER
from edgesync.remote.snapshot import read_folders
from edgesync.results import StatusResult
from edgesync.ui import UI
from edgesync.verification import judge


def status(ws: Workspace, server: Server, ui: UI, names: Sequence[str] = ()) -> StatusResult:
    """One request per function (default: every function folder on the server)."""
    functions = list(names)
    if not functions:
        functions = sorted(
            n
            for n in read_folders(server.shell, server.target)
            if n != ROUTER and not n.startswith("_") and FUNCTION_NAME_RE.match(n)
        )
    probes, skipped = probes_for(ws.config, functions)
    ui.info(f"requesting {len(probes)} function(s) on {server.target.name} …")
    answers = {a.function: a for a in request(server, probes)} if probes else {}
    checks = tuple(judge(answers[p.function], p) for p in probes if p.function in answers)
    bad = [c.function for c in checks if not c.ok]
    error = None
    if bad:
        error = VerifyError(f"not answering as they should: {', '.join(bad)}")
    return StatusResult(server.target.name, checks, tuple(skipped), error=error)
