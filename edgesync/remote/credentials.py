"""The private key CI gives in EDGESYNC_SSH_KEY: taken out of the environment at once.

Kept apart from `ssh.py` so the CLI can take it before anything runs (git among
them) without importing paramiko.
"""

from __future__ import annotations

import os

KEY_ENV = "EDGESYNC_SSH_KEY"

# What this process keeps between connections (see `forget`).
_env_key: str | None = None


def take_env_key() -> str | None:
    """The private key text from EDGESYNC_SSH_KEY, if any.

    The variable is removed from `os.environ` the first time it is seen, so that no child
    process (git) inherits the key; the text stays here for every later connection of this
    process (a reconnect, a jump host, another target). A value set again later wins.
    """
    global _env_key
    text = os.environ.pop(KEY_ENV, None)
    if text is not None:
        _env_key = text if text.strip() else None
    return _env_key


def forget() -> None:
    """Forget the key taken from the environment (tests, long-lived library use)."""
    global _env_key
    _env_key = None
