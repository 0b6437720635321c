"""`init`: write a commented edgesync.yaml for a repository."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgesync.config import CONFIG_NAME, DEFAULT_FUNCTIONS_DIR, parse_config
from edgesync.errors import ConfigError, UsageError
from edgesync.results import InitResult
from edgesync.ui import UI


@dataclass(frozen=True)
class InitAnswers:
    """What `init` writes into the new file."""

    host: str
    project_dir: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    target: str = "production"
    functions_dir: str = DEFAULT_FUNCTIONS_DIR


def detect_functions_dir(repo: Path) -> str | None:
    """`supabase/functions` here, or in exactly one direct subfolder (a monorepo app)."""
    if (repo / DEFAULT_FUNCTIONS_DIR).is_dir():
        return DEFAULT_FUNCTIONS_DIR
    found = sorted(p for p in repo.glob(f"*/{DEFAULT_FUNCTIONS_DIR}") if p.is_dir())
    if len(found) == 1:
        return found[0].relative_to(repo).as_posix()
    return None


def _y(value: str) -> str:
    """A YAML scalar: plain when unambiguous, else a JSON (= YAML) quoted string."""
    if (
        re.fullmatch(r"[A-Za-z0-9_./~@-][A-Za-z0-9_./~@ :-]*", value)
        and not value.endswith((" ", ":"))
        and ": " not in value
        and value.lower() not in ("yes", "no", "true", "false", "null")
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


def render_config(a: InitAnswers) -> str:
    """The commented edgesync.yaml text."""

    def opt(key: str, value: str | int | None, example: str, comment: str) -> str:
        if value is None:
            return f"    # {key}: {example}".ljust(44) + f"  # {comment}\n"
        shown = str(value) if isinstance(value, int) else _y(value)
        return f"    {key}: {shown}".ljust(44) + f"  # {comment}\n"

    return (
        "# edgesync.yaml: how `edgesync` deploys this repository's Supabase Edge Functions\n"
        "# to a self-hosted Supabase server over SSH. Unknown keys are errors.\n"
        "\n"
        "# The local functions folder, relative to this file.\n"
        f"functions_dir: {_y(a.functions_dir)}\n"
        "\n"
        "# The target used when neither --target/-t nor EDGESYNC_TARGET names one.\n"
        f"default_target: {_y(a.target)}\n"
        "\n"
        "# Extra ignore globs; .env, .git, node_modules and .DS_Store are always ignored.\n"
        '# exclude: ["**/*.test.ts"]\n'
        "\n"
        "targets:\n"
        f"  {_y(a.target)}:\n"
        + opt("host", a.host, "api.example.com", "a hostname, or a Host alias from ~/.ssh/config")
        + opt("user", a.user, "automation", "else ~/.ssh/config, else your local user")
        + opt("port", a.port, "22", "else ~/.ssh/config, else 22")
        + opt("identity_file", a.identity_file, "~/.ssh/id_ed25519", "else ssh-agent / ssh config")
        + opt(
            "project_dir",
            a.project_dir,
            "/home/me/supabase-project",
            "the self-hosted compose project",
        )
        + opt("functions_dir", None, "volumes/functions", "relative to project_dir")
        + opt("compose", None, "docker compose", 'or "docker-compose", "sudo docker compose"')
        + opt("service", None, "functions", "the edge runtime's compose service")
        + opt("restart_command", None, "null", "a full override, run in project_dir")
        + opt("url", None, "https://api.example.com", "public base URL")
    )


def write_config(folder: Path, answers: InitAnswers, *, force: bool = False) -> Path:
    """Validate and write edgesync.yaml in `folder`; never overwrite without `force`."""
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    text = render_config(answers)
    try:
        parse_config(text, path)
    except ConfigError as e:
        # Name the flag, not a line of a file the user has not seen yet.
        problem = e.message.split(": ", 2)[-1]
        key = e.message.split(": ")[1] if e.message.count(": ") >= 2 else ""
        flag = "--" + key.rsplit(".", 1)[-1].replace("_", "-") if key else "a value"
        raise UsageError(f"{flag}: {problem}") from None
    # Write beside the target, then rename: never a half-written config.
    fd, tmp = tempfile.mkstemp(prefix=".edgesync-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _ask(ui: UI, value: str | None, flag: str, question: str, default: str | None = None) -> str:
    if value is not None:
        return value
    if not ui.interactive:
        if default is not None:
            return default
        raise UsageError(f"{flag} is required without a terminal", hint=f"pass {flag} VALUE")
    return ui.ask(question, default).strip()


def init(
    repo: Path,
    ui: UI,
    *,
    host: str | None = None,
    user: str | None = None,
    port: int | None = None,
    project_dir: str | None = None,
    identity_file: str | None = None,
    target: str = "production",
    functions_dir: str | None = None,
    force: bool = False,
) -> InitResult:
    """Write edgesync.yaml in `repo`, asking (on a terminal) for what the flags do not give."""
    fdir = functions_dir or detect_functions_dir(repo)
    if fdir is None:
        fdir = DEFAULT_FUNCTIONS_DIR
        ui.warn(f"no supabase/functions folder in {repo}; writing the default {fdir}")
    answers = InitAnswers(
        host=_ask(ui, host, "--host", "Server host (name or ~/.ssh/config alias)"),
        user=_ask(ui, user, "--user", "SSH user (empty: from ssh config / local user)", "") or None,
        port=port,
        project_dir=_ask(ui, project_dir, "--project-dir", "Supabase project folder on the server"),
        identity_file=identity_file,
        target=target,
        functions_dir=fdir,
    )
    return InitResult(write_config(repo, answers, force=force))
