"""The one module that imports paramiko: `Connection` implements `RemoteShell` over SSH.

It connects lazily to an `Endpoint` (a host after ~/.ssh/config was applied),
checks host keys against known_hosts, runs commands and closes idempotently.
Library errors become `ConnectError`/`RemoteError` here.
"""

from __future__ import annotations

import getpass
import io
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import paramiko

from edgesync.errors import ConfigError, ConnectError, RemoteError
from edgesync.remote.shell import RunResult

log = logging.getLogger("edgesync.ssh")

KEY_ENV = "EDGESYNC_SSH_KEY"
KNOWN_HOSTS_ENV = "EDGESYNC_KNOWN_HOSTS"
DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_COMMAND_TIMEOUT = 120.0  # a remote command that runs longer is given up
MAX_OUTPUT = 512 << 20  # more output than this from one command is refused, never buffered
KEEPALIVE_SECONDS = 15


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect, after ~/.ssh/config was applied."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    proxy_jump: str | None = None
    known_hosts_files: tuple[Path, ...] = field(default_factory=tuple)
    # Set in edgesync.yaml (not found in ssh config): a missing key file is then an error,
    # and a jump host checks its key against the same known_hosts file.
    identity_required: bool = False
    known_hosts_override: Path | None = None
    label: str = ""  # the target's name, for hints that name its edgesync.yaml keys

    @property
    def host_key_name(self) -> str:
        """The name known_hosts files use for this host."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        port = "" if self.port == 22 else f":{self.port}"
        return f"{self.user}@{self.hostname}{port}"


def _ssh_config() -> paramiko.SSHConfig | None:
    path = Path("~/.ssh/config").expanduser()
    if not path.is_file():
        return None
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.ssh_exception.ConfigParseError) as e:
        raise ConfigError(f"{path}: cannot read ssh config: {e}") from e


def resolve_endpoint(
    host: str,
    *,
    user: str | None = None,
    port: int | None = None,
    identity_file: Path | None = None,
    known_hosts_file: Path | None = None,
    label: str = "",
) -> Endpoint:
    """Apply ~/.ssh/config to a host (or Host alias); explicit values win."""
    cfg = _ssh_config()
    found: dict[str, object] = dict(cfg.lookup(host)) if cfg else {}
    try:
        resolved_port = port or int(str(found.get("port", 22)))
    except ValueError:
        raise ConfigError(f"~/.ssh/config: Port for {host} is not a number") from None
    identities: tuple[str, ...]
    if identity_file is not None:
        identities = (str(identity_file),)
    else:
        raw = found.get("identityfile") or []
        identities = tuple(str(Path(p).expanduser()) for p in raw)  # type: ignore[attr-defined]
    known: list[Path] = []
    if known_hosts_file is not None:
        known.append(known_hosts_file)
    else:
        user_files = found.get("userknownhostsfile")
        if user_files:
            known += [Path(p).expanduser() for p in str(user_files).split()]
        else:
            known.append(Path("~/.ssh/known_hosts").expanduser())
        known.append(Path("/etc/ssh/ssh_known_hosts"))
    proxy = found.get("proxyjump")
    return Endpoint(
        alias=host,
        hostname=str(found.get("hostname", host)),
        port=resolved_port,
        user=user or str(found.get("user") or getpass.getuser()),
        identity_files=identities,
        proxy_jump=None if proxy in (None, "none") else str(proxy),
        known_hosts_files=tuple(known),
        identity_required=identity_file is not None,
        known_hosts_override=known_hosts_file,
        label=label,
    )


def _key_from_text(text: str) -> paramiko.PKey:
    """A private key held in memory (EDGESYNC_SSH_KEY); never written to disk."""
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text.strip() + "\n"))
        except paramiko.PasswordRequiredException:
            raise ConfigError(
                f"{KEY_ENV} holds an encrypted key; CI keys must have no passphrase"
            ) from None
        except (paramiko.SSHException, ValueError):
            continue  # not this key type: try the next
    raise ConfigError(f"{KEY_ENV} does not hold a private key edgesync can read (OpenSSH/PEM)")


def _fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint  # "SHA256:..." like ssh-keygen -l


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown hosts, or remember them when --accept-new-host-key was given."""

    def __init__(self, endpoint: Endpoint, *, accept_new: bool, remember_in: Path | None) -> None:
        self.endpoint = endpoint
        self.accept_new = accept_new
        self.remember_in = remember_in
        self.accepted: paramiko.PKey | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if not self.accept_new or self.remember_in is None:
            raise _UnknownHostKey(hostname, key)
        self.accepted = key
        client.get_host_keys().add(hostname, key.get_name(), key)
        path = self.remember_in
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        log.info("remembered host key %s %s in %s", hostname, _fingerprint(key), path)


