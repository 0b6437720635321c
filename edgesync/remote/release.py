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
import secrets
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgesync.config import Target
from edgesync.errors import ConnectError, EdgesyncError, Interrupted, RemoteError
from edgesync.history import Actor, Bundle, History, HistoryIndex, SecretsChange, parse_history
from edgesync.manifest import top_of
from edgesync.plan import PushPlan
from edgesync.remote import scripts
from edgesync.remote.lock import locked_error
from edgesync.remote.shell import Channel, RemoteExit, RemoteShell, RunResult, quote, sh_script
from edgesync.remote.snapshot import ServerSnapshot, history_mode, parse_snapshot, read_history

CHUNK = 1 << 16


def _call(function: str, *args: object) -> str:
    return f"{function} {quote(*args)}"


def _flag(value: bool) -> int:  # noqa: FBT001 - a converter
    return 1 if value else 0


ARGS_PER_CALL = 32 << 10  # bytes of names per generated call: far below any ARG_MAX


def _calls(
    function: str, fixed: Sequence[object], names: Iterable[str], group: int = 1
) -> list[str]:
    """`function FIXED... NAME...` lines taking every name, split to keep each call short
    (never inside a `group` of names that go together)."""
    out: list[str] = []
    batch: list[str] = []
    size = 0
    for name in names:
        if batch and len(batch) % group == 0 and size + len(name) > ARGS_PER_CALL:
            out.append(_call(function, *fixed, *batch))
            batch, size = [], 0
        batch.append(name)
        size += len(name) + 3
    if batch:
        out.append(_call(function, *fixed, *batch))
    return out


