"""`edgesync init`: writes a commented, valid edgesync.yaml; never overwrites silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgesync.config import load_config
from tests.helpers import cli


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
