"""`push`: plan, confirm, apply under the lock, restart, watch the logs; returns a PushResult."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from edgesync.actions.common import (
    Again,
    jwt_warnings,
    local_tree,
    locked_session,
    restart_and_watch,
    send_release,
    server_snapshot,
    server_view,
)
from edgesync.actions.rollback import Superseded
from edgesync.actions.rollback import rollback as roll_back
from edgesync.context import Server, Workspace
from edgesync.errors import Declined, UndeployableError, UsageError, VerifyError
from edgesync.history import (
    VERIFY_FAILED,
    build_bundle,
    drifted,
    installed_by_push,
    refuse_drift,
    refuse_links,
    upload_modes,
)
from edgesync.local import deps
from edgesync.local.deps import Blocked
from edgesync.local.preflight import LoadProblem, deno_binary, preflight
from edgesync.local.tree import LocalTree
from edgesync.manifest import ROUTER, Manifest, top_of
from edgesync.plan import PushPlan, entry_names, plan_push, through_links
from edgesync.remote.release import ReleaseSession
from edgesync.remote.snapshot import ServerSnapshot
from edgesync.results import PlanPreview, PushResult
from edgesync.text import plural
from edgesync.ui import UI
from edgesync.vcs import changed_since, dirty_paths

BROAD_PUSH = 5  # on a terminal, a push changing more functions than this is confirmed

DRIFT_HINT = (
    "see them with `edgesync diff --patch`; push --force overwrites them "
    "(the server's version is kept in the release)"
)


@dataclass(frozen=True)
class ChangedSelection:
    """What `--changed` chose: function names, or None to fall back to content."""

    names: tuple[str, ...] | None
    base: str | None  # the commit of the server's latest release
    note: str


def changed_functions(tree: LocalTree, snapshot: ServerSnapshot) -> ChangedSelection:
    """Functions whose files, or the files they import, changed in git since the
    commit of the server's latest release."""
    release = snapshot.history.latest
    base = release.commit if release else None
    if not base:
        why = "the server has no release yet" if release is None else "its release has no commit"
        return ChangedSelection(None, None, f"--changed: {why}; comparing content instead")
    if release is not None and release.dirty:
        return ChangedSelection(
            None,
            base,
            f"--changed: the server's latest release ({release.id}) came from uncommitted "
            "changes; comparing content instead",
        )
    changed = changed_since(tree.root, base)
    if changed.paths is None:
        return ChangedSelection(
            None, base, f"--changed: {changed.reason}; comparing content instead"
        )
    chosen = list(deps.affected(tree, changed.paths))
    note = (
        f"--changed since {base[:8]}: {', '.join(chosen)}"
        if chosen
        else f"--changed: no function changed since {base[:8]}"
    )
    return ChangedSelection(tuple(chosen), base, note)


def require_clean_tree(tree: LocalTree) -> None:
    """Refuse to push uncommitted changes under the functions folder (exit 2)."""
    dirty = dirty_paths(tree.root)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise UsageError(
            f"uncommitted changes under {tree.root}: {shown}",
            hint="commit them, or pass --no-require-clean (the default in CI is to refuse)",
        )


@dataclass(frozen=True)
class Planned:
    """A push plan with the server snapshot it was made from."""

    plan: PushPlan
    snapshot: ServerSnapshot
    remote: Manifest  # the server's files as compared (without ignored and excluded ones)
    drift: tuple[str, ...]  # files changed on the server by hand that this push overwrites
    affected: tuple[str, ...] = ()  # every local function whose loaded code changes
    blocked: tuple[Blocked, ...] = ()  # functions left out: they cannot be deployed as they are
    skipped: tuple[str, ...] = ()  # functions left out: enabled = false in config.toml
    server_only: tuple[str, ...] = ()  # what only the server has (not deleted without --prune)


def check_local_names(
    tree: LocalTree, names: Sequence[str], server_names: Collection[str] | None = None
) -> list[str]:
    """The names that are not local; with the server's names, the first is an error (exit 2)."""
    known = set(tree.functions) | set(tree.shared) | set(tree.root_files)
    unknown = [n for n in names if n not in known]
    for name in unknown[:1]:
        if server_names is None:
            return unknown
        close = difflib.get_close_matches(name, sorted(known - {ROUTER}), n=3, cutoff=0.5)
        problem = "exists only on the server" if name in server_names else "is not a local function"
        raise UsageError(
            f"'{name}' {problem} (in {tree.root})",
            hint=f"did you mean {', '.join(close)}?" if close else "see `edgesync ls`",
        )
    return unknown


