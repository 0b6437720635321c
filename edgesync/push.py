"""The core of `push`: plan, apply, restart, watch the logs. Returns values; prints nothing."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from edgesync.compare import all_dependencies
from edgesync.deploy import (
    Bundle,
    PushResult,
    StalePlan,
    apply_push,
    new_release_id,
    push_states,
    release_record,
    to_retire,
)
from edgesync.errors import DriftError, UsageError
from edgesync.logs import BOOT_RE, LogLine, attribute
from edgesync.manifest import ROUTER
from edgesync.plan import PushPlan, entry_names, plan_push
from edgesync.releases import drifted
from edgesync.remote import compose
from edgesync.remote.files import RemoteState, remote_state
from edgesync.session import Session
from edgesync.vcs import GitState, changed_since, dirty_paths


@dataclass(frozen=True)
class ChangedSelection:
    """What `--changed` chose: function names, or None to fall back to content."""

    names: tuple[str, ...] | None
    base: str | None  # the commit of the server's latest release
    note: str


def changed_functions(session: Session, state: RemoteState) -> ChangedSelection:
    """Functions whose files, or the files they import, changed in git since the
    commit of the server's latest release."""
    tree = session.local
    release = state.latest
    base = release.get("commit") if release else None
    if not base:
        why = "the server has no release yet" if release is None else "its release has no commit"
        return ChangedSelection(None, None, f"--changed: {why}; comparing content instead")
    changed = changed_since(tree.root, str(base))
    if changed.paths is None:
        return ChangedSelection(
            None, str(base), f"--changed: {changed.reason}; comparing content instead"
        )
    deps = all_dependencies(tree, tree.functions)
    chosen = []
    for fn in tree.functions:
        if fn == ROUTER:
            continue
        own = any(p.startswith(fn + "/") for p in changed.paths)
        if own or changed.paths & deps.get(fn, frozenset()):
            chosen.append(fn)
    note = (
        f"--changed since {str(base)[:8]}: {', '.join(chosen)}"
        if chosen
        else f"--changed: no function changed since {str(base)[:8]}"
    )
    return ChangedSelection(tuple(chosen), str(base), note)


def require_clean(session: Session) -> None:
    """Refuse to push uncommitted changes under the functions folder (exit 2)."""
    dirty = dirty_paths(session.local.root)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise UsageError(
            f"uncommitted changes under {session.local.root}: {shown}",
            hint="commit them, or pass --no-require-clean (the default in CI is to refuse)",
        )


def step_summary(result: PushResult, git: GitState, restarted: bool) -> str:
    """The Markdown appended to $GITHUB_STEP_SUMMARY."""
    if result.release is None:
        return f"### edgesync: `{result.target}` already in sync\n\nNothing was deployed.\n"
    lines = [
        f"### edgesync: deployed to `{result.target}`",
        "",
        f"- release: `{result.release}`",
        f"- commit: `{git.short}`",
        f"- functions: {', '.join(f'`{f}`' for f in result.functions) or 'none'}",
        f"- restarted: {'yes' if restarted else 'no'}",
        "",
        "| file | action |",
        "|---|---|",
    ]
    lines += [f"| `{p}` | upload |" for p in result.uploaded]
    lines += [f"| `{p}` | delete |" for p in result.deleted]
    return "\n".join(lines) + "\n"


def append_step_summary(path: str, text: str) -> None:
    """Append to the CI step summary file (GitHub Actions' GITHUB_STEP_SUMMARY)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def server_state(session: Session) -> RemoteState:
    """The server's files, release history and kept backups (one remote command)."""
    return remote_state(session.connection, session.target)


@dataclass(frozen=True)
class Planned:
    """A push plan with the server state it was made from."""

    plan: PushPlan
    state: RemoteState
    drift: tuple[str, ...]  # files changed on the server by hand that this push overwrites


