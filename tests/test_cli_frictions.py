"""The frictions a new user met, each as it reads now (CLI through the real sshd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import Sandbox
from tests.helpers import Project, cli, serve


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> Project:
    project.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())
    project.write("wpp-create/index.ts", serve("v1"))
    return project


def test_restart_command_and_a_hint_that_names_it(repo: Project, sandbox: Sandbox) -> None:
    (sandbox.state_dir / "fail-restart").touch()
    r = repo.run("push", "--no-logs")
    assert r.code == 5
    assert "run `edgesync restart`" in r.err
    (sandbox.state_dir / "fail-restart").unlink()
    assert "in sync" in repo.run("push", "--no-logs").out  # pushing again does not restart
    r = repo.run("restart", "--no-logs", "--json")
    assert r.code == 0, r.err
    assert r.json()["restarted"] is True
    restarts = [c for c in sandbox.calls() if "restart" in c["argv"]]
    assert restarts[-1]["argv"] == ["compose", "restart", "functions", "--no-deps"]


@pytest.mark.parametrize(
    "args",
    [
        ["push", "--dry-run", "--target", "sandbox"],
        ["push", "--dry-run", "-t", "sandbox", "-v"],
        ["diff", "-v"],
        ["lock", "status", "--target=sandbox"],
    ],
)
def test_global_options_after_the_command(repo: Project, args: list[str]) -> None:
    r = repo.run(*args)
    assert r.code == 0, r.err


def test_config_option_after_the_command(repo: Project) -> None:
    r = cli("diff", "-c", str(repo.config))
    assert r.code == 0, r.err


def test_a_grep_that_looks_like_an_option_is_kept(repo: Project, sandbox: Sandbox) -> None:
    sandbox.append_log("a line with -v in it")
    r = repo.run("logs", "--grep", "-v")
    assert r.code == 0, r.err
    assert "a line with -v in it" in r.out


def test_config_that_is_a_folder(
    repo: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = cli("-c", str(tmp_path), "diff")
    assert r.code == 3 and "is a folder" in r.err and "Usage" not in r.err
    (tmp_path / "sub" / "edgesync.yaml").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "sub")
    r = cli("diff")
    assert r.code == 3 and "edgesync.yaml is a folder, not a file" in r.err


def test_logs_unknown_function_and_no_match(repo: Project) -> None:
    r = repo.run("logs", "wpp-craete")
    assert r.code == 2
    assert "no function named 'wpp-craete'" in r.err and "wpp-create" in r.err
    r = repo.run("logs", "--grep", "nothing-like-this")
    assert r.code == 0 and r.out == ""
    assert "no log lines matching 'nothing-like-this'" in r.err


def test_logs_json_lines(repo: Project, sandbox: Sandbox) -> None:
    sandbox.append_log("serving the request with /home/deno/functions/hello")
    sandbox.append_log("[Info] hi")
    r = repo.run("logs", "hello", "--json")
    assert r.code == 0, r.err
    import json

    lines = [json.loads(line) for line in r.out.splitlines()]
    assert lines[-1] == {"function": "hello", "line": "[Info] hi"}


def test_rollback_takes_a_short_unique_id(repo: Project) -> None:
    assert repo.run("push", "--no-logs").code == 0
    repo.write("wpp-create/index.ts", serve("v2"))
    r = repo.run("push", "--no-logs", "--json")
    rid = r.json()["release"]
    r = repo.run("rollback", rid[:15] + "x", "--yes", "--no-logs")
    assert r.code == 2 and "no release" in r.err
    # the shortest prefix naming it alone (two pushes in one second share the timestamp,
    # and their random suffixes may share a first character)
    ids = [h["id"] for h in repo.run("history", "--json").json()["releases"]]
    cut = next(
        n for n in range(len(rid) - 4, len(rid) + 1) if [i[:n] for i in ids].count(rid[:n]) == 1
    )
    r = repo.run("rollback", rid[:cut], "--yes", "--no-logs")
    assert r.code == 0, r.err


def test_history_ids_are_whole_on_a_narrow_terminal(repo: Project) -> None:
    import io

    from rich.console import Console

    from edgesync.history import Release
    from edgesync.output import Output
    from edgesync.results import HistoryResult

    rid = "20261125T101500Z-3f2a"
    rec = Release(id=rid, time="2026-11-25T10:15:00+00:00", user="someone", host="a-long-host")
    out = Console(width=80, force_terminal=True, file=io.StringIO(), record=True)
    Output(out=out).render(HistoryResult("t", (rec, rec)))
    assert out.export_text().count(rid) == 2


def test_wording(repo: Project) -> None:
    r = repo.run("diff")
    assert "1 differ" in r.out or "in sync" in r.out
    assert "(s)" not in r.out and "1 entries" not in r.out


def test_restart_requests_the_deployed_functions_not_a_local_one_never_pushed(
    repo: Project,
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    repo.write("brand-new/index.ts", serve("not pushed yet"))
    r = repo.run("restart", "--no-logs", "--json")
    assert r.code == 0, r.err
    checked = {c["function"] for c in r.json()["verified"]}
    assert checked == {"hello", "wpp-create"}
