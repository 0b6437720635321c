"""`init`: write a commented edgesync.yaml for a repository."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgesync.config import CONFIG_NAME, DEFAULT_FUNCTIONS_DIR, answer_problem, parse_config
from edgesync.context import Options, Workspace, open_server
from edgesync.errors import ConfigError, EdgesyncError, UsageError
from edgesync.remote.snapshot import read_folders
from edgesync.results import InitResult
from edgesync.text import plural
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


def _ask(
    ui: UI,
    value: str | None,
    flag: str,
    question: str,
    default: str | None = None,
    *,
    check: Callable[[str], str | None] | None = None,
) -> str:
    """A flag's value, else (on a terminal) an answer, asked again until it is valid."""
    if value is not None:
        return value
    if not ui.interactive:
        if default is not None:
            return default
        raise UsageError(f"{flag} is required without a terminal", hint=f"pass {flag} VALUE")
    while True:
        answer = ui.ask(question, default).strip()
        problem = check(answer) if check is not None else None
        if problem is None:
            return answer
        ui.warn(f"{problem}: try again (Ctrl-C to stop)")


def _required(key: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not value:
            return "an answer is needed"
        return answer_problem(key, value)

    return check


def _optional(key: str) -> Callable[[str], str | None]:
    return lambda value: answer_problem(key, value) if value else None


def _port(value: str) -> str | None:
    if not value:
        return None
    return None if value.isdigit() and 1 <= int(value) <= 65535 else "a port is 1 to 65535"


def _key_file(value: str) -> str | None:
    if not value or Path(value).expanduser().is_file():
        return None
    return f"{value} does not exist"


def default_key() -> str:
    """The first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exists, or ''."""
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        if (Path("~/.ssh").expanduser() / name).is_file():
            return f"~/.ssh/{name}"
    return ""


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
    """Write edgesync.yaml in `repo`, asking (on a terminal) for what the flags do not give.

    Each answer is checked as it is given; flags are checked with the whole file.
    """
    fdir = functions_dir or detect_functions_dir(repo)
    if fdir is None:
        fdir = DEFAULT_FUNCTIONS_DIR
        ui.warn(f"no supabase/functions folder in {repo}; writing the default {fdir}")
    path = repo / CONFIG_NAME
    if path.exists() and not force:  # say it before asking anything
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    asking = ui.interactive and host is None
    host_answer = _ask(
        ui, host, "--host", "Server host (name or ~/.ssh/config alias)", check=_required("host")
    )
    user_answer = _ask(
        ui,
        user,
        "--user",
        "SSH user (empty: from ssh config / your local user)",
        "",
        check=_optional("user"),
    )
    port_answer = port
    key_answer = identity_file
    if asking:
        given = _ask(ui, None, "--port", "SSH port (empty: from ssh config / 22)", "", check=_port)
        port_answer = int(given) if given else None
        key_answer = (
            _ask(
                ui,
                None,
                "--identity-file",
                "Private key (empty: ssh-agent / ssh config)",
                default_key(),
                check=_key_file,
            )
            or None
        )
    answers = InitAnswers(
        host=host_answer,
        user=user_answer or None,
        port=port_answer,
        project_dir=_ask(
            ui,
            project_dir,
            "--project-dir",
            "Supabase project folder on the server (holds docker-compose.yml)",
            check=_required("project_dir"),
        ),
        identity_file=key_answer,
        target=target,
        functions_dir=fdir,
    )
    written = write_config(repo, answers, force=force)
    if not asking or not ui.confirm("Test the connection now?"):
        return InitResult(written)
    try:
        found = test_connection(written, target)
    except EdgesyncError as e:
        e.message = f"{written} was written, but the connection test failed: {e.message}"
        return InitResult(written, error=e)
    return InitResult(written, connected=found)


def test_connection(config_path: Path, target: str) -> str:
    """Connect with the new config and list the functions folder: what was found."""
    options = Options(config_path=config_path, target_name=target)
    ws = Workspace.load(options)
    with open_server(ws.target, options) as server:
        folders = read_folders(server.shell, ws.target)
        return f"connected: {server.where()} holds {plural(len(folders), 'folder')}"
