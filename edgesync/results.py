"""What each command found or did: one frozen result per command, each with `to_json()`.

`output.py` renders these for a terminal, as plain text, as JSON and as the CI
step summary; nothing else builds JSON. A result may carry the error its
command ends with (`error`): the result is shown first, then the error becomes
the exit code (a failed restart after a recorded release, say).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesync.errors import EdgesyncError
from edgesync.history import Release, failed_ids
from edgesync.local.deps import Blocked
from edgesync.plan import Comparison, FunctionState
from edgesync.remote.lock import LockStatus
from edgesync.secrets import SecretChange
from edgesync.verification import Check


@dataclass(frozen=True)
class Patch:
    """A unified diff of one file, or a note that it is binary."""

    path: str
    text: str | None  # None: binary


@dataclass(frozen=True)
class DiffResult:
    """`diff`: how local and server compare."""

    target: str
    where: str
    comparison: Comparison
    patches: tuple[Patch, ...] = ()
    blocked: tuple[Blocked, ...] = ()  # functions that cannot be deployed as they are
    warnings: tuple[str, ...] = ()  # settings the server ignores (config.toml verify_jwt)

    @property
    def in_sync(self) -> bool:
        """Nothing differs and every function can be deployed."""
        return self.comparison.in_sync and not self.blocked

    def to_json(self) -> dict[str, Any]:
        """The documented `diff --json` shape."""
        return {
            **comparison_json(self.comparison, self.target),
            "in_sync": self.in_sync,
            "blocked": blocked_json(self.blocked),
            "warnings": list(self.warnings),
        }


def blocked_json(blocked: Sequence[Blocked]) -> list[dict[str, Any]]:
    """Functions that cannot be deployed, with every problem."""
    return [
        {
            "name": b.name,
            "problems": [
                {
                    "file": p.file,
                    "line": p.line,
                    "specifier": p.specifier,
                    "reason": p.reason,
                    "detail": p.detail,
                }
                for p in b.problems
            ],
        }
        for b in blocked
    ]


def comparison_json(comp: Comparison, target: str) -> dict[str, Any]:
    """A comparison as `diff --json` shows it."""
    return {
        "target": target,
        "in_sync": comp.in_sync,
        "changed_on_server": sorted(comp.changed_on_server),
        "entries": [
            {
                "name": e.name,
                "kind": e.kind.value,
                "status": e.status.value,
                "files": [{"path": f.path, "status": f.status.value} for f in e.files],
            }
            for e in comp.entries
        ],
    }


@dataclass(frozen=True)
class LsResult:
    """`ls`: every function with its deployment state."""

    target: str
    where: str
    states: tuple[FunctionState, ...]
    warnings: tuple[str, ...] = ()  # settings the server ignores (config.toml verify_jwt)

    def to_json(self) -> dict[str, Any]:
        """`ls --json`."""
        return {
            "target": self.target,
            "warnings": list(self.warnings),
            "functions": [
                {
                    "name": s.name,
                    "local": s.local,
                    "remote": s.remote,
                    "state": s.state.value,
                    "changed_files": list(s.changed_files),
                    "changed_shared": list(s.changed_deps),
                    "remote_entry_file": s.remote_has_entry,
                    "changed_on_server": list(s.changed_on_server),
                    "last_release": s.last_release,
                    "problems": list(s.problems),
                }
                for s in self.states
            ],
        }


@dataclass(frozen=True)
class PlanPreview:
    """A push's plan, shown before it is applied (the `diff` view of what will change)."""

    target: str
    where: str
    comparison: Comparison
    # functions not replaced whose loaded code changes: (name, the changed files they load)
    also: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class PushResult:
    """`push`: what was released (release None: nothing to push, or a dry run)."""

    target: str
    release: str | None
    functions: tuple[str, ...] = ()
    uploaded: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    bytes_sent: int = 0
    recovered: str | None = None  # an interrupted release found and undone first
    seconds: float = 0.0
    restarted: bool = False
    restart_command: str | None = None
    commit: str = "-"  # the deployed commit, short (`1a2b3c4d+dirty`)
    dry_run: bool = False
    changed_on_server: tuple[str, ...] = ()
    affected: tuple[str, ...] = ()  # every function whose loaded code this push changed
    blocked: tuple[str, ...] = ()  # functions left out: they cannot be deployed as they are
    verification: tuple[Check, ...] = ()  # what each function answered after the restart
    rolled_back_by: str | None = None  # the release that undid this one (it did not boot)
    note: str | None = None  # with nothing to push: what is true instead of "in sync"
    warnings: tuple[str, ...] = ()  # settings the server ignores (config.toml verify_jwt)
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """`push --json`."""
        files = [{"path": p, "action": "upload"} for p in self.uploaded]
        files += [{"path": p, "action": "delete"} for p in self.deleted]
        if self.dry_run:
            return {
                "target": self.target,
                "dry_run": True,
                "functions": list(self.functions),
                "files": files,
                "changed_on_server": list(self.changed_on_server),
                "affected": list(self.affected),
                "blocked": list(self.blocked),
            }
        return {
            "target": self.target,
            "release": self.release,
            "functions": list(self.functions),
            "affected": list(self.affected),
            "blocked": list(self.blocked),
            "files": files,
            "restarted": self.restarted,
            "verified": checks_json(self.verification),
            "rolled_back_by": self.rolled_back_by,
            "warnings": list(self.warnings),
            **({"note": self.note} if self.note else {}),
        }


