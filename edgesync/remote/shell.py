"""The seam between edgesync and a server: the `RemoteShell` protocol, quoting, and
the exit codes shared by the server-side scripts and the Python that reads them.

`remote/ssh.py` implements `RemoteShell` with paramiko; everything else in
`remote/` takes a `RemoteShell`, so another transport (asyncssh, a local shell
for tests) only has to implement these few methods.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol


class RemoteExit(IntEnum):
    """Exit codes of edgesync's server-side scripts (`scripts/*.sh` use `$EXIT_<NAME>`)."""

    OK = 0
    FAILED = 5  # a step of the release failed; what it changed was undone
    LOCKED = 6  # another deploy holds the lock
    NO_PROJECT = 10  # project_dir does not exist
    NO_FUNCTIONS = 11  # the functions folder does not exist
    NO_SHA256 = 12  # sha256sum is missing on the server
    NO_STATE = 20  # the state folder cannot be created or written
    UPLOAD_INTERRUPTED = 21  # the tar stream ended early
    RECOVERY_FAILED = 22  # undoing an interrupted release failed
    CANCELLED = 23  # the client sent no release after the snapshot: nothing was changed
    NO_CLIENT = 24  # no HTTP client (curl, python3) on the server to verify functions with
    STALE_PLAN = 75  # the server changed after the plan was made: plan again


def exit_codes_prelude() -> str:
    """Shell assignments `EXIT_<NAME>=<code>`, prepended to every script."""
    codes = "".join(f"EXIT_{code.name}={code.value}\n" for code in RemoteExit)
    return "# shellcheck disable=SC2034 # not every script uses every code\n" + codes


@dataclass(frozen=True)
class RunResult:
    """What a finished remote command returned."""

    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def stderr_text(self) -> str:
        """stderr decoded, stripped, for messages."""
        return self.stderr.decode("utf-8", "replace").strip()


class Channel(Protocol):
    """One running remote command that is talked to while it runs (the push session)."""

    def read_until(self, marker: bytes, *, timeout: float) -> bytes | None:
        """stdout up to `marker` (which is consumed); None when the command ended first."""

    def send(self, chunks: Iterable[bytes]) -> None:
        """Stream `chunks` to the command's stdin, then close it (in the background)."""

    @property
    def sent_all(self) -> bool:
        """True once everything given to `send` went out and stdin was closed."""

    def finish(self, *, idle_timeout: float | None = None, what: str = "") -> RunResult:
        """Wait for the command to end: the rest of its output and its exit status.

        Raises ConnectError when the connection was lost, RemoteError when
        neither side moved a byte for `idle_timeout` seconds.
        """

    def close(self) -> None:
        """Close the channel (the command sees its stdin close)."""


class RemoteShell(Protocol):
    """Run commands on one server. Implementations connect lazily; `close()` is idempotent."""

    @property
    def description(self) -> str:
        """`user@host[:port]`, for messages."""

    @property
    def hostname(self) -> str:
        """The host name, for messages."""

    def run(
        self,
        command: str,
        *,
        stdin: bytes | Iterable[bytes] | None = None,
        check: bool = True,
        timeout: float | None = None,
        what: str | None = None,
    ) -> RunResult:
        """Run one command and collect its output (RemoteError on failure when `check`)."""

    def stream_lines(
        self, command: str, deadline: float | None = None
    ) -> Iterator[tuple[str, str]]:
        """Yield ('out'|'err', line) as lines arrive, then ('exit', status) when it failed."""

    def open_channel(self, command: str) -> Channel:
        """Start a command to talk to while it runs."""

    def reconnect(self) -> RemoteShell:
        """A fresh shell to the same server (after the connection was lost)."""

    def read_file(self, path: str, limit: int = 8 << 20) -> bytes:
        """At most `limit` bytes of one remote file."""

    def close(self) -> None:
        """Close the connection if one was opened."""


_PLAIN = re.compile(r"[A-Za-z0-9_@+:,./-]+")  # no = (zsh), % (fish 2), ~ (tilde)


def quote_word(word: str) -> str:
    """One word quoted so that POSIX sh, bash, zsh and fish all read it back exactly.

    Everything goes inside single quotes except `'` and `\\`, which travel as
    `"'"` and `"\\\\"`: fish, unlike POSIX shells, reads `\\'` and `\\\\` inside
    single quotes as escapes, so neither may appear there.
    """
    if _PLAIN.fullmatch(word):
        return word
    out: list[str] = []
    run: list[str] = []
    for ch in word:
        if ch in "'\\":
            if run:
                out.append("'" + "".join(run) + "'")
                run = []
            out.append('"\'"' if ch == "'" else '"\\\\"')
        else:
            run.append(ch)
    if run or not out:
        out.append("'" + "".join(run) + "'")
    return "".join(out)


def quote(*args: object) -> str:
    """Shell-quote every argument for the remote login shell (POSIX or fish)."""
    return " ".join(quote_word(str(a)) for a in args)


def sh_script(script: str, *args: object) -> str:
    """A command line that runs `script` with `sh -c` and positional arguments."""
    return quote("sh", "-c", script, "sh", *args)
