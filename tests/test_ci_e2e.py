"""CI after merge: credentials from the environment, --changed, --require-clean,
JSON on stdout only, the GitHub step summary. Real git repositories, real sshd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest

from sandbox import Sandbox
from tests.helpers import Project, target_yaml

A = "import { x } from '../_shared/x.ts'\nDeno.serve(() => new Response(x))\n"
B = "Deno.serve(() => new Response('b'))\n"


def commit(repo: git.Repo, message: str) -> str:
    repo.git.add("-A")
    repo.index.commit(message)
    return repo.head.commit.hexsha


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> tuple[Project, git.Repo]:
    p = project
    p.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())
    p.write("fn-a/index.ts", A)
    p.write("fn-b/index.ts", B)
    p.write("_shared/x.ts", "export const x = 'x1'\n")
    p.write("_shared/unused.ts", "export {}\n")
    r = git.Repo.init(p.root, initial_branch="main")
    r.config_writer().set_value("user", "name", "CI").release()
    r.config_writer().set_value("user", "email", "ci@example.com").release()
    commit(r, "initial")
    return p, r


def clean_env(sandbox: Sandbox, tmp_path: Path, **extra: str) -> dict[str, str]:
    """No ~/.ssh, no agent, CI=true, credentials only from the environment."""
    home = tmp_path / "ci-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CI": "true",
        "EDGESYNC_SSH_KEY": sandbox.client_key.read_text(),
        "EDGESYNC_KNOWN_HOSTS": sandbox.known_hosts.read_text(),
    }
    env.update(extra)
    return env


def ci_config(p: Project, sandbox: Sandbox) -> None:
    """A config with no key and no known_hosts file: all from the environment."""
    p.config.write_text(
        target_yaml(host=sandbox.host, port=sandbox.port, project_dir=sandbox.project_dir)
    )


def run_ci(p: Project, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesync", "-c", str(p.config), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=p.root,
        timeout=120,
    )


def test_clean_environment_credentials_only_from_env(
    repo: tuple[Project, git.Repo], sandbox: Sandbox, tmp_path: Path
) -> None:
    p, r = repo
    ci_config(p, sandbox)
    commit(r, "ci config")
    summary = tmp_path / "summary.md"
    env = clean_env(sandbox, tmp_path, GITHUB_STEP_SUMMARY=str(summary))
    res = run_ci(p, env, "push", "--yes", "--json", "--no-logs")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)  # nothing but the JSON on stdout
    assert set(data) == {
        "target",
        "release",
        "functions",
        "affected",
        "blocked",
        "files",
        "restarted",
        "verified",
        "rolled_back_by",
        "warnings",
    }
    assert data["functions"] == ["fn-a", "fn-b"]
    assert all(set(f) == {"path", "action"} for f in data["files"])
    key_body = sandbox.client_key.read_text().splitlines()[1]
    assert key_body not in res.stdout + res.stderr  # the key is never printed
    assert not (tmp_path / "ci-home" / ".ssh").exists()  # nor written anywhere
    text = summary.read_text()
    assert f"release: `{data['release']}`" in text
    assert f"commit: `{r.head.commit.hexsha[:8]}`" in text
    assert "| `fn-a/index.ts` | upload |" in text and "`fn-b`" in text
    release = json.loads((sandbox.project_dir / ".edgesync/history.jsonl").read_text())
    assert release["commit"] == r.head.commit.hexsha and release["dirty"] is False
    # JSON of diff and ls parse too, from the same clean environment
    diff = json.loads(run_ci(p, env, "diff", "--json").stdout)
    assert diff["in_sync"] is True
    assert json.loads(run_ci(p, env, "ls", "--json").stdout)["target"] == "sandbox"


def test_env_known_hosts_is_the_only_trust(
    repo: tuple[Project, git.Repo], sandbox: Sandbox, tmp_path: Path
) -> None:
    p, _ = repo
    ci_config(p, sandbox)
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, body = other.with_suffix(".pub").read_text().split()[:2]
    env = clean_env(
        sandbox, tmp_path, EDGESYNC_KNOWN_HOSTS=f"[127.0.0.1]:{sandbox.port} {kind} {body}\n"
    )
    res = run_ci(p, env, "diff", "--json")
    assert res.returncode == 4 and "HOST KEY CHANGED" in res.stderr
    env = clean_env(sandbox, tmp_path, EDGESYNC_KNOWN_HOSTS="")
    env.pop("EDGESYNC_KNOWN_HOSTS")
    res = run_ci(p, env, "--accept-new-host-key", "diff")
    assert res.returncode == 0, res.stderr  # without the variable, ~/.ssh/known_hosts is used


def test_bad_env_key(repo: tuple[Project, git.Repo], sandbox: Sandbox, tmp_path: Path) -> None:
    p, _ = repo
    ci_config(p, sandbox)
    res = run_ci(p, clean_env(sandbox, tmp_path, EDGESYNC_SSH_KEY="not a key"), "diff")
    assert res.returncode == 3
    assert "EDGESYNC_SSH_KEY does not hold a private key" in res.stderr
    assert "not a key" not in res.stderr


def changed(p: Project, *args: str) -> tuple[Any, str]:
    res = p.run("push", "--changed", "--json", "--no-logs", *args)
    assert res.code == 0, res.err
    return res.json(), res.err


def test_changed_selects_by_git_history(repo: tuple[Project, git.Repo], sandbox: Sandbox) -> None:
    p, r = repo
    data, err = changed(p)
    assert "no release yet; comparing content" in err
    assert data["functions"] == ["fn-a", "fn-b"]
    # someone edits fn-b on the server by hand: content differs, git does not
    (sandbox.functions_dir / "fn-b/index.ts").write_text("hand edit\n")
    # a commit touching one function
    p.write("fn-a/index.ts", A + "// v2\n")
    commit(r, "fn-a v2")
    data, err = changed(p)
    assert data["functions"] == ["fn-a"]
    assert [f["path"] for f in data["files"]] == ["fn-a/index.ts"]
    # a commit touching only shared code: the functions importing it follow
    p.write("_shared/x.ts", "export const x = 'x2'\n")
    commit(r, "shared only")
    data, err = changed(p)
    assert "since" in err and ": fn-a" in err  # fn-a is chosen; its folder itself is unchanged
    assert data["functions"] == []
    assert [f["path"] for f in data["files"]] == ["_shared/x.ts"]
    # a commit touching a shared file nobody imports, and one outside the functions
    p.write("_shared/unused.ts", "export const y = 1\n")
    (p.root / "README.md").write_text("docs\n")
    commit(r, "nothing deployable")
    data, err = changed(p)
    assert data["release"] is None and data["functions"] == []
    assert "no function changed since" in err


def test_changed_after_rebase_falls_back_to_content(
    repo: tuple[Project, git.Repo], sandbox: Sandbox
) -> None:
    p, r = repo
    changed(p)  # release recorded at the initial commit
    p.write("fn-b/index.ts", B + "// amended history\n")
    r.git.add("-A")
    r.git.commit("--amend", "-m", "rewritten")  # the recorded commit is no longer an ancestor
    data, err = changed(p)
    assert "is not an ancestor of HEAD" in err and "comparing content" in err
    assert data["functions"] == ["fn-b"]


def test_changed_in_a_shallow_clone(
    repo: tuple[Project, git.Repo], sandbox: Sandbox, tmp_path: Path
) -> None:
    p, r = repo
    changed(p)
    p.write("fn-a/index.ts", A + "// v2\n")
    commit(r, "fn-a v2")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{p.root}", str(clone)], check=True
    )
    shallow = Project(clone)
    data, err = changed(shallow)
    assert "not in the local history" in err and "comparing content" in err
    assert data["functions"] == ["fn-a"]


def test_require_clean(
    repo: tuple[Project, git.Repo], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, _ = repo
    p.write("fn-a/index.ts", A + "// uncommitted\n")
    monkeypatch.setenv("CI", "true")
    res = p.run("push", "--no-logs")
    assert res.code == 2
    assert "uncommitted changes" in res.err and "fn-a/index.ts" in res.err
    assert not (sandbox.functions_dir / "fn-a").exists()
    res = p.run("push", "--no-logs", "--no-require-clean", "--json")
    assert res.code == 0, res.err
    release = json.loads((sandbox.project_dir / ".edgesync/history.jsonl").read_text())
    assert release["dirty"] is True
    monkeypatch.delenv("CI")
    p.write("fn-b/index.ts", B + "// uncommitted\n")
    assert p.run("push", "--require-clean").code == 2
    assert (
        p.run("push", "--no-logs").code == 0
    )  # outside CI, a dirty push is allowed (and recorded)
