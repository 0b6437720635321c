"""edgesync.yaml -> frozen dataclasses. Every error names the file, the line and the key."""

from __future__ import annotations

import difflib
import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import yaml

from edgesync.errors import ConfigError

CONFIG_NAME = "edgesync.yaml"
DEFAULT_FUNCTIONS_DIR = "supabase/functions"
DEFAULT_REMOTE_FUNCTIONS_DIR = "volumes/functions"
TARGET_ENV = "EDGESYNC_TARGET"

_SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TARGET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Target:
    """One server to deploy to."""

    name: str
    host: str
    project_dir: PurePosixPath
    user: str | None = None
    port: int | None = None
    identity_file: Path | None = None
    known_hosts_file: Path | None = None
    functions_dir: PurePosixPath = PurePosixPath(DEFAULT_REMOTE_FUNCTIONS_DIR)
    compose: tuple[str, ...] = ("docker", "compose")
    service: str = "functions"
    restart_command: str | None = None
    url: str | None = None
    keep_releases: int = 10
    timeout: int = 120  # seconds a remote command may take (uploads: seconds without progress)
    verify_timeout: int = 60  # seconds to wait for the functions to answer after a restart
    secrets_file: str = ".env.functions"  # the functions' secrets, relative to project_dir

    @property
    def remote_functions_dir(self) -> PurePosixPath:
        """The functions folder on the server (absolute)."""
        return self.project_dir / self.functions_dir

    @property
    def state_dir(self) -> PurePosixPath:
        """edgesync's own state on the server, outside the mounted functions folder."""
        return self.project_dir / ".edgesync"


@dataclass(frozen=True)
class VerifySetting:
    """How one function is requested after a push (edgesync.yaml `verify:`)."""

    enabled: bool = True
    method: str = "OPTIONS"  # a CORS preflight: no JWT, no business logic
    path: str = ""  # after /functions/v1/<name>, e.g. /health
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    status: int | None = None  # the status it must answer (default: any that is not a boot error)


@dataclass(frozen=True)
class Config:
    """A loaded edgesync.yaml."""

    path: Path
    functions_dir: Path
    default_target: str | None
    exclude: tuple[str, ...]
    targets: Mapping[str, Target] = field(default_factory=lambda: MappingProxyType({}))
    deploy_tests: bool = False  # test files (*.test.ts, tests/, …) are local-only by default
    verify: Mapping[str, VerifySetting] = field(default_factory=lambda: MappingProxyType({}))

    def verify_setting(self, function: str) -> VerifySetting:
        """How `function` is requested after a push (the default: an OPTIONS request)."""
        return self.verify.get(function, VerifySetting())

    target_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def root(self) -> Path:
        """The folder holding edgesync.yaml: relative paths start here."""
        return self.path.parent

    def target(self, name: str | None = None) -> Target:
        """The target named, else $EDGESYNC_TARGET, else default_target, else the only one."""
        chosen = name or os.environ.get(TARGET_ENV) or self.default_target
        if chosen is None:
            if len(self.targets) == 1:
                return next(iter(self.targets.values()))
            raise ConfigError(
                f"{self.path}: several targets and no default_target",
                hint=f"pass --target NAME (one of: {', '.join(self.targets)}) "
                "or set default_target",
            )
        try:
            return self.targets[chosen]
        except KeyError:
            hint = _did_you_mean(chosen, self.targets)
            raise ConfigError(
                f"{self.path}: unknown target '{chosen}' "
                f"(targets: {', '.join(self.targets) or 'none'})",
                hint=hint,
            ) from None


