"""`edgesync secrets` end to end: the real CLI, the sandbox's compose and a real function.

A function answers `Deno.env.get("WPP_SECRET")` over HTTP, so every test sees what a
function on the server really gets after `secrets set/unset` and `rollback`. The last
tests collect everything edgesync printed and everything it left on the server, and fail
if any secret value used here appears in it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgesync.secrets import digest, parse
from sandbox import Sandbox
from tests.helpers import REPO_ROOT, Project, Result
from tests.terminal import Terminal

SECRET = "wpp-secret-value-0451"
ROTATED = "rotated-wpp-value-7730"
# what compose's env file syntax makes hard: `$` (interpolated), quotes, backslashes, line
# breaks, `#` (a comment when unquoted), spaces at both ends, `=`, and no ASCII
NASTY = ' it\'s "q" $HOME ${POSTGRES_DB} $$ \\n \\$x #hash # c\n\tline 2\r\n=end ü✓ \\'
FROM_FILE = "value-from-a-file-5521"
FROM_STDIN = "value-from-stdin-9034"

READS_SECRETS = """\
Deno.serve(() => Response.json({
  secret: Deno.env.get("WPP_SECRET") ?? null,
  other: Deno.env.get("OTHER_TOKEN") ?? null,
}))
"""
OVERRIDE_LINES = "services:\n  functions:\n    env_file:\n      - ./.env.functions\n"

# every value a test here sets: none may appear in output, logs, history or release folders
ALL_VALUES = (SECRET, ROTATED, NASTY, FROM_FILE, FROM_STDIN)


def run(project: Project, *args: str, stdin: str | None = None) -> Result:
    """edgesync as a separate process (what a user runs); stdin is a pipe, not a terminal."""
    p = subprocess.run(
        [sys.executable, "-m", "edgesync", "-c", str(project.config), *args],
        capture_output=True,
        text=True,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        cwd=project.root,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=180,
    )
    return Result(p.returncode, p.stdout, p.stderr)


def dotenv(value: str) -> str:
    """A value double-quoted the way compose's env files read it back exactly."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def answer(sandbox: Sandbox) -> dict[str, Any]:
    """What the function sees now."""
    reply = sandbox.request("reads-secrets")
    assert reply.status == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def secrets_file(sandbox: Sandbox) -> Path:
    return sandbox.project_dir / ".env.functions"


def server_files(sandbox: Sandbox) -> dict[str, bytes]:
    """The compose project's files that edgesync may change (not the functions)."""
    root = sandbox.project_dir
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "volumes" not in p.relative_to(root).parts
    }


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> Project:
    """A repository with the function deployed (nothing wired yet)."""
    project.write("reads-secrets/index.ts", READS_SECRETS)
    r = run(project, "push", "--no-logs")
    assert r.code == 0, r.err
    return project


@pytest.fixture
def wired(repo: Project, sandbox: Sandbox) -> Iterator[Project]:
    """The secrets file is wired into compose and holds WPP_SECRET."""
    r = run(repo, "secrets", "set", f"WPP_SECRET={SECRET}", "--yes")
    assert r.code == 0, r.err
    yield repo


# --------------------------------------------------------------------------- the round trip


