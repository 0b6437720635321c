"""The one module that imports paramiko: `Connection` implements `RemoteShell` over SSH.

It connects lazily to an `Endpoint` (a host after ~/.ssh/config was applied, its tokens
expanded as OpenSSH expands them), directly, through ProxyJump hosts or through a
ProxyCommand. Every host's key is judged here against known_hosts (`@revoked` keys refused,
`@cert-authority` lines ignored with a warning), weak algorithms are never negotiated, and
commands run on one reused connection that closes idempotently. Library errors become
`ConfigError`/`ConnectError`/`RemoteError` here.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import hmac
import importlib
import io
import logging
import os
import re
import select
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from edgesync.config import host_name_problem
from edgesync.errors import ConfigError, ConnectError, EdgesyncError, RemoteError
from edgesync.remote import credentials
from edgesync.remote.shell import RunResult

# paramiko.config imports invoke (and with it unittest.mock and asyncio, ~0.1 s at every
# start) only to run `Match exec` lines of ~/.ssh/config: import paramiko without it, and
# give paramiko.config the real module when a config has such a line (`_ssh_config`).
_invoke_known = "invoke" in sys.modules
if not _invoke_known:
    sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` fails now
try:
    import paramiko
finally:
    if not _invoke_known:
        del sys.modules["invoke"]


log = logging.getLogger("edgesync.ssh")

KEY_ENV = credentials.KEY_ENV
KNOWN_HOSTS_ENV = "EDGESYNC_KNOWN_HOSTS"
SSH_CONFIG = "~/.ssh/config"
DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_COMMAND_TIMEOUT = 120.0  # a remote command that runs longer is given up
MAX_OUTPUT = 512 << 20  # more output than this from one command is refused, never buffered
KEEPALIVE_SECONDS = 15
MAX_JUMPS = 8  # ProxyJump hosts in a row; more means ~/.ssh/config loops

# Never negotiated, whatever paramiko's defaults: SHA-1 key exchange, SHA-1 RSA and DSA
# signatures, CBC ciphers, SHA-1 and MD5 MACs. (paramiko 5 dropped the SHA-1 key exchanges and
# ssh-rsa signatures itself but still offers CBC and hmac-sha1/md5.) RSA keys keep working
# through rsa-sha2-256/512.
DISABLED_ALGORITHMS: Mapping[str, tuple[str, ...]] = {
    "kex": (
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
    ),
    "ciphers": ("aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc"),
    "macs": ("hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96"),
    "keys": ("ssh-rsa", "ssh-dss"),
    "pubkeys": ("ssh-rsa", "ssh-dss"),
}

# ssh_config(5) TOKENS: which %-tokens each keyword edgesync expands accepts.
_FILE_TOKENS = frozenset("%CdhijkLlnpru")
_PROXY_TOKENS = frozenset("%hnpr")
_OPENSSH_USER_KNOWN_HOSTS = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
_OPENSSH_GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect, after ~/.ssh/config was applied."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    proxy_jump: str | None = None  # "[user@]host[:port],…", followed hop by hop
    proxy_command: str | None = None  # tokens already expanded; run by the user's shell
    known_hosts_files: tuple[Path, ...] = field(default_factory=tuple)
    remember_in: Path | None = None  # where --accept-new-host-key writes (None: nowhere)
    hash_known_hosts: bool = False  # HashKnownHosts yes: remembered names are hashed
    default_identities: bool = True  # False once IdentityFile was given (even `none`)
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


# -- EDGESYNC_SSH_KEY ----------------------------------------------------------

# Warnings given once per process (see `forget_session_state`).
_warned_cert_authority = False
_take_env_key = credentials.take_env_key


def forget_session_state() -> None:
    """Forget what this process keeps between connections: the key taken from
    EDGESYNC_SSH_KEY and the warnings already given (for tests and long-lived library use)."""
    global _warned_cert_authority
    credentials.forget()
    _warned_cert_authority = False


def _keys_tried(ep: Endpoint) -> list[str]:
    """What a login offered, in words: the env key, key files, the agent."""
    if _take_env_key() is not None:
        return [KEY_ENV]
    files = [f for f in ep.identity_files if Path(f).is_file()]
    if not ep.identity_files:
        home = Path("~/.ssh").expanduser()
        names = ("id_ed25519", "id_ecdsa", "id_rsa")
        files = [str(home / n) for n in names if (home / n).is_file()]
    tried = [f"key file {f}" for f in files]
    if os.environ.get("SSH_AUTH_SOCK"):
        tried.append("the keys in ssh-agent")
    return tried


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


# -- ~/.ssh/config -------------------------------------------------------------


class _SSHConfig(paramiko.SSHConfig):
    """paramiko's ssh_config reader, minus its partial token expansion for the keys edgesync
    expands itself, completely and as OpenSSH does (`_expand`)."""

    TOKENS_BY_CONFIG_KEY = {
        key: tokens
        for key, tokens in paramiko.SSHConfig.TOKENS_BY_CONFIG_KEY.items()
        if key not in ("identityfile", "proxycommand", "proxyjump")
    }


def _ssh_config() -> paramiko.SSHConfig | None:
    path = Path(SSH_CONFIG).expanduser()
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        if "exec" in text.lower():
            _load_invoke()
        return _SSHConfig.from_text(text)
    except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as e:
        raise ConfigError(f"{path}: cannot read ssh config: {e}") from e


def _load_invoke() -> None:
    """paramiko runs `Match exec` with invoke, which it was imported without (see above)."""
    if getattr(paramiko.config, "invoke", None) is None:
        with contextlib.suppress(ImportError):  # else paramiko says invoke is missing
            paramiko.config.invoke = importlib.import_module("invoke")  # type: ignore[attr-defined]


def _lookup(host: str) -> dict[str, Any]:
    """~/.ssh/config's options for `host`, which must already be a valid host name: paramiko
    runs `Match exec` commands with it pasted in (%h, %n)."""
    assert host_name_problem(host) is None, host
    cfg = _ssh_config()
    if cfg is None:
        return {}
    try:
        return dict(cfg.lookup(host))
    except paramiko.ssh_exception.CouldNotCanonicalize as e:
        raise ConfigError(f"{SSH_CONFIG}: cannot canonicalize host name {e}") from None
    except (paramiko.ssh_exception.ConfigParseError, ValueError) as e:
        raise ConfigError(f"{SSH_CONFIG}: {e} (looking up {host})") from None
    except Exception as e:  # noqa: BLE001 - a `Match exec` command that invoke could not run
        raise ConfigError(
            f"{SSH_CONFIG}: looking up {host} failed: {type(e).__name__}: {e}"
        ) from None


@dataclass(frozen=True)
class _Tokens:
    """The values of ssh_config's %-tokens for one connection."""

    alias: str  # %n, the name as given
    hostname: str  # %h
    port: int  # %p
    user: str  # %r, the remote user
    jump: str  # %j, the ProxyJump value or ""

    def value(self, letter: str) -> str:
        local = socket.gethostname()
        values = {
            "%": "%",
            "d": str(Path.home()),
            "h": self.hostname,
            "i": str(os.getuid()),
            "j": self.jump,
            "k": self.alias,
            "L": local.split(".")[0],
            "l": local,
            "n": self.alias,
            "p": str(self.port),
            "r": self.user,
            "u": getpass.getuser(),
        }
        if letter == "C":  # OpenSSH's connection hash: sha1 of %l%h%p%r%j
            joined = f"{local}{self.hostname}{self.port}{self.user}{self.jump}"
            return hashlib.sha1(joined.encode()).hexdigest()
        return values[letter]


