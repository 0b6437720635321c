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

    @property
    def stale(self) -> bool:
        """True when the deploy that took the lock is certainly no longer running."""
        return self.held and self.server_process == "gone"


def read_lock(shell: RemoteShell, target: Target) -> LockStatus:
    """Read the lock (one command)."""
    result = shell.run(
        sh_script(scripts.load("lock_status"), target.state_dir), what="reading the lock"
    )
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    if not lines or lines[0] != "held":
        return LockStatus(held=False)
    server = lines[1] if len(lines) > 1 else "unknown"
    try:
        info = json.loads("\n".join(lines[2:])) if len(lines) > 2 else {}
    except json.JSONDecodeError:
        info = {}
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
        held=True, info=MappingProxyType(info), server_process=server, client_process=client
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
