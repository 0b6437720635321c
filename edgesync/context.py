"""What a command works with, made explicit.

`Options` are the global options. A `Workspace` is the local side of one run:
the config, the chosen target, the local tree and the git facts (the last two
computed on first use: `lock status` never scans the tree). A `Server` is one
deploy target with the `RemoteShell` that reaches it; a push to several servers
would be a loop over `Server`s.

paramiko is imported only when a server is opened, so `--version` and `--help`
stay fast.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from edgesync import __version__
from edgesync.config import Config, Target, find_config, load_config
from edgesync.local.tree import ExcludeRules, LocalTree, exclude_rules, scan_local
from edgesync.remote.shell import RemoteShell
from edgesync.vcs import GitState, git_state

if TYPE_CHECKING:
    from edgesync.history import Actor


@dataclass(frozen=True)
class Options:
    """The global options of one run."""

    config_path: Path | None = None
    target_name: str | None = None
    verbose: bool = False
    quiet: bool = False
    accept_new_host_key: bool = False
    cwd: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class Workspace:
    """The local side of one run: config, target, tree and git facts."""

    config: Config
    target: Target

    @classmethod
    def load(cls, options: Options) -> Workspace:
        """edgesync.yaml from --config or found from the current folder up, and its target."""
        config = load_config(options.config_path or find_config(options.cwd))
        return cls(config, config.target(options.target_name))

    @cached_property
    def tree(self) -> LocalTree:
        """The local functions tree, scanned once."""
        return scan_local(
            self.config.functions_dir, self.config.exclude, tests=self.config.deploy_tests
        )

    @cached_property
    def rules(self) -> ExcludeRules:
        """What stays local: the config's exclude globs and, unless deployed, test files."""
        return exclude_rules(self.config.exclude, tests=self.config.deploy_tests)

    @cached_property
    def git(self) -> GitState:
        """The commit being deployed and whether the functions folder is dirty."""
        folder = self.config.functions_dir.resolve()
        return git_state(folder, folder)

    def actor(self) -> Actor:
        """Who deploys from here: recorded in the lock and the history."""
        # imported here: the CLI loads this module to start connecting, history (~50 ms
        # with plan) is imported by the command meanwhile
        from edgesync.history import Actor

        return Actor(
            user=getpass.getuser(),
            host=socket.gethostname(),
            pid=os.getpid(),
            commit=self.git.commit,
            dirty=self.git.dirty,
            version=__version__,
        )


@dataclass
class Server:
    """One deploy target and the shell that reaches it (connected on first use)."""

    target: Target
    shell: RemoteShell

    def where(self) -> str:
        """user@host:/path of the remote functions folder, for headers."""
        return f"{self.shell.description}:{self.target.remote_functions_dir}"

    def close(self) -> None:
        """Close the connection if one was opened."""
        self.shell.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_server(target: Target, options: Options) -> Server:
    """A `Server` for `target` over SSH (~/.ssh/config applied; starts connecting in the
    background, and the first command waits for it)."""
    from edgesync.remote.ssh import Connection, resolve_endpoint

    endpoint = resolve_endpoint(
        target.host,
        user=target.user,
        port=target.port,
        identity_file=target.identity_file,
        known_hosts_file=target.known_hosts_file,
        label=target.name,
    )
    shell = Connection(
        endpoint,
        accept_new_host_key=options.accept_new_host_key,
        command_timeout=float(target.timeout),
        trust_command=trust_command(target, options),
    )
    shell.connect_soon()  # the handshake's round trips overlap the command's local work
    return Server(target, shell)


# Started by the CLI as soon as the global options are parsed (`prepare_server`), before
# the command's module is imported, and taken by the command when it opens its server.
_prepared: dict[Options, tuple[Workspace, Server]] = {}


def prepare_server(options: Options) -> None:
    """Load the workspace and start connecting to its target now.

    Importing a command's module (its action, the remote layer, rich) takes ~0.2 s; the
    TCP and SSH handshakes (several round trips) run meanwhile. Anything that fails here
    is left for the command to meet again, where it is reported as usual.
    """
    try:
        ws = Workspace.load(options)
        _prepared[options] = (ws, open_server(ws.target, options))
    except Exception:  # noqa: BLE001 - the command loads and connects again, and reports it
        return


def prepared_workspace(options: Options) -> Workspace | None:
    """The workspace `prepare_server` loaded for these options, if any."""
    found = _prepared.get(options)
    return found[0] if found is not None else None


def take_prepared_server(ws: Workspace, options: Options) -> Server | None:
    """The server `prepare_server` opened for `ws` (now the caller's to close), if any."""
    found = _prepared.get(options)
    if found is None or found[0] is not ws:
        return None
    del _prepared[options]
    return found[1]


def close_prepared() -> None:
    """Close the servers prepared but not taken (the command failed before it connected)."""
    while _prepared:
        _, (_, srv) = _prepared.popitem()
        srv.close()


def trust_command(target: Target, options: Options) -> str:
    """The exact command that trusts this target's host key."""
    words = ["edgesync"]
    if options.config_path is not None:
        words += ["-c", str(options.config_path)]
    words += ["-t", target.name, "--accept-new-host-key", "ls"]
    return shlex.join(words)