def checks_json(checks: Sequence[Check]) -> list[dict[str, Any]]:
    """Each function's verification."""
    return [
        {
            "function": c.function,
            "outcome": c.outcome.value,
            "status": c.status,
            "seconds": round(c.seconds, 3),
            "detail": c.detail,
        }
        for c in checks
    ]


@dataclass(frozen=True)
class RollbackResult:
    """`rollback`: the release that restored the state before `before_release`."""

    target: str
    release: str
    rolled_back: tuple[str, ...]
    before_release: str
    functions: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    recovered: str | None = None
    restarted: bool = False
    restart_command: str | None = None
    verification: tuple[Check, ...] = ()
    secrets_restored: bool = False  # the secrets file came back too (the service was recreated)
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """`rollback --json`."""
        return {
            "target": self.target,
            "release": self.release,
            "rolled_back": list(self.rolled_back),
            "functions": list(self.functions),
            "files": [{"path": p, "action": "restore"} for p in self.restored]
            + [{"path": p, "action": "delete"} for p in self.deleted],
            "restarted": self.restarted,
            "verified": checks_json(self.verification),
        }


@dataclass(frozen=True)
class RollbackPreview:
    """What a rollback will do, shown before asking."""

    target: str
    undone: tuple[str, ...]
    steps: tuple[str, ...]  # "restore fn/", "remove _shared/x.ts"
    changed_on_server: tuple[str, ...] = ()


