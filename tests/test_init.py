"""`edgesync init`: writes a commented, valid edgesync.yaml; never overwrites silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgesync.config import load_config
from sandbox import Sandbox
from tests.helpers import cli
from tests.terminal import Terminal


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "supabase" / "functions" / "hello").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def test_init_with_flags(repo: Path) -> None:
    r = cli(
        "init",
        "--host",
        "api.academyos.ru",
        "--user",
        "automation",
        "--project-dir",
        "/home/automation/supabase-project",
    )
    assert r.code == 0, r.err
    text = (repo / "edgesync.yaml").read_text()
    assert text.startswith("# edgesync.yaml")
    assert "# compose: docker compose" in text  # optional keys are documented, commented
    cfg = load_config(repo / "edgesync.yaml")
    t = cfg.target()
    assert (t.name, t.host, t.user, str(t.project_dir)) == (
        "production",
        "api.academyos.ru",
        "automation",
        "/home/automation/supabase-project",
    )
    assert cfg.functions_dir == repo.resolve() / "supabase/functions"


def test_init_never_overwrites_without_force(repo: Path) -> None:
    (repo / "edgesync.yaml").write_text("# mine\n")
    args = ["init", "--host", "h", "--project-dir", "/p"]
    r = cli(*args)
    assert r.code == 2
    assert "already exists" in r.err and "--force" in r.err
    assert (repo / "edgesync.yaml").read_text() == "# mine\n"
    assert cli(*args, "--force").code == 0
    assert "host: h" in (repo / "edgesync.yaml").read_text()


def test_init_without_tty_needs_flags(repo: Path) -> None:
    r = cli("init", "--host", "h")
    assert r.code == 2
    assert "--project-dir is required" in r.err
    assert not (repo / "edgesync.yaml").exists()


def test_init_rejects_bad_values(repo: Path) -> None:
    r = cli("init", "--host", "h", "--project-dir", "relative/path")
    assert r.code == 2
    assert "--project-dir" in r.err and "absolute" in r.err
    assert not (repo / "edgesync.yaml").exists()
    assert not [p for p in os.listdir(repo) if p.startswith(".edgesync-")]


def test_init_detects_monorepo_functions_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "mono"
    (root / "apps" / "supabase" / "functions").mkdir(parents=True)
    (root / "web" / "supabase" / "functions").mkdir(parents=True)
    monkeypatch.chdir(root)
    # two candidates: default kept, with a warning
    r = cli("init", "--host", "h", "--project-dir", "/p")
    assert r.code == 0
    assert "no supabase/functions folder" in r.err
    (root / "web" / "supabase" / "functions").rmdir()
    r = cli("init", "--host", "h", "--project-dir", "/p", "--force")
    assert "functions_dir: apps/supabase/functions" in (root / "edgesync.yaml").read_text()


def test_init_quotes_odd_values(repo: Path) -> None:
    r = cli("init", "--host", "h", "--project-dir", "/srv/my supabase: prod")
    assert r.code == 0, r.err
    assert str(load_config(repo / "edgesync.yaml").target().project_dir) == "/srv/my supabase: prod"


def test_usage_errors_exit_2(repo: Path) -> None:
    r = cli("diff", "--no-such-option")
    assert r.code == 2
    assert "No such option" in r.err or "no such option" in r.err.lower()
    r = cli("logs", "--tail", "many")
    assert r.code == 2
    r = cli("nonsense")
    assert r.code == 2


def test_wizard_on_a_terminal_checks_each_answer_and_tests_the_connection(
    repo: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    (ssh_home / ".ssh").mkdir()
    (ssh_home / ".ssh" / "known_hosts").write_text(sandbox.known_hosts.read_text())
    term = Terminal(["init"], cwd=repo, env={"HOME": str(ssh_home)})
    term.expect("Server host")
    term.send("bad;host")
    term.expect("try again")
    term.send(sandbox.host)
    term.expect("SSH user")
    term.send(sandbox.user)
    term.expect("SSH port")
    term.send("99999")
    term.expect("a port is 1 to 65535")
    term.send(str(sandbox.port))
    term.expect("Private key")
    term.send("/nonexistent/key")
    term.expect("does not exist")
    term.send(str(sandbox.client_key))
    term.expect("Supabase project folder")
    term.send("relative/path")
    term.expect("must be an absolute path")
    term.send(str(sandbox.project_dir))
    term.expect("Test the connection now?")
    term.send("y")
    assert term.finish() == 0, term.seen
    assert "connected: " in term.seen and "holds" in term.seen
    t = load_config(repo / "edgesync.yaml").target()
    assert (t.host, t.port, str(t.project_dir)) == (
        sandbox.host,
        sandbox.port,
        str(sandbox.project_dir),
    )


def test_wizard_says_when_the_connection_test_fails(
    repo: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    term = Terminal(["init"], cwd=repo, env={"HOME": str(ssh_home)})
    for prompt, answer in [
        ("Server host", sandbox.host),
        ("SSH user", sandbox.user),
        ("SSH port", str(sandbox.port)),
        ("Private key", str(sandbox.client_key)),
        ("Supabase project folder", str(sandbox.project_dir)),
        ("Test the connection now?", "y"),
    ]:
        term.expect(prompt)
        term.send(answer)
    assert term.finish() == 4  # the host key is not known yet
    assert "was written, but the connection test failed" in term.seen
    assert "--accept-new-host-key" in term.seen
    assert (repo / "edgesync.yaml").exists()
