"""`check`: the pre-flight alone, for CI before merge: can each function be deployed and load?"""

from __future__ import annotations

from collections.abc import Sequence

from edgesync.actions.common import local_tree
from edgesync.context import Workspace
from edgesync.errors import UndeployableError, UsageError
from edgesync.local import deps
from edgesync.local.preflight import deno_binary, preflight
from edgesync.manifest import ROUTER
from edgesync.results import CheckResult, FunctionCheck
from edgesync.ui import UI


def check(ws: Workspace, ui: UI, names: Sequence[str] = (), *, remote: bool = False) -> CheckResult:
    """Resolve each function like Deno and load it with the local Deno (when installed).

    Needs no server. The result carries an exit-9 error when any function fails.
    """
    tree = local_tree(ws, ui)
    for name in names:
        if name not in tree.functions:
            raise UsageError(f"'{name}' is not a local function (in {tree.root})")
    functions = list(names) or [f for f in tree.functions if f != ROUTER]
    for note in deps.notes(tree, functions):
        ui.info(note)
    stuck = deps.blocked(tree, functions)
    problems = {n: [line for line in b.describe().splitlines()] for n, b in stuck.items()}
    deno = deno_binary()
    skipped = None
    if deno is None:
        skipped = "Deno is not installed here (pip install deno, or put deno on PATH)"
    else:
        loadable = [n for n in functions if n not in stuck]
        if loadable:
            ui.info(f"loading {len(loadable)} function(s) with {deno} …")
        for p in preflight(tree, loadable, deno=deno, remote=remote):
            problems.setdefault(p.function, []).append(p.describe())
    checks = tuple(FunctionCheck(n, tuple(problems.get(n, ()))) for n in functions)
    bad = [c.name for c in checks if c.problems]
    error = None
    if bad:
        error = UndeployableError(
            f"{', '.join(bad)} cannot be deployed as it is",
            hint="fix the imports and modules named above",
        )
    return CheckResult(checks, skipped, error=error)