def _expand(
    value: str,
    tokens: _Tokens,
    allowed: frozenset[str],
    key: str,
    *,
    env_vars: bool = False,
    shown: str | None = None,
) -> str:
    """`value` with its %-tokens (and, with `env_vars`, ${VAR}) expanded as OpenSSH does;
    errors quote `shown` (the value as written)."""
    shown = value if shown is None else shown
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "%":
            letter = value[i + 1 : i + 2]
            if not letter or letter not in allowed:
                raise ConfigError(
                    f"{SSH_CONFIG}: {key} {shown}: unknown token %{letter}",
                    hint=f"{key} accepts " + " ".join("%" + t for t in sorted(allowed)),
                )
            out.append(tokens.value(letter))
            i += 2
        elif env_vars and value.startswith("${", i):
            end = value.find("}", i)
            name = value[i + 2 : end] if end > 0 else ""
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ConfigError(f"{SSH_CONFIG}: {key} {shown}: bad ${{…}} variable")
            if name not in os.environ:
                raise ConfigError(f"{SSH_CONFIG}: {key} {shown}: ${name} is not set")
            out.append(os.environ[name])
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _expand_path(value: str, tokens: _Tokens | None, key: str) -> Path:
    """A file named in ssh config: a leading ~ is the home folder, then %-tokens and ${VAR}
    (unless `tokens` is None: GlobalKnownHostsFile only knows ~)."""
    written = value
    if value == "~" or value.startswith("~/"):
        value = str(Path.home()) + value[1:]
    if tokens is None:
        return Path(value)
    return Path(_expand(value, tokens, _FILE_TOKENS, key, env_vars=True, shown=written))