class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


class Connection:
    """One SSH connection to an endpoint, opened on first use and reused (a `RemoteShell`).

    Use as a context manager; `close()` is idempotent.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        accept_new_host_key: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        trust_command: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.accept_new_host_key = accept_new_host_key
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.trust_command = trust_command
        self._client: paramiko.SSHClient | None = None
        self._jump: Connection | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.channels_opened = 0

    # -- lifecycle -----------------------------------------------------------

    @property
    def description(self) -> str:
        """`user@host[:port]`."""
        return str(self.endpoint)

    @property
    def hostname(self) -> str:
        """The host name connected to."""
        return self.endpoint.hostname

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the SFTP session, the connection and any jump host; safe to repeat."""
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    @property
    def client(self) -> paramiko.SSHClient:
        """The connected client (connects on first use)."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _host_keys(self, client: paramiko.SSHClient, ep: Endpoint) -> Path | None:
        """Load the trusted keys; return the file new keys would be remembered in."""
        env_lines = os.environ.get(KNOWN_HOSTS_ENV)
        keys = client.get_host_keys()
        if env_lines:
            for n, line in enumerate(env_lines.splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(line, n)
                except paramiko.SSHException as e:
                    raise ConfigError(f"{KNOWN_HOSTS_ENV} line {n}: {e}") from e
                if entry is None:
                    raise ConfigError(f"{KNOWN_HOSTS_ENV} line {n}: not a known_hosts line")
                for name in entry.hostnames:
                    keys.add(name, entry.key.get_name(), entry.key)
            return None  # only these keys are trusted: nothing is remembered
        for path in ep.known_hosts_files:
            if path.is_file():
                try:
                    client.load_system_host_keys(str(path))
                except (OSError, paramiko.SSHException) as e:
                    raise ConfigError(f"{path}: cannot read known_hosts: {e}") from e
        return ep.known_hosts_files[0] if ep.known_hosts_files else None

    def _connect(self) -> paramiko.SSHClient:
        ep = self.endpoint
        client = paramiko.SSHClient()
        remember_in = self._host_keys(client, ep)
        policy = _HostKeyPolicy(ep, accept_new=self.accept_new_host_key, remember_in=remember_in)
        client.set_missing_host_key_policy(policy)

        pkey = None
        key_text = os.environ.get(KEY_ENV)
        if key_text:
            pkey = _key_from_text(key_text)
        for f in ep.identity_files:
            if ep.identity_required and not Path(f).is_file():
                raise ConfigError(
                    f"identity_file {f} does not exist",
                    hint=f"fix targets.{ep.label}.identity_file in edgesync.yaml",
                )
        sock = self._proxy_socket(ep) if ep.proxy_jump else None
        log.debug("connecting to %s", ep)
        try:
            client.connect(
                ep.hostname,
                port=ep.port,
                username=ep.user,
                pkey=pkey,
                # paramiko accepts a list here; its stubs say str
                key_filename=[f for f in ep.identity_files if Path(f).is_file()]  # type: ignore[arg-type]
                or None,
                allow_agent=pkey is None,
                look_for_keys=pkey is None and not ep.identity_files,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                sock=sock,
            )
        except (_UnknownHostKey, paramiko.SSHException, OSError, EOFError) as e:
            client.close()
            raise self._connect_error(e, remembering=remember_in is not None) from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_SECONDS)
        if policy.accepted is not None:
            log.warning(
                "trusted new host key %s %s", ep.host_key_name, _fingerprint(policy.accepted)
            )
        return client

    def _connect_error(self, e: BaseException, *, remembering: bool) -> ConnectError:  # noqa: C901
        """One clear ConnectError for whatever connecting raised."""
        ep = self.endpoint
        if isinstance(e, _UnknownHostKey):
            hint = "if the fingerprint is right, trust the host with: " + (
                self.trust_command or "edgesync --accept-new-host-key ls"
            )
            if not remembering:
                hint = f"add the host's key line to {KNOWN_HOSTS_ENV}"
            return ConnectError(
                f"unknown host key for {e.hostname} ({e.key.get_name()} {_fingerprint(e.key)})",
                hint=hint,
            )
        if isinstance(e, paramiko.BadHostKeyException):
            return ConnectError(
                f"HOST KEY CHANGED for {e.hostname}: got {_fingerprint(e.key)}, "
                f"expected {_fingerprint(e.expected_key)} — refusing to connect",
                hint="someone may be intercepting the connection; if the server was "
                f"reinstalled, remove the old key with: ssh-keygen -R '{ep.host_key_name}'",
            )
        if isinstance(e, paramiko.PasswordRequiredException):
            return ConnectError(
                f"the key for {ep} is encrypted",
                hint="add it to ssh-agent (ssh-add), or use a key without a passphrase",
            )
        if isinstance(e, paramiko.AuthenticationException):
            tried = ", ".join(ep.identity_files) or "ssh-agent and ~/.ssh/id_*"
            if os.environ.get(KEY_ENV):
                tried = KEY_ENV
            return ConnectError(
                f"authentication failed for {ep} ({e}; tried {tried})",
                hint="check `user` and `identity_file` in edgesync.yaml and that the public "
                "key is in the server's ~/.ssh/authorized_keys",
            )
        if isinstance(e, socket.gaierror):
            return ConnectError(f"cannot resolve host '{ep.hostname}': {e.strerror}")
        if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
            return ConnectError(
                f"connection refused by {ep.hostname} port {ep.port}",
                hint="is sshd running there, and is `port` right?",
            )
        if isinstance(e, TimeoutError):
            return ConnectError(
                f"timed out connecting to {ep.hostname} port {ep.port} "
                f"after {self.connect_timeout:.0f}s",
                hint="check the host name, the port and any firewall",
            )
        if isinstance(e, ConnectionRefusedError):
            return ConnectError(f"connection refused by {ep.hostname} port {ep.port}")
        return ConnectError(f"cannot connect to {ep}: {e or type(e).__name__}")

    def _proxy_socket(self, ep: Endpoint) -> paramiko.Channel:
        """A direct-tcpip channel through the ProxyJump host (first hop of the chain)."""
        assert ep.proxy_jump is not None
        spec = ep.proxy_jump.split(",")[0].strip()
        user, _, hostport = spec.rpartition("@")
        host, port = hostport, None
        if hostport.count(":") == 1:
            host, p = hostport.split(":")
            port = int(p)
        jump = resolve_endpoint(
            host,
            user=user or None,
            port=port,
            known_hosts_file=ep.known_hosts_override,
            label=f"{ep.label} (ProxyJump)",
        )
        self._jump = Connection(
            jump,
            accept_new_host_key=self.accept_new_host_key,
            connect_timeout=self.connect_timeout,
            trust_command=self.trust_command,
        )
        transport = self._jump.client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip",
                (ep.hostname, ep.port),
                ("127.0.0.1", 0),
                timeout=self.connect_timeout,
            )
        except (paramiko.SSHException, OSError) as e:
            raise ConnectError(
                f"jump host {spec} cannot reach {ep.hostname} port {ep.port}: {e}"
            ) from None

    # -- commands ------------------------------------------------------------

    def _open(self, command: str) -> paramiko.Channel:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectError(f"the connection to {self.endpoint} was lost")
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise ConnectError(f"the connection to {self.endpoint} failed: {e}") from None
        self.channels_opened += 1
        log.debug("$ %s", command if len(command) < 500 else command[:500] + " …")
        return chan

    def run(
        self,
        command: str,
        *,
        stdin: bytes | Iterable[bytes] | None = None,
        check: bool = True,
        timeout: float | None = None,
        what: str | None = None,
    ) -> RunResult:
        """Run one command on the server and collect its output.

        `stdin` is streamed from a thread so that large inputs and outputs never
        deadlock. With `check`, a non-zero exit raises `RemoteError` naming
        `what` (or the command) and quoting stderr.
        """
        chan = self._open(command)
        write_error: list[BaseException] = []
        writer = _start_writer(chan, stdin, write_error)
        timeout = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            out, err = _collect(chan, deadline)
            if out is None:
                raise RemoteError(
                    f"{what or 'a remote command'} on {self.endpoint.hostname} gave no result "
                    f"within {timeout:.0f}s",
                    hint="the server may be overloaded or hung; `timeout` in edgesync.yaml "
                    "sets the limit",
                )
            status = chan.recv_exit_status()
        finally:
            chan.close()
        if writer is not None:
            writer.join(timeout=5)
        result = RunResult(command, status, out, err)
        if status == -1:
            raise ConnectError(
                f"the connection to {self.endpoint} was lost during {what or command}"
            )
        if check and status != 0:
            raise RemoteError(
                f"{what or 'remote command'} failed on {self.endpoint.hostname} "
                f"(exit {status}): {_last_lines(result.stderr_text) or 'no error output'}"
            )
        if write_error and status == 0:
            raise ConnectError(f"sending data to {self.endpoint} failed: {write_error[0]}")
        return result

    def stream_lines(
        self, command: str, deadline: float | None = None
    ) -> Iterator[tuple[str, str]]:
        """Run a long-lived command and yield ('out'|'err', line) as lines arrive,
        then ('exit', status) when it failed.

        Stops at `deadline` (time.monotonic()). Closing the generator closes the
        channel; the remote side sees its stdin close (see compose.FOLLOW_GUARD).
        """
        chan = self._open(command)
        bufs = {"out": b"", "err": b""}
        try:
            while deadline is None or time.monotonic() < deadline:
                got = False
                if chan.recv_ready():
                    bufs["out"] += chan.recv(1 << 16)
                    got = True
                if chan.recv_stderr_ready():
                    bufs["err"] += chan.recv_stderr(1 << 16)
                    got = True
                for name, buf in bufs.items():
                    *lines, rest = buf.split(b"\n")
                    bufs[name] = rest
                    for line in lines:
                        yield name, line.decode("utf-8", "replace")
                if got:
                    continue
                if chan.exit_status_ready() and chan.eof_received:
                    break
                select.select([chan], [], [], 0.2)
            else:
                return  # deadline: the finally below closes the channel
            for name, buf in bufs.items():
                if buf:
                    yield name, buf.decode("utf-8", "replace")
            status = chan.recv_exit_status()
            if status not in (0, -1):
                yield "exit", str(status)
        finally:
            chan.close()

    def open_channel(self, command: str) -> _Channel:
        """Start a command to talk to while it runs (see `remote.shell.Channel`)."""
        return _Channel(self._open(command), str(self.endpoint))

    def reconnect(self) -> Connection:
        """A new connection to the same endpoint (this one is closed)."""
        self.close()
        return Connection(
            self.endpoint,
            accept_new_host_key=False,
            connect_timeout=self.connect_timeout,
            command_timeout=self.command_timeout,
            trust_command=self.trust_command,
        )

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """One SFTP session, opened on first use and reused."""
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (paramiko.SSHException, OSError) as e:
                raise RemoteError(f"cannot open SFTP on {self.endpoint}: {e}") from None
            self.channels_opened += 1
        return self._sftp

    def read_file(self, path: str, limit: int = 8 << 20) -> bytes:
        """The bytes of one remote file (for patches), at most `limit` bytes."""
        try:
            with self.sftp.open(path, "rb") as f:
                f.prefetch()
                return bytes(f.read(limit))
        except OSError as e:
            raise RemoteError(f"cannot read {path} on the server: {e}") from None


class _Channel:
    """A running command: read its stdout up to a marker, stream stdin, wait for the end."""

    def __init__(self, chan: paramiko.Channel, where: str) -> None:
        self.chan = chan
        self.where = where
        self.out = bytearray()
        self.err = bytearray()
        self.writer: threading.Thread | None = None
        self.write_errors: list[BaseException] = []
        self.sent = 0
        self.done_sending = False
        self.last_activity = time.monotonic()

    def _pump(self, wait: float) -> bool:
        """Read what is there (waiting up to `wait`); False once the command has ended."""
        got = False
        if len(self.out) > MAX_OUTPUT or len(self.err) > MAX_OUTPUT:
            raise RemoteError(f"{self.where} sent more than {MAX_OUTPUT >> 20} MiB; gave up")
        while self.chan.recv_ready():
            self.out += self.chan.recv(1 << 16)
            got = True
        while self.chan.recv_stderr_ready():
            self.err += self.chan.recv_stderr(1 << 16)
            got = True
        if got:
            self.last_activity = time.monotonic()
            return True
        if (self.chan.exit_status_ready() and self.chan.eof_received) or self.chan.closed:
            return False
        select.select([self.chan], [], [], wait)
        return True

    def read_until(self, marker: bytes, *, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            at = self.out.find(marker)
            if at >= 0:
                head = bytes(self.out[:at])
                del self.out[: at + len(marker)]
                return head
            if not self._pump(0.2):
                return None
            if time.monotonic() > deadline:
                raise RemoteError(f"no answer from {self.where} after {timeout:.0f}s")

    def send(self, chunks: Iterable[bytes]) -> None:
        def feed() -> None:
            try:
                for chunk in chunks:
                    self.chan.sendall(chunk)
                    self.sent += len(chunk)
                    self.last_activity = time.monotonic()
                self.chan.shutdown_write()
                self.done_sending = True
            except (OSError, paramiko.SSHException) as e:
                self.write_errors.append(e)

        self.writer = threading.Thread(target=feed, daemon=True)
        self.writer.start()

    @property
    def sent_all(self) -> bool:
        return self.done_sending

    def finish(self, *, idle_timeout: float | None = None, what: str = "") -> RunResult:
        try:
            while self._pump(0.2):
                idle = time.monotonic() - self.last_activity
                if idle_timeout is not None and idle > idle_timeout:
                    raise RemoteError(
                        f"{what or 'the remote command'} on {self.where}: nothing sent or "
                        f"received for {idle_timeout:.0f}s; gave up"
                    )
            status = self.chan.recv_exit_status()
        finally:
            self.close()
        if self.writer is not None:
            self.writer.join(timeout=5)
        if status == -1:
            raise ConnectError(f"the connection to {self.where} was lost during {what}")
        return RunResult("", status, bytes(self.out), bytes(self.err))

    def close(self) -> None:
        self.chan.close()


def _start_writer(
    chan: paramiko.Channel, stdin: bytes | Iterable[bytes] | None, errors: list[BaseException]
) -> threading.Thread | None:
    """Stream `stdin` into the channel from a thread (so output never blocks input)."""
    if stdin is None:
        chan.shutdown_write()
        return None
    chunks = [stdin] if isinstance(stdin, bytes) else stdin

    def feed() -> None:
        try:
            for chunk in chunks:
                chan.sendall(chunk)
            chan.shutdown_write()
        except (OSError, paramiko.SSHException) as e:
            errors.append(e)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return writer


def _collect(chan: paramiko.Channel, deadline: float) -> tuple[bytes | None, bytes]:
    """stdout and stderr until the command ends; stdout None when `deadline` passed first."""
    out, err = bytearray(), bytearray()
    while True:
        if len(out) > MAX_OUTPUT or len(err) > MAX_OUTPUT:
            raise RemoteError(
                f"the server sent more than {MAX_OUTPUT >> 20} MiB for one command; gave up"
            )
        if chan.recv_ready():
            out += chan.recv(1 << 16)
            continue
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 16)
            continue
        if (chan.exit_status_ready() and chan.eof_received) or chan.closed:
            return bytes(out), bytes(err)
        if time.monotonic() > deadline:
            return None, bytes(err)
        select.select([chan], [], [], 0.2)


def _last_lines(text: str, n: int = 3) -> str:
    return " | ".join(line for line in text.splitlines()[-n:] if line.strip())
