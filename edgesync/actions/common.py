"""Steps several actions share: reading the server, the locked session, restarting, watching."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, TypeVar

from edgesync.actions.verify import Verification, verify
from edgesync.config import Config
from edgesync.context import Server, Workspace
from edgesync.errors import ConnectError, Interrupted, LockedError, RemoteError
from edgesync.history import Bundle, new_release_id
from edgesync.local.settings import jwt_mismatches, verify_jwt_settings
from edgesync.local.tree import ExcludeRules, LocalTree
from edgesync.loglines import BOOT_RE, LogLine, attribute
from edgesync.manifest import Manifest, top_of
from edgesync.remote import compose
from edgesync.remote.lock import read_lock, release_lock
from edgesync.remote.release import LostConnection, ReleaseSession, StalePlan, lock_info
from edgesync.remote.secrets import compose_config
from edgesync.remote.snapshot import PendingSnapshot, ServerSnapshot, read_snapshot
from edgesync.ui import UI


def local_tree(ws: Workspace, ui: UI) -> LocalTree:
    """The local tree, its warnings shown once."""
    tree = ws.tree
    for warning in tree.warnings:
        ui.warn(warning)
    return tree


def server_snapshot(
    server: Server,
    ui: UI,
    *,
    full_history: bool = False,
    pending: PendingSnapshot | None = None,
) -> ServerSnapshot:
    """The server's files, history and kept backups (one command, without the lock).

    Unreadable history lines are named; a release caught mid-swap is said. The history
    comes through the server's index unless `full_history` (every release) is asked.
    `pending`: the listing `start_snapshot` started earlier.
    """
    if pending is not None:
        snapshot = pending.result()
    else:
        snapshot = read_snapshot(server.shell, server.target, full_history=full_history)
    for skipped in snapshot.history.skipped:
        ui.warn(f"skipped an unreadable release record: {skipped} (`edgesync repair` removes it)")
    if snapshot.journal:
        ui.warn(
            f"release {snapshot.journal} is being applied on the server, or was interrupted: "
            "what follows may change (the next push, or `edgesync repair`, undoes an "
            "interrupted one)"
        )
    elif snapshot.locked:
        ui.info("a deploy holds the lock on the server right now")
    for link in sorted(snapshot.symlinks):
        ui.warn(f"{link} is a symbolic link on the server: edgesync does not follow it")
    return snapshot


def jwt_warnings(ws: Workspace, server: Server, names: Sequence[str] | None = None) -> list[str]:
    """Where config.toml's verify_jwt disagrees with the server's one VERIFY_JWT switch.

    Asks the server (compose config) only when config.toml sets verify_jwt somewhere.
    """
    settings = verify_jwt_settings(ws.config.functions_dir)
    if names is not None:
        settings = {n: v for n, v in settings.items() if n in names}
    if not settings:
        return []
    try:
        env = compose_config(server.shell, server.target, resolve=True)
    except RemoteError:
        return []  # not worth failing a diff for: `secrets list` says what is wrong
    service = (env.get("services") or {}).get(server.target.service) or {}
    raw = service.get("environment") if isinstance(service, dict) else None
    value = raw.get("VERIFY_JWT") if isinstance(raw, dict) else None
    verifies = str(value).strip().lower() == "true"  # the router's own test
    return jwt_mismatches(settings, server_verifies=verifies)


@dataclass(frozen=True)
class ServerView:
    """The server as edgesync compares it: without what it ignores or leaves out."""

    manifest: Manifest  # the files compared with the local tree
    preserved: Mapping[str, tuple[str, ...]]  # function -> paths a push carries over as they are
    preserved_files: Mapping[str, int]  # function -> how many regular files those are


def server_view(snapshot: ServerSnapshot, rules: ExcludeRules) -> ServerView:
    """Split the server's files: compared ones, and those kept as they are (env files,
    node_modules, .git, and what the exclude globs or the test rules leave out)."""
    manifest, excluded = snapshot.manifest.without(rules.excludes)
    preserved: dict[str, list[str]] = {}
    for path in sorted({*excluded, *snapshot.ignored}):
        if "/" in path:
            preserved.setdefault(top_of(path), []).append(path)
    return ServerView(
        manifest,
        {top: tuple(paths) for top, paths in preserved.items()},
        {
            top: sum(1 for p in paths if p not in snapshot.pruned)
            for top, paths in preserved.items()
        },
    )


@dataclass(frozen=True)
class Restarted:
    """How a restart after a release went, and what the functions answered then."""

    restarted: bool
    command: str | None = None
    error: RemoteError | ConnectError | None = None
    verification: Verification | None = None


def restart_and_watch(
    server: Server,
    ui: UI,
    *,
    release: str | None,
    functions: Sequence[str],
    watch_logs: bool,
    logs_seconds: float,
    verify_with: Config | None = None,
    recreate: bool = False,
) -> Restarted:
    """Restart the service (after a release), request its functions, show their log lines.

    With `verify_with` (the config, for `verify:` settings) every function is
    requested until it answers, and the log lines since the restart are shown
    as soon as all did; without it, the logs are followed for `logs_seconds`.
    A failed restart is returned, not raised: the release is recorded and the
    caller shows it before the error.
    """
    try:
        return _restart_and_watch(
            server,
            ui,
            release=release,
            functions=functions,
            watch_logs=watch_logs,
            logs_seconds=logs_seconds,
            verify_with=verify_with,
            recreate=recreate,
        )
    except ConnectError as e:
        if release is None:  # `restart`: the service may or may not have restarted
            message = f"{e.message}: whether the service restarted is not known"
        else:  # the release is committed: say so, and what is unknown, not just "lost"
            message = (
                f"{e.message} after the files were swapped: release {release} is deployed "
                "and recorded, but the restart and the check of the functions were not confirmed"
            )
        return Restarted(
            restarted=False,
            error=ConnectError(
                message,
                hint="run `edgesync restart` (it restarts and requests the functions again)",
            ),
        )


def _restart_and_watch(
    server: Server,
    ui: UI,
    *,
    release: str | None,
    functions: Sequence[str],
    watch_logs: bool,
    logs_seconds: float,
    verify_with: Config | None,
    recreate: bool,
) -> Restarted:
    try:
        if recreate:  # the environment changed: a restart would keep the old one
            since, command = compose.recreate(server.shell, server.target)
        else:
            since, command = compose.restart(server.shell, server.target)
    except RemoteError as e:
        recorded = f" — the files are deployed and release {release} is recorded" if release else ""
        return Restarted(
            restarted=False,
            error=RemoteError(
                e.message + recorded,
                hint=(e.hint + "; then " if e.hint else "fix the service, then ")
                + "run `edgesync restart`",
            ),
        )
    ui.info(f"restarted: {command}")
    if verify_with is not None and functions:
        checked = verify(
            verify_with,
            server,
            ui,
            functions,
            wait=server.target.verify_timeout,
            since=since or None,
        )
        if watch_logs:
            for line in checked.logs:
                ui.log_line(line)
        return Restarted(restarted=True, command=command, verification=checked)
    if watch_logs and logs_seconds > 0:
        ui.info(
            f"logs of {', '.join(functions) or 'the service'} "
            f"for {logs_seconds:g}s (Ctrl-C to stop):"
        )
        try:
            for line in pushed_logs(server, functions, since, logs_seconds):
                ui.log_line(line)
        except KeyboardInterrupt:
            pass
    return Restarted(restarted=True, command=command)


def pushed_logs(
    server: Server, functions: Sequence[str], since: str, seconds: float
) -> Iterator[LogLine]:
    """The pushed functions' log lines (and any worker boot error) for a few seconds."""
    raw = compose.stream_logs(
        server.shell,
        server.target,
        tail=None,
        since=since or None,
        follow=True,
        seconds=seconds,
    )
    wanted = set(functions)
    for line in attribute(raw):
        if line.function in wanted or line.is_boot_error or BOOT_RE.search(line.text):
            yield line


