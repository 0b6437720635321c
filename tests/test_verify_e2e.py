"""Verified deploys through the sandbox, whose functions service really runs the functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import Sandbox
from tests.helpers import Project

OK = "Deno.serve(() => new Response('v{v}', {{ headers: {{ 'x-version': '{v}' }} }}))\n"
SHARED = "export const greeting = 'hi v{v}'\n"
USES_SHARED = (
    "import {{ greeting }} from '../_shared/greeting.ts'\n"
    "Deno.serve(() => new Response(greeting + ' from {name}'))\n"
)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def history(sandbox: Sandbox) -> list[dict[str, object]]:
    path = sandbox.project_dir / ".edgesync/history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> Project:
    project.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())
    project.write("greet/index.ts", USES_SHARED.format(name="greet"))
    project.write("welcome/index.ts", USES_SHARED.format(name="welcome"))
    project.write("_shared/greeting.ts", SHARED.format(v=1))
    project.write("api/index.ts", OK.format(v=1))
    return project


def test_a_healthy_push_is_verified_and_answers(repo: Project, sandbox: Sandbox) -> None:
    r = repo.run("push", "--json", "--no-logs")
    assert r.code == 0, r.err
    verified = {v["function"]: v for v in r.json()["verified"]}
    assert set(verified) == {"api", "greet", "welcome"}  # hello was already in sync
    assert all(v["outcome"] == "up" for v in verified.values())
    reply = sandbox.request("api")
    assert reply.status == 200 and reply.body == b"v1"
    assert sandbox.request("greet").body == b"hi v1 from greet"


def test_a_function_that_throws_at_top_level_is_rolled_back(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    before = tree(sandbox.functions_dir)
    repo.write("api/index.ts", "throw new Error('boom at top level')\n" + OK.format(v=2))
    r = repo.run("push", "api", "--json")
    assert r.code == 7, r.err
    data = r.json()
    (check,) = data["verified"]
    assert check["outcome"] == "boot error"
    assert "boom at top level" in check["detail"]  # the service's own boot error line
    assert data["rolled_back_by"]
    assert "did not boot" in r.err and "boom at top level" in r.err
    assert tree(sandbox.functions_dir) == before  # the previous release is back
    assert sandbox.request("api").body == b"v1"  # the service is up, the old code answers
    assert sandbox.request("greet").status == 200  # the others still answer
    records = history(sandbox)
    assert records[-1]["kind"] == "rollback" and records[-1]["reason"] == "verification failed"
    assert records[-1]["rolled_back"] == [data["release"]]
    shown = json.loads(repo.run("history", "--json").out)["releases"]
    assert shown[1]["id"] == data["release"] and shown[1]["failed"] is True


def test_no_rollback_keeps_the_broken_files(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs").code == 0
    repo.write("api/index.ts", "throw new Error('boom')\n")
    r = repo.run("push", "api", "--no-rollback", "--no-logs")
    assert r.code == 7
    assert "--no-rollback" in r.err
    assert (sandbox.functions_dir / "api/index.ts").read_text().startswith("throw")
    assert sandbox.request("api").status == 500


def test_a_shared_change_that_breaks_an_unnamed_function_is_caught(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    # the shared module now throws when loaded: greet and welcome load it
    repo.write("_shared/greeting.ts", "throw new Error('shared broke')\n")
    r = repo.run("push", "greet", "--json", "--no-logs")
    assert r.code == 7, r.err
    data = r.json()
    assert set(data["affected"]) == {"greet", "welcome"}
    outcomes = {v["function"]: v["outcome"] for v in data["verified"]}
    assert outcomes == {"greet": "boot error", "welcome": "boot error"}
    assert sandbox.request("welcome").body == b"hi v1 from welcome"  # rolled back


def test_a_function_not_on_the_server_is_not_verified_by_a_push_of_another(
    repo: Project, sandbox: Sandbox
) -> None:
    # welcome was never deployed; greet's push changes the module both load
    assert repo.run("push", "greet", "api", "hello", "--no-logs").code == 0
    repo.write("_shared/greeting.ts", SHARED.format(v=2))
    r = repo.run("push", "greet", "--json", "--no-logs")
    assert r.code == 0, r.err
    data = r.json()
    assert data["affected"] == ["greet"]
    assert [v["function"] for v in data["verified"]] == ["greet"]
    assert not (sandbox.functions_dir / "welcome").exists()
    assert sandbox.request("greet").body == b"hi v2 from greet"


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("import { x } from '../_shared/nope.ts'\n", "api/index.ts:1"),  # the resolver
        ("export const = 1\n", "nothing was uploaded"),  # Deno's parser (the pre-flight)
    ],
)
def test_code_that_cannot_load_is_refused_before_any_upload(
    repo: Project, sandbox: Sandbox, code: str, says: str
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    before = tree(sandbox.functions_dir)
    releases = len(history(sandbox))
    repo.write("api/index.ts", code)
    r = repo.run("push", "api", "--no-logs")
    assert r.code == 9, r.err
    assert says in r.err and "api/index.ts" in r.err
    assert tree(sandbox.functions_dir) == before
    assert len(history(sandbox)) == releases
    r = repo.run("check", "api")
    assert r.code == 9 and "api/index.ts" in r.out


def test_rollback_never_brings_a_failed_release_back_by_default(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs").code == 0
    repo.write("api/index.ts", OK.format(v=2))
    assert repo.run("push", "--no-logs").code == 0
    good = tree(sandbox.functions_dir)
    repo.write("api/index.ts", "throw new Error('v3 is broken')\n")
    assert repo.run("push", "api", "--no-logs").code == 7
    assert tree(sandbox.functions_dir) == good
    r = repo.run("rollback", "--yes", "--no-logs")  # undoes v2, never restores v3
    assert r.code == 0, r.err
    assert sandbox.request("api").body == b"v1"
    ids = [str(rec["id"]) for rec in history(sandbox)]
    r = repo.run("rollback", ids[-2], "--yes", "--no-logs")  # the automatic rollback itself
    assert r.code == 2 and "did not boot" in r.err and "--allow-failed" in r.err


def test_status_and_no_verify(repo: Project, sandbox: Sandbox) -> None:
    assert repo.run("push", "--no-logs", "--no-verify").code == 0
    r = repo.run("status", "--json")
    assert r.code == 0, r.err
    states = {f["function"]: f["outcome"] for f in r.json()["functions"]}
    assert states["api"] == "up" and states["hello"] == "up"
    (sandbox.functions_dir / "api/index.ts").write_text("throw new Error('edited by hand')\n")
    repo.run("restart", "--no-logs", "--no-verify")
    r = repo.run("status", "api")
    assert r.code == 7 and "boot error" in r.out


def test_verify_settings_in_the_config(repo: Project, sandbox: Sandbox) -> None:
    repo.config.write_text(
        "verify:\n  api:\n    method: GET\n    status: 201\n  greet: false\n"
        + repo.config.read_text()
    )
    r = repo.run("push", "--json", "--no-logs")
    assert r.code == 7, r.err  # api answers 200, not the 201 configured
    outcomes = {v["function"]: v["outcome"] for v in r.json()["verified"]}
    assert outcomes["api"] == "unexpected status" and "greet" not in outcomes