def find_config(start: Path) -> Path:
    """edgesync.yaml in `start` or the nearest parent that has one."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise ConfigError(
                f"{candidate} is a folder, not a file",
                hint="edgesync.yaml must be a file: rename that folder, or pass --config FILE",
            )
    raise ConfigError(
        f"no {CONFIG_NAME} in {start} or any parent folder",
        hint="run `edgesync init` in your repository, or pass --config PATH",
    )


def load_config(path: Path) -> Config:
    """Read and validate an edgesync.yaml."""
    if path.is_dir():
        raise ConfigError(
            f"{path} is a folder: --config takes the edgesync.yaml file",
            hint=f"try --config {path / CONFIG_NAME}",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file", hint="run `edgesync init` to write one, or fix --config"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate the YAML text of an edgesync.yaml found at `path`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{path}:{line}: invalid YAML: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    return _Reader(path).config(node)


_TOP_KEYS = ("functions_dir", "default_target", "exclude", "deploy_tests", "verify", "targets")
_VERIFY_KEYS = ("method", "path", "headers", "status")
_METHODS = ("OPTIONS", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_TARGET_KEYS = (
    "host",
    "user",
    "port",
    "identity_file",
    "known_hosts_file",
    "project_dir",
    "functions_dir",
    "compose",
    "service",
    "restart_command",
    "url",
    "keep_releases",
    "timeout",
    "verify_timeout",
    "secrets_file",
)


class _Reader:
    """Walks the YAML node tree so that every error can name its line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, key: str, problem: str, hint: str | None = None) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"{self.path}:{line}: {key}: " if key else f"{self.path}:{line}: "
        raise ConfigError(where + problem, hint=hint)

    def mapping(
        self, node: yaml.Node, key: str, allowed: tuple[str, ...] | None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, "expected a mapping of keys to values")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        assert isinstance(node, yaml.MappingNode)
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode) or not isinstance(knode.value, str):
                self.fail(knode, key, "keys must be plain names")
            name = str(knode.value)
            full = f"{key}.{name}" if key else name
            if allowed is not None and name not in allowed:
                self.fail(
                    knode,
                    full,
                    "unknown key",
                    hint=_did_you_mean(name, allowed) or f"known keys: {', '.join(allowed)}",
                )
            if name in out:
                self.fail(knode, full, "duplicate key")
            out[name] = (knode, vnode)
        return out

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, key, "expected a single value")
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)

    def string(self, node: yaml.Node, key: str, *, allow_null: bool = False) -> str | None:
        value = self.scalar(node, key)
        if value is None and allow_null:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(node, key, f"expected a non-empty string, got {_show(value)}")
        return str(value)

    def boolean(self, node: yaml.Node, key: str) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            self.fail(node, key, f"expected true or false, got {_show(value)}")
        return bool(value)

    def checked(self, node: yaml.Node, key: str, check: Callable[[str], str | None]) -> str:
        value = self.string(node, key)
        assert value is not None
        problem = check(value)
        if problem:
            self.fail(node, key, problem)
        return value

    def config(self, root: yaml.Node | None) -> Config:
        if root is None:
            self.fail(None, "", "the file is empty", hint="run `edgesync init` to write one")
        assert root is not None
        top = self.mapping(root, "", _TOP_KEYS)
        functions_dir = DEFAULT_FUNCTIONS_DIR
        if "functions_dir" in top:
            functions_dir = self.checked(top["functions_dir"][1], "functions_dir", _local_path)
        default_target = None
        if "default_target" in top:
            default_target = self.string(
                top["default_target"][1], "default_target", allow_null=True
            )
        exclude: tuple[str, ...] = ()
        if "exclude" in top:
            exclude = self.exclude(top["exclude"][1])
        deploy_tests = False
        if "deploy_tests" in top:
            deploy_tests = self.boolean(top["deploy_tests"][1], "deploy_tests")
        verify: dict[str, VerifySetting] = {}
        if "verify" in top:
            for fn, (_k, vnode) in self.mapping(top["verify"][1], "verify", None).items():
                verify[fn] = self.verify_setting(f"verify.{fn}", vnode)
        if "targets" not in top:
            self.fail(root, "targets", "missing: at least one target is required")
        targets, lines = self.targets(top["targets"][1])
        if default_target is not None and default_target not in targets:
            self.fail(
                top["default_target"][1],
                "default_target",
                f"'{default_target}' is not one of the targets ({', '.join(targets)})",
            )
        fdir = Path(functions_dir).expanduser()
        if not fdir.is_absolute():
            fdir = self.path.parent.resolve() / fdir
        return Config(
            path=self.path,
            functions_dir=fdir,
            default_target=default_target,
            exclude=exclude,
            targets=MappingProxyType(targets),
            target_lines=MappingProxyType(lines),
            deploy_tests=deploy_tests,
            verify=MappingProxyType(verify),
        )

    def targets(self, tnode: yaml.Node) -> tuple[dict[str, Target], dict[str, int]]:
        targets: dict[str, Target] = {}
        lines: dict[str, int] = {}
        for name, (knode, vnode) in self.mapping(tnode, "targets", None).items():
            if not _TARGET_NAME_RE.match(name):
                self.fail(knode, f"targets.{name}", "target names are letters, digits, . _ -")
            targets[name] = self.target(name, vnode)
            lines[name] = knode.start_mark.line + 1
        if not targets:
            self.fail(tnode, "targets", "no targets defined")
        return targets, lines

    def verify_setting(self, key: str, node: yaml.Node) -> VerifySetting:
        if isinstance(node, yaml.ScalarNode):
            if self.boolean(node, key) is False:
                return VerifySetting(enabled=False)
            return VerifySetting()
        fields = self.mapping(node, key, _VERIFY_KEYS)
        method, path, status = "OPTIONS", "", None
        headers: dict[str, str] = {}
        if "method" in fields:
            method = str(self.string(fields["method"][1], f"{key}.method")).upper()
            if method not in _METHODS:
                self.fail(fields["method"][1], f"{key}.method", f"one of {', '.join(_METHODS)}")
        if "path" in fields:
            path = str(self.string(fields["path"][1], f"{key}.path"))
            if not path.startswith(("/", "?")) or any(c.isspace() for c in path):
                self.fail(fields["path"][1], f"{key}.path", "expected /a/path or ?a=query")
        if "status" in fields:
            value = self.scalar(fields["status"][1], f"{key}.status")
            if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
                self.fail(fields["status"][1], f"{key}.status", "expected an HTTP status")
            status = value
        if "headers" in fields:
            for name, (_k, vnode) in self.mapping(
                fields["headers"][1], f"{key}.headers", None
            ).items():
                value = str(self.string(vnode, f"{key}.headers.{name}"))
                if "\n" in value or "\r" in value or not re.fullmatch(r"[A-Za-z0-9-]+", name):
                    self.fail(vnode, f"{key}.headers.{name}", "not a header line")
                headers[name] = value
        return VerifySetting(
            enabled=True, method=method, path=path, headers=MappingProxyType(headers), status=status
        )

    def exclude(self, node: yaml.Node) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "exclude", "expected a list of glob patterns")
        assert isinstance(node, yaml.SequenceNode)
        out = []
        for i, item in enumerate(node.value):
            value = self.string(item, f"exclude[{i}]")
            assert value is not None
            out.append(value)
        return tuple(out)

    def target(self, name: str, node: yaml.Node) -> Target:
        key = f"targets.{name}"
        fields = self.mapping(node, key, _TARGET_KEYS)
        values: dict[str, Any] = {}
        for field_name, (_knode, vnode) in fields.items():
            values[field_name] = self.target_field(f"{key}.{field_name}", field_name, vnode)
        for required in ("host", "project_dir"):
            if values.get(required) is None:
                self.fail(node, f"{key}.{required}", "missing (required)")
        return Target(name=name, **values)

    def target_field(self, key: str, name: str, node: yaml.Node) -> Any:
        if name in _NUMBER_RANGES:
            value = self.scalar(node, key)
            low, high = _NUMBER_RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                self.fail(
                    node, key, f"expected a whole number from {low} to {high}, got {_show(value)}"
                )
            return value
        if name in ("identity_file", "known_hosts_file"):
            value = self.checked(node, key, _no_nul)
            path = Path(value).expanduser()
            return path if path.is_absolute() else self.path.parent.resolve() / path
        if name == "project_dir":
            return PurePosixPath(self.checked(node, key, _remote_abs_path))
        if name == "functions_dir":
            return PurePosixPath(self.checked(node, key, _remote_rel_path))
        if name == "secrets_file":
            return self.checked(node, key, _secrets_file)
        if name == "compose":
            value = self.checked(node, key, _command)
            return tuple(shlex.split(value))
        if name == "restart_command":
            if self.scalar(node, key) is None:
                return None
            return self.checked(node, key, _command)
        return self.checked(node, key, _TEXT_CHECKS[name])