def undeployable(stuck: Sequence[Blocked]) -> UndeployableError:
    """Exit 9, naming every function that cannot be deployed and each problem."""
    names = ", ".join(b.name for b in stuck)
    return UndeployableError(
        f"cannot be deployed as it is: {names}\n" + "\n".join(b.describe() for b in stuck),
        hint="only the functions folder reaches the server: fix those imports (or move the "
        "code they load into it), then push again",
    )


def make_plan(
    tree: LocalTree, snapshot: ServerSnapshot, names: Sequence[str], *, prune: bool
) -> Planned:
    """Compare local and server and decide what the push changes (no I/O).

    Named functions that cannot be deployed are left out (`blocked`), and so
    are, in a push without names, the functions config.toml disables.
    """
    view = server_view(snapshot, tree.rules)
    remote = view.manifest
    check_local_names(tree, names, entry_names(tree.manifest, remote))
    candidates = list(names) or [f for f in tree.functions if f != ROUTER]
    stuck = deps.blocked(tree, candidates)
    skipped = [] if names else deps.disabled(tree, candidates)
    pushed = [n for n in candidates if n not in stuck and n not in skipped]
    loads = deps.all_dependencies(tree, pushed)
    plan = plan_push(
        tree.manifest,
        remote,
        tree.functions,
        [n for n in names if n not in stuck],
        loads,
        prune=prune,
        preserved=view.preserved,
        preserved_files=view.preserved_files,
        skip=[*stuck, *skipped],
    )
    overwritten = {p for p in plan.uploads if p in remote.files} | set(plan.removed)
    overwritten |= {p for d in plan.deletes for p in remote.under(d.path)}
    drift = tuple(p for p in drifted(remote, snapshot.history) if p in overwritten)
    changed = {*plan.uploads, *plan.removed}
    # a local function that is not on the server and not pushed now is not deployed: untouched
    replaced = {f.name for f in plan.functions}
    affected = {n for n in deps.affected(tree, changed) if n in replaced or remote.has_entry(n)}
    affected |= replaced
    server_only: tuple[str, ...] = ()
    if plan.empty and not prune:
        pruning = plan_push(
            tree.manifest,
            remote,
            tree.functions,
            [n for n in names if n not in stuck],
            loads,
            prune=True,
            skip=[*stuck, *skipped],
        )
        server_only = tuple(d.path for d in pruning.deletes)
    return Planned(
        plan,
        snapshot,
        remote,
        drift,
        tuple(sorted(affected)),
        tuple(stuck.values()),
        tuple(skipped),
        server_only,
    )


def push(
    ws: Workspace,
    server: Server,
    ui: UI,
    names: Sequence[str] = (),
    *,
    dry_run: bool = False,
    restart: bool = True,
    watch_logs: bool = True,
    logs_seconds: float = 10.0,
    prune: bool = False,
    changed: bool = False,
    require_clean: bool | None = None,
    force: bool = False,
    lock_wait: float = 0.0,
    yes: bool = False,
    verify: bool = True,
    rollback: bool = True,
    check: bool = True,
    check_remote: bool = False,
) -> PushResult:
    """Upload what differs for `names` (default: everything), atomically, then restart.

    The plan is made from a snapshot taken under the deploy lock, in the same
    server command that then receives and applies the release.
    """
    if changed and names:
        raise UsageError("--changed chooses the functions itself: give no names with it")
    tree = local_tree(ws, ui)
    if require_clean if require_clean is not None else bool(os.environ.get("CI")):
        require_clean_tree(tree)
    if check_local_names(tree, names):  # say whether it exists on the server (no lock needed)
        make_plan(tree, server_snapshot(server, ui), names, prune=prune)
    stuck = deps.blocked(tree, names)
    if names and len(stuck) == len(names):  # nothing left to push: refuse before connecting
        raise undeployable(tuple(stuck.values()))
    # which functions a push affects needs every function's import graph (~0.3 s at 1,000
    # functions): built now, while the handshake runs, not after the locked snapshot
    deps.all_dependencies(tree, [f for f in tree.functions if f != ROUTER])
    if dry_run:
        return _dry_run(tree, server, ui, names, changed=changed, prune=prune)
    checker = Preflight(ws.tree, ui, remote=check_remote) if check else None
    pusher = _Pusher(
        ws,
        server,
        ui,
        names,
        changed=changed,
        prune=prune,
        force=force,
        yes=yes,
        preflight=checker,
    )
    result = locked_session(ws, server, ui, lock_wait=lock_wait, work=pusher.run)
    warnings = jwt_warnings(ws, server, result.affected or None)
    for warning in warnings:
        ui.warn(warning)
    result = replace(result, warnings=tuple(warnings))
    if result.release is None or not restart:
        return result
    restarted = restart_and_watch(
        server,
        ui,
        release=result.release,
        functions=result.affected or result.functions,
        watch_logs=watch_logs,
        logs_seconds=logs_seconds,
        verify_with=ws.config if verify else None,
    )
    result = replace(
        result,
        restarted=restarted.restarted,
        restart_command=restarted.command,
        verification=restarted.verification.checks if restarted.verification else (),
        error=restarted.error or result.error,
    )
    if restarted.verification is None or restarted.verification.ok:
        return result
    return _did_not_boot(
        ws, server, ui, result, rollback=rollback, watch_logs=watch_logs, logs_seconds=logs_seconds
    )