def test_set_reaches_the_function_and_unset_and_rollback(repo: Project, sandbox: Sandbox) -> None:
    assert answer(sandbox)["secret"] is None
    r = run(repo, "secrets", "set", f"WPP_SECRET={SECRET}", "--yes")
    assert r.code == 0, r.err
    assert "docker-compose.override.yml" in r.err  # says what it wrote
    override = (sandbox.project_dir / "docker-compose.override.yml").read_text()
    assert override.endswith(OVERRIDE_LINES)
    assert "+ WPP_SECRET  added" in r.out
    assert answer(sandbox)["secret"] == SECRET
    mode = stat.S_IMODE(secrets_file(sandbox).stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert sandbox.container()["recreate_count"] == 1  # recreated: a restart keeps the env

    r = run(repo, "secrets", "set", f"WPP_SECRET={ROTATED}")
    assert r.code == 0, r.err
    assert "~ WPP_SECRET  changed" in r.out
    assert answer(sandbox)["secret"] == ROTATED

    r = run(repo, "secrets", "unset", "WPP_SECRET")
    assert r.code == 0, r.err
    assert "- WPP_SECRET  removed" in r.out
    assert answer(sandbox)["secret"] is None

    r = run(repo, "rollback", "--yes", "--no-logs")  # undoes the unset
    assert r.code == 0, r.err
    assert answer(sandbox)["secret"] == ROTATED
    assert stat.S_IMODE(secrets_file(sandbox).stat().st_mode) == 0o600

    history = run(repo, "history", "--json")
    assert history.code == 0, history.err
    releases = history.json()["releases"]
    assert [h["kind"] for h in releases[:4]] == ["rollback", "secrets", "secrets", "secrets"]
    unset = releases[1]["secrets"]
    assert [(s["name"], s["after"]) for s in unset] == [("WPP_SECRET", None)]
    assert len(unset[0]["before"]) == 12
    text = run(repo, "history").out.splitlines()
    assert "secrets: WPP_SECRET" in text[1] and "rollback of" in text[0]


def test_a_value_compose_would_mangle_arrives_exactly(wired: Project, sandbox: Sandbox) -> None:
    r = run(wired, "secrets", "set", "WPP_SECRET", "-", stdin=NASTY + "\n")
    # one line from a pipe: the value ends at the first line break
    assert r.code == 0, r.err
    assert answer(sandbox)["secret"] == NASTY.split("\n")[0]
    env_file = wired.root / "nasty.env"
    env_file.write_text(f"# a user's file\nWPP_SECRET={dotenv(NASTY)}\n", encoding="utf-8")
    r = run(wired, "secrets", "set", "--from-file", str(env_file))
    assert r.code == 0, r.err
    assert answer(sandbox)["secret"] == NASTY
    r = run(wired, "secrets", "diff", "--from-file", str(env_file), "--exit-code")
    assert (r.code, r.out.strip().splitlines()[-1]) == (0, "in sync"), r.out + r.err


def test_without_consent_nothing_changes_and_the_lines_are_shown(
    repo: Project, sandbox: Sandbox
) -> None:
    before = server_files(sandbox)
    r = run(repo, "secrets", "set", f"WPP_SECRET={SECRET}")  # no terminal, no --yes
    assert r.code == 2, r.err
    assert "does not read .env.functions" in r.err
    assert OVERRIDE_LINES in r.err  # exactly what to add
    assert "--yes" in r.err
    assert server_files(sandbox) == before
    assert answer(sandbox)["secret"] is None

    # the user adds the lines themselves: then no consent is needed
    (sandbox.project_dir / "docker-compose.override.yml").write_text(OVERRIDE_LINES)
    r = run(repo, "secrets", "set", f"WPP_SECRET={SECRET}")
    assert r.code == 0, r.err
    assert answer(sandbox)["secret"] == SECRET


def test_an_existing_override_is_never_edited(repo: Project, sandbox: Sandbox) -> None:
    override = sandbox.project_dir / "docker-compose.override.yml"
    override.write_text("services:\n  functions:\n    environment:\n      EXTRA: '1'\n")
    before = server_files(sandbox)
    r = run(repo, "secrets", "set", f"WPP_SECRET={SECRET}", "--yes")
    assert r.code == 5, r.err
    assert "add the env_file lines to it yourself" in r.err
    assert server_files(sandbox) == before


def test_list_shows_names_sources_and_digests(wired: Project, sandbox: Sandbox) -> None:
    r = run(wired, "secrets", "list")
    assert r.code == 0, r.err
    rows = {line.split()[0]: line for line in r.out.splitlines() if line.strip()}
    assert "secrets file" in rows["WPP_SECRET"]
    assert "compose environment" in rows["VERIFY_JWT"]
    assert "compose environment" in rows["JWT_SECRET"]
    data = run(wired, "secrets", "list", "--json").json()
    entries = {e["name"]: e for e in data["secrets"]}
    assert entries["WPP_SECRET"]["source"] == "secrets file"
    assert len(entries["WPP_SECRET"]["digest"]) == 12
    assert entries["WPP_SECRET"]["digest"] in rows["WPP_SECRET"]
    assert data["wired"] is True


def test_diff_compares_by_digest(wired: Project, sandbox: Sandbox) -> None:
    local = wired.root / "production.env"
    local.write_text(f"WPP_SECRET={SECRET}\n")
    r = run(wired, "secrets", "diff", "--from-file", str(local), "--exit-code")
    assert r.code == 0, r.out + r.err
    local.write_text(f"WPP_SECRET={ROTATED}\nOTHER_TOKEN={FROM_FILE}\n")
    r = run(wired, "secrets", "diff", "--from-file", str(local), "--exit-code")
    assert r.code == 1, r.err
    assert "~ WPP_SECRET  changed" in r.out and "+ OTHER_TOKEN  added" in r.out
    data = run(wired, "secrets", "diff", "--from-file", str(local), "--json").json()
    assert {c["name"]: c["status"] for c in data["changes"]} == {
        "OTHER_TOKEN": "added",
        "WPP_SECRET": "changed",
    }


def test_set_from_a_file_and_from_stdin(wired: Project, sandbox: Sandbox) -> None:
    local = wired.root / "production.env"
    local.write_text(f"# CI writes this file\nOTHER_TOKEN={FROM_FILE}\n")
    r = run(wired, "secrets", "set", "--from-file", str(local))
    assert r.code == 0, r.err
    assert answer(sandbox) == {"secret": SECRET, "other": FROM_FILE}
    r = run(wired, "secrets", "set", "OTHER_TOKEN", "-", stdin=FROM_STDIN + "\n")
    assert r.code == 0, r.err
    assert answer(sandbox)["other"] == FROM_STDIN


def test_no_apply_only_writes_the_file(wired: Project, sandbox: Sandbox) -> None:
    recreated = sandbox.container()["recreate_count"]
    r = run(wired, "secrets", "set", f"WPP_SECRET={ROTATED}", "--no-apply")
    assert r.code == 0, r.err
    assert "not applied yet" in r.out
    assert sandbox.container()["recreate_count"] == recreated
    assert answer(sandbox)["secret"] == SECRET  # the container keeps its environment
    assert ROTATED in secrets_file(sandbox).read_text()
    r = run(wired, "restart", "--recreate", "--no-logs")
    assert r.code == 0, r.err
    assert answer(sandbox)["secret"] == ROTATED


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["set", "9LIVES=x"], "'9LIVES' is not a variable name"),
        (["set", "MY-KEY=x"], "'MY-KEY' is not a variable name"),
        (["set", "SUPABASE_ANYTHING=x"], "names starting with SUPABASE_"),
        (["set", "JWT_SECRET=x"], "JWT_SECRET is set in docker-compose.yml `environment:`"),
        (["set", "VERIFY_JWT=true"], "VERIFY_JWT is set in docker-compose.yml"),
        (["unset", "NOT_THERE"], "not set on the server: NOT_THERE"),
        (["set", "LONELY"], "expected NAME=VALUE"),
    ],
)
def test_refused_names_change_nothing(
    wired: Project, sandbox: Sandbox, args: list[str], why: str
) -> None:
    before = server_files(sandbox)
    recreated = sandbox.container()["recreate_count"]
    r = run(wired, "secrets", *args)
    assert r.code == 2, r.err
    assert why in r.err
    assert "Traceback" not in r.err
    assert server_files(sandbox) == before
    assert sandbox.container()["recreate_count"] == recreated