def _files(value: str, tokens: _Tokens | None, key: str) -> tuple[Path, ...]:
    """The files of a UserKnownHostsFile/GlobalKnownHostsFile line (`none`: no file)."""
    try:
        words = shlex.split(value)
    except ValueError as e:
        raise ConfigError(f"{SSH_CONFIG}: {key} {value}: {e}") from None
    if any(w.lower() == "none" for w in words):
        if len(words) > 1:
            raise ConfigError(f"{SSH_CONFIG}: {key} {value}: `none` must appear alone")
        return ()
    return tuple(_expand_path(w, tokens, key) for w in words)


def _proxy(found: Mapping[str, Any], tokens: _Tokens) -> tuple[str | None, str | None]:
    """(ProxyJump, ProxyCommand) for a host: whichever ~/.ssh/config sets first wins, as in
    OpenSSH; `none` means neither. paramiko keeps the options in the order they were set."""
    for key in found:
        if key not in ("proxyjump", "proxycommand"):
            continue
        value = str(found[key] or "none").strip()  # paramiko reads `ProxyCommand none` as None
        if value.lower() == "none":
            return None, None
        expanded = _expand(value, tokens, _PROXY_TOKENS, key)
        return (expanded, None) if key == "proxyjump" else (None, expanded)
    return None, None


def resolve_endpoint(
    host: str,
    *,
    user: str | None = None,
    port: int | None = None,
    identity_file: Path | None = None,
    known_hosts_file: Path | None = None,
    label: str = "",
    via: str | None = None,
) -> Endpoint:
    """Apply ~/.ssh/config to a host (or Host alias); explicit values win.

    `via` (a ProxyJump chain) replaces the host's own ProxyJump/ProxyCommand, as `ssh -J` does
    for the hops of a chain.
    """
    problem = host_name_problem(host)
    if problem:
        raise ConfigError(f"host name {ascii(host)} {problem}")
    _take_env_key()  # out of the environment before any child process starts
    found = _lookup(host)
    hostname = str(found.get("hostname", host))
    problem = host_name_problem(hostname)
    if problem:
        raise ConfigError(f"{SSH_CONFIG}: HostName {ascii(hostname)} for {host} {problem}")
    try:
        resolved_port = port or int(str(found.get("port", 22)))
    except ValueError:
        raise ConfigError(f"{SSH_CONFIG}: Port for {host} is not a number") from None
    resolved_user = user or str(found.get("user") or getpass.getuser())
    tokens = _Tokens(
        alias=host,
        hostname=hostname,
        port=resolved_port,
        user=resolved_user,
        jump=str(found.get("proxyjump") or ""),
    )

    identities: tuple[str, ...] = ()
    default_identities = True
    if identity_file is not None:
        identities, default_identities = (str(identity_file),), False
    elif found.get("identityfile"):
        default_identities = False
        for value in found["identityfile"]:
            if str(value).lower() != "none":
                identities += (str(_expand_path(str(value), tokens, "IdentityFile")),)

    known: tuple[Path, ...]
    remember_in: Path | None
    if known_hosts_file is not None:
        known, remember_in = (known_hosts_file,), known_hosts_file
    else:
        user_files = _files(
            str(found.get("userknownhostsfile") or _OPENSSH_USER_KNOWN_HOSTS),
            tokens,
            "UserKnownHostsFile",
        )
        global_files = _files(
            str(found.get("globalknownhostsfile") or _OPENSSH_GLOBAL_KNOWN_HOSTS),
            None,
            "GlobalKnownHostsFile",
        )
        known, remember_in = user_files + global_files, (user_files[0] if user_files else None)

    proxy_jump, proxy_command = _proxy(found, tokens) if via is None else (via or None, None)
    return Endpoint(
        alias=host,
        hostname=hostname,
        port=resolved_port,
        user=resolved_user,
        identity_files=identities,
        proxy_jump=proxy_jump,
        proxy_command=proxy_command,
        known_hosts_files=known,
        remember_in=remember_in,
        hash_known_hosts=str(found.get("hashknownhosts", "no")).lower() == "yes",
        default_identities=default_identities,
        identity_required=identity_file is not None,
        known_hosts_override=known_hosts_file,
        label=label,
    )


