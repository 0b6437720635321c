"""The core of `rollback`: plan from the history, check, apply as a release of its own."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgesync.deploy import (
    Bundle,
    PushResult,
    apply_push,
    new_release_id,
    release_record,
    replaced_on_server,
    to_retire,
)
from edgesync.errors import DriftError
from edgesync.releases import RollbackPlan, drifted, rollback_plan
from edgesync.remote.files import RemoteState, remote_state
from edgesync.session import Session


@dataclass(frozen=True)
class PlannedRollback:
    """A rollback plan with the server state it was made from."""

    rollback: RollbackPlan
    state: RemoteState
    drift: tuple[str, ...]


def plan(session: Session, release: str | None) -> PlannedRollback:
    """What undoing `release` (default: the latest) and every later release changes."""
    state = remote_state(session.connection, session.target)
    rb = rollback_plan(state.history, state.kept_releases, state.manifest, release)
    remote = state.manifest
    touched = replaced_on_server(rb.plan, remote)  # a rollback replaces all of it
    drift = tuple(p for p in drifted(remote, state.history) if p in touched)
    return PlannedRollback(rb, state, drift)


def execute(session: Session, planned: PlannedRollback, force: bool = False) -> PushResult:
    """Apply the rollback as a new release (so it can be rolled back in turn)."""
    if planned.drift and not force:
        raise DriftError(
            "changed on the server outside edgesync: " + ", ".join(planned.drift[:5]),
            hint="rollback --force replaces them anyway (they are kept in the new release)",
        )
    started = time.monotonic()
    rb, remote = planned.rollback, planned.state.manifest
    rid = new_release_id()
    before = replaced_on_server(rb.plan, remote)
    record = release_record(
        rid,
        session.target,
        rb.plan,
        before,
        rb.expected,
        session.git,
        kind="rollback",
        extra={"rolled_back": list(rb.undone), "restores_before": rb.before_release},
    )
    retire = to_retire(
        planned.state.kept_releases,
        [str(r.get("id")) for r in planned.state.history],
        rid,
        session.target.keep_releases,
    )
    # The releases being undone keep their backups until retention removes them.
    bundle = Bundle(rid, rb.plan, record, rb.expected, retire)
    recovered, sent = apply_push(
        session.connection, session.target, bundle, session.local.root, session.git
    )
    return PushResult(
        target=session.target.name,
        release=rid,
        functions=tuple(
            sorted(
                {f.name for f in rb.plan.functions}
                | {d.path for d in rb.plan.deletes if d.is_function}
            )
        ),
        uploaded=tuple(f.name for f in rb.plan.functions) + tuple(p.path for p in rb.plan.puts),
        deleted=rb.plan.removed,
        bytes_sent=sent,
        recovered=recovered,
        seconds=time.monotonic() - started,
    )