class Again(Exception):  # noqa: N818 - a signal, not an error
    """The session was ended on purpose (a question was asked, the plan went stale): again."""


R = TypeVar("R")
STALE_RETRIES = 3


def locked_session(
    ws: Workspace,
    server: Server,
    ui: UI,
    *,
    lock_wait: float,
    work: Callable[[ReleaseSession, ServerSnapshot], R],
    full_history: bool = False,
) -> R:
    """Run `work` inside a server session that holds the deploy lock.

    `work` gets the session and the snapshot taken under the lock; it ends the
    session with `cancel()` or `apply()`. It raises `Again` to start a new
    session (after asking a question without holding the lock). Another
    deploy's lock is waited for up to `lock_wait` seconds; a release that went
    stale (the server changed after the snapshot, by hand) is planned again.
    `full_history`: the snapshot brings every release, not the history's index.
    """
    opener = _Opener(ws, server, ui, lock_wait, full_history=full_history)
    stale = 0
    while True:
        session, snapshot = opener.open()
        try:
            return work(session, snapshot)
        except Again:
            continue
        except KeyboardInterrupt:
            raise Interrupted("interrupted before the upload: nothing was changed") from None
        except StalePlan:
            stale += 1
            if stale >= STALE_RETRIES:
                raise
            ui.warn("the server changed while planning; planned again")
        finally:
            session.close()


