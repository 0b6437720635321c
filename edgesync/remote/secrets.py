"""The functions' secrets on the server: their file, and how compose wires it in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.remote import scripts
from edgesync.remote.compose import compose_words
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
class ServiceEnvironment:
    """What compose gives the functions service: names in `environment:`, its env files,
    and (resolved) the values the container would get."""

    environment: frozenset[str]  # names set by `environment:` (they win over env files)
    env_files: tuple[str, ...]  # absolute paths
    resolved: dict[str, str]  # environment with env files merged (values: never shown)


def compose_config(shell: RemoteShell, target: Target, *, resolve: bool) -> dict[str, Any]:
    """`{compose} config --format json` (with `--no-env-resolution` unless `resolve`)."""
    words = [*compose_words(target), "config", "--format", "json"]
    if not resolve:
        words.append("--no-env-resolution")
    result = shell.run(
        f"cd {quote(target.project_dir)} && {quote(*words)}",
        check=False,
        what="reading the compose configuration",
    )
    if result.exit_status != 0:
        raise RemoteError(
            f"`{' '.join(words)}` failed (exit {result.exit_status}): "
            f"{result.stderr_text.splitlines()[-1] if result.stderr_text else 'no error output'}",
            hint="edgesync reads the functions service's environment from it",
        )
    try:
        model = json.loads(result.stdout)
    except ValueError:
        raise RemoteError("`docker compose config` did not print JSON") from None
    if not isinstance(model, dict):
        raise RemoteError("`docker compose config` did not print a compose model")
    return model


def service_environment(shell: RemoteShell, target: Target) -> ServiceEnvironment:
    """The functions service's environment as compose resolves it (two `config` calls)."""
    raw = _service(compose_config(shell, target, resolve=False), target)
    resolved = _service(compose_config(shell, target, resolve=True), target)
    files = []
    for entry in raw.get("env_file") or []:
        path = entry.get("path") if isinstance(entry, dict) else entry
        if isinstance(path, str):
            files.append(path)
    return ServiceEnvironment(
        frozenset(_env(raw.get("environment"))),
        tuple(files),
        _env(resolved.get("environment")),
    )


def _service(model: dict[str, Any], target: Target) -> dict[str, Any]:
    services = model.get("services") or {}
    service = services.get(target.service) if isinstance(services, dict) else None
    if not isinstance(service, dict):
        raise RemoteError(
            f"the compose project has no service '{target.service}'",
            hint=f"set targets.{target.name}.service to the edge runtime's service",
        )
    return service


def _env(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {k: v for k, _, v in pairs}
    return {}


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
        raise RemoteError(result.stderr_text or "cannot write docker-compose.override.yml")
