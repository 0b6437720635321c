"""Pure reasoning over the release history: what edgesync last put on the server
(drift detection) and what restores the state before a release (rollback)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from edgesync.errors import UsageError
from edgesync.manifest import Manifest, is_ignored, top_of
from edgesync.plan import DeletePath, PushPlan, PutFile, ReplaceFunction, compare

_RELEASE_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]+$")


def _safe_path(path: object) -> bool:
    """A relative path inside the functions folder: no `..`, not absolute, not empty."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\0" in path:
        return False
    return ".." not in PurePosixPath(path).parts and not is_ignored(path)


@dataclass(frozen=True)
class Recorded:
    """The server as the history says edgesync left it."""

    files: Mapping[str, str]  # path -> sha256
    functions: frozenset[str]  # function folders edgesync manages whole


def recorded_state(history: Sequence[Mapping[str, Any]]) -> Recorded:
    """Replay the history, oldest first."""
    files: dict[str, str] = {}
    functions: set[str] = set()
    for rec in history:
        ops = rec.get("ops")
        if not isinstance(ops, list):  # recorded before ops existed: uploads only
            for f in rec.get("files", []):
                if f.get("action") == "upload" and f.get("sha256"):
                    files[f["path"]] = f["sha256"]
            continue
        for op in ops:
            if op.get("op") == "function":
                name = op["name"]
                _drop(files, name)
                functions.add(name)
            elif op.get("op") == "delete":
                _drop(files, op["path"])
                functions.discard(op["path"])
        files.update(rec.get("after") or {})
    return Recorded(files, frozenset(functions))


def _drop(files: dict[str, str], top: str) -> None:
    for p in [p for p in files if p == top or p.startswith(top + "/")]:
        del files[p]


def drifted(remote: Manifest, history: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Server paths that differ from what the last release recorded for them:
    edited, deleted or (inside a managed function folder) added by hand."""
    rec = recorded_state(history)
    out = {
        p for p, sha in rec.files.items() if (e := remote.files.get(p)) is None or e.sha256 != sha
    }
    out |= {p for p in remote.files if top_of(p) in rec.functions and p not in rec.files}
    return tuple(sorted(out))


@dataclass(frozen=True)
class RollbackPlan:
    """A rollback is a release too: its plan, the hashes it restores, the releases it undoes."""

    plan: PushPlan
    expected: Mapping[str, str]
    undone: tuple[str, ...]  # release ids, oldest first
    before_release: str  # the release the server goes back to before


def rollback_plan(
    history: Sequence[Mapping[str, Any]],
    kept: Collection[str],
    remote: Manifest,
    release: str | None,
) -> RollbackPlan:
    """Undo `release` (default: the latest) and every release after it.

    For each function or file those releases touched, the state before the
    oldest of them to touch it comes back from that release's backup.
    """
    if not history:
        raise UsageError("no release is recorded on the server: nothing to roll back")
    ids = [str(r.get("id")) for r in history]
    if release is None:
        start = len(history) - 1
    elif release in ids:
        start = ids.index(release)
    else:
        raise UsageError(
            f"no release '{release}' on the server",
            hint="recent releases: " + ", ".join(reversed(ids[-5:])),
        )
    undone = history[start:]
    for rec in undone:
        if not isinstance(rec.get("ops"), list):
            raise UsageError(
                f"release {rec.get('id')} was recorded without the details a rollback needs"
            )
        if rec["id"] not in kept:
            raise UsageError(
                f"the backups of release {rec['id']} were removed (keep_releases): "
                f"cannot roll back to before {undone[0]['id']}",
                hint="the oldest release that can be undone is "
                + next((i for i in ids if i in kept), "none"),
            )
    first: dict[tuple[str, str], tuple[str, Mapping[str, Any], Mapping[str, str]]] = {}
    for rec in undone:
        if not _RELEASE_ID_RE.match(str(rec["id"])):
            raise UsageError(
                f"the history names a release id edgesync did not write: {rec['id']!r}"
            )
        for op in rec["ops"]:
            where = op.get("name") if op.get("op") == "function" else op.get("path")
            if not _safe_path(where):
                raise UsageError(
                    f"release {rec['id']} names an unsafe path {where!r}: refusing to roll back",
                    hint="the history on the server was edited by hand",
                )
            if op["op"] == "function":
                key = ("function", op["name"])
            elif op["op"] == "delete":
                key = ("function" if op.get("is_function") else "file", op["path"])
            else:
                key = ("file", op["path"])
            first.setdefault(key, (rec["id"], op, rec.get("before") or {}))
    functions: list[ReplaceFunction] = []
    puts: list[PutFile] = []
    deletes: list[DeletePath] = []
    expected: dict[str, str] = {}
    for (kind, name), (rid, op, before) in sorted(first.items()):
        existed_before = op["op"] == "delete" or bool(op.get("existed"))
        source = f"releases/{rid}/before/{name}"
        now = name in remote.folders if kind == "function" else name in remote.files
        if kind == "function":
            if existed_before:
                functions.append(ReplaceFunction(name, now, (), (), (), source=source))
                expected.update({p: s for p, s in before.items() if top_of(p) == name})
            elif now:
                deletes.append(DeletePath(name, True))
        elif existed_before:
            puts.append(PutFile(name, now, source=source))
            if name in before:
                expected[name] = before[name]
        elif now:
            deletes.append(DeletePath(name, False))
    plan = PushPlan(tuple(functions), tuple(puts), tuple(deletes), compare(remote, remote, {}))
    return RollbackPlan(plan, expected, tuple(str(r["id"]) for r in undone), str(undone[0]["id"]))