class _Opener:
    """Opens locked sessions: waits for another deploy's lock, reports what was repaired."""

    def __init__(
        self, ws: Workspace, server: Server, ui: UI, lock_wait: float, *, full_history: bool
    ) -> None:
        self.server, self.ui = server, ui
        self.full_history = full_history
        self.deadline = time.monotonic() + lock_wait
        self.actor = ws.actor()
        self.waiting_said = ""
        self.warned = False

    def open(self) -> tuple[ReleaseSession, ServerSnapshot]:
        while True:
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            session = ReleaseSession(
                self.server.shell,
                self.server.target,
                new_release_id(),
                lock_info(self.actor, now),
                idle_seconds=self.server.target.timeout,
                full_history=self.full_history,
            )
            try:
                snapshot = session.open()
            except KeyboardInterrupt:
                session.close()
                raise Interrupted("interrupted: nothing was changed on the server") from None
            except LockedError as e:
                self.wait(e)
                continue
            self.report(snapshot)
            return session, snapshot

    def wait(self, e: LockedError) -> None:
        if time.monotonic() >= self.deadline:
            raise e
        if e.message != self.waiting_said:
            self.ui.info(f"waiting for the lock: {e.message}")
            self.waiting_said = e.message
        time.sleep(min(2.0, max(0.1, self.deadline - time.monotonic())))

    def report(self, snapshot: ServerSnapshot) -> None:
        if not self.warned:
            for skipped in snapshot.history.skipped:
                self.ui.warn(f"skipped an unreadable release record: {skipped} (`edgesync repair`)")
            self.warned = True
        if snapshot.recovered:
            self.ui.warn(
                f"an interrupted push ({snapshot.recovered}) was found and rolled back first"
            )
        if snapshot.completed:
            self.ui.info(f"release {snapshot.completed} was complete; its cleanup is now done")


@dataclass(frozen=True)
class Sent:
    """A release the server applied."""

    bytes_sent: int
    seconds: float


