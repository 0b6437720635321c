"""The functions compose service on the server: restart and logs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.remote import scripts
from edgesync.remote.shell import RemoteShell, quote, sh_script


def compose_words(target: Target) -> list[str]:
    """The compose command as words, e.g. ['sudo', 'docker', 'compose']."""
    return list(target.compose)


def restart_words(target: Target) -> list[str]:
    """`{compose} restart {service} --no-deps` (v1 docker-compose has no --no-deps)."""
    words = [*compose_words(target), "restart", target.service]
    if target.compose[-1] != "docker-compose":
        words.append("--no-deps")
    return words


def _docker_hint(stderr: str, target: Target) -> str | None:
    low = stderr.lower()
    if "permission denied" in low and "docker" in low:
        return (
            "the SSH user may not use docker: add it to the docker group "
            "(sudo usermod -aG docker USER, then log in again) or set "
            f"targets.{target.name}.compose: sudo docker compose"
        )
    if "no such service" in low:
        return f"set targets.{target.name}.service to the edge runtime's compose service"
    if "no configuration file" in low:
        return f"targets.{target.name}.project_dir must be the folder of docker-compose.yml"
    if "command not found" in low or "not found" in low and "docker" in low:
        return f"set targets.{target.name}.compose (e.g. docker-compose) or restart_command"
    return None


# compose error lines that go on to quote what they could not read: an env file's line, an
# interpolated value, a compose file's scalar. Kept up to the quote, the rest dropped.
_QUOTING = (
    re.compile(r"^(failed to read .+?: line \d+):"),  # an env file: its line follows
    re.compile(r"^(.*?required variable \S+ is missing a value)"),
    re.compile(r"^(invalid interpolation format for \S+?)\.?$"),  # the value is the next line
    re.compile(r"^(.*?cannot unmarshal)"),
    re.compile(r"^(.*?unexpected character)"),
    re.compile(r"^(.*?Invalid template)"),
)


def stderr_summary(stderr: str) -> str:
    """compose's error output, shortened to what quotes no value.

    Once the functions service reads a secrets file, compose's messages can
    quote its values (`failed to read FILE: line 3: unterminated quoted value
    "…"`) or the project's `.env` values, so the error shown is the last line
    that is not a warning, with such quotations cut off.
    """
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no error output"
    for line in lines:  # a message that puts the value on the lines after it
        if line.startswith("invalid interpolation format"):
            return line.rstrip(".") + " (see the server for the line)"
    errors = [line for line in lines if "level=warning" not in line] or lines
    line = errors[-1]
    for pattern in _QUOTING:
        m = pattern.match(line)
        if m:
            return m.group(1) + " (details not shown: they may quote a secret)"
    return line


def restart(shell: RemoteShell, target: Target) -> tuple[str, str]:
    """Restart the service; returns (the server's UTC time before restarting, command)."""
    if target.restart_command:
        command = target.restart_command
        line = f"cd {quote(target.project_dir)} && {command}"
    else:
        command = " ".join(quote(w) for w in restart_words(target))
        line = f"cd {quote(target.project_dir)} && {command}"
    result = shell.run(f"date -u +%Y-%m-%dT%H:%M:%SZ && {line}", check=False, what="restart")
    started = result.stdout.decode("utf-8", "replace").splitlines()[:1]
    if result.exit_status != 0:
        raise RemoteError(
            f"restart failed (`{command}` exited {result.exit_status}): "
            f"{stderr_summary(result.stderr_text)}",
            hint=_docker_hint(result.stderr_text, target),
        )
    return (started[0] if started else ""), command


def logs_words(target: Target, *, tail: int | None, since: str | None, follow: bool) -> list[str]:
    """`{compose} logs --no-color [--tail N] [--since S] [-f] {service}`."""
    words = [*compose_words(target), "logs", "--no-color"]
    if tail is not None:
        words += ["--tail", str(tail)]
    if since:
        words += ["--since", since]
    if follow:
        words.append("--follow")
    words.append(target.service)
    return words


def stream_logs(
    shell: RemoteShell,
    target: Target,
    *,
    tail: int | None = 100,
    since: str | None = None,
    follow: bool = False,
    seconds: float | None = None,
) -> Iterator[str]:
    """Yield the service's log lines; following stops at `seconds` or when closed.

    The remote command is wrapped so that closing the channel (Ctrl-C, end of
    `seconds`) also ends `logs -f` on the server (`scripts/follow_guard.sh`).
    """
    words = logs_words(target, tail=tail, since=since, follow=follow)
    command = sh_script(scripts.load("follow_guard"), target.project_dir, *words)
    deadline = None if seconds is None else time.monotonic() + seconds
    errors: list[str] = []
    for kind, line in shell.stream_lines(command, deadline=deadline):
        if kind == "out":
            yield line
        elif kind == "err":
            errors.append(line)
        elif kind == "exit" and line not in ("0", "143", "130"):
            stderr = "\n".join(errors)
            raise RemoteError(
                f"`{' '.join(words)}` failed (exit {line}): {stderr_summary(stderr)}",
                hint=_docker_hint(stderr, target),
            )


def recreate(shell: RemoteShell, target: Target) -> tuple[str, str]:
    """`{compose} up -d --force-recreate --no-deps SERVICE`: the container is made again and
    reads its environment anew (a restart keeps the old one). Returns (server time, command)."""
    words = [*compose_words(target), "up", "-d", "--force-recreate", "--no-deps", target.service]
    command = " ".join(quote(w) for w in words)
    result = shell.run(
        f"date -u +%Y-%m-%dT%H:%M:%SZ && cd {quote(target.project_dir)} && {command}",
        check=False,
        what="recreate",
    )
    started = result.stdout.decode("utf-8", "replace").splitlines()[:1]
    if result.exit_status != 0:
        raise RemoteError(
            f"recreating the service failed (`{command}` exited {result.exit_status}): "
            f"{stderr_summary(result.stderr_text)}",
            hint=_docker_hint(result.stderr_text, target),
        )
    return (started[0] if started else ""), command