def _jump_hop(spec: str) -> tuple[str | None, str, int | None]:
    """(user, host, port) of one ProxyJump hop: [user@]host[:port] or ssh://[user@]host[:port]."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{SSH_CONFIG}: ProxyJump hop {ascii(spec)} {why}")

    user, _, hostport = spec.removeprefix("ssh://").rpartition("@")
    host, port_text = hostport, ""
    if hostport.startswith("["):  # [IPv6 address]:port
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad("has a bad port")
        port = int(port_text)
    problem = host_name_problem(host)
    if problem:
        raise bad(problem)
    if user and (user.startswith("-") or re.search(r"[\s'`\";&<>|(){}\\]", user)):
        raise bad("has a user name OpenSSH refuses")
    return user or None, host, port


# -- known_hosts ---------------------------------------------------------------


@dataclass(frozen=True)
class _KnownKey:
    """One usable known_hosts line."""

    marker: str  # "", "@revoked" or "@cert-authority"
    hosts: str  # comma-separated patterns, or one hashed name (|1|salt|hash)
    key: paramiko.PKey
    where: str  # "file:line", for messages


def _parse_known_hosts(text: str, source: str) -> tuple[list[_KnownKey], list[str]]:
    """The usable lines of known_hosts text, and why the others are not ("line N: …").

    Key types paramiko cannot use are skipped silently: a server can never present them.
    """
    keys: list[_KnownKey] = []
    problems: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else ""
        if marker not in ("", "@revoked", "@cert-authority"):
            problems.append(f"line {n}: unknown marker {ascii(marker)}")
            continue
        if len(fields) < 3:
            problems.append(f"line {n}: not a known_hosts line")
            continue
        hosts, key_type, blob = fields[:3]
        try:
            key = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
        except paramiko.pkey.UnknownKeyType:
            continue
        except Exception:  # noqa: BLE001 - any undecodable key is one bad line, never a crash
            problems.append(f"line {n}: the {ascii(key_type)} key cannot be decoded")
            continue
        keys.append(_KnownKey(marker, hosts, key, f"{source}:{n}"))
    return keys, problems


def _pattern_matches(pattern: str, name: str) -> bool:
    """A known_hosts host pattern (only `*` and `?` are special) against a name."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, flags=re.DOTALL) is not None


def _names_match(hosts: str, name: str) -> bool:
    """Does a known_hosts host field name `name`? Patterns are compared without regard to
    case; a negated pattern that matches excludes the line; a hashed name is an HMAC-SHA1."""
    name = name.lower()
    if hosts.startswith("|1|"):
        parts = hosts.split("|")
        try:
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        except (IndexError, ValueError):
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
    matched = False
    for pattern in hosts.lower().split(","):
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], name):
                return False
        elif _pattern_matches(pattern, name):
            matched = True
    return matched


def _warn_cert_authority(where: str) -> None:
    """Say once per process that @cert-authority lines are ignored."""
    global _warned_cert_authority
    if _warned_cert_authority:
        return
    _warned_cert_authority = True
    log.warning(
        "%s: @cert-authority line ignored: edgesync cannot check host certificates "
        "(paramiko cannot); add the server's own host key to known_hosts",
        where,
    )


@dataclass(frozen=True)
class _Trust:
    """What known_hosts says about one host."""

    name: str  # the name looked up: host, or [host]:port
    keys: tuple[paramiko.PKey, ...]  # trusted, none of them revoked
    revoked: Mapping[bytes, str]  # key blob -> the line that revokes it
    remember_in: Path | None  # where a new key is written (None: nowhere)
    hashed: bool  # write the name hashed, as the file's other lines are
    from_env: bool  # the keys came from EDGESYNC_KNOWN_HOSTS


