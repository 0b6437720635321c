"""Pure reasoning over the release history. No I/O here.

A release is one line of `<state>/history.jsonl` on the server. This module
turns those lines into typed `Release` records (validating ids and paths once,
at parse time), replays them into what edgesync last put on the server (drift
detection), plans a rollback from them, decides which backups retention
removes, and builds the record and bundle a new release sends.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from edgesync.errors import DriftError, RemoteError, UsageError
from edgesync.manifest import Manifest, is_ignored, top_of
from edgesync.plan import DeletePath, PushPlan, PutFile, ReplaceFunction, compare

SCHEMA = 2  # lines without a "schema" key are schema 1 (read the same way)
VERIFY_FAILED = "verification failed"  # the reason of an automatic rollback
RELEASE_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]+$")
MAX_LINE = (
    16 << 20
)  # a longer history line is not read (nor anything nested deeper than JSON allows)


class BadRecord(ValueError):
    """A history line that is not a release record edgesync can read."""


def safe_path(path: object) -> bool:
    """A relative path inside the functions folder: no `..`, not absolute, not ignored."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\0" in path:
        return False
    return ".." not in PurePosixPath(path).parts and not is_ignored(path)


def _safe_state_path(path: str) -> bool:
    """A relative path inside project_dir (the secrets file): no `..`, not absolute."""
    if not path or path.startswith("/") or "\0" in path or "\n" in path:
        return False
    return ".." not in PurePosixPath(path).parts


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class FunctionOp:
    """A function folder replaced whole (or added, when it did not exist)."""

    name: str
    existed: bool
    op: Literal["function"] = "function"

    @property
    def where(self) -> str:
        """The path this operation changes."""
        return self.name


@dataclass(frozen=True)
class PutOp:
    """One file outside function folders replaced or added."""

    path: str
    existed: bool
    op: Literal["put"] = "put"

    @property
    def where(self) -> str:
        """The path this operation changes."""
        return self.path


@dataclass(frozen=True)
class DeleteOp:
    """A server-only function folder or file removed."""

    path: str
    is_function: bool
    op: Literal["delete"] = "delete"

    @property
    def where(self) -> str:
        """The path this operation changes."""
        return self.path


@dataclass(frozen=True)
class SecretsOp:
    """The functions' secrets file replaced (its path is relative to project_dir)."""

    path: str
    existed: bool
    op: Literal["secrets"] = "secrets"

    @property
    def where(self) -> str:
        """The path this operation changes."""
        return self.path


Op = FunctionOp | PutOp | DeleteOp | SecretsOp


@dataclass(frozen=True)
class FileRecord:
    """One file a release uploaded, restored or deleted (what `history` shows)."""

    path: str
    action: str
    sha256: str | None = None


