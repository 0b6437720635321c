"""The server's side of a comparison: one remote command lists the functions folder
with content hashes, the kept release backups and the release history.

The history comes whole only when a command needs every release (rollback, repair,
`history`); otherwise as the server's index of it (`HistoryIndex`, kept in
`.edgesync/history.idx` and written by the releases) plus the lines recorded after
the index was made. A server without a valid index sends the whole history.

The command (`scripts/snapshot.sh`) uses only POSIX `sh`, `find` and `printf`
plus `sha256sum` (GNU coreutils or BusyBox). Names travel NUL-separated, so
spaces, quotes, newlines and non-ASCII bytes are safe; files are hashed in
batches (`find -exec … {} +`) so the cost is a few processes, not one per file.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field, replace

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.history import BadRecord, History, HistoryIndex, parse_history
from edgesync.manifest import FileEntry, Manifest, is_ignored
from edgesync.remote import scripts
from edgesync.remote.shell import RemoteExit, RemoteShell, sh_script


@dataclass(frozen=True)
class ServerSnapshot:
    """What one listing command tells about the server."""

    manifest: Manifest
    history: History = field(default_factory=History)
    kept_releases: frozenset[str] = frozenset()  # releases whose backups still exist
    ignored: frozenset[str] = frozenset()  # env-like files, node_modules/.git: kept as they are
    pruned: frozenset[str] = frozenset()  # the folders among `ignored` (node_modules, .git)
    symlinks: frozenset[str] = frozenset()  # never followed, never written through
    locked: bool = False  # a deploy holds the lock (read without it: may change meanwhile)
    journal: str | None = None  # a release whose swap has not finished (running or killed)
    recovered: str | None = None  # under the lock: an interrupted release that was undone
    completed: str | None = None  # under the lock: a committed release whose cleanup was cut
    # the server sent an index edgesync cannot read, and only the lines after it: the
    # history must be read whole (`read_history`)
    index_unreadable: bool = False
    gzip: bool = False  # (a session) the server takes the release gzipped


def history_mode(*, full: bool) -> str:
    """The snapshot script's history argument: the whole file, or its index and tail."""
    return "full" if full else "index"


def read_snapshot(
    shell: RemoteShell, target: Target, *, full_history: bool = False
) -> ServerSnapshot:
    """The manifest, the release history and the kept backups, in one command.

    `full_history`: every release (rollback, repair, `history`); else the history
    through the server's index, which is all other commands need.
    """
    snapshot = _run_snapshot(shell, target, history_mode(full=full_history))
    if snapshot.index_unreadable:
        snapshot = replace(snapshot, history=read_history(shell, target), index_unreadable=False)
    return snapshot