def _trust(ep: Endpoint) -> _Trust:
    """Read EDGESYNC_KNOWN_HOSTS, else the endpoint's known_hosts files, for its host."""
    entries: list[_KnownKey] = []
    remember_in: Path | None = None
    hashed = ep.hash_known_hosts
    env_text = os.environ.get(KNOWN_HOSTS_ENV)
    if env_text is not None:
        if not env_text.strip():
            raise ConfigError(
                f"{KNOWN_HOSTS_ENV} is set but empty",
                hint="a missing CI secret? set it to the server's known_hosts lines "
                "(ssh-keyscan -p PORT HOST), or unset it to use the known_hosts files",
            )
        entries, problems = _parse_known_hosts(env_text, KNOWN_HOSTS_ENV)
        if problems:
            raise ConfigError(f"{KNOWN_HOSTS_ENV} {problems[0]}")
        if not entries:
            raise ConfigError(f"{KNOWN_HOSTS_ENV} holds no host key line")
    else:
        remember_in = ep.remember_in
        for path in ep.known_hosts_files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                raise ConfigError(f"{path}: cannot read known_hosts: {e}") from e
            found, problems = _parse_known_hosts(text, str(path))
            for problem in problems:
                log.debug("%s %s: skipped", path, problem)
            entries += found
            if path == remember_in:
                hashed = hashed or any(e.hosts.startswith("|1|") for e in found)
    name = ep.host_key_name
    matching = [e for e in entries if _names_match(e.hosts, name)]
    revoked = {e.key.asbytes(): e.where for e in matching if e.marker == "@revoked"}
    for entry in matching:
        if entry.marker == "@cert-authority":
            _warn_cert_authority(entry.where)
    keys = tuple(e.key for e in matching if not e.marker and e.key.asbytes() not in revoked)
    return _Trust(name, keys, revoked, remember_in, hashed, env_text is not None)


def _remember(path: Path, name: str, key: paramiko.PKey, *, hashed: bool) -> None:
    """Append a host key line; the ~/.ssh folder is created if missing, no other folder."""
    folder = path.parent
    if not folder.is_dir():
        if folder != Path("~/.ssh").expanduser():
            raise ConfigError(
                f"cannot remember the host key in {path}: the folder {folder} does not exist"
            )
        folder.mkdir(mode=0o700, parents=True)
    shown = paramiko.HostKeys.hash_host(name.lower()) if hashed else name
    line = f"{shown} {key.get_name()} {key.get_base64()}\n"
    with path.open("a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode())


class _HostKeyRefused(Exception):
    """The server's host key is not trusted: unknown, changed or revoked."""

    def __init__(
        self,
        why: str,  # "unknown", "changed" or "revoked"
        name: str,
        key: paramiko.PKey,
        *,
        expected: paramiko.PKey | None = None,  # changed: the key known_hosts has
        revoked_by: str = "",  # revoked: the known_hosts line that says so ("file:line")
    ) -> None:
        super().__init__(name)
        self.why = why
        self.name = name
        self.key = key
        self.expected = expected
        self.revoked_by = revoked_by


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """The one place a server's host key is judged (paramiko's own key list stays empty, so
    paramiko asks here for every key): revoked, known, changed, or unknown (refused, or
    remembered with --accept-new-host-key)."""

    def __init__(self, trust: _Trust, *, accept_new: bool) -> None:
        self.trust = trust
        self.accept_new = accept_new
        self.accepted: paramiko.PKey | None = None
        self.passed = False  # the key was trusted: what fails next is authentication

    def missing_host_key(
        self,
        client: paramiko.SSHClient,  # noqa: ARG002 - paramiko's signature
        hostname: str,
        key: paramiko.PKey,
    ) -> None:
        blob = key.asbytes()
        if blob in self.trust.revoked:
            raise _HostKeyRefused("revoked", hostname, key, revoked_by=self.trust.revoked[blob])
        if any(known.asbytes() == blob for known in self.trust.keys):
            self.passed = True
            return
        if self.trust.keys:
            same_type = [k for k in self.trust.keys if k.get_name() == key.get_name()]
            raise _HostKeyRefused(
                "changed", hostname, key, expected=(same_type or list(self.trust.keys))[0]
            )
        if not self.accept_new or self.trust.remember_in is None:
            raise _HostKeyRefused("unknown", hostname, key)
        _remember(self.trust.remember_in, self.trust.name, key, hashed=self.trust.hashed)
        self.accepted = key
        self.passed = True
        log.info(
            "remembered host key %s %s in %s",
            hostname,
            _fingerprint(key),
            self.trust.remember_in,
        )


# Host key algorithms for a known_hosts key type (RSA keys sign with SHA-2 only).
_HOST_KEY_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}


