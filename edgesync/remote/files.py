"""The server's functions folder: its manifest, built by one remote command.

The command uses only POSIX `sh`, `find` and `printf` plus `sha256sum` (GNU
coreutils or BusyBox). Names travel NUL-separated, so spaces, quotes, newlines
and non-ASCII bytes are safe; files are hashed in batches (`find -exec … {} +`)
so the cost is a few processes, not one per file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.manifest import FileEntry, Manifest, is_ignored
from edgesync.remote.ssh import Connection, sh_script

_NO_PROJECT, _NO_FUNCTIONS, _NO_SHA = 10, 11, 12

MANIFEST_SCRIPT = r"""
[ -d "$1" ] || exit 10
[ -d "$2" ] || exit 11
command -v sha256sum >/dev/null 2>&1 || exit 12
cd "$2" || exit 11
find . \( -name node_modules -o -name .git \) -prune \
  -o -type d ! -name . -exec sh -c 'for p do printf "d\0%s\0" "$p"; done' sh {} + \
  -o -type f -exec sh -c \
     'for p do printf "f\0%s\0" "$p"; done; printf "h\0"; sha256sum -- "$@"' sh {} +
[ -d "$3/releases" ] && for r in "$3"/releases/*; do
  [ -d "$r" ] && printf "r\0%s\0" "${r##*/}"
done
printf "H\0"
[ -f "$3/history.jsonl" ] && cat "$3/history.jsonl"
exit 0
"""


@dataclass(frozen=True)
class RemoteState:
    """What one listing command tells about the server."""

    manifest: Manifest
    history: tuple[dict[str, Any], ...] = ()  # releases, oldest first
    kept_releases: frozenset[str] = frozenset()  # releases whose backups still exist

    @property
    def latest(self) -> dict[str, Any] | None:
        """The newest release, or None before the first push."""
        return self.history[-1] if self.history else None


def remote_state(conn: Connection, target: Target) -> RemoteState:
    """The manifest, the release history and the kept backups, in one command."""
    result = conn.run(
        sh_script(
            MANIFEST_SCRIPT, target.project_dir, target.remote_functions_dir, target.state_dir
        ),
        check=False,
        what="listing the functions folder",
    )
    host = conn.endpoint.hostname
    if result.exit_status == _NO_PROJECT:
        raise RemoteError(
            f"project_dir {target.project_dir} does not exist on {host}",
            hint=f"fix targets.{target.name}.project_dir in edgesync.yaml: it is the folder "
            "holding the self-hosted Supabase docker-compose.yml",
        )
    if result.exit_status == _NO_FUNCTIONS:
        raise RemoteError(
            f"the functions folder {target.remote_functions_dir} does not exist on {host}",
            hint=f"check targets.{target.name}.functions_dir (default volumes/functions)",
        )
    if result.exit_status == _NO_SHA:
        raise RemoteError(
            f"sha256sum is not installed on {host}",
            hint="install coreutils (or busybox) on the server",
        )
    if result.exit_status != 0:
        raise RemoteError(
            f"listing {target.remote_functions_dir} on {host} failed "
            f"(exit {result.exit_status}): {result.stderr_text or 'no error output'}"
        )
    return parse_state_output(result.stdout, f"{target.state_dir}/history.jsonl")


def parse_manifest_output(data: bytes) -> Manifest:
    """Only the manifest part of MANIFEST_SCRIPT's output."""
    return parse_state_output(data, "history").manifest


def parse_state_output(data: bytes, history_name: str) -> RemoteState:
    """Parse MANIFEST_SCRIPT's output: `d\\0path\\0`, `f\\0path\\0`… `h\\0` + sha256sum lines.

    sha256sum's lines are matched against the names we already know, in order,
    accepting GNU's escaped form (leading backslash) and BusyBox's raw form.
    """
    folders: list[str] = []
    entries: list[FileEntry] = []
    pending: list[str] = []
    releases: set[str] = set()
    history_text = b""
    pos = 0
    n = len(data)
    while pos < n:
        tag = data[pos : pos + 2]
        if tag == b"H\0":
            history_text = data[pos + 2 :]
            break
        if tag == b"r\0":
            end = data.index(b"\0", pos + 2)
            releases.add(data[pos + 2 : end].decode("utf-8", "replace"))
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
            pos += 2
            for name in pending:
                digest, pos = _hash_line(data, pos, name)
                path = _rel(name.encode("utf-8", "surrogateescape"))
                entries.append(FileEntry(path, digest, -1))
            pending = []
        else:
            raise RemoteError(f"unexpected output from the manifest command at byte {pos}")
    if pending:
        raise RemoteError("the manifest command ended before hashing every file")
    kept = [e for e in entries if not is_ignored(e.path)]
    tops = [f for f in folders if "/" not in f and not is_ignored(f)]
    history = []
    for number, line in enumerate(history_text.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise RemoteError(f"{history_name} line {number} is not JSON: {e}") from None
        if isinstance(record, dict):
            history.append(record)
    return RemoteState(Manifest.of(kept, tops), tuple(history), frozenset(releases))


def _rel(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    return text[2:] if text.startswith("./") else text


def _hash_line(data: bytes, pos: int, name: str) -> tuple[str, int]:
    escaped = data[pos : pos + 1] == b"\\"
    start = pos + 1 if escaped else pos
    digest = data[start : start + 64].decode("ascii", "replace")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
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
