"""Apply a PushPlan: one exec channel carries a tar stream with the changed files and
the generated scripts; the server locks, stages, verifies, swaps and records.

Server layout (all under `<project_dir>/.edgesync/`, never in the mounted folder):

    lock/info.json            who holds the deploy lock (mkdir is the atomic step)
    staging/<id>/new/...      the complete new function folders and files
    releases/<id>/before/...  what the release replaced (for rollback)
    releases/<id>/undo.sh     restores `before/`; also repairs an interrupted swap
    journal                   the id of a release whose swap has not finished
    history.jsonl             one JSON line per release

Once the upload is complete the server needs nothing more from the client:
the rest runs with SIGHUP/SIGINT ignored, so a dropped connection cannot leave
a function half swapped. A journal left by a killed server process is undone
by the next push before anything else.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import stat
import tarfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from edgesync import __version__
from edgesync.config import Target
from edgesync.errors import LockedError, RemoteError
from edgesync.manifest import Manifest
from edgesync.plan import PushPlan
from edgesync.remote.ssh import Connection, quote, sh_script
from edgesync.vcs import GitState

STALE_PLAN = 75  # the server changed between planning and locking: plan again
CHUNK = 1 << 16

# Runs first, on the server: lock, receive the tar, hand over to apply.sh.
BOOTSTRAP = r"""
state=$1 fd=$2 rid=$3 info=$4
[ -d "$fd" ] || { echo "the functions folder $fd does not exist" >&2; exit 11; }
mkdir -p "$state/releases" "$state/staging" || exit 20
if ! mkdir "$state/lock" 2>/dev/null; then
  cat "$state/lock/info.json" 2>/dev/null || echo '{}'
  exit 6
fi
printf '%s\n' "$info" > "$state/lock/info.json"
echo $$ > "$state/lock/pid"
stage="$state/staging/$rid"
unlock() { rm -rf "$stage"; rm -rf "$state/lock"; }
trap 'unlock; exit 130' INT TERM HUP PIPE
if [ -f "$state/journal" ]; then
  old=$(cat "$state/journal")
  if [ -f "$state/releases/$old/undo.sh" ]; then
    sh "$state/releases/$old/undo.sh" "$fd" "$state/releases/$old" >&2 || { unlock; exit 22; }
  fi
  rm -f "$state/journal"
  printf 'recovered %s\n' "$old"