def _did_not_boot(
    ws: Workspace,
    server: Server,
    ui: UI,
    result: PushResult,
    *,
    rollback: bool,
    watch_logs: bool,
    logs_seconds: float,
) -> PushResult:
    """Exit 7: say which functions did not boot and why; bring the previous release back."""
    assert result.release is not None
    failed = [c for c in result.verification if not c.ok]
    for c in failed:
        ui.warn(f"{c.function}: {c.outcome.value} (HTTP {c.status}) {c.detail}".rstrip())
    names = ", ".join(c.function for c in failed)
    if not rollback:
        return replace(
            result,
            error=VerifyError(
                f"{names} did not boot after release {result.release}; the files stay "
                "deployed (--no-rollback)",
                hint="fix and push again, or `edgesync rollback` to restore the previous release",
            ),
        )
    ui.warn(f"rolling back release {result.release}: {names} did not boot")
    try:
        back = roll_back(
            ws,
            server,
            ui,
            result.release,
            yes=True,
            force=True,
            watch_logs=watch_logs,
            logs_seconds=logs_seconds,
            reason=VERIFY_FAILED,
            only_if_latest=True,
        )
    except Superseded as later:
        return replace(
            result,
            error=VerifyError(
                f"{names} did not boot after release {result.release}; {later.message}: "
                "the files stay deployed",
                hint="fix and push again (`edgesync history` shows both releases)",
            ),
        )
    again = "" if back.error is None else f" ({back.error.message})"
    return replace(
        result,
        rolled_back_by=back.release,
        error=VerifyError(
            f"{names} did not boot after release {result.release}: it was rolled back "
            f"(release {back.release}){again}",
            hint="see the boot error above and `edgesync logs`; fix it and push again",
        ),
    )


def _dry_run(
    tree: LocalTree,
    server: Server,
    ui: UI,
    names: Sequence[str],
    *,
    changed: bool,
    prune: bool,
) -> PushResult:
    """The plan from a snapshot read without the lock; nothing changes."""
    target = server.target.name
    snapshot = server_snapshot(server, ui)
    if snapshot.locked or snapshot.journal:
        ui.warn("a deploy is running on the server: the plan may change when it ends")
    chosen = _chosen(tree, snapshot, ui, names, changed=changed)
    if chosen is None:
        return PushResult(target, None)
    planned = make_plan(tree, snapshot, chosen, prune=prune)
    plan = planned.plan
    if plan.empty:
        if planned.blocked:
            raise undeployable(planned.blocked)
        return PushResult(target, None)
    show_plan(tree, server, ui, planned)
    return PushResult(
        target,
        None,
        functions=tuple(f.name for f in plan.functions),
        uploaded=plan.uploads,
        deleted=plan.removed,
        dry_run=True,
        changed_on_server=planned.drift,
        affected=planned.affected,
        blocked=tuple(b.name for b in planned.blocked),
        error=undeployable(planned.blocked) if planned.blocked else None,
    )