def _transport_factory(trust: _Trust) -> Callable[..., paramiko.Transport]:
    """Builds paramiko's Transport asking first for the key types known_hosts has for the
    host, as OpenSSH orders HostKeyAlgorithms (else a server with several keys would present
    one of a type we do not know, and be refused as changed)."""
    wanted = [
        algorithm
        for key in trust.keys
        for algorithm in _HOST_KEY_ALGORITHMS.get(key.get_name(), (key.get_name(),))
    ]

    def make(sock: Any, /, **kwargs: Any) -> paramiko.Transport:
        transport = paramiko.Transport(sock, disabled_algorithms=kwargs["disabled_algorithms"])
        options = transport.get_security_options()
        first = [a for a in dict.fromkeys(wanted) if a in options.key_types]
        options.key_types = first + [a for a in options.key_types if a not in first]
        return transport

    return make


class _ProxyCommand(paramiko.ProxyCommand):
    """paramiko's ProxyCommand, closed by `terminate()` (which never signals a process that
    was already reaped) instead of a bare kill of its pid."""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.terminate()


def _end_proxy(proxy: paramiko.ProxyCommand) -> None:
    """Stop a ProxyCommand's process, reap it and close its pipes."""
    process = proxy.process
    with contextlib.suppress(OSError):
        process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _proxy_stderr(proxy: paramiko.ProxyCommand) -> str:
    """The last lines a failed ProxyCommand wrote to stderr, as ": …" (or "")."""
    stream = proxy.process.stderr
    if stream is None:
        return ""
    try:
        ready, _, _ = select.select([stream], [], [], 1.0)
        data = os.read(stream.fileno(), 8192) if ready else b""
    except (OSError, ValueError):
        return ""
    text = "".join(
        c if c.isprintable() or c == "\n" else "?" for c in data.decode(errors="replace")
    )
    lines = _last_lines(text)
    return f": {lines}" if lines else ""