def _service(value: str) -> str | None:
    return None if _SERVICE_RE.match(value) else "not a compose service name"


def _url(value: str) -> str | None:
    return None if re.match(r"^https?://[^\s/]+", value) else "expected an http(s) URL"


# What OpenSSH refuses in a host name given to it (ssh_valid_hostname in readconf.c, since 9.6):
# ssh_config tokens such as %h and %n paste the name unquoted into shell commands (ProxyCommand,
# LocalCommand, `Match exec`, which paramiko runs too), the class of CVE-2023-51385.
_HOST_REFUSED = frozenset("'`\"$\\;&<>|(){},")


def host_name_problem(value: str) -> str | None:
    """Why OpenSSH would refuse `value` as a host name, or None (IPv6 literals are fine)."""
    if not value:
        return "is empty"
    if value.startswith("-"):
        return "must not start with '-'"
    for char in value:
        if char in _HOST_REFUSED:
            return f"contains {char!r}, which OpenSSH refuses in host names"
        if char.isspace() or unicodedata.category(char).startswith("C"):
            return f"contains a space or control character ({ascii(char)})"
    return None


def _host(value: str) -> str | None:
    problem = host_name_problem(value)
    if problem:
        return problem
    if "@" in value:
        return "must not contain '@': put the user name in `user`"
    if "/" in value or "[" in value or "]" in value or value.count(":") == 1:
        return "expected a host name or address: a port goes in `port`, an IPv6 address without []"
    return None


