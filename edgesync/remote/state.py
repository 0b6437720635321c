"""edgesync's state on the server (`<project_dir>/.edgesync/`): the deploy lock."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from edgesync.config import Target
from edgesync.remote.ssh import Connection, sh_script

LOCK_STATUS_SCRIPT = r"""
L="$1/lock"
[ -d "$L" ] || exit 0
printf 'held\n'
pid=$(cat "$L/pid" 2>/dev/null)
if [ -z "$pid" ]; then printf 'unknown\n'
elif [ -d /proc/self ]; then
  # a zombie (killed, not yet reaped) is gone too
  st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  if [ -n "$st" ] && [ "$st" != Z ]; then printf 'running\n'; else printf 'gone\n'; fi
elif kill -0 "$pid" 2>/dev/null; then printf 'running\n'
else printf 'gone\n'
fi
cat "$L/info.json" 2>/dev/null
"""


@dataclass(frozen=True)
class LockStatus:
    """Who holds the deploy lock, and whether the deploy holding it still runs."""

    held: bool
    info: dict[str, Any]
    server_process: str = "unknown"  # running | gone | unknown: the push's process on the server
    client_process: str = "unknown"  # running | gone | unknown (known only on the same host)

    @property
    def stale(self) -> bool:
        """True when the deploy that took the lock is certainly no longer running."""
        return self.held and self.server_process == "gone"


def lock_status(conn: Connection, target: Target) -> LockStatus:
    """Read the lock (one command)."""
    result = conn.run(sh_script(LOCK_STATUS_SCRIPT, target.state_dir), what="reading the lock")
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    if not lines or lines[0] != "held":
        return LockStatus(False, {})
    server = lines[1] if len(lines) > 1 else "unknown"
    try:
        info = json.loads("\n".join(lines[2:])) if len(lines) > 2 else {}
    except json.JSONDecodeError:
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
    return LockStatus(True, info if isinstance(info, dict) else {}, server, client)


def release_lock(conn: Connection, target: Target) -> None:
    """Remove the lock folder."""
    conn.run(sh_script('rm -rf "$1/lock"', target.state_dir), what="releasing the lock")