@dataclass(frozen=True)
class Release:
    """One release as recorded in history.jsonl.

    `ops` is None for lines written before operations were recorded (they hold
    uploads only). `problem` is set when the record names a path outside the
    functions folder or an id edgesync does not write: such a record is never
    trusted for drift or rollback.
    """

    id: str
    kind: str = "push"
    time: str = ""
    user: str = ""
    host: str = ""
    commit: str | None = None
    dirty: bool = False
    target: str = ""
    functions: tuple[str, ...] = ()
    deleted_functions: tuple[str, ...] = ()
    files: tuple[FileRecord, ...] = ()
    ops: tuple[Op, ...] | None = None
    before: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    after: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    version: str = ""
    rolled_back: tuple[str, ...] = ()
    restores_before: str | None = None
    reason: str = ""  # why a rollback was made ("verification failed": automatically)
    secrets_before: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    secrets_after: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    schema: int = 1
    problem: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Release:
        """Validate one decoded history line; BadRecord when the types are wrong."""
        if not isinstance(data, dict):
            raise BadRecord("not a JSON object")
        rid = _str(data, "id", required=True)
        ops = None
        raw_ops = data.get("ops")
        if raw_ops is not None:
            if not isinstance(raw_ops, list):
                raise BadRecord("ops: not a list")
            ops = tuple(_op(o) for o in raw_ops)
        files = data.get("files", [])
        if not isinstance(files, list):
            raise BadRecord("files: not a list")
        rec = cls(
            id=rid,
            kind=_str(data, "kind") or "push",
            time=_str(data, "time"),
            user=_str(data, "user"),
            host=_str(data, "host"),
            commit=_str(data, "commit") or None,
            dirty=bool(data.get("dirty", False)),
            target=_str(data, "target"),
            functions=_strs(data, "functions"),
            deleted_functions=_strs(data, "deleted_functions"),
            files=tuple(_file(f) for f in files),
            ops=ops,
            before=_hashes(data, "before"),
            after=_hashes(data, "after"),
            version=_str(data, "edgesync"),
            rolled_back=_strs(data, "rolled_back"),
            restores_before=_str(data, "restores_before") or None,
            reason=_str(data, "reason"),
            secrets_before=_hashes(data.get("secrets") or {}, "before"),
            secrets_after=_hashes(data.get("secrets") or {}, "after"),
            schema=_int(data, "schema", 1),
        )
        problem = rec.find_problem()
        return rec if problem is None else replace(rec, problem=problem)

    def find_problem(self) -> str | None:
        """Why this record must not be trusted, or None."""
        if not RELEASE_ID_RE.match(self.id):
            return f"the history names a release id edgesync did not write: {self.id!r}"
        for op in self.ops or ():
            if isinstance(op, SecretsOp):
                if not _safe_state_path(op.path):
                    return f"release {self.id} names an unsafe secrets file {op.path!r}"
                continue
            if not safe_path(op.where):
                return f"release {self.id} names an unsafe path {op.where!r}: refusing to roll back"
        for path in (*self.before, *self.after):
            if not safe_path(path):
                return f"release {self.id} names an unsafe path {path!r}: refusing to roll back"
        return None

    @property
    def touched_functions(self) -> tuple[str, ...]:
        """Function folders this release replaced or removed."""
        return (*self.functions, *self.deleted_functions)

    def to_json(self) -> dict[str, Any]:
        """The history line (schema 2)."""
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "id": self.id,
            "kind": self.kind,
            "time": self.time,
            "user": self.user,
            "host": self.host,
            "commit": self.commit,
            "dirty": self.dirty,
            "target": self.target,
            "functions": list(self.functions),
            "deleted_functions": list(self.deleted_functions),
            # a file's hash is in `after` already (only records without ops need it here)
            "files": [
                {"path": f.path, "action": f.action}
                | ({"sha256": f.sha256} if f.sha256 and self.after.get(f.path) != f.sha256 else {})
                for f in self.files
            ],
            "ops": [_op_json(op) for op in self.ops or ()],
            "before": dict(self.before),
            "after": dict(self.after),
            "edgesync": self.version,
        }
        if self.secrets_before or self.secrets_after:
            out["secrets"] = {
                "before": dict(self.secrets_before),
                "after": dict(self.secrets_after),
            }
        if self.kind == "rollback":
            out["rolled_back"] = list(self.rolled_back)
            out["restores_before"] = self.restores_before
            if self.reason:
                out["reason"] = self.reason
        return out


def _str(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRecord(f"{key}: expected a string")
    return value


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"{key}: expected a number")
    return value


