"""The deploy lock on the server (`<state>/lock/`, taken by the push's `mkdir`)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgesync.config import Target
from edgesync.errors import LockedError
from edgesync.remote import scripts
from edgesync.remote.shell import RemoteShell, sh_script


@dataclass(frozen=True)
class LockStatus:
    """Who holds the deploy lock, and whether the deploy holding it still runs."""

    held: bool
    info: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    server_process: str = "unknown"  # running | gone | unknown: the push's process on the server
    client_process: str = "unknown"  # running | gone | unknown (known only on the same host)
    kind: str = "folder"  # folder (edgesync's), file or symlink (something else made it)
    readable: bool = True  # False: a lock folder without a readable info.json

    @property
    def stale(self) -> bool:
        """True when the deploy that took the lock is certainly no longer running."""
        return self.held and (self.server_process == "gone" or self.kind != "folder")


def read_lock(shell: RemoteShell, target: Target) -> LockStatus:
    """Read the lock (one command)."""
    result = shell.run(
        sh_script(scripts.load("lock_status"), target.state_dir), what="reading the lock"
    )
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    if not lines or lines[0] not in ("held", "file", "symlink"):
        return LockStatus(held=False)
    if lines[0] != "held":
        return LockStatus(held=True, kind=lines[0], readable=False)
    server = lines[1] if len(lines) > 1 and lines[1] in ("running", "gone") else "unknown"
    try:
        info = json.loads("\n".join(lines[2:])) if len(lines) > 2 else None
    except (json.JSONDecodeError, RecursionError):
        info = None
    readable = isinstance(info, dict)
    if not isinstance(info, dict):
        info = {}
    client = "unknown"
    pid = info.get("pid")
    if info.get("host") == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
            client = "running"
        except ProcessLookupError:
            client = "gone"
        except PermissionError:
            client = "running"
    return LockStatus(
        held=True,
        info=MappingProxyType(info),
        server_process=server,
        client_process=client,
        readable=readable,
    )


def release_lock(shell: RemoteShell, target: Target) -> None:
    """Remove the lock folder."""
    shell.run(sh_script(scripts.load("lock_release"), target.state_dir), what="releasing the lock")


def locked_error(info_json: str, target: Target) -> LockedError:
    """Exit 6, saying who holds the lock since when."""
    try:
        info = json.loads(info_json.splitlines()[-1]) if info_json else {}
    except (json.JSONDecodeError, IndexError):
        info = {}
    if not isinstance(info, dict):
        info = {}
    if info.get("odd") or info.get("incomplete"):
        what = "a file or link named lock" if info.get("odd") else "an incomplete lock"
        return LockedError(
            f"{what} in {target.state_dir} blocks deploys on {target.name}",
            hint="see it with `edgesync lock status`; clear it with `edgesync lock release`",
        )
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
