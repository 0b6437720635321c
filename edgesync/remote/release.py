"""The push protocol: one exec channel carries a tar stream with the changed files and
the generated scripts; the server locks, stages, verifies, swaps and records.

Server layout (all under `<project_dir>/.edgesync/`, never in the mounted folder):

    lock/info.json            who holds the deploy lock (mkdir is the atomic step)
    staging/<id>/new/...      the complete new function folders and files
    releases/<id>/before/...  what the release replaced (for rollback)
    releases/<id>/undo.sh     restores `before/`; also repairs an interrupted swap
    journal                   the id of a release whose swap has not finished
    history.jsonl             one JSON line per release

`scripts/bootstrap.sh` takes the lock, undoes a journaled release and unpacks
the tar; `scripts/apply.sh` and `scripts/undo.sh` are libraries to which
`apply_script`/`undo_script` append one quoted call per operation. Once the
upload is complete the server needs nothing more from the client: the rest
runs with SIGHUP/SIGINT ignored, so a dropped connection cannot leave a
function half swapped.
"""

from __future__ import annotations

import json
import stat
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.history import Actor, Bundle
from edgesync.plan import PushPlan
from edgesync.remote import scripts
from edgesync.remote.lock import locked_error
from edgesync.remote.shell import RemoteExit, RemoteShell, quote, sh_script

CHUNK = 1 << 16


def _call(function: str, *args: object) -> str:
    return f"{function} {quote(*args)}"


def _flag(value: bool) -> int:  # noqa: FBT001 - a converter
    return 1 if value else 0


def apply_script(plan: PushPlan, expected: Mapping[str, str], retire: Sequence[str] = ()) -> str:
    """apply.sh for one release: the library plus one call per step (pure text).

    `expected` maps every staged path to the sha256 it must have; `retire` lists
    release ids whose backups are deleted once this release is recorded.
    """
    calls = ["# 1. complete the staged folders"]
    for fn in plan.functions:
        if fn.source is not None:
            calls.append(_call("restore_function", fn.source, fn.name))
            continue
        calls.append(_call("stage_function", fn.name))
        calls += [_call("keep_file", path) for path in fn.keep]
    calls += [_call("restore_file", p.source, p.path) for p in plan.puts if p.source is not None]
    calls.append("# 2. verify every staged file against its expected hash")
    calls.append("verify_staged")
    calls += [
        _call("check_hash", path, sha)
        for path, sha in sorted(expected.items())
        if not _plain_name(path)
    ]
    calls.append("# 3. swap, keeping what is replaced in the release")
    calls.append("begin_swap")
    calls += [_call("swap_function", fn.name, _flag(fn.existed)) for fn in plan.functions]
    calls += [_call("put_file", p.path, _flag(p.existed)) for p in plan.puts]
    calls += [_call("delete_path", d.path) for d in plan.deletes]
    calls.append("# 4. the release is complete once it is in the history")
    calls.append("commit_release")
    calls += [_call("retire", old) for old in retire]
    calls.append('printf "released %s\\n" "$rid"')
    return scripts.load("apply") + "\n".join(calls) + "\n"


def undo_script(plan: PushPlan) -> str:
    """undo.sh FD R: put back what the release replaced; safe at any point of the swap."""
    calls = [_call("undo_delete", d.path) for d in reversed(plan.deletes)]
    calls += [_call("undo_put", p.path, _flag(p.existed)) for p in reversed(plan.puts)]
    calls += [_call("undo_function", f.name, _flag(f.existed)) for f in reversed(plan.functions)]
    calls.append("exit $rc")
    return scripts.load("undo") + "\n".join(calls) + "\n"


def _plain_name(path: str) -> bool:
    """Paths `sha256sum -c` can read from a checksums file (others are checked singly)."""
    return "\n" not in path and "\\" not in path


def checksums(expected: Mapping[str, str]) -> str:
    """`sha256sum -c` input for staged files with plain names (others are checked singly)."""
    return "".join(f"{sha}  ./{p}\n" for p, sha in sorted(expected.items()) if _plain_name(p))


def lock_info(actor: Actor, now: str) -> dict[str, object]:
    """Who takes the lock: user, host, pid, time, commit."""
    return {
        "user": actor.user,
        "host": actor.host,
        "pid": actor.pid,
        "since": now,
        "commit": actor.short_commit,
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


class StalePlan(RemoteError):
    """The server's files changed after the plan was made (nothing was changed)."""

    recovered: str | None = None  # an interrupted release undone before noticing


@dataclass(frozen=True)
class Applied:
    """What the server reported for an applied release."""

    recovered: str | None  # an interrupted release that was undone first
    bytes_sent: int


def apply_release(
    shell: RemoteShell,
    target: Target,
    bundle: Bundle,
    local_root: Path,
    lock: Mapping[str, object],
    progress: Callable[[int], None] | None = None,
) -> Applied:
    """Send and apply a release in one exec channel.

    Raises LockedError (6) when someone else deploys, RemoteError (5) when the
    server could not apply it (then nothing changed), and `StalePlan` when the
    server's files changed since the plan was made.
    """
    plan = bundle.plan
    record = bundle.record.to_json()
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

    result = shell.run(
        sh_script(
            scripts.load("bootstrap"),
            target.state_dir,
            target.remote_functions_dir,
            bundle.rid,
            json.dumps(lock, ensure_ascii=False),
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
    status = result.exit_status
    if status == RemoteExit.OK:
        return Applied(recovered, sent)
    if status == RemoteExit.LOCKED:
        raise locked_error(out.strip(), target)
    if status == RemoteExit.STALE_PLAN:
        stale = StalePlan(result.stderr_text)
        stale.recovered = recovered
        raise stale
    if status == RemoteExit.NO_FUNCTIONS:
        raise RemoteError(result.stderr_text)
    raise RemoteError(
        f"the release failed on the server (exit {status}); nothing was changed: "
        f"{result.stderr_text or 'no error output'}",
        hint="check disk space and that the SSH user may write in project_dir",
    )
