"""The functions compose service on the server: restart and logs."""

from __future__ import annotations

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
            f"{result.stderr_text.splitlines()[-1] if result.stderr_text else 'no error output'}",
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
                f"`{' '.join(words)}` failed (exit {line}): "
                f"{errors[-1] if errors else 'no error output'}",
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
            f"{result.stderr_text.splitlines()[-1] if result.stderr_text else 'no error output'}",
            hint=_docker_hint(result.stderr_text, target),
        )
    return (started[0] if started else ""), command
