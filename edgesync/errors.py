"""One exception hierarchy; `cli.py` maps it to the documented exit codes."""

from __future__ import annotations


class EdgesyncError(Exception):
    """An expected failure: one line for the user, an optional hint, an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Declined(EdgesyncError):
    """The user answered no to a confirmation (exit 1); nothing was changed."""


class UsageError(EdgesyncError):
    """Wrong arguments or an unknown name (exit 2)."""

    exit_code = 2


class ConfigError(EdgesyncError):
    """edgesync.yaml is missing, malformed or inconsistent (exit 3)."""

    exit_code = 3


class ConnectError(EdgesyncError):
    """Cannot connect, authenticate, or trust the host key (exit 4)."""

    exit_code = 4


class RemoteError(EdgesyncError):
    """A command on the server failed: missing folder, restart, permissions, disk (exit 5)."""

    exit_code = 5


class LockedError(EdgesyncError):
    """Another deploy holds the server's lock (exit 6)."""

    exit_code = 6


class VerifyError(EdgesyncError):
    """The server did not answer as expected after a push (exit 7)."""

    exit_code = 7


class DriftError(EdgesyncError):
    """Server files changed outside edgesync; refused without --force (exit 8)."""

    exit_code = 8


class LocalTreeError(ConfigError):
    """The local functions tree cannot be read safely (outside symlink, bad import)."""


class UndeployableError(EdgesyncError):
    """The local functions cannot be deployed as they are (exit 9): an import that cannot
    be resolved or leaves the functions folder, a module that does not load."""

    exit_code = 9


class Interrupted(EdgesyncError):
    """Ctrl-C: what happened on the server is said (exit 130)."""

    exit_code = 130