def send_release(
    server: Server,
    ui: UI,
    session: ReleaseSession,
    bundle: Bundle,
    root: Path,
    total: int,
) -> Sent:
    """Send a release with a progress bar; after a lost connection, find out what happened."""
    started = time.monotonic()
    try:
        with ui.progress(total, "uploading") as advance:
            applied = session.apply(bundle, root, advance)
    except LostConnection as lost:
        settled = settle_lost_release(server, ui, lost.rid)
        if settled in ("committed", "not committed"):
            clear_own_stale_lock(server, ui, session, lost.rid)
        if settled == "swapping" and undo_lost_release(server, ui, session, lost.rid):
            raise ConnectError(
                f"{lost.message}; release {lost.rid} was cut off in the middle of its swap "
                "and has been undone: nothing changed",
                hint="push again",
            ) from lost
        if settled == "swapping":
            raise ConnectError(
                f"{lost.message}; release {lost.rid} was cut off in the middle of its swap: "
                "the server is partly new until it is undone",
                hint="`edgesync lock release`, then `edgesync repair` (or push again) "
                "puts the previous state back",
            ) from lost
        if settled == "still running":
            raise ConnectError(
                f"{lost.message}; release {lost.rid} is still being applied on the server",
                hint="`edgesync history` shows whether it was recorded once it ends "
                "(`edgesync lock status` shows it running until then)",
            ) from lost
        if settled == "not committed":
            raise ConnectError(
                f"{lost.message}; release {lost.rid} was not committed: nothing changed",
                hint="push again",
            ) from lost
        ui.warn(f"the connection was lost, but the server finished release {lost.rid}")
        return Sent(-1, time.monotonic() - started)
    return Sent(applied.bytes_sent, time.monotonic() - started)


def _own_stale_lock(server: Server, session: ReleaseSession, rid: str) -> bool:
    """The lock is this session's (its release and token) and its server process is gone."""
    lock = read_lock(server.shell, server.target)
    ours = lock.info.get("release") == rid and lock.info.get("token") in (None, session.token)
    return lock.held and ours and lock.server_process == "gone"


def clear_own_stale_lock(server: Server, ui: UI, session: ReleaseSession, rid: str) -> None:
    """After a lost connection: the lock our killed server process left is removed (it
    would make the next deploy wait for nothing); another deploy's lock is never touched."""
    try:
        if _own_stale_lock(server, session, rid):
            release_lock(server.shell, server.target)
            ui.info(f"removed the lock that release {rid}'s server process left")
    except (ConnectError, RemoteError):
        pass  # only tidying: `edgesync lock status` shows a lock left behind


def undo_lost_release(server: Server, ui: UI, session: ReleaseSession, rid: str) -> bool:
    """Undo our release `rid` that the server stopped mid-swap (its process is gone).

    Only when the lock is still ours: it is released, and a new session takes
    it, which undoes the journaled release, and ends without changing anything.
    """
    if not _own_stale_lock(server, session, rid):
        return False
    ui.info(f"release {rid} was cut off mid-swap; undoing it")
    release_lock(server.shell, server.target)
    base = {k: v for k, v in session.lock.items() if k not in ("token", "release")}
    repair = ReleaseSession(
        server.shell,
        server.target,
        new_release_id(),
        base,
        idle_seconds=server.target.timeout,
    )
    try:
        snapshot = repair.open()
        repair.cancel()
    except (LockedError, RemoteError):
        return False
    finally:
        repair.close()
    return snapshot.recovered == rid


def settle_lost_release(
    server: Server, ui: UI, rid: str, *, wait: float = 120.0
) -> Literal["committed", "swapping", "not committed", "still running"]:
    """Reconnect once and tell whether release `rid` was committed, or left mid-swap.

    The server finishes a release on its own once the upload is complete, so
    wait while its process still holds the lock.
    """
    ui.info(f"the connection was lost; reconnecting to find out whether {rid} was committed")
    server.shell = server.shell.reconnect()
    deadline = time.monotonic() + wait
    running = True
    while running:
        lock = read_lock(server.shell, server.target)
        running = lock.held and lock.info.get("release") == rid and lock.server_process != "gone"
        if running and time.monotonic() > deadline:
            break
        if running:
            time.sleep(1.0)
    snapshot = read_snapshot(server.shell, server.target)
    if rid in snapshot.history.ids:
        return "committed"
    if running:
        return "still running"
    return "swapping" if snapshot.journal == rid else "not committed"