def release_json(rec: Release, failed: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A release as `history --json` shows it (without the internal hash maps)."""
    return {
        "failed": rec.id in failed,
        "reason": rec.reason or None,
        "id": rec.id,
        "kind": rec.kind,
        "time": rec.time,
        "user": rec.user,
        "host": rec.host,
        "commit": rec.commit,
        "dirty": rec.dirty,
        "functions": list(rec.functions),
        "deleted_functions": list(rec.deleted_functions),
        "rolled_back": list(rec.rolled_back),
        "files": [{"path": f.path, "action": f.action} for f in rec.files],
        # the secrets a release changed: name -> digest before and after (never values)
        "secrets": [
            {"name": n, "before": rec.secrets_before.get(n), "after": rec.secrets_after.get(n)}
            for n in sorted({*rec.secrets_before, *rec.secrets_after})
            if rec.secrets_before.get(n) != rec.secrets_after.get(n)
        ],
    }


@dataclass(frozen=True)
class HistoryResult:
    """`history`: releases, newest first."""

    target: str
    releases: tuple[Release, ...]

    def to_json(self) -> dict[str, Any]:
        """`history --json`."""
        failed = failed_ids(self.releases)
        return {
            "target": self.target,
            "releases": [release_json(r, failed) for r in self.releases],
        }


@dataclass(frozen=True)
class LockResult:
    """`lock status` (and what `lock release` found or did)."""

    target: str
    status: LockStatus
    released: bool = False

    def to_json(self) -> dict[str, Any]:
        """`lock status --json`."""
        st = self.status
        return {
            "target": self.target,
            "held": st.held,
            "kind": st.kind if st.held else None,
            "holder": dict(st.info),
            "holder_readable": st.readable,
            "server_process": st.server_process,
            "client_process": st.client_process,
            "stale": st.stale,
        }


@dataclass(frozen=True)
class RestartResult:
    """`restart`: whether the service was restarted, and how."""

    target: str
    restarted: bool
    command: str | None = None
    verification: tuple[Check, ...] = ()
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """`restart --json`."""
        return {
            "target": self.target,
            "restarted": self.restarted,
            "command": self.command,
            "verified": checks_json(self.verification),
        }


@dataclass(frozen=True)
class SecretEntry:
    """One variable the functions get: its name, where it comes from, a digest of its value."""

    name: str
    source: str  # "secrets file" | "compose environment"
    digest: str | None
    overridden: bool = False  # in the file, but compose `environment:` sets it too (and wins)


@dataclass(frozen=True)
class SecretsListResult:
    """`secrets list`: names, sources and digests; never values."""

    target: str
    file: str
    entries: tuple[SecretEntry, ...]
    wired: bool  # the functions service reads the file (compose env_file)

    def to_json(self) -> dict[str, Any]:
        """`secrets list --json`."""
        return {
            "target": self.target,
            "file": self.file,
            "wired": self.wired,
            "secrets": [
                {
                    "name": e.name,
                    "source": e.source,
                    "digest": e.digest,
                    "overridden": e.overridden,
                }
                for e in self.entries
            ],
        }


def secret_changes_json(changes: Sequence[SecretChange]) -> list[dict[str, Any]]:
    """Name by name: status and digests."""
    return [
        {"name": c.name, "status": c.status, "before": c.before, "after": c.after} for c in changes
    ]


@dataclass(frozen=True)
class SecretsResult:
    """`secrets set/unset`: the release recorded (None: nothing changed) and what changed."""

    target: str
    release: str | None
    changes: tuple[SecretChange, ...]
    applied: bool = False  # the service was recreated with the new values
    verification: tuple[Check, ...] = ()
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """`secrets set --json`."""
        return {
            "target": self.target,
            "release": self.release,
            "changes": secret_changes_json(self.changes),
            "applied": self.applied,
            "verified": checks_json(self.verification),
        }


@dataclass(frozen=True)
class SecretsDiffResult:
    """`secrets diff --from-file`: how a local file's values compare, by digest."""

    target: str
    source: str
    changes: tuple[SecretChange, ...]

    @property
    def in_sync(self) -> bool:
        """No name differs."""
        return all(c.status == "unchanged" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        """`secrets diff --json`."""
        return {
            "target": self.target,
            "in_sync": self.in_sync,
            "changes": secret_changes_json(self.changes),
        }


@dataclass(frozen=True)
class FunctionCheck:
    """One function's pre-flight: the problems found (none: it loads)."""

    name: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """`check`: every function's pre-flight."""

    functions: tuple[FunctionCheck, ...]
    skipped: str | None = None  # why the Deno load was skipped
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """`check --json`."""
        return {
            "ok": all(not f.problems for f in self.functions),
            "deno": self.skipped is None,
            "functions": [{"name": f.name, "problems": list(f.problems)} for f in self.functions],
        }


@dataclass(frozen=True)
class StatusResult:
    """`status`: what each function answered just now."""

    target: str
    checks: tuple[Check, ...]
    skipped: tuple[str, ...] = ()  # `verify: false` in edgesync.yaml
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """`status --json`."""
        return {
            "target": self.target,
            "functions": checks_json(self.checks),
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class RepairResult:
    """`repair`: what was put back in order on the server."""

    target: str
    removed_lines: tuple[str, ...]  # unreadable history lines that were dropped
    backup: str | None  # where the old history.jsonl was kept
    recovered: str | None = None  # an interrupted release that was undone
    completed: str | None = None  # a committed release whose cleanup was finished

    def to_json(self) -> dict[str, Any]:
        """`repair --json`."""
        return {
            "target": self.target,
            "removed_lines": list(self.removed_lines),
            "backup": self.backup,
            "recovered": self.recovered,
            "completed": self.completed,
        }


@dataclass(frozen=True)
class InitResult:
    """`init`: the file written."""

    path: Path
    connected: str | None = None  # what the connection test found
    error: EdgesyncError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The path written."""
        return {"path": str(self.path), "connected": self.connected}


Result = (
    DiffResult
    | LsResult
    | PushResult
    | RollbackResult
    | HistoryResult
    | LockResult
    | InitResult
    | RepairResult
    | RestartResult
    | CheckResult
    | SecretsListResult
    | SecretsResult
    | SecretsDiffResult
    | StatusResult
    | PlanPreview
    | RollbackPreview
)