fi
for left in "$state"/staging/*; do [ -e "$left" ] && rm -rf "$left"; done
mkdir -p "$stage/new" || { unlock; exit 20; }
if ! tar -x -o -f - -C "$stage"; then
  echo "the upload was interrupted" >&2; unlock; exit 21
fi
trap '' INT HUP PIPE
sh "$stage/apply.sh" "$state" "$fd" "$rid"
rc=$?
unlock
exit $rc
"""


@dataclass(frozen=True)
class PushResult:
    """What a push did."""

    target: str
    release: str | None
    functions: tuple[str, ...]
    uploaded: tuple[str, ...]
    deleted: tuple[str, ...]
    bytes_sent: int
    recovered: str | None
    seconds: float


def new_release_id(now: datetime | None = None) -> str:
    """Unique and readable: UTC time to the second plus random hex (order: the history's)."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def _q(root: str, path: str) -> str:
    """A shell word for `$root/path` with the path quoted literally."""
    return f'"${root}"/' + quote(path)


def _parents(path: str) -> str:
    return str(PurePosixPath(path).parent)


def apply_script(plan: PushPlan, expected: Mapping[str, str], retire: Sequence[str] = ()) -> str:
    """apply.sh: build staged folders, verify them, swap, record, retire old backups.

    `expected` maps every staged path to the sha256 it must have; `retire` lists
    release ids whose backups are deleted once this release is recorded. Pure text.
    """
    lines = [
        "set -u",
        "state=$1 fd=$2 rid=$3",
        'S="$state/staging/$rid"; R="$state/releases/$rid"; N="$S/new"',
        'fail() { echo "edgesync: $*" >&2; exit 5; }',
        'stale() { echo "edgesync: $*" >&2; exit 75; }',
        "# 1. complete the staged folders: unchanged files and restored backups",
    ]
    for fn in plan.functions:
        if fn.source is not None:
            lines.append(
                f"cp -Rp {_q('state', fn.source)} {_q('N', fn.name)}"
                f" || fail cannot restore {quote(fn.name)} from {quote(fn.source)}"
            )
            continue
        lines.append(f"mkdir -p {_q('N', fn.name)} || fail cannot stage {quote(fn.name)}")
        for path in fn.keep:
            lines.append(
                f"mkdir -p {_q('N', _parents(path))} && cp -p {_q('fd', path)} {_q('N', path)}"
                f" || stale {quote(path)} changed on the server"
            )
    for put in plan.puts:
        if put.source is not None:
            lines.append(
                f"mkdir -p {_q('N', _parents(put.path))} && "
                f"cp -p {_q('state', put.source)} {_q('N', put.path)}"
                f" || fail cannot restore {quote(put.path)} from {quote(put.source)}"
            )
    lines.append("# 2. verify every staged file against its expected hash")
    lines.append('cd "$N" || fail cannot enter staging')
    lines.append(
        "[ ! -s ../checksums ] || sha256sum -c ../checksums >/dev/null 2>&1"
        " || stale staged files do not match"
    )
    for path in sorted(expected):
        if "\n" in path or "\\" in path:
            lines.append(
                f'[ "$(sha256sum < {quote(path)})" = {quote(expected[path] + "  -")} ]'
                f" || stale {quote(path)} does not match"
            )
    lines.append("cd / || true")
    lines.append("# 3. swap, keeping what is replaced in the release")
    lines.append('mkdir -p "$R/before" || fail cannot create the release folder')
    lines.append('cp "$S/undo.sh" "$S/release.json" "$R/" || fail cannot write the release')
    lines.append('printf "%s\\n" "$rid" > "$state/journal" || fail cannot write the journal')
    undo = 'sh "$R/undo.sh" "$fd" "$R" >&2; rm -f "$state/journal"'
    lines.append(f'abort() {{ echo "edgesync: $*" >&2; {undo}; exit 5; }}')
    for fn in plan.functions:
        if fn.existed:
            lines.append(
                f"if [ -e {_q('fd', fn.name)} ]; then "
                f"mv {_q('fd', fn.name)} {_q('R', 'before/' + fn.name)}"
                f" || abort cannot move {quote(fn.name)}; fi"
            )
        lines.append(
            f"mv {_q('N', fn.name)} {_q('fd', fn.name)} || abort cannot install {quote(fn.name)}"
        )
    for put in plan.puts:
        parent = _parents(put.path)
        if put.existed:
            lines.append(
                f"mkdir -p {_q('R', 'before/' + parent)} && "
                f"cp -p {_q('fd', put.path)} {_q('R', 'before/' + put.path)}"
                f" || abort cannot back up {quote(put.path)}"
            )
        lines.append(
            f"mkdir -p {_q('fd', parent)} && mv -f {_q('N', put.path)} {_q('fd', put.path)}"
            f" || abort cannot install {quote(put.path)}"
        )
    for d in plan.deletes:
        lines.append(
            f"mkdir -p {_q('R', 'before/' + _parents(d.path))} && "
            f"mv {_q('fd', d.path)} {_q('R', 'before/' + d.path)}"
            f" || abort cannot remove {quote(d.path)}"
        )
    lines.append("# 4. the release is complete once it is in the history")
    lines.append(
        'cat "$S/history.json" >> "$state/history.jsonl" || abort cannot write the history'
    )
    lines.append('rm -f "$state/journal"')
    for old in retire:
        lines.append(f"rm -rf {_q('state', 'releases/' + old)}")
    lines.append('printf "released %s\\n" "$rid"')
    return "\n".join(lines) + "\n"


def undo_script(plan: PushPlan) -> str:
    """undo.sh FD R: put back what the release replaced; safe at any point of the swap."""
    lines = ["set -u", "fd=$1 R=$2", "rc=0"]
    for d in reversed(plan.deletes):
        lines.append(
            f"if [ -e {_q('R', 'before/' + d.path)} ] && [ ! -e {_q('fd', d.path)} ]; then "
            f"mkdir -p {_q('fd', _parents(d.path))}; "
            f"mv {_q('R', 'before/' + d.path)} {_q('fd', d.path)} || rc=1; fi"
        )
    for put in reversed(plan.puts):
        if put.existed:
            lines.append(
                f"if [ -e {_q('R', 'before/' + put.path)} ]; then "
                f"mv -f {_q('R', 'before/' + put.path)} {_q('fd', put.path)} || rc=1; fi"
            )
        else:
            lines.append(f"rm -f {_q('fd', put.path)} || rc=1")
    for fn in reversed(plan.functions):
        if fn.existed:
            lines.append(
                f"if [ -e {_q('R', 'before/' + fn.name)} ]; then "
                f"rm -rf {_q('fd', fn.name)}; "
                f"mv {_q('R', 'before/' + fn.name)} {_q('fd', fn.name)} || rc=1; fi"
            )
        else:
            lines.append(f"rm -rf {_q('fd', fn.name)} || rc=1")
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"


def checksums(expected: Mapping[str, str]) -> str:
    """`sha256sum -c` input for staged files with plain names (others are checked singly)."""
    return "".join(
        f"{sha}  ./{p}\n" for p, sha in sorted(expected.items()) if "\n" not in p and "\\" not in p
    )


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


def push_states(
    plan: PushPlan, local: Manifest, remote: Manifest
) -> tuple[dict[str, str], dict[str, str]]:
    """(before, after): server hashes of what a push replaces, and of what it installs."""
    after: dict[str, str] = {}
    for fn in plan.functions:
        after.update({p: local.files[p].sha256 for p in (*fn.upload, *fn.keep)})
    for put in plan.puts:
        after[put.path] = local.files[put.path].sha256
    return replaced_on_server(plan, remote), after


def plan_ops(plan: PushPlan) -> list[dict[str, object]]:
    """The plan's operations as recorded in the release (what rollback undoes)."""
    ops: list[dict[str, object]] = [
        {"op": "function", "name": f.name, "existed": f.existed} for f in plan.functions
    ]
    ops += [{"op": "put", "path": p.path, "existed": p.existed} for p in plan.puts]
    ops += [{"op": "delete", "path": d.path, "is_function": d.is_function} for d in plan.deletes]
    return ops


def release_record(
    rid: str,
    target: Target,
    plan: PushPlan,
    before: Mapping[str, str],
    after: Mapping[str, str],
    git: GitState,
    kind: str = "push",
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The history line: id, time, who, commit, functions, files with hashes and actions,
    and the before/after hashes that drift detection and rollback rely on."""
    action = "upload" if kind == "push" else "restore"
    files: list[dict[str, object]] = [
        {"path": p, "action": action, "sha256": after[p]}
        for p in (*plan.uploads, *(x.path for x in plan.puts if x.source is not None))
        if p in after
    ]
    files += [{"path": f.name, "action": action} for f in plan.functions if f.source is not None]
    files += [{"path": p, "action": "delete"} for p in plan.removed]
    return {
        "id": rid,
        "kind": kind,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "commit": git.commit,
        "dirty": git.dirty,
        "target": target.name,
        "functions": [f.name for f in plan.functions],
        "deleted_functions": [d.path for d in plan.deletes if d.is_function],
        "files": files,
        "ops": plan_ops(plan),
        "before": dict(before),
        "after": dict(after),
        "edgesync": __version__,
        **(extra or {}),
    }


def lock_info(git: GitState) -> dict[str, object]:
    """Who takes the lock: user, host, pid, time, commit."""
    return {
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git.short,
    }


def _tar_header(name: str, size: int, mode: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = int(time.time())
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _tar_member(name: str, data: bytes, mode: int = 0o644) -> Iterator[bytes]:
    yield _tar_header(name, len(data), mode)
    yield data
    if len(data) % 512:
        yield b"\0" * (512 - len(data) % 512)


def tar_stream(
    root: Path,
    paths: list[str],
    extra: dict[str, str],
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """A tar archive, produced lazily: files under `new/`, then the generated members."""
    for path in paths:
        src = root / path
        st = src.stat()
        mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
        size = st.st_size
        yield _tar_header("new/" + path, size, mode)
        sent = 0
        with src.open("rb") as f:
            while chunk := f.read(CHUNK):
                if sent + len(chunk) > size:  # the file grew while we read it
                    chunk = chunk[: size - sent]
                sent += len(chunk)
                yield chunk
                if progress:
                    progress(len(chunk))
                if sent >= size:
                    break
        if sent < size:
            raise RemoteError(f"{path} changed while it was being uploaded; push again")
        if size % 512:
            yield b"\0" * (512 - size % 512)
    for name, text in extra.items():
        yield from _tar_member(name, text.encode("utf-8", "surrogateescape"))
    yield b"\0" * 1024


@dataclass(frozen=True)
class Bundle:
    """Everything one release sends: the plan, its record, the hashes staged files must have."""

    rid: str
    plan: PushPlan
    record: dict[str, object]
    expected: Mapping[str, str]
    retire: tuple[str, ...] = ()


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


def apply_push(
    conn: Connection,
    target: Target,
    bundle: Bundle,
    local_root: Path,
    git: GitState,
    progress: Callable[[int], None] | None = None,
) -> tuple[str | None, int]:
    """Send and apply a release in one exec channel; returns (recovered release, bytes sent).

    Raises LockedError (6) when someone else deploys, RemoteError (5) when the
    server could not apply it (then nothing changed), and `StalePlan` when the
    server's files changed since the plan was made.
    """
    plan, record = bundle.plan, bundle.record
    extra = {
        "apply.sh": apply_script(plan, bundle.expected, bundle.retire),
        "undo.sh": undo_script(plan),
        "checksums": checksums(bundle.expected),
        "release.json": json.dumps(record, indent=2, ensure_ascii=False) + "\n",
        "history.json": json.dumps(record, ensure_ascii=False) + "\n",
    }
    uploads = sorted(plan.uploads)
    sent = 0

    def counting() -> Iterator[bytes]:
        nonlocal sent
        for chunk in tar_stream(local_root, uploads, extra, progress):
            sent += len(chunk)
            yield chunk

    result = conn.run(
        sh_script(
            BOOTSTRAP,
            target.state_dir,
            target.remote_functions_dir,
            bundle.rid,
            json.dumps(lock_info(git), ensure_ascii=False),
        ),
        stdin=counting(),
        check=False,
        what="the push",
    )
    out = result.stdout.decode("utf-8", "replace")
    recovered = None
    for line in out.splitlines():
        if line.startswith("recovered "):
            recovered = line.split(" ", 1)[1]
    if result.exit_status == 0:
        return recovered, sent
    if result.exit_status == 6:
        raise locked_error(out.strip(), target)
    if result.exit_status == STALE_PLAN:
        stale = StalePlan(result.stderr_text)
        stale.recovered = recovered
        raise stale
    if result.exit_status == 11:
        raise RemoteError(result.stderr_text)
    raise RemoteError(
        f"the release failed on the server (exit {result.exit_status}); nothing was changed: "
        f"{result.stderr_text or 'no error output'}",
        hint="check disk space and that the SSH user may write in project_dir",
    )


class StalePlan(RemoteError):
    """The server's files changed after the plan was made (nothing was changed)."""

    recovered: str | None = None  # an interrupted release undone before noticing


def locked_error(info_json: str, target: Target) -> LockedError:
    """Exit 6, saying who holds the lock since when."""
    try:
        info = json.loads(info_json.splitlines()[-1]) if info_json else {}
    except (json.JSONDecodeError, IndexError):
        info = {}
    who = f"{info.get('user', '?')}@{info.get('host', '?')}"
    since = info.get("since", "an unknown time")
    commit = info.get("commit")
    pid = info.get("pid")
    detail = f" (pid {pid}" + (f", commit {commit}" if commit else "") + ")" if pid else ""
    return LockedError(
        f"another deploy holds the lock on {target.name}: {who} since {since}{detail}",
        hint="wait for it (push --lock-wait SECONDS), or, if that deploy is no longer "
        "running (`edgesync lock status` tells), clear it with `edgesync lock release`",
    )