def test_a_bare_name_in_compose_environment_wins_and_is_refused(
    repo: Project, sandbox: Sandbox
) -> None:
    (sandbox.project_dir / "docker-compose.override.yml").write_text(
        OVERRIDE_LINES + "    environment:\n      - OTHER_TOKEN\n"
    )
    r = run(repo, "secrets", "set", f"OTHER_TOKEN={FROM_FILE}")
    assert r.code == 2
    assert "OTHER_TOKEN is set in docker-compose.yml `environment:`" in r.err


# --------------------------------------------------------------------------- no value leaks


def leaks(text: str) -> list[str]:
    """The secret values (or a line of one) that appear in `text`."""
    found = []
    for value in ALL_VALUES:
        parts = [value, *(p for p in value.splitlines() if len(p.strip()) >= 8)]
        found += [repr(p) for p in parts if p in text]
    return found


def state_texts(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    """Everything edgesync keeps on the server and every log of the service, by name.

    Left out: the secrets file itself and its backups in the release folders
    (`releases/<id>/secrets.before`), which `rollback` needs; they are checked to be
    owner-only instead (and to be there).
    """
    state = sandbox.project_dir / ".edgesync"
    backups = 0
    for path in sorted(state.rglob("*")):
        if not path.is_file():
            continue
        if path.name == "secrets.before" and path.parent.parent.name == "releases":
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600, f"{path}: {oct(mode)}"
            backups += 1
            continue
        yield str(path), path.read_text(errors="replace")
    assert backups, "no backup of the secrets file was found in the release folders"
    for path in (
        sandbox.service_log,
        sandbox.docker_calls,
        sandbox.state_dir / "functions.stderr",
        sandbox.state_dir / "state.json",
    ):
        if path.exists():
            yield str(path), path.read_text(errors="replace")
    override = sandbox.project_dir / "docker-compose.override.yml"
    if override.exists():
        yield str(override), override.read_text()


def test_no_value_appears_in_output_history_releases_or_logs(
    repo: Project, sandbox: Sandbox
) -> None:
    outputs: list[tuple[str, Result]] = []

    def step(*args: str, stdin: str | None = None, code: int = 0) -> Result:
        r = run(repo, *args, stdin=stdin)
        assert r.code == code, (args, r.out, r.err)
        outputs.append((" ".join(args), r))
        return r

    local = repo.root / "production.env"
    local.write_text(f"WPP_SECRET={dotenv(NASTY)}\nOTHER_TOKEN={FROM_FILE}\n")
    step("secrets", "set", f"WPP_SECRET={SECRET}", code=2)  # refused: not wired
    step("-v", "secrets", "set", f"WPP_SECRET={SECRET}", "--yes")
    step("secrets", "set", f"WPP_SECRET={ROTATED}", "--json")
    step("-v", "secrets", "set", "--from-file", str(local))
    step("secrets", "set", "OTHER_TOKEN", "-", "-v", stdin=FROM_STDIN + "\n")
    assert answer(sandbox) == {"secret": NASTY, "other": FROM_STDIN}
    for command in (["list"], ["diff", "--from-file", str(local)]):
        step("secrets", *command)
        step("secrets", *command, "--json")
        step("-v", "secrets", *command)
    step("secrets", "set", f"JWT_SECRET={SECRET}", code=2)  # refused: compose environment
    step("-v", "secrets", "unset", "OTHER_TOKEN", "--json")
    step("-v", "history")
    step("history", "--json")
    step("-v", "rollback", "--yes", "--no-logs")
    step("rollback", "--yes", "--json")
    step("logs", "--tail", "500")
    step("-v", "ls")
    step("status", "--json")
    step("-v", "restart", "--recreate", "--no-logs")
    assert answer(sandbox)["other"] is None  # the second rollback undid the first one

    assert leaks(secrets_file(sandbox).read_text())  # the scan does find values
    for what, r in outputs:
        assert json.loads(r.out) if "--json" in what else True  # JSON runs print JSON
        assert not leaks(r.out), (what, "stdout", leaks(r.out))
        assert not leaks(r.err), (what, "stderr", leaks(r.err))
    for name, text in state_texts(sandbox):
        assert not leaks(text), (name, leaks(text))
    assert answer(sandbox)["secret"] == NASTY  # and the values are really there


def test_compose_errors_are_summarized_not_quoted(wired: Project, sandbox: Sandbox) -> None:
    """compose quotes the line it cannot read; edgesync must not pass that on."""
    broken = sandbox.project_dir / "broken.env"
    broken.write_text(f'LEAKY="{SECRET} never closed\n')
    (sandbox.project_dir / "docker-compose.override.yml").write_text(
        OVERRIDE_LINES + "      - ./broken.env\n"
    )
    for args in (
        ["secrets", "list"],
        ["-v", "secrets", "set", f"OTHER_TOKEN={FROM_FILE}"],
        ["-v", "restart", "--recreate", "--no-logs"],
        ["restart", "--no-logs"],
        ["logs", "--tail", "5"],
    ):
        r = run(wired, *args)
        assert not leaks(r.out + r.err), (args, r.out, r.err)
        assert "Traceback" not in r.err
    r = run(wired, "-v", "restart", "--recreate", "--no-logs")
    assert r.code == 5
    assert "failed to read" in r.err and "details not shown" in r.err


def test_the_functions_on_the_server_are_verified_not_the_local_ones(
    wired: Project, sandbox: Sandbox
) -> None:
    wired.write("not-deployed/index.ts", "Deno.serve(() => new Response('later'))\n")
    r = run(wired, "secrets", "set", f"WPP_SECRET={ROTATED}", "--json")
    assert r.code == 0, r.err
    verified = {v["function"]: v["outcome"] for v in r.json()["verified"]}
    assert verified == {"hello": "up", "reads-secrets": "up"}
    assert answer(sandbox)["secret"] == ROTATED


@pytest.mark.parametrize("version", ["2.29.7", "2.40.3", "5.5.0"])
def test_every_compose_release_is_read_alike(repo: Project, sandbox: Sandbox, version: str) -> None:
    """2.29 has no --no-env-resolution, 2.35-2.40 ignore it: --no-interpolate works on all."""
    (sandbox.state_dir / "compose-version").write_text(version + "\n")
    (sandbox.project_dir / "docker-compose.override.yml").write_text(
        "services:\n  functions:\n    env_file:\n"
        "      - path: .env.functions\n        required: false\n"  # relative, long syntax
        "    environment:\n      PRICE: cost $$5\n"
    )
    r = run(repo, "secrets", "set", f"WPP_SECRET={SECRET}")  # wired already: no consent
    assert r.code == 0, r.err
    assert answer(sandbox)["secret"] == SECRET
    data = run(repo, "secrets", "list", "--json").json()
    assert data["wired"] is True
    entries = {e["name"]: e for e in data["secrets"]}
    # compose prints `cost $$$$5` (its output doubles every $): the digest is of `cost $5`
    salt = parse(secrets_file(sandbox).read_text()).salt
    assert entries["PRICE"]["digest"] == digest(salt, "cost $5")
    assert entries["PRICE"]["source"] == "compose environment"


def ci_step(name: str) -> str:
    """The `run:` script of the GitHub Actions step `name` in docs/ci.md."""
    text = (REPO_ROOT / "docs" / "ci.md").read_text()
    lines = text[text.index(f"- name: {name}") :].splitlines()[1:]
    assert lines[0].strip() == "run: |"
    indent = len(lines[1]) - len(lines[1].lstrip())
    script = []
    for line in lines[1:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        script.append(line[indent:])
    return "\n".join(script) + "\n"


def test_the_ci_example_sets_the_secrets(repo: Project, sandbox: Sandbox, tmp_path: Path) -> None:
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "edgesync"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m edgesync "$@"\n')
    shim.chmod(0o755)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    env = {
        **os.environ,
        "PATH": f"{shims}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp),
        "FUNCTION_ENV": f"WPP_SECRET={dotenv(NASTY)}\nOTHER_TOKEN={FROM_FILE}",
    }
    p = subprocess.run(
        ["bash", "-e", "-c", ci_step("Function secrets")],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode == 0, p.stderr
    assert answer(sandbox) == {"secret": NASTY, "other": FROM_FILE}
    assert list(runner_temp.iterdir()) == []  # the file is gone
    assert not leaks(p.stdout + p.stderr)


def test_on_a_terminal_consent_comes_first_and_the_value_is_not_echoed(
    repo: Project, sandbox: Sandbox
) -> None:
    term = Terminal(["-c", str(repo.config), "secrets", "set", "WPP_SECRET", "-"], cwd=repo.root)
    term.expect("docker-compose.override.yml? [y/N]")  # asked before any value is typed
    assert "WPP_SECRET:" not in term.seen
    term.send("y")
    term.expect("WPP_SECRET: ")
    term.send(SECRET)
    assert term.finish() == 0, term.seen
    assert SECRET not in term.seen  # typed without echo
    assert "+ WPP_SECRET  added" in term.seen
    assert answer(sandbox)["secret"] == SECRET


def test_a_refused_name_is_refused_before_the_value_is_asked(
    repo: Project, sandbox: Sandbox
) -> None:
    term = Terminal(["-c", str(repo.config), "secrets", "set", "SUPABASE_X", "-"], cwd=repo.root)
    assert term.finish() == 2  # nothing typed: a prompt would have waited
    assert "names starting with SUPABASE_" in term.seen
    assert term.seen.count("SUPABASE_X:") == 1  # in the error only: no prompt was shown
