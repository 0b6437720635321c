"""edgesync's state on the server (`<project_dir>/.edgesync/`): the release history."""

from __future__ import annotations

import json
from typing import Any

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.remote.ssh import Connection, sh_script

LAST_RELEASE_SCRIPT = r"""
[ -f "$1/history.jsonl" ] || exit 0
tail -n 1 "$1/history.jsonl"
"""


def latest_release(conn: Connection, target: Target) -> dict[str, Any] | None:
    """The last release recorded on the server, or None before the first push."""
    result = conn.run(
        sh_script(LAST_RELEASE_SCRIPT, target.state_dir), what="reading the release history"
    )
    text = result.stdout.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise RemoteError(
            f"{target.state_dir}/history.jsonl: the last line is not JSON ({e})"
        ) from None
    return record if isinstance(record, dict) else None