def make_plan(
    session: Session, names: Sequence[str], prune: bool, state: RemoteState | None = None
) -> Planned:
    """Compare local and server and decide what the push changes."""
    tree = session.local
    state = state or remote_state(session.connection, session.target)
    remote = state.manifest
    known = set(tree.functions) | set(tree.shared) | set(tree.root_files)
    for name in names:
        if name in known:
            continue
        on_server = name in entry_names(tree.manifest, remote)
        close = difflib.get_close_matches(name, sorted(known - {ROUTER}), n=3, cutoff=0.5)
        problem = "exists only on the server" if on_server else "is not a local function"
        raise UsageError(
            f"'{name}' {problem} (in {tree.root})",
            hint=f"did you mean {', '.join(close)}?" if close else "see `edgesync ls`",
        )
    deps = all_dependencies(tree, list(names) if names else list(tree.functions))
    plan = plan_push(tree.manifest, remote, tree.functions, names, deps, prune)
    overwritten = {p for p in plan.uploads if p in remote.files} | set(plan.removed)
    overwritten |= {p for d in plan.deletes for p in remote.under(d.path)}
    drift = tuple(p for p in drifted(remote, state.history) if p in overwritten)
    return Planned(plan, state, drift)


def check_drift(planned: Planned, force: bool) -> None:
    """Refuse to overwrite files changed on the server outside edgesync (exit 8)."""
    if planned.drift and not force:
        shown = ", ".join(planned.drift[:5]) + (
            f" and {len(planned.drift) - 5} more" if len(planned.drift) > 5 else ""
        )
        raise DriftError(
            f"changed on the server outside edgesync: {shown}",
            hint="see them with `edgesync diff --patch`; push --force overwrites them "
            "(the server's version is kept in the release)",
        )


def build_bundle(session: Session, planned: Planned) -> Bundle:
    """The release a push sends: record, expected hashes, backups to retire."""
    rid = new_release_id()
    before, after = push_states(planned.plan, session.local.manifest, planned.state.manifest)
    record = release_record(rid, session.target, planned.plan, before, after, session.git)
    retire = to_retire(
        planned.state.kept_releases,
        [str(r.get("id")) for r in planned.state.history],
        rid,
        session.target.keep_releases,
    )
    return Bundle(rid, planned.plan, record, after, retire)


def execute(
    session: Session,
    planned: Planned,
    names: Sequence[str],
    prune: bool,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    on_replan: Callable[[PushPlan], None] | None = None,
) -> tuple[PushPlan, PushResult]:
    """Apply the plan; if the server changed meanwhile, plan again once and retry."""
    started = time.monotonic()
    tree = session.local
    check_drift(planned, force)
    bundle = build_bundle(session, planned)
    try:
        recovered, sent = apply_push(
            session.connection, session.target, bundle, tree.root, session.git, progress
        )
    except StalePlan as stale:
        planned = make_plan(session, names, prune)
        if on_replan:
            on_replan(planned.plan)
        if planned.plan.empty:
            return planned.plan, _result(session, planned.plan, None, stale.recovered, 0, started)
        check_drift(planned, force)
        bundle = build_bundle(session, planned)
        recovered, sent = apply_push(
            session.connection, session.target, bundle, tree.root, session.git, progress
        )
        recovered = recovered or stale.recovered
    return planned.plan, _result(session, planned.plan, bundle.rid, recovered, sent, started)


def _result(
    session: Session,
    plan: PushPlan,
    rid: str | None,
    recovered: str | None,
    sent: int,
    started: float,
) -> PushResult:
    return PushResult(
        target=session.target.name,
        release=rid,
        functions=tuple(f.name for f in plan.functions),
        uploaded=plan.uploads,
        deleted=plan.removed,
        bytes_sent=sent,
        recovered=recovered,
        seconds=time.monotonic() - started,
    )


def restart(session: Session) -> tuple[str, str]:
    """Restart the functions service; returns (server time before, command)."""
    return compose.restart(session.connection, session.target)


def watch_logs(
    session: Session, functions: Sequence[str], since: str, seconds: float
) -> Iterator[LogLine]:
    """The pushed functions' log lines (and any worker boot error) for a few seconds."""
    raw = compose.stream_logs(
        session.connection,
        session.target,
        tail=None,
        since=since or None,
        follow=True,
        seconds=seconds,
    )
    wanted = set(functions)
    for line in attribute(raw):
        if line.function in wanted or line.is_boot_error or BOOT_RE.search(line.text):
            yield line