def _fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint  # "SHA256:..." like ssh-keygen -l


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
        jumps: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self.accept_new_host_key = accept_new_host_key
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.trust_command = trust_command
        self.jumps = jumps  # how many jump hosts lead here (a loop guard)
        self._client: paramiko.SSHClient | None = None
        self._jump: Connection | None = None
        self._proxy: paramiko.ProxyCommand | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._early: _EarlyConnect | None = None
        self._connecting = threading.Lock()  # one connection, whichever thread asks first
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

    def connect_soon(self) -> None:
        """Start connecting in the background (TCP, key exchange, host key, login), so that
        the first command waits only for what is left of it: a command's local work (the
        tree scan, the import graph) then overlaps the handshake's round trips. Its errors
        are raised by the first use, as if it had connected then."""
        if self._client is None and self._early is None:
            self._early = _EarlyConnect(self)

    def close(self) -> None:
        """Close the SFTP session, the connection, any ProxyCommand and jump host; safe to
        repeat."""
        early, self._early = self._early, None
        if early is not None and not early.abandon():
            return  # still connecting: it closes what it opened when it is done
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proxy is not None:
            _end_proxy(self._proxy)
            self._proxy = None
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    @property
    def client(self) -> paramiko.SSHClient:
        """The connected client (connects on first use, or waits for `connect_soon`)."""
        with self._connecting:
            if self._client is None:
                early, self._early = self._early, None
                self._client = early.result() if early is not None else self._connect()
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        ep = self.endpoint
        trust = _trust(ep)
        policy = _HostKeyPolicy(trust, accept_new=self.accept_new_host_key)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(policy)

        key_text = _take_env_key()
        pkey = _key_from_text(key_text) if key_text else None
        for f in ep.identity_files:
            if ep.identity_required and not Path(f).is_file():
                raise ConfigError(
                    f"identity_file {f} does not exist",
                    hint=f"fix targets.{ep.label}.identity_file in edgesync.yaml",
                )
        sock: paramiko.Channel | paramiko.ProxyCommand | None = None
        if ep.proxy_jump:
            sock = self._jump_channel(ep)
        elif ep.proxy_command:
            sock = self._proxy = self._start_proxy(ep)
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
                look_for_keys=pkey is None and ep.default_identities,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                sock=sock,
                disabled_algorithms=DISABLED_ALGORITHMS,
                transport_factory=_transport_factory(trust),
            )
        except EdgesyncError:
            client.close()
            raise
        except (_HostKeyRefused, paramiko.SSHException, OSError, EOFError) as e:
            error = self._connect_error(e, trust, authenticating=policy.passed)
            client.close()
            self.close()
            raise error from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_SECONDS)
        if policy.accepted is not None:
            log.warning("trusted new host key %s %s", trust.name, _fingerprint(policy.accepted))
        return client

    def _connect_error(  # noqa: C901
        self, e: BaseException, trust: _Trust, *, authenticating: bool
    ) -> EdgesyncError:
        """One clear error for whatever connecting raised (`authenticating`: the host key
        was trusted, so an SSHException is about the user's keys)."""
        ep = self.endpoint
        if isinstance(e, _HostKeyRefused):
            return self._host_key_error(e, trust)
        if isinstance(e, paramiko.ssh_exception.IncompatiblePeer):
            return ConnectError(
                f"{ep.hostname} port {ep.port} offers no algorithm edgesync accepts ({e})",
                hint="edgesync refuses SHA-1 key exchange and signatures, DSA keys, CBC "
                "ciphers and SHA-1/MD5 MACs; update the server's OpenSSH or its sshd_config",
            )
        if isinstance(e, paramiko.PasswordRequiredException):
            return ConnectError(
                f"the key for {ep} is encrypted",
                hint="add it to ssh-agent (ssh-add), or use a key without a passphrase",
            )
        if isinstance(e, paramiko.AuthenticationException) or (
            authenticating and type(e) is paramiko.SSHException
        ):
            tried = _keys_tried(ep)
            # paramiko ends its tries on a key file with the last error it met loading it as
            # another key type ("Invalid key"): only its own auth errors say something useful
            why = f"{e}; " if isinstance(e, paramiko.AuthenticationException) else ""
            if not tried:
                return ConnectError(
                    f"no key to log in to {ep} with: no identity_file, no ssh-agent "
                    "(SSH_AUTH_SOCK is not set) and no ~/.ssh/id_* file",
                    hint=f"set targets.{ep.label}.identity_file in edgesync.yaml, or add your "
                    "key to ssh-agent (ssh-add)",
                )
            return ConnectError(
                f"authentication failed for {ep} ({why}tried {'; '.join(tried)})",
                hint=f"check that {ep.user} is the right user and that the public key is in "
                f"{ep.user}'s ~/.ssh/authorized_keys on {ep.hostname} "
                f"(`ssh-copy-id {ep.user}@{ep.hostname}`)",
            )
        if self._proxy is not None:
            return ConnectError(
                f"ProxyCommand for {ep.alias} failed: {e or type(e).__name__}"
                + _proxy_stderr(self._proxy),
                hint=f"the command was: {ep.proxy_command}",
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

    def _host_key_error(self, e: _HostKeyRefused, trust: _Trust) -> ConnectError:
        """Unknown, changed or revoked: each refused with what to do about it."""
        got = f"{e.key.get_name()} {_fingerprint(e.key)}"
        if e.why == "unknown":
            hint = "if the fingerprint is right, trust the host with: " + (
                self.trust_command or "edgesync --accept-new-host-key ls"
            )
            if trust.from_env:
                hint = f"add the host's key line to {KNOWN_HOSTS_ENV}"
            elif trust.remember_in is None:
                hint = (
                    f"UserKnownHostsFile is none in {SSH_CONFIG}, so no key can be remembered: "
                    "add the host's key to a GlobalKnownHostsFile, or set known_hosts_file "
                    "in edgesync.yaml"
                )
            return ConnectError(f"unknown host key for {e.name} ({got})", hint=hint)
        if e.why == "changed":
            assert e.expected is not None
            return ConnectError(
                f"HOST KEY CHANGED for {e.name}: got {_fingerprint(e.key)}, "
                f"expected {_fingerprint(e.expected)} — refusing to connect",
                hint="someone may be intercepting the connection; if the server was "
                f"reinstalled, remove the old key with: ssh-keygen -R '{trust.name}'",
            )
        return ConnectError(
            f"REVOKED HOST KEY for {e.name}: {got} is marked @revoked ({e.revoked_by}) "
            "— refusing to connect",
            hint="the server presents a key that was revoked: someone may be impersonating "
            "it; ask its administrator, and do not remove the @revoked line to get past this",
        )

    def _jump_channel(self, ep: Endpoint) -> paramiko.Channel:
        """A direct-tcpip channel to the endpoint through the last ProxyJump hop, which is
        itself reached through the hops before it: each hop is a `Connection` of its own,
        with its own ssh config and its own host key check."""
        assert ep.proxy_jump is not None
        if self.jumps >= MAX_JUMPS:
            raise ConfigError(
                f"{SSH_CONFIG}: ProxyJump for {ep.alias} goes through more than "
                f"{MAX_JUMPS} hosts; does it loop?"
            )
        *before, last = [hop.strip() for hop in ep.proxy_jump.split(",")]
        user, host, port = _jump_hop(last)
        jump = resolve_endpoint(
            host,
            user=user,
            port=port,
            known_hosts_file=ep.known_hosts_override,
            label=f"{ep.label} (ProxyJump)",
            via=",".join(before) if before else None,
        )
        self._jump = Connection(
            jump,
            accept_new_host_key=self.accept_new_host_key,
            connect_timeout=self.connect_timeout,
            trust_command=self.trust_command,
            jumps=self.jumps + 1,
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
                f"jump host {last} cannot reach {ep.hostname} port {ep.port}: {e}"
            ) from None

    def _start_proxy(self, ep: Endpoint) -> paramiko.ProxyCommand:
        """Run the ProxyCommand as OpenSSH does: `exec COMMAND` by the user's shell."""
        assert ep.proxy_command is not None
        shell = os.environ.get("SHELL") or "/bin/sh"
        log.debug("ProxyCommand: %s", ep.proxy_command)
        try:
            return _ProxyCommand(shlex.join([shell, "-c", "exec " + ep.proxy_command]))
        except OSError as e:
            raise ConnectError(
                f"ProxyCommand for {ep.alias} cannot start ({shell}): {e.strerror or e}"
            ) from None

    # -- commands ------------------------------------------------------------

    def _open(self, command: str) -> paramiko.Channel:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectError(f"the connection to {self.endpoint} was lost")
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
            _exec_pipelined(chan, command)
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
        if status == -1 and _refused(chan):
            raise ConnectError(
                f"{self.endpoint} refused to run {what or 'a command'} (exec request denied)"
            )
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


class _EarlyConnect:
    """`Connection._connect` running in a thread of its own (see `connect_soon`)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.client: paramiko.SSHClient | None = None
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name="edgesync-connect", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.client = self.connection._connect()
        except BaseException as e:  # noqa: BLE001 - handed to the thread that uses it
            self.error = e
        with self.lock:
            self.done.set()
            abandoned = self.abandoned
        if abandoned:  # the connection was closed meanwhile: close what was opened
            if self.client is not None:
                self.client.close()
            self.connection.close()

    def result(self) -> paramiko.SSHClient:
        """The connected client, once connecting is over; what it raised, raised here."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.client is not None
        return self.client

    def abandon(self) -> bool:
        """The connection is being closed: True when connecting is over (the caller closes
        the client), False when it still runs (it will close what it opens itself)."""
        with self.lock:
            if not self.done.is_set():
                self.abandoned = True
                return False
        if self.client is not None:
            self.connection._client = self.client
        return True


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
        if status == -1 and _refused(self.chan):
            raise ConnectError(f"{self.where} refused to run {what} (exec request denied)")
        if status == -1:
            raise ConnectError(f"the connection to {self.where} was lost during {what}")
        return RunResult("", status, bytes(self.out), bytes(self.err))

    def close(self) -> None:
        self.chan.close()


def _exec_pipelined(chan: paramiko.Channel, command: str) -> None:
    """`chan.exec_command(command)` without waiting for the server's answer to it, as
    OpenSSH's client does: the command's input and output follow the request in the
    channel anyway, and the wait cost one round trip per command (80 ms of a diff at
    80 ms RTT). A refused request closes the channel; `_refused` tells it afterwards."""
    try:
        m = paramiko.Message()
        m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
        m.add_int(chan.remote_chanid)
        m.add_string("exec")
        m.add_boolean(True)  # noqa: FBT003 - want a reply: it tells a refusal from a lost link
        m.add_string(command)
        internals: Any = chan  # paramiko's own steps, as exec_command takes them
        internals._event_pending()  # noqa: SLF001
        internals.transport._send_user_message(m)  # noqa: SLF001
    except AttributeError:  # another paramiko: its own (waiting) exec
        chan.exec_command(command)


def _refused(chan: paramiko.Channel) -> bool:
    """True when the server answered a pipelined exec request with a failure."""
    return bool(chan.closed) and not getattr(chan, "event_ready", True)


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