class _Pusher:
    """What a push does inside one locked session; `run` may ask for another session."""

    def __init__(
        self,
        ws: Workspace,
        server: Server,
        ui: UI,
        names: Sequence[str],
        *,
        changed: bool,
        prune: bool,
        force: bool,
        yes: bool,
        preflight: Preflight | None,
    ) -> None:
        self.ws, self.server, self.ui = ws, server, ui
        self.preflight = preflight
        self.names, self.changed, self.prune, self.force, self.yes = (
            names,
            changed,
            prune,
            force,
            yes,
        )
        self.confirmed: frozenset[str] = frozenset()  # deletions the user agreed to
        self.agreed: set[str] = set()  # broad pushes the user agreed to, as described
        self.shown: PushPlan | None = None
        self.noted: set[str] = set()

    def _broad(self, planned: Planned) -> str:
        """How a push reaches beyond what was named (asked about on a terminal), or ''."""
        affected = planned.affected
        if not self.names:
            return f"everything that differs: {plural(len(affected), 'function')} change"
        beyond = [n for n in affected if n not in self.names]
        if beyond:
            return f"{', '.join(self.names)}, which also changes {', '.join(beyond)}"
        if len(affected) > BROAD_PUSH:
            return f"{plural(len(affected), 'function')}"
        return ""

    def _nothing_note(self, snapshot: ServerSnapshot, planned: Planned | None) -> str | None:
        """What is true when there is nothing to push, and what to run."""
        tree = self.ws.tree
        if planned is None:  # --changed found nothing in git: does the content agree?
            everything = make_plan(tree, snapshot, [], prune=False)
            if everything.plan.empty:
                return None
            names = sorted({top_of(p) for p in everything.plan.uploads})
            return (
                f"nothing changed in git since the server's last release, but the server "
                f"differs in {', '.join(names)}: `edgesync push` syncs them"
            )
        if planned.server_only:
            shown = ", ".join(planned.server_only[:5])
            more = len(planned.server_only) - 5
            return (
                f"nothing to push; only on the server: {shown}"
                + (f" and {more} more" if more > 0 else "")
                + " (`edgesync push --prune` deletes them)"
            )
        return None

    def note(self, message: str) -> None:
        if message not in self.noted:
            self.noted.add(message)
            self.ui.info(message)

    def run(self, session: ReleaseSession, snapshot: ServerSnapshot) -> PushResult:
        target = self.server.target.name
        tree = self.ws.tree
        if self.changed:
            selection = changed_functions(tree, snapshot)
            self.note(selection.note)
            chosen = None if selection.names == () else list(selection.names or ())
        else:
            chosen = list(self.names)
        planned = (
            make_plan(tree, snapshot, chosen, prune=self.prune) if chosen is not None else None
        )
        if planned is None or planned.plan.empty:
            session.cancel()
            if planned is not None and planned.blocked:
                raise undeployable(planned.blocked)
            return PushResult(
                target,
                None,
                recovered=snapshot.recovered,
                note=self._nothing_note(snapshot, planned),
            )
        plan = planned.plan
        if plan != self.shown:
            self._preview(planned)
            self.shown = plan
        if links := through_links(plan, snapshot.symlinks):
            session.cancel()
            refuse_links(links, self.server.target.remote_functions_dir.as_posix())
        if self.preflight is not None and (problems := self.preflight.run(planned.affected)):
            session.cancel()
            raise cannot_load(problems)
        if planned.drift and not self.force:
            session.cancel()
            refuse_drift(planned.drift, force=self.force, hint=DRIFT_HINT)
        deletes = frozenset(d.path for d in plan.deletes)
        if deletes and not self.yes and not deletes <= self.confirmed:
            session.cancel()  # never hold the lock while a person decides
            _confirm_deletes(self.ui, plan, target)
            self.confirmed = deletes
            raise Again
        broad = self._broad(planned)
        if broad and not self.yes and self.ui.interactive and broad not in self.agreed:
            session.cancel()  # never hold the lock while a person decides
            if not self.ui.confirm(f"Push {broad} to {target}?"):
                raise Declined("nothing was pushed")
            self.agreed.add(broad)
            raise Again
        actor = self.ws.actor()
        bundle = build_bundle(
            plan,
            kind="push",
            remote=planned.remote,
            expected=installed_by_push(plan, tree.manifest),
            history=snapshot.history,
            kept=snapshot.kept_releases,
            keep=self.server.target.keep_releases,
            actor=actor,
            target=target,
            rid=session.rid,
            modes=upload_modes(plan, tree.manifest, planned.remote),
        )
        total = sum(tree.manifest.files[p].size for p in plan.uploads)
        sent = send_release(self.server, self.ui, session, bundle, tree.root, total)
        return PushResult(
            target=target,
            release=bundle.rid,
            functions=tuple(f.name for f in plan.functions),
            uploaded=plan.uploads,
            deleted=plan.removed,
            bytes_sent=sent.bytes_sent,
            recovered=snapshot.recovered,
            seconds=sent.seconds,
            commit=actor.short_commit,
            affected=planned.affected,
            blocked=tuple(b.name for b in planned.blocked),
            error=undeployable(planned.blocked) if planned.blocked else None,
        )

    def _preview(self, planned: Planned) -> None:
        show_plan(self.ws.tree, self.server, self.ui, planned)