class PendingSnapshot:
    """`read_snapshot` running in a thread of its own, started before the command's local
    work so that the server lists (and the round trips pass) meanwhile."""

    def __init__(self, shell: RemoteShell, target: Target, *, full_history: bool) -> None:
        self.snapshot: ServerSnapshot | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(shell, target, full_history), name="edgesync-listing"
        )
        self.thread.daemon = True
        self.thread.start()

    def _run(self, shell: RemoteShell, target: Target, full_history: bool) -> None:  # noqa: FBT001
        try:
            self.snapshot = read_snapshot(shell, target, full_history=full_history)
        except BaseException as e:  # noqa: BLE001 - raised by `result` in the caller's thread
            self.error = e

    def result(self) -> ServerSnapshot:
        """The snapshot, once the server sent it; what reading it raised, raised here."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.snapshot is not None
        return self.snapshot


def start_snapshot(
    shell: RemoteShell, target: Target, *, full_history: bool = False
) -> PendingSnapshot:
    """Start `read_snapshot` now; `.result()` waits for it."""
    return PendingSnapshot(shell, target, full_history=full_history)


def read_history(shell: RemoteShell, target: Target) -> History:
    """history.jsonl, whole (one command): when the index the snapshot brought is unreadable."""
    result = shell.run(
        sh_script(scripts.load("history"), target.state_dir), what="reading the release history"
    )
    return parse_history(
        result.stdout.decode("utf-8", "replace"), f"{target.state_dir}/history.jsonl"
    )


def _run_snapshot(shell: RemoteShell, target: Target, mode: str) -> ServerSnapshot:
    result = shell.run(
        sh_script(
            scripts.load("snapshot"),
            target.project_dir,
            target.remote_functions_dir,
            target.state_dir,
            mode,
        ),
        check=False,
        what="listing the functions folder",
    )
    host = shell.hostname
    if result.exit_status == RemoteExit.NO_PROJECT:
        raise RemoteError(
            f"project_dir {target.project_dir} does not exist on {host}",
            hint=f"fix targets.{target.name}.project_dir in edgesync.yaml: it is the folder "
            "holding the self-hosted Supabase docker-compose.yml",
        )
    if result.exit_status == RemoteExit.NO_FUNCTIONS:
        raise RemoteError(
            f"the functions folder {target.remote_functions_dir} does not exist on {host}",
            hint=f"check targets.{target.name}.functions_dir (default volumes/functions)",
        )
    if result.exit_status == RemoteExit.NO_SHA256:
        raise RemoteError(
            f"sha256sum is not installed on {host}",
            hint="install coreutils (or busybox) on the server",
        )
    if result.exit_status != 0:
        raise RemoteError(
            f"listing {target.remote_functions_dir} on {host} failed "
            f"(exit {result.exit_status}): {result.stderr_text or 'no error output'}"
        )
    return parse_snapshot(result.stdout, f"{target.state_dir}/history.jsonl")


def parse_manifest_output(data: bytes) -> Manifest:
    """Only the manifest part of the snapshot command's output."""
    return parse_snapshot(data, "history").manifest


def parse_snapshot(data: bytes, history_name: str) -> ServerSnapshot:
    """Parse the snapshot output (see `_parse`); malformed output is a RemoteError."""
    try:
        return _parse(data, history_name)
    except (ValueError, IndexError) as e:
        raise RemoteError(f"cannot read the server's listing: {e}") from None


def _parse(data: bytes, history_name: str) -> ServerSnapshot:
    """Parse the snapshot output: `d\\0path\\0`, `f\\0path\\0`… `h\\0` + sha256sum lines,
    then the history (`X\\0N\\0` + index + `\\0`, then `H\\0` + text).

    sha256sum's lines are matched against the names we already know, in order,
    accepting GNU's escaped form (leading backslash) and BusyBox's raw form.
    """
    folders: list[str] = []
    entries: list[FileEntry] = []
    pending: list[str] = []
    releases: set[str] = set()
    marks: dict[bytes, str] = {}  # J (journal), U (undone), C (completed) -> release id
    others: dict[bytes, list[str]] = {b"i": [], b"p": [], b"l": []}
    flags: set[bytes] = set()  # L (locked), Z (gzip)
    history = b""
    pos = 0
    n = len(data)
    while pos < n:
        tag = data[pos : pos + 2]
        if tag in (b"H\0", b"X\0"):
            history = data[pos:]
            break
        if tag in (b"r\0", b"J\0", b"U\0", b"C\0"):
            end = data.index(b"\0", pos + 2)
            value = data[pos + 2 : end].decode("utf-8", "replace").strip()
            if tag == b"r\0":
                releases.add(value)
            else:
                marks[tag[:1]] = value
            pos = end + 1
        elif tag in (b"L\0", b"Z\0"):
            flags.add(tag[:1])
            pos += 2
        elif tag in (b"i\0", b"p\0", b"l\0"):
            end = data.index(b"\0", pos + 2)
            others[tag[:1]].append(_rel(data[pos + 2 : end]))
            pos = end + 1
        elif tag == b"d\0" or tag == b"f\0":
            end = data.index(b"\0", pos + 2)
            raw = data[pos + 2 : end]
            pos = end + 1
            if tag == b"d\0":
                folders.append(_rel(raw))
            else:
                pending.append(raw.decode("utf-8", "surrogateescape"))
        elif tag == b"h\0":
            batch, pos = _batch(data, pos + 2, pending)
            entries += batch
            pending = []
        else:
            raise RemoteError(f"unexpected output from the manifest command at byte {pos}")
    if pending:
        raise RemoteError("the manifest command ended before hashing every file")
    kept, ignored = _split_ignored(entries, others[b"i"])
    ignored |= set(others[b"p"])
    tops = [f for f in folders if "/" not in f and not is_ignored(f)]
    releases_read, unreadable = _history(history, history_name)
    return ServerSnapshot(
        Manifest.of(kept, tops),
        releases_read,
        frozenset(releases),
        ignored=frozenset(ignored),
        pruned=frozenset(others[b"p"]),
        symlinks=frozenset(others[b"l"]),
        locked=b"L" in flags,
        journal=marks.get(b"J"),
        recovered=marks.get(b"U"),
        completed=marks.get(b"C"),
        index_unreadable=unreadable,
        gzip=b"Z" in flags,
    )