def _strs(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRecord(f"{key}: expected a list of strings")
    return tuple(value)


def _hashes(data: Mapping[str, Any], key: str) -> Mapping[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadRecord(f"{key}: expected paths mapped to hashes")
    return MappingProxyType(dict(value))


def _file(f: object) -> FileRecord:
    if not isinstance(f, dict):
        raise BadRecord("files: expected objects")
    sha = f.get("sha256")
    if sha is not None and not isinstance(sha, str):
        raise BadRecord("files: sha256 is not a string")
    return FileRecord(_str(f, "path", required=True), _str(f, "action"), sha)


def _op(o: object) -> Op:
    if not isinstance(o, dict):
        raise BadRecord("ops: expected objects")
    kind = o.get("op")
    if kind == "function":
        return FunctionOp(_str(o, "name", required=True), bool(o.get("existed")))
    if kind == "put":
        return PutOp(_str(o, "path", required=True), bool(o.get("existed")))
    if kind == "delete":
        return DeleteOp(_str(o, "path", required=True), bool(o.get("is_function")))
    if kind == "secrets":
        return SecretsOp(_str(o, "path", required=True), bool(o.get("existed")))
    raise BadRecord(f"ops: unknown operation {kind!r}")


def _op_json(op: Op) -> dict[str, Any]:
    if isinstance(op, FunctionOp):
        return {"op": "function", "name": op.name, "existed": op.existed}
    if isinstance(op, PutOp):
        return {"op": "put", "path": op.path, "existed": op.existed}
    if isinstance(op, SecretsOp):
        return {"op": "secrets", "path": op.path, "existed": op.existed}
    return {"op": "delete", "path": op.path, "is_function": op.is_function}


class IncompleteHistory(RuntimeError):
    """Every release was asked of a history read through its index (a bug: read it whole)."""


@dataclass(frozen=True)
class History:
    """The releases on the server, oldest first, and the lines that could not be read.

    Read whole (`index` None), `tail` holds every release. Read through the server's
    index (`HistoryIndex`: what the releases it covers leave behind), `tail` holds only
    the releases recorded after it: enough for drift, the latest release, retention and
    the last release of each function, not for `releases` (rollback, repair and
    `history` read the history whole).
    """

    tail: tuple[Release, ...] = ()
    skipped: tuple[str, ...] = ()  # "history.jsonl line N: why", for warnings
    lines: tuple[str, ...] = ()  # the text of each readable line read (what a repair keeps)
    index: HistoryIndex | None = None
    tail_bytes: int = 0  # the size of the text after the index (what the next index saves)

    @property
    def complete(self) -> bool:
        """True when every release was read (not through an index)."""
        return self.index is None

    @property
    def releases(self) -> tuple[Release, ...]:
        """Every release, oldest first; IncompleteHistory when read through the index."""
        if self.index is not None:
            raise IncompleteHistory("this command needs the whole history: read it with full=True")
        return self.tail

    @property
    def latest(self) -> Release | None:
        """The newest release (from the index: its summary, without file lists), or None."""
        if self.tail:
            return self.tail[-1]
        return self.index.latest if self.index is not None else None

    @property
    def ids(self) -> list[str]:
        """Release ids, oldest first (through the index: its newest INDEX_IDS, then the tail)."""
        return [*(self.index.ids if self.index else ()), *(r.id for r in self.tail)]

    @property
    def failed(self) -> frozenset[str]:
        """Releases whose functions did not boot (edgesync rolled them back at once)."""
        return (self.index.failed if self.index else frozenset()) | failed_ids(self.tail)

    @property
    def recorded(self) -> Recorded:
        """The server as the history says edgesync left it."""
        return recorded_state(self)

    @property
    def last_release(self) -> dict[str, str]:
        """For each function folder, the newest release that replaced or removed it."""
        return last_release_of(self)

    def wants_index(self, record_bytes: int = 0) -> bool:
        """Whether a release (whose history line is `record_bytes` long) should leave a new
        index: when there is none, or when the lines after it would grow too long to send
        with every listing."""
        if self.index is None:  # but the first release: its line is as short as an index
            return bool(self.tail)
        return (
            len(self.tail) + 1 > INDEX_TAIL_RELEASES
            or self.tail_bytes + record_bytes > INDEX_TAIL_BYTES
        )

    def index_after(self, record: Release | None = None) -> HistoryIndex:
        """The index of this history with `record` appended (what a release leaves)."""
        tail = (*self.tail, record) if record is not None else self.tail
        base = self.index
        replay = _Replay(base)
        for rec in tail:
            replay.apply(rec)
        recorded = replay.result()
        last = dict(base.last_release) if base else {}
        last.update(last_release_of(tail))
        ids = [*(base.ids if base else ()), *(r.id for r in tail)][-INDEX_IDS:]
        kept_ids = set(ids)
        failed = (base.failed if base else frozenset()) | failed_ids(tail)
        latest = tail[-1] if tail else (base.latest if base else None)
        return HistoryIndex(
            files=recorded.files,
            functions=recorded.functions,
            last_release=last,
            ids=tuple(ids),
            failed=frozenset(r for r in failed if r in kept_ids),
            latest=latest,
            skipped=self.skipped,
        )


# A release rewrites the index once this many releases, or bytes of history, follow it: until
# then the listing sends the index and those lines (a push of one function adds ~2 KB).
INDEX_TAIL_RELEASES = 50
INDEX_TAIL_BYTES = 64 << 10
INDEX_IDS = (
    200  # release ids an index keeps: retention and lost-connection checks look at the newest
)
INDEX_FORMAT = 1


@dataclass(frozen=True)
class HistoryIndex:
    """What the server keeps beside history.jsonl (`history.idx`, written at each commit
    that asks for it): what the releases it covers leave behind. A cache of the history,
    never its replacement: the server sends it only while the history still starts with
    the lines it was made from (see scripts/snapshot.sh)."""

    files: Mapping[str, str]  # the recorded state: path -> sha256
    functions: frozenset[str]  # function folders edgesync manages whole
    last_release: Mapping[str, str]  # function -> the newest release that replaced or removed it
    ids: tuple[str, ...]  # the newest INDEX_IDS release ids, oldest first
    failed: frozenset[str]  # among them, those that did not boot
    latest: Release | None  # the newest release, without its file lists
    skipped: tuple[str, ...] = ()  # the unreadable lines among those it covers
    lines: int = 0  # how many lines of history.jsonl it covers (the server's count)

    def to_json(self) -> dict[str, Any]:
        """The index as the server keeps it (one JSON line)."""
        latest = None
        if self.latest is not None:
            full = self.latest.to_json()
            latest = {k: v for k, v in full.items() if k not in _DETAILS}
        return {
            "format": INDEX_FORMAT,
            "files": dict(self.files),
            "functions": sorted(self.functions),
            "last_release": dict(self.last_release),
            "ids": list(self.ids),
            "failed": sorted(self.failed),
            "latest": latest,
            "skipped": list(self.skipped),
        }

    @classmethod
    def from_json(cls, data: object, lines: int) -> HistoryIndex:
        """Validate an index read from the server; BadRecord when it is not one edgesync wrote."""
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
            raise BadRecord("not a history index edgesync can read")
        files = _hashes(data, "files")
        if not all(safe_path(p) and _SHA256.match(h) for p, h in files.items()):
            raise BadRecord("the index names an unsafe path or a malformed hash")
        functions = _strs(data, "functions")
        last = _hashes(data, "last_release")
        ids = _strs(data, "ids")
        failed = _strs(data, "failed")
        named = (*functions, *last)
        if not all(safe_path(n) and "/" not in n for n in named):
            raise BadRecord("the index names an unsafe function folder")
        if not all(RELEASE_ID_RE.match(i) for i in (*ids, *failed, *last.values())):
            raise BadRecord("the index names a release id edgesync did not write")
        raw_latest = data.get("latest")
        latest = None if raw_latest is None else Release.from_json(raw_latest)
        if latest is not None and latest.problem is not None:
            raise BadRecord(latest.problem)
        return cls(
            files=files,
            functions=frozenset(functions),
            last_release=last,
            ids=tuple(ids),
            failed=frozenset(failed),
            latest=latest,
            skipped=_strs(data, "skipped"),
            lines=lines,
        )


_DETAILS = frozenset({"files", "ops", "before", "after", "secrets"})  # left out of `latest`
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def failed_ids(releases: Iterable[Release]) -> frozenset[str]:
    """Releases an automatic rollback undid because their functions did not boot."""
    return frozenset(
        rid
        for rec in releases
        if rec.kind == "rollback" and rec.reason == VERIFY_FAILED
        for rid in rec.rolled_back
    )


def parse_history(
    text: str,
    name: str = "history.jsonl",
    *,
    index: HistoryIndex | None = None,
) -> History:
    """Read history.jsonl; unreadable lines are skipped and named in `skipped`.

    With `index`, `text` is what follows the lines the index covers.
    """
    releases: list[Release] = []
    skipped: list[str] = list(index.skipped) if index else []
    lines: list[str] = []
    first = index.lines + 1 if index else 1
    for number, line in enumerate(text.splitlines(), first):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_LINE:
                raise BadRecord("line too long")
            releases.append(Release.from_json(json.loads(line)))
            lines.append(line)
        except (BadRecord, ValueError, RecursionError) as e:
            skipped.append(f"{name} line {number}: {str(e)[:200]}")
    return History(
        tuple(releases),
        tuple(skipped),
        tuple(lines),
        index=index,
        tail_bytes=len(text.encode("utf-8", "surrogateescape")) if index else 0,
    )


def history_of(records: Iterable[Mapping[str, Any] | Release]) -> tuple[Release, ...]:
    """Releases from decoded records (or releases), for callers and tests holding dicts."""
    return tuple(r if isinstance(r, Release) else Release.from_json(dict(r)) for r in records)


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class Recorded:
    """The server as the history says edgesync left it."""

    files: Mapping[str, str]  # path -> sha256
    functions: frozenset[str]  # function folders edgesync manages whole


def recorded_state(history: History | Iterable[Release | Mapping[str, Any]]) -> Recorded:
    """Replay the history, oldest first (records with a problem are not trusted); a
    history read through its index starts from the state the index recorded."""
    if isinstance(history, History):
        replay = _Replay(history.index)
        releases: Iterable[Release] = history.tail
    else:
        replay = _Replay(None)
        releases = history_of(history)
    for rec in releases:
        replay.apply(rec)
    return replay.result()


class _Replay:
    """The recorded state, grouped by top-level entry: replaying a release costs what it
    touches, not the size of the tree."""

    def __init__(self, index: HistoryIndex | None) -> None:
        self.by_top: dict[str, dict[str, str]] = {}
        for path, sha in (index.files if index else {}).items():
            self.by_top.setdefault(top_of(path), {})[path] = sha
        self.functions = set(index.functions) if index else set()

    def drop(self, path: str) -> None:
        """Forget `path` and everything under it."""
        top = top_of(path)
        if path == top:
            self.by_top.pop(top, None)
            return
        group = self.by_top.get(top, {})
        for p in [p for p in group if p == path or p.startswith(path + "/")]:
            del group[p]

    def put(self, path: str, sha: str) -> None:
        self.by_top.setdefault(top_of(path), {})[path] = sha

    def apply(self, rec: Release) -> None:
        if rec.problem is not None:
            return
        if rec.ops is None:  # recorded before ops existed: uploads only
            for f in rec.files:
                if f.action == "upload" and f.sha256:
                    self.put(f.path, f.sha256)
            return
        for op in rec.ops:
            if isinstance(op, FunctionOp):
                self.drop(op.name)
                self.functions.add(op.name)
            elif isinstance(op, DeleteOp):
                self.drop(op.path)
                self.functions.discard(op.path)
        for path, sha in rec.after.items():
            self.put(path, sha)

    def result(self) -> Recorded:
        files = {p: sha for group in self.by_top.values() for p, sha in group.items()}
        return Recorded(files, frozenset(self.functions))


def drifted(
    remote: Manifest, history: History | Iterable[Release | Mapping[str, Any]]
) -> tuple[str, ...]:
    """Server paths that differ from what the last release recorded for them:
    edited, deleted or (inside a managed function folder) added by hand."""
    rec = recorded_state(history)
    out = {
        p for p, sha in rec.files.items() if (e := remote.files.get(p)) is None or e.sha256 != sha
    }
    out |= {p for p in remote.files if top_of(p) in rec.functions and p not in rec.files}
    return tuple(sorted(out))


def refuse_links(links: Sequence[str], where: str) -> None:
    """Exit 5 when a release would write through a symbolic link on the server."""
    if links:
        raise RemoteError(
            f"{', '.join(links)} in {where} is a symbolic link on the server: edgesync never "
            "writes, moves or deletes through one",
            hint="replace the link with a real folder or file on the server, then push again",
        )


def refuse_drift(drift: Sequence[str], *, force: bool, hint: str) -> None:
    """Exit 8 when a release would overwrite files changed on the server outside edgesync."""
    if drift and not force:
        shown = ", ".join(drift[:5]) + (f" and {len(drift) - 5} more" if len(drift) > 5 else "")
        raise DriftError(f"changed on the server outside edgesync: {shown}", hint=hint)


def last_release_of(history: History | Iterable[Release]) -> dict[str, str]:
    """For each function folder, the newest release that replaced or removed it."""
    last: dict[str, str] = {}
    if isinstance(history, History):
        last.update(history.index.last_release if history.index else {})
        history = history.tail
    for rec in history:  # oldest first: later releases win
        for name in rec.touched_functions:
            last[name] = rec.id
    return last


# --------------------------------------------------------------------------- rollback


@dataclass(frozen=True)
class RollbackPlan:
    """A rollback is a release too: its plan, the hashes it restores, the releases it undoes."""

    plan: PushPlan
    expected: Mapping[str, str]
    undone: tuple[str, ...]  # release ids, oldest first
    before_release: str  # the release the server goes back to before
    secrets: SecretsChange | None = None  # the secrets file it restores (or removes)
    secrets_digests: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def rollback_plan(
    history: Sequence[Release | Mapping[str, Any]],
    kept: Collection[str],
    remote: Manifest,
    release: str | None,
    *,
    allow_failed: bool = False,
) -> RollbackPlan:
    """Undo `release` (default: the latest) and every release after it.

    For each function or file those releases touched, the state before the
    oldest of them to touch it comes back from that release's backup.
    """
    undone = _releases_to_undo(history_of(history), kept, release, allow_failed=allow_failed)
    functions: list[ReplaceFunction] = []
    puts: list[PutFile] = []
    deletes: list[DeletePath] = []
    expected: dict[str, str] = {}
    secrets: SecretsChange | None = None
    digests: Mapping[str, str] = MappingProxyType({})
    touches = _first_touches(undone)
    order = {r.id: i for i, r in enumerate(undone)}
    whole = {
        name: order[rid] for (kind, name), (rid, _, _) in touches.items() if kind == "function"
    }
    inside: list[tuple[str, str, Op, Mapping[str, str]]] = []  # file ops in a folder restored whole
    for (kind, name), (rid, op, before) in sorted(touches.items()):
        if kind == "file" and top_of(name) in whole:
            # the folder comes back whole; a file changed on its own before the folder was
            # is restored over that copy (folded in below), a later change is part of it
            if order[rid] < whole[top_of(name)]:
                inside.append((name, rid, op, before))
            continue
        if isinstance(op, SecretsOp):
            source = f"releases/{rid}/secrets.before" if op.existed else None
            secrets = SecretsChange(op.path, source, existed=True)
            digests = next(r.secrets_before for r in undone if r.id == rid)
            continue
        existed_before = isinstance(op, DeleteOp) or op.existed
        source = f"releases/{rid}/before/{name}"
        now = name in remote.folders if kind == "function" else name in remote.files
        if kind == "function" and existed_before:
            functions.append(ReplaceFunction(name, now, (), (), (), source=source))
            expected.update({p: s for p, s in before.items() if top_of(p) == name})
        elif existed_before:
            puts.append(PutFile(name, existed=now, source=source))
            if name in before:
                expected[name] = before[name]
        elif now:
            deletes.append(DeletePath(name, is_function=kind == "function"))
    functions = [_fold_in(fn, inside, expected) for fn in functions]
    plan = PushPlan(tuple(functions), tuple(puts), tuple(deletes), compare(remote, remote, {}))
    return RollbackPlan(plan, expected, tuple(r.id for r in undone), undone[0].id, secrets, digests)


def _fold_in(
    fn: ReplaceFunction,
    inside: Sequence[tuple[str, str, Op, Mapping[str, str]]],
    expected: dict[str, str],
) -> ReplaceFunction:
    """A function restored whole, with the files an older release changed on their own in its
    folder set back in its staged copy: never put or deleted in the live folder after the
    swap (their backups would meet the function's own in the release, and an undo would
    take them out of it)."""
    overlay: list[tuple[str, str]] = []
    unstage: list[str] = []
    for name, rid, op, before in inside:
        if top_of(name) != fn.name:
            continue
        if isinstance(op, DeleteOp) or op.existed:
            overlay.append((name, f"releases/{rid}/before/{name}"))
            if name in before:
                expected[name] = before[name]
        else:
            unstage.append(name)
            expected.pop(name, None)
    if not overlay and not unstage:
        return fn
    return replace(fn, overlay=tuple(overlay), unstage=tuple(unstage))


def resolve_release_id(ids: Sequence[str], given: str) -> str:
    """A release id, or a prefix of exactly one (like git's short hashes)."""
    if given in ids:
        return given
    matches = [i for i in ids if given and i.startswith(given)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(
            f"'{given}' names several releases: {', '.join(matches[-5:])}",
            hint="give more of the id",
        )
    raise UsageError(
        f"no release '{given}' on the server",
        hint="recent releases: " + ", ".join(reversed(ids[-5:])),
    )


def default_rollback_target(releases: Sequence[Release]) -> str:
    """The newest release that is neither failed nor an automatic rollback of one: undoing
    it (and what came after) never brings a release that did not boot back."""
    failed = failed_ids(releases)
    for rec in reversed(releases):
        if rec.id not in failed and not (rec.kind == "rollback" and rec.reason == VERIFY_FAILED):
            return rec.id
    return releases[-1].id


def _releases_to_undo(
    releases: Sequence[Release], kept: Collection[str], release: str | None, *, allow_failed: bool
) -> Sequence[Release]:
    """`release` and every later one, each checked to be undoable (exit 2 otherwise)."""
    if not releases:
        raise UsageError("no release is recorded on the server: nothing to roll back")
    ids = [r.id for r in releases]
    chosen = default_rollback_target(releases) if release is None else release
    start = ids.index(resolve_release_id(ids, chosen))
    failed = failed_ids(releases)
    if start > 0 and ids[start - 1] in failed and not allow_failed:
        raise UsageError(
            f"rolling back {ids[start]} would bring back release {ids[start - 1]}, whose "
            "functions did not boot",
            hint="pass --allow-failed to restore it anyway",
        )
    undone = releases[start:]
    for rec in undone:
        if rec.ops is None:
            raise UsageError(f"release {rec.id} was recorded without the details a rollback needs")
        if rec.id not in kept:
            raise UsageError(
                f"the backups of release {rec.id} were removed (keep_releases): "
                f"cannot roll back to before {undone[0].id}",
                hint="the oldest release that can be undone is "
                + next((i for i in ids if i in kept), "none"),
            )
    for rec in undone:
        if rec.problem is not None:
            raise UsageError(rec.problem, hint="the history on the server was edited by hand")
    return undone


def _first_touches(
    undone: Sequence[Release],
) -> dict[tuple[str, str], tuple[str, Op, Mapping[str, str]]]:
    """For each function or file, the oldest undone release that touched it, and how."""
    first: dict[tuple[str, str], tuple[str, Op, Mapping[str, str]]] = {}
    for rec in undone:
        for op in rec.ops or ():
            if isinstance(op, FunctionOp):
                key = ("function", op.name)
            elif isinstance(op, SecretsOp):
                key = ("secrets", op.path)
            elif isinstance(op, DeleteOp):
                key = ("function" if op.is_function else "file", op.path)
            else:
                key = ("file", op.path)
            first.setdefault(key, (rec.id, op, rec.before))
    return first


# --------------------------------------------------------------------------- new releases


def new_release_id(now: datetime | None = None) -> str:
    """Unique and readable: UTC time to the second plus random hex (order: the history's)."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def to_retire(
    kept: Collection[str], history: Sequence[str], rid: str, keep: int
) -> tuple[str, ...]:
    """Release ids whose backups go once `rid` is recorded: all but the newest `keep`.

    Newest is by position in the history (ids made in the same second do not
    sort by time); backups of releases the history does not know (an
    interrupted push that was undone) go first.
    """
    position = {r: i for i, r in enumerate(history)}
    order = sorted(kept, key=lambda r: position.get(r, -1))  # oldest first
    newest_first = [rid, *reversed([r for r in order if r != rid])]
    return tuple(sorted(newest_first[keep:]))


def replaced_on_server(plan: PushPlan, remote: Manifest) -> dict[str, str]:
    """Server hashes of everything a release replaces or removes (what its backup keeps)."""
    before: dict[str, str] = {}
    for fn in plan.functions:
        before.update({p: e.sha256 for p, e in remote.under(fn.name).items()})
    for put in plan.puts:
        if put.path in remote.files:
            before[put.path] = remote.files[put.path].sha256
    for d in plan.deletes:
        before.update({p: e.sha256 for p, e in remote.under(d.path).items()})
    return before


def installed_by_push(plan: PushPlan, local: Manifest) -> dict[str, str]:
    """Local hashes of everything a push installs (what the server must hold after it)."""
    after: dict[str, str] = {}
    for fn in plan.functions:
        after.update({p: local.files[p].sha256 for p in (*fn.upload, *fn.keep)})
    for put in plan.puts:
        after[put.path] = local.files[put.path].sha256
    return after


def upload_modes(plan: PushPlan, local: Manifest, remote: Manifest) -> dict[str, int]:
    """The mode each uploaded file gets: its local mode, never wider than the server's
    file it replaces (a file chmodded 0600 on the server stays 0600)."""
    modes: dict[str, int] = {}
    for path in plan.uploads:
        mine = local.files[path].mode
        if mine is None:
            continue
        theirs = remote.files[path].mode if path in remote.files else None
        modes[path] = mine & theirs if theirs is not None else mine
    return modes


def plan_ops(plan: PushPlan) -> tuple[Op, ...]:
    """The plan's operations as recorded in the release (what rollback undoes)."""
    ops: list[Op] = [FunctionOp(f.name, f.existed) for f in plan.functions]
    ops += [PutOp(p.path, p.existed) for p in plan.puts]
    ops += [DeleteOp(d.path, d.is_function) for d in plan.deletes]
    return tuple(ops)


@dataclass(frozen=True)
class Actor:
    """Who makes a release: recorded in the history and in the lock."""

    user: str
    host: str
    pid: int
    commit: str | None
    dirty: bool
    version: str

    @property
    def short_commit(self) -> str:
        """e.g. `1a2b3c4d+dirty`, or `-` outside git."""
        if self.commit is None:
            return "-"
        return self.commit[:8] + ("+dirty" if self.dirty else "")


@dataclass(frozen=True)
class SecretsChange:
    """The secrets file a release replaces: from `source` (under the state folder), or removed."""

    file: str  # relative to project_dir
    source: str | None  # e.g. staging/<id>/secrets.new or releases/<id>/secrets.before
    existed: bool


@dataclass(frozen=True)
class Bundle:
    """Everything one release sends: the plan, its record, the hashes staged files must have."""

    rid: str
    plan: PushPlan
    record: Release
    expected: Mapping[str, str]
    retire: tuple[str, ...] = ()
    modes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    secrets: SecretsChange | None = None  # the secrets file this release replaces
    secrets_text: str | None = None  # its new text (a rollback restores a backup instead)


def build_bundle(
    plan: PushPlan,
    *,
    kind: Literal["push", "rollback", "secrets"],
    remote: Manifest,
    expected: Mapping[str, str],
    history: History,
    kept: Collection[str],
    keep: int,
    actor: Actor,
    target: str,
    rid: str | None = None,
    now: datetime | None = None,
    rolled_back: tuple[str, ...] = (),
    restores_before: str | None = None,
    modes: Mapping[str, int] | None = None,
    reason: str = "",
    secrets: SecretsChange | None = None,
    secrets_text: str | None = None,
    secrets_digests: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
) -> Bundle:
    """The release a push or a rollback sends: its record, expected hashes, backups to retire.

    `expected` maps every path the release installs to its hash (the record's
    `after`); what it replaces is read off `remote` (the record's `before`).
    """
    rid = rid or new_release_id(now)
    now = now or datetime.now(timezone.utc)
    action = "upload" if kind == "push" else "restore"
    installed = (*plan.uploads, *(x.path for x in plan.puts if x.source is not None))
    files = [FileRecord(p, action, expected[p]) for p in installed if p in expected]
    files += [FileRecord(f.name, action) for f in plan.functions if f.source is not None]
    files += [FileRecord(p, "delete") for p in plan.removed]
    record = Release(
        id=rid,
        kind=kind,
        time=now.isoformat(timespec="seconds"),
        user=actor.user,
        host=actor.host,
        commit=actor.commit,
        dirty=actor.dirty,
        target=target,
        functions=tuple(f.name for f in plan.functions),
        deleted_functions=tuple(d.path for d in plan.deletes if d.is_function),
        files=tuple(files),
        ops=plan_ops(plan)
        + ((SecretsOp(secrets.file, secrets.existed),) if secrets is not None else ()),
        before=MappingProxyType(replaced_on_server(plan, remote)),
        after=MappingProxyType(dict(expected)),
        version=actor.version,
        rolled_back=rolled_back,
        restores_before=restores_before,
        reason=reason,
        secrets_before=MappingProxyType(dict(secrets_digests[0] if secrets_digests else {})),
        secrets_after=MappingProxyType(dict(secrets_digests[1] if secrets_digests else {})),
        schema=SCHEMA,
    )
    retire = to_retire(kept, history.ids, rid, keep)
    return Bundle(
        rid,
        plan,
        record,
        MappingProxyType(dict(expected)),
        retire,
        MappingProxyType(modes or {}),
        secrets,
        secrets_text,
    )