class Preflight:
    """The pre-flight check of the functions a push changes, each function once per run."""

    def __init__(self, tree: LocalTree, ui: UI, *, remote: bool) -> None:
        self.tree, self.ui, self.remote = tree, ui, remote
        self.deno = deno_binary()
        self.done: dict[str, list[LoadProblem]] = {}
        self.said = False

    def run(self, functions: Sequence[str]) -> list[LoadProblem]:
        """Load every function's module graph with Deno; the problems found."""
        if self.deno is None:
            if not self.said:
                self.ui.info(
                    "pre-flight check skipped: Deno is not installed here "
                    "(pip install deno, or put deno on PATH)"
                )
                self.said = True
            return []
        todo = [n for n in functions if n not in self.done and n != ROUTER]
        if todo:
            self.ui.info(
                f"checking that {', '.join(todo)} {'loads' if len(todo) == 1 else 'load'} …"
            )
            found = preflight(self.tree, todo, deno=self.deno, remote=self.remote)
            for name in todo:
                self.done[name] = [p for p in found if p.function == name]
        return [p for n in functions for p in self.done.get(n, ())]


def cannot_load(problems: Sequence[LoadProblem]) -> UndeployableError:
    """Exit 9: local code that does not load, with file and line; nothing was uploaded."""
    names = ", ".join(dict.fromkeys(p.function for p in problems))
    return UndeployableError(
        f"{names} would not load on the server; nothing was uploaded:\n"
        + "\n".join(p.describe() for p in problems),
        hint="fix the code (or pass --no-check to push it anyway)",
    )


def show_plan(tree: LocalTree, server: Server, ui: UI, planned: Planned) -> None:
    """The plan, what else it changes, and what it leaves out."""
    plan = planned.plan
    replaced = {f.name for f in plan.functions}
    changed = {*plan.uploads, *plan.removed}
    also = tuple(
        (name, tuple(sorted(changed & deps.graph(tree, name).files)))
        for name in planned.affected
        if name not in replaced
    )
    ui.show(PlanPreview(server.target.name, server.where(), plan.comparison, also))
    for b in planned.blocked:
        ui.warn(f"left out, it cannot be deployed as it is:\n{b.describe()}")
    for name in planned.skipped:
        ui.info(f"{name}: enabled = false in config.toml: not pushed (name it to push it)")
    for note in deps.notes(tree, planned.affected):
        ui.info(note)
    if planned.drift:
        ui.warn("changed on the server outside edgesync: " + ", ".join(planned.drift))


def _chosen(
    tree: LocalTree, snapshot: ServerSnapshot, ui: UI, names: Sequence[str], *, changed: bool
) -> list[str] | None:
    """The names to push ([]: everything that differs); None when --changed found nothing."""
    if not changed:
        return list(names)
    selection = changed_functions(tree, snapshot)
    ui.info(selection.note)
    if selection.names is None:  # compare content instead
        return []
    return list(selection.names) or None


def _confirm_deletes(ui: UI, plan: PushPlan, target: str) -> None:
    gone = ", ".join(d.path for d in plan.deletes)
    if not ui.interactive:
        raise UsageError(
            f"--prune would delete {gone} from the server", hint="pass --yes to confirm"
        )
    if not ui.confirm(f"Delete {gone} from {target}?"):
        raise Declined("nothing was deleted or pushed")