def _user(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]*$", value) else "not a user name"


# Target keys whose value is a whole number in a range.
_NUMBER_RANGES = {
    "port": (1, 65535),
    "keep_releases": (1, 1000),
    "timeout": (1, 86400),
    "verify_timeout": (1, 3600),
}

# Target keys whose value is a string checked by a function (the rest are read above).
_TEXT_CHECKS: dict[str, Callable[[str], str | None]] = {
    "service": _service,
    "url": _url,
    "host": _host,
    "user": _user,
}


def answer_problem(key: str, value: str) -> str | None:
    """Why `value` is not a valid target `key` (for `init`, asked one answer at a time)."""
    checks: dict[str, Callable[[str], str | None]] = {
        "host": _host,
        "user": _user,
        "project_dir": _remote_abs_path,
    }
    return checks[key](value) if key in checks else None


def _show(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _no_nul(value: str) -> str | None:
    return "contains a NUL character" if "\0" in value else None


def _local_path(value: str) -> str | None:
    return _no_nul(value)


def _remote_abs_path(value: str) -> str | None:
    if "\0" in value or "\n" in value:
        return "contains a control character"
    if not value.startswith("/"):
        return f"must be an absolute path on the server, got '{value}'"
    if ".." in PurePosixPath(value).parts:
        return "must not contain '..'"
    return None


def _remote_rel_path(value: str) -> str | None:
    if "\0" in value or "\n" in value:
        return "contains a control character"
    parts = PurePosixPath(value).parts  # "./", "a/./" and "." all lose their dots here
    if value.startswith("/") or ".." in parts or not parts:
        return f"must be a folder inside project_dir (not project_dir itself), got '{value}'"
    if parts[0] == ".edgesync":
        return "must not be edgesync's state folder (.edgesync)"
    return None


def _secrets_file(value: str) -> str | None:
    problem = _remote_rel_path(value)
    if problem is not None:
        return problem.replace("a folder", "a file")
    if PurePosixPath(value).parts[0] in ("volumes",):
        return "must not be in volumes/ (the functions folder is served from there)"
    return None


def _command(value: str) -> str | None:
    try:
        words = shlex.split(value)
    except ValueError as e:
        return f"cannot split into words: {e}"
    return None if words else "empty command"


def _did_you_mean(name: str, options: Any) -> str | None:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None
