"""What one command run works with: the config, the chosen target, the local tree,
and one lazily opened SSH connection (closed when the command ends)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from edgesync.config import Config, Target, find_config, load_config
from edgesync.local import LocalTree, scan_local
from edgesync.remote.ssh import Connection
from edgesync.vcs import GitState, git_state


@dataclass
class Session:
    """Global options plus the things they lead to, each loaded once on demand."""

    config_path: Path | None = None
    target_name: str | None = None
    verbose: bool = False
    accept_new_host_key: bool = False
    cwd: Path = field(default_factory=Path.cwd)
    _config: Config | None = None
    _target: Target | None = None
    _local: LocalTree | None = None
    _connection: Connection | None = None
    _git: GitState | None = None

    @property
    def config(self) -> Config:
        """edgesync.yaml, from --config or found from the current folder up."""
        if self._config is None:
            path = self.config_path or find_config(self.cwd)
            self._config = load_config(path)
        return self._config

    @property
    def target(self) -> Target:
        """The target chosen by --target, $EDGESYNC_TARGET or default_target."""
        if self._target is None:
            self._target = self.config.target(self.target_name)
        return self._target

    @property
    def local(self) -> LocalTree:
        """The local functions tree, scanned once."""
        if self._local is None:
            self._local = scan_local(self.config.functions_dir, self.config.exclude)
        return self._local

    @property
    def git(self) -> GitState:
        """The commit being deployed and whether the functions folder is dirty."""
        if self._git is None:
            self._git = git_state(self.local.root, self.local.root)
        return self._git

    @property
    def connection(self) -> Connection:
        """The SSH connection to the target (connects on first command)."""
        if self._connection is None:
            self._connection = Connection(
                self.target,
                accept_new_host_key=self.accept_new_host_key,
                trust_command=self.trust_command(),
            )
        return self._connection

    def where(self) -> str:
        """user@host:/path of the remote functions folder, for headers."""
        ep = self.connection.endpoint
        return f"{ep}:{self.target.remote_functions_dir}"

    def trust_command(self) -> str:
        """The exact command that trusts this target's host key."""
        words = ["edgesync"]
        if self.config_path is not None:
            words += ["-c", str(self.config_path)]
        words += ["-t", self.target.name, "--accept-new-host-key", "ls"]
        return shlex.join(words)

    def close(self) -> None:
        """Close the connection if one was opened."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