def _by_folder(paths: Iterable[str]) -> dict[str, list[str]]:
    """Paths grouped by their folder ('.' for top-level names), in order."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        folder, _, name = path.rpartition("/")
        groups.setdefault(folder or ".", []).append(name)
    return groups


def apply_script(
    plan: PushPlan,
    expected: Mapping[str, str],
    retire: Sequence[str] = (),
    secrets: SecretsChange | None = None,
) -> str:
    """apply.sh for one release: the library plus its calls (pure text).

    `expected` maps every staged path to the sha256 it must have; `retire` lists
    release ids whose backups are deleted once this release is recorded. Calls
    take names by folder (files) or all at once (function folders), so the
    server runs a few processes per release, not a few per file.
    """
    whole = {fn.name for fn in plan.functions}
    assert not any(top_of(p.path) in whole for p in plan.puts), "a put inside a swapped folder"
    assert not any(top_of(d.path) in whole for d in plan.deletes), (
        "a delete inside a swapped folder"
    )
    built = [fn for fn in plan.functions if fn.source is None]
    restored = [fn for fn in plan.functions if fn.source is not None]
    carried = [path for fn in built for path in (*fn.keep, *fn.preserve)]
    calls = ["# 1. complete the staged folders"]
    folders = {fn.name for fn in built} | {p.rpartition("/")[0] for p in carried if "/" in p}
    calls += _calls("stage_dirs", (), sorted(folders))
    calls += _calls("copy_in", (), carried)
    sources = [fn.source for fn in restored if fn.source is not None]
    assert all(s.rpartition("/")[2] == fn.name for s, fn in zip(sources, restored, strict=True))
    for source, names in _by_folder(sources).items():
        calls += _calls("restore_functions", (source,), names)
    calls += [_call("restore_file", p.source, p.path) for p in plan.puts if p.source is not None]
    calls += [_call("restore_file", src, path) for fn in restored for path, src in fn.overlay]
    calls += _calls("unstage", (), [path for fn in restored for path in fn.unstage])
    calls.append("# 2. verify every staged file against its expected hash")
    calls.append("verify_staged")
    calls += [
        _call("check_hash", path, sha)
        for path, sha in sorted(expected.items())
        if not _plain_name(path)
    ]
    calls.append("# 3. swap, keeping what is replaced in the release")
    calls.append("begin_swap")
    calls += _calls("swap_out", (), [fn.name for fn in plan.functions if fn.existed])
    calls += _calls("swap_in", (), [fn.name for fn in plan.functions])
    replaced = [p.path for p in plan.puts if p.existed]
    calls += _calls("backup_dirs", (), sorted({p.rpartition("/")[0] for p in replaced} - {""}))
    calls += _calls("backup_files", (), replaced)
    calls += _calls("keep_backups", (), sorted({p.partition("/")[0] for p in replaced}))
    for existed in (1, 0):
        added = _by_folder(p.path for p in plan.puts if _flag(p.existed) == existed)
        for folder, names in added.items():
            calls += _calls("install_files", (folder, existed), names)
    calls += [_call("delete_path", d.path) for d in plan.deletes]
    if secrets is not None:
        calls.append(
            _call("replace_secrets", secrets.file, secrets.source or "", _flag(secrets.existed))
        )
    calls.append("# 4. verify what is installed")
    calls.append("verify_installed")
    calls += [
        _call("check_installed", path, sha)
        for path, sha in sorted(expected.items())
        if not _plain_name(path)
    ]
    counts = [
        str(part)
        for fn in built
        for part in (fn.name, len(fn.upload) + len(fn.keep) + fn.preserve_files)
    ]
    calls += _calls("count_files", (), counts, group=2)
    calls.append("# 5. the release is complete once it is in the history")
    calls.append("commit_release")
    calls += _calls("retire", (), retire)
    calls.append('printf "released %s\\n" "$rid"')
    return scripts.load("apply") + "\n".join(calls) + "\n"


def undo_script(plan: PushPlan, secrets: SecretsChange | None = None) -> str:
    """undo.sh FD R: put back what the release replaced; safe at any point of the swap."""
    calls = []
    if secrets is not None:
        calls.append(_call("undo_secrets", secrets.file))
    calls += [_call("undo_delete", d.path) for d in reversed(plan.deletes)]
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
    modes: Mapping[str, int] | None = None,
) -> Iterator[bytes]:
    """A tar archive, produced lazily: files under `new/`, then the generated members.

    A file's mode is `modes[path]` when given, else its local mode: never wider.
    """
    for path in paths:
        src = root / path
        st = src.stat()
        mode = (modes or {}).get(path, st.st_mode & 0o777)
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
    for name, text in extra.items():  # owner-only: the secrets file travels among them
        yield from _tar_member(name, text.encode("utf-8", "surrogateescape"), 0o600)
    yield b"\0" * 1024


GZIP_LEVEL = 3


def coalesced(chunks: Iterable[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """`chunks` joined into pieces of at least `size` bytes (the last may be shorter): one
    SSH write per piece instead of three per file (header, data, padding)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def gzipped(chunks: Iterable[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """`chunks` as one gzip stream. Level 3: source text shrinks about 8:1 (level 1: 7:1,
    level 6: 10:1 at four times level 1's CPU), while the hashes of the release's metadata
    barely shrink at any level."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: the gzip format
    yield from coalesced((packed for chunk in chunks if (packed := packer.compress(chunk))), size)
    yield packer.flush()


def index_json(index: HistoryIndex) -> str:
    """The history index a release leaves on the server (index.json; see session.sh)."""
    return json.dumps(index.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"


SNAPSHOT_END = b"\0EDGESYNC-SNAPSHOT-END\0"
DEFAULT_IDLE_SECONDS = 120  # the server gives up an upload that stalls this long


@dataclass(frozen=True)
class Applied:
    """What the server reported for an applied release."""

    bytes_sent: int


class StalePlan(RemoteError):
    """The server's files changed after the snapshot (by hand): nothing was changed."""


class LostConnection(ConnectError):
    """The connection dropped after the release was sent: it may or may not be committed."""

    def __init__(self, message: str, rid: str) -> None:
        super().__init__(message)
        self.rid = rid


class ReleaseSession:
    """One push or rollback on the server, holding the deploy lock from start to end.

    `open()` takes the lock, repairs an interrupted release and returns the
    snapshot taken under the lock; then exactly one of `cancel()` (nothing
    changes) or `apply()` (one release) ends it. One SSH channel in all.
    """

    def __init__(
        self,
        shell: RemoteShell,
        target: Target,
        rid: str,
        lock: Mapping[str, object],
        *,
        idle_seconds: int = DEFAULT_IDLE_SECONDS,
        full_history: bool = False,
    ) -> None:
        """`full_history`: the snapshot brings every release (rollback, repair), not the
        history's index and the releases after it."""
        self.shell = shell
        self.target = target
        self.rid = rid
        self.token = secrets.token_hex(8)
        self.lock = {**lock, "token": self.token, "release": rid}
        self.idle_seconds = idle_seconds
        self.full_history = full_history
        self.channel: Channel | None = None
        self.history = History()  # as the snapshot told it: the base of the next index
        self.gzip = False  # the server unpacks a gzipped release

    def open(self) -> ServerSnapshot:
        """Lock, repair, list. LockedError (6) when another deploy holds the lock."""
        t = self.target
        self.channel = self.shell.open_channel(
            sh_script(
                scripts.load("session"),
                t.state_dir,
                t.remote_functions_dir,
                self.rid,
                json.dumps(self.lock, ensure_ascii=False),
                self.token,
                self.idle_seconds,
                t.project_dir,
                scripts.load("snapshot"),
                history_mode(full=self.full_history),
            )
        )
        head = self.channel.read_until(SNAPSHOT_END, timeout=max(60.0, float(self.idle_seconds)))
        if head is None:
            result = self.channel.finish(what="taking the lock")
            raise self._failure(result)
        snapshot = parse_snapshot(head, f"{t.state_dir}/history.jsonl")
        if snapshot.index_unreadable:  # we hold the lock: nobody changes it meanwhile
            snapshot = replace(
                snapshot, history=read_history(self.shell, t), index_unreadable=False
            )
        self.history = snapshot.history
        self.gzip = snapshot.gzip
        return snapshot

    def cancel(self) -> None:
        """End the session without changing anything (the lock is released)."""
        assert self.channel is not None
        self.channel.send(self._encoded([b"\0" * 1024]))
        result = self.channel.finish(what="ending the session", idle_timeout=60)
        if result.exit_status != RemoteExit.CANCELLED:
            raise self._failure(result)

    def apply(
        self, bundle: Bundle, local_root: Path, progress: Callable[[int], None] | None = None
    ) -> Applied:
        """Send the release and wait for the server to swap, verify and record it.

        RemoteError (5) when the server could not apply it (then nothing
        changed); LostConnection when the connection dropped after sending.
        """
        assert bundle.rid == self.rid
        plan = bundle.plan
        record = bundle.record.to_json()
        secrets = bundle.secrets
        if secrets is not None and bundle.secrets_text is not None:
            secrets = SecretsChange(
                secrets.file, f"staging/{self.rid}/secrets.new", secrets.existed
            )
        extra = {
            "undo.sh": undo_script(plan, secrets),
            "checksums": checksums(bundle.expected),
            "history.json": json.dumps(record, ensure_ascii=False) + "\n",
        }
        if bundle.secrets_text is not None:
            extra["secrets.new"] = bundle.secrets_text
        if self.history.wants_index(len(extra["history.json"])):
            extra["index.json"] = index_json(self.history.index_after(bundle.record))
        # last: the server applies only a release whose upload is complete
        extra["apply.sh"] = apply_script(plan, bundle.expected, bundle.retire, secrets)
        return self.send_files(
            local_root, sorted(plan.uploads), extra, progress, modes=bundle.modes
        )

    def repair_history(self, lines: Sequence[str]) -> None:
        """Replace history.jsonl by `lines` (the old file is kept as history.jsonl.bak-<id>)."""
        text = "".join(line + "\n" for line in lines)
        extra = {
            "history.repaired": text,
            "index.json": index_json(parse_history(text).index_after()),
            "apply.sh": scripts.load("repair"),
        }
        self.send_files(Path("/"), [], extra)

    def send_files(
        self,
        local_root: Path,
        uploads: list[str],
        extra: dict[str, str],
        progress: Callable[[int], None] | None = None,
        *,
        modes: Mapping[str, int] | None = None,
    ) -> Applied:
        """Send files under `new/` and the generated members; the server runs `apply.sh`."""
        assert self.channel is not None
        sent = 0

        def counting() -> Iterator[bytes]:
            nonlocal sent
            stream = tar_stream(local_root, uploads, extra, progress, modes)
            for chunk in self._encoded(stream):
                sent += len(chunk)
                yield chunk

        self.channel.send(counting())
        try:
            result = self.channel.finish(idle_timeout=self.idle_seconds + 30, what="the push")
        except ConnectError as e:
            raise LostConnection(e.message, self.rid) from e
        except KeyboardInterrupt:
            if self.channel.sent_all:
                raise Interrupted(
                    f"interrupted after the upload: the server finishes release {self.rid} "
                    "on its own",
                    hint="`edgesync history` shows whether it was recorded",
                ) from None
            raise Interrupted(
                "interrupted during the upload: nothing was changed on the server "
                "(it drops the partial upload and unlocks)"
            ) from None
        if result.exit_status == RemoteExit.OK:
            return Applied(sent)
        raise self._failure(result)

    def _encoded(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The tar stream as it travels: gzipped when the server can unpack it so (a tree of
        source files shrinks about five times), in pieces of at least CHUNK bytes."""
        if self.gzip:
            yield from gzipped(chunks)
        else:
            yield from coalesced(chunks)

    def close(self) -> None:
        """Close the channel if the session is still open (the server then unlocks)."""
        if self.channel is not None:
            self.channel.close()

    def _failure(self, result: RunResult) -> EdgesyncError:
        status = result.exit_status
        out = result.stdout.decode("utf-8", "replace")
        if status == RemoteExit.STALE_PLAN:
            return StalePlan(result.stderr_text or "the server changed while planning")
        if status == RemoteExit.LOCKED:
            return locked_error(out.strip(), self.target)
        if status in (RemoteExit.NO_FUNCTIONS, RemoteExit.NO_PROJECT):
            return RemoteError(
                result.stderr_text or f"{self.target.remote_functions_dir} is missing"
            )
        if status == RemoteExit.NO_STATE:
            return RemoteError(
                result.stderr_text or f"cannot write in {self.target.state_dir}",
                hint=f"the SSH user must be able to write in project_dir "
                f"({self.target.project_dir}): edgesync keeps its state in .edgesync/ there",
            )
        if status == RemoteExit.UPLOAD_INTERRUPTED:
            return RemoteError(
                "the upload was interrupted; nothing was changed on the server",
                hint="push again",
            )
        return RemoteError(
            f"the release failed on the server (exit {status}); nothing was changed: "
            f"{result.stderr_text or 'no error output'}",
            hint="check disk space and that the SSH user may write in project_dir",
        )
