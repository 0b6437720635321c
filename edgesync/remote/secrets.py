"""The functions' secrets on the server: their file, and how compose wires it in.

What compose gives the functions service is read with `docker compose config`,
the way every compose release prints it:

* `config --no-interpolate --format json` shows the model before variables are
  filled in, with every `env_file` in the long syntax (`{path, required}`; a
  missing `required` means true). `--no-env-resolution` would do the same but
  only works from compose 5.0 (older releases reject it, or accept it and
  resolve the env files anyway), so it is not used.
* plain `config --format json` shows the environment a container would get,
  env files merged in, with every `$` of its output doubled. It holds the
  project's `.env` values and the secrets: it is parsed in memory, never shown.

compose's error output quotes what it could not read (an env file's line, an
interpolated value), so it is summarized, never passed on verbatim.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.remote import scripts
from edgesync.remote.compose import compose_words, stderr_summary
from edgesync.remote.shell import RemoteShell, quote, sh_script


def read_secrets(shell: RemoteShell, target: Target) -> str | None:
    """The secrets file's text, or None when it does not exist yet."""
    result = shell.run(
        sh_script(scripts.load("secrets_read"), target.project_dir / target.secrets_file),
        what="reading the secrets file",
    )
    data = result.stdout
    if data[:1] == b"M":
        return None
    return data[1:].decode("utf-8", "replace")


@dataclass(frozen=True)
class EnvFile:
    """One `env_file` entry of the service: an absolute path, and whether it must exist."""

    path: str
    required: bool = True


@dataclass(frozen=True)
class ServiceEnvironment:
    """What compose gives the functions service: names in `environment:`, its env files,
    and (resolved) the values the container would get."""

    environment: frozenset[str]  # names set by `environment:` (they win over env files)
    env_files: tuple[EnvFile, ...]
    resolved: dict[str, str] | None  # values a container gets (None: compose could not say)
    resolve_error: str | None = None  # why not (a summary that quotes no value)

    def reads(self, path: str) -> bool:
        """True when `path` (absolute) is one of the service's env files."""
        return any(f.path == path for f in self.env_files)


def _run_config(shell: RemoteShell, target: Target, *flags: str) -> dict[str, Any]:
    """`{compose} config --format json [flags]`, parsed; errors summarized, never quoted."""
    words = [*compose_words(target), "config", "--format", "json", *flags]
    result = shell.run(
        f"cd {quote(target.project_dir)} && {quote(*words)}",
        check=False,
        what="reading the compose configuration",
    )
    if result.exit_status != 0:
        raise RemoteError(
            f"`{' '.join(words)}` failed (exit {result.exit_status}): "
            f"{stderr_summary(result.stderr_text)}",
            hint=f"run `{' '.join(words[:-3])} config -q` in {target.project_dir} on the server "
            "to see the whole message",
        )
    try:
        model = json.loads(result.stdout)
    except ValueError:
        raise RemoteError("`docker compose config` did not print JSON") from None
    if not isinstance(model, dict):
        raise RemoteError("`docker compose config` did not print a compose model")
    return model


def compose_config(shell: RemoteShell, target: Target, *, resolve: bool) -> dict[str, Any]:
    """The compose model as JSON: interpolated (values: never shown, `$` doubled) with
    `resolve`, else as written (`--no-interpolate`, env files listed, not read)."""
    return _run_config(shell, target) if resolve else _run_config(shell, target, "--no-interpolate")


def service_environment(
    shell: RemoteShell, target: Target, *, resolve: bool = True
) -> ServiceEnvironment:
    """The functions service's environment as compose sees it.

    The names and env files come from the uninterpolated model (works on every
    compose release, even when an env file is missing or cannot be read); with
    `resolve`, the values from the interpolated one, when compose can load it.
    """
    raw = _service(_run_config(shell, target, "--no-interpolate"), target)
    env_files = tuple(_env_files(raw.get("env_file"), target))
    names = frozenset(_env(raw.get("environment"), undouble=False))
    if not resolve:
        return ServiceEnvironment(names, env_files, None)
    try:
        resolved = _service(_run_config(shell, target), target)
    except RemoteError as e:
        return ServiceEnvironment(names, env_files, None, e.message)
    return ServiceEnvironment(names, env_files, _values(resolved.get("environment")))


def _service(model: dict[str, Any], target: Target) -> dict[str, Any]:
    services = model.get("services") or {}
    service = services.get(target.service) if isinstance(services, dict) else None
    if not isinstance(service, dict):
        raise RemoteError(
            f"the compose project has no service '{target.service}'",
            hint=f"set targets.{target.name}.service to the edge runtime's service",
        )
    return service


def _env_files(value: object, target: Target) -> list[EnvFile]:
    """`env_file` in either syntax: a string, a list of strings or of `{path, required}`."""
    entries = value if isinstance(value, list) else [value] if value else []
    out = []
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(path, str) or not path:
            continue
        required = entry.get("required", True) if isinstance(entry, dict) else True
        # a `$$` in a compose file is one literal `$` once interpolated
        path = path.replace("$$", "$")
        absolute = posixpath.normpath(posixpath.join(str(target.project_dir), path))
        out.append(EnvFile(absolute, required is not False and required != "false"))
    return out


def _env(value: object, *, undouble: bool) -> dict[str, str]:
    """`environment:` as a mapping or a list; a bare `NAME` (no value) is a name set too."""
    if isinstance(value, dict):
        out = {str(k): "" if v is None else str(v) for k, v in value.items()}
    elif isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        out = {k: v for k, _, v in pairs}
    else:
        return {}
    if undouble:  # `config` (interpolated) doubles every `$` of what it prints
        out = {k: v.replace("$$", "$") for k, v in out.items()}
    return out


def _values(value: object) -> dict[str, str]:
    """The resolved environment: a name without a value (`- NAME` found nowhere) is unset."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    return _env(value, undouble=True)


def write_override(shell: RemoteShell, target: Target) -> None:
    """Create docker-compose.override.yml with the env_file line (never edits one)."""
    result = shell.run(
        sh_script(
            scripts.load("override"), target.project_dir, target.service, target.secrets_file
        ),
        check=False,
        what="writing docker-compose.override.yml",
    )
    if result.exit_status != 0:
        raise RemoteError(
            stderr_summary(result.stderr_text) or "cannot write docker-compose.override.yml"
        )