def _split_ignored(entries: list[FileEntry], listed: list[str]) -> tuple[list[FileEntry], set[str]]:
    """The files compared, and the paths left as they are (with the env files `listed`):
    one `is_ignored` per file."""
    kept: list[FileEntry] = []
    ignored = set(listed)
    for e in entries:
        if is_ignored(e.path):
            ignored.add(e.path)
        else:
            kept.append(e)
    return kept, ignored


def _history(data: bytes, name: str) -> tuple[History, bool]:
    """The history part: `H\\0` + history.jsonl, or `X\\0N\\0` + the index of its
    first N lines + `\\0H\\0` + the lines after them. True when the index is unreadable
    (then only the lines after it are in the History returned)."""
    index = None
    unreadable = False
    if data.startswith(b"X\0"):
        end = data.index(b"\0", 2)
        covered = int(data[2:end])
        stop = data.index(b"\0H\0", end + 1)
        try:
            index = HistoryIndex.from_json(json.loads(data[end + 1 : stop]), covered)
        except (ValueError, BadRecord, RecursionError):
            unreadable = True  # read whole then (`read_history`)
        data = data[stop + 1 :]
    text = data[2:].decode("utf-8", "replace")
    return parse_history(text, name, index=index), unreadable


def _batch(data: bytes, pos: int, names: list[str]) -> tuple[list[FileEntry], int]:
    """sha256sum's lines for `names`, then (after m\\0) one octal mode per line."""
    hashed = []
    for name in names:
        digest, pos = _hash_line(data, pos, name)
        hashed.append((_rel(name.encode("utf-8", "surrogateescape")), digest))
    modes: list[int | None] = [None] * len(hashed)
    if data[pos : pos + 2] == b"m\0":
        pos += 2
        for i in range(len(hashed)):
            end = data.find(b"\n", pos)
            if end < 0 or not data[pos:end].isdigit():
                break
            modes[i] = int(data[pos:end], 8) & 0o777
            pos = end + 1
    return [FileEntry(p, d, -1, m) for (p, d), m in zip(hashed, modes, strict=True)], pos


def _rel(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    return text[2:] if text.startswith("./") else text


_HEX = frozenset("0123456789abcdef")


def _hash_line(data: bytes, pos: int, name: str) -> tuple[str, int]:
    escaped = data[pos : pos + 1] == b"\\"
    start = pos + 1 if escaped else pos
    digest = sys.intern(data[start : start + 64].decode("ascii", "replace"))  # as the local ones
    if len(digest) != 64 or not _HEX.issuperset(digest):  # (a set: 5,000 lines in ~1 ms)
        raise RemoteError(f"sha256sum printed no hash for {name!r} on the server")
    rest = start + 64 + 2  # two characters: "  " (text) or " *" (binary mode)
    raw = name.encode("utf-8", "surrogateescape")
    candidates = [raw]
    if escaped:
        candidates.insert(
            0, raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        )
    for cand in candidates:
        if data[rest : rest + len(cand) + 1] == cand + b"\n":
            return digest, rest + len(cand) + 1
    raise RemoteError(f"cannot match sha256sum's output to {name!r}")


def read_folders(shell: RemoteShell, target: Target) -> frozenset[str]:
    """The top-level folder names of the server's functions folder (cheap: no hashing)."""
    result = shell.run(
        sh_script(scripts.load("folders"), target.remote_functions_dir),
        what="listing the functions folder",
    )
    return frozenset(n.decode("utf-8", "replace") for n in result.stdout.split(b"\0") if n)
