"""Pushing exactly what a function loads, through the real sshd, and nothing it must not touch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import Sandbox
from tests.helpers import Project, serve


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def server(sandbox: Sandbox, rel: str, text: str) -> None:
    path = sandbox.functions_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(project: Project, sandbox: Sandbox) -> Project:
    project.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())
    return project


def test_a_file_imported_from_another_function_keeps_that_function_whole(
    repo: Project, sandbox: Sandbox
) -> None:
    """push A must not rebuild B's folder from the one file A imports from it."""
    repo.write("api-v2/index.ts", "import { h } from './_handler-utils.ts'\nDeno.serve(h)\n")
    repo.write("api-v2/_handler-utils.ts", "export const h = () => new Response('v2')\n")
    repo.write("api-v2/README.md", "local readme\n")
    repo.write(
        "orders/index.ts", "import { h } from '../api-v2/_handler-utils.ts'\nDeno.serve(h)\n"
    )
    server(sandbox, "api-v2/index.ts", "import { h } from './_handler-utils.ts'\nDeno.serve(h)\n")
    server(sandbox, "api-v2/_handler-utils.ts", "export const h = () => new Response('v1')\n")
    server(sandbox, "api-v2/server-only.ts", "// only on the server\n")
    r = repo.run("push", "orders", "--json", "--no-logs")
    assert r.code == 0, r.err
    data = r.json()
    assert data["functions"] == ["orders"]
    assert sorted(data["affected"]) == ["api-v2", "orders"]  # api-v2 loads that file too
    fd = sandbox.functions_dir
    assert (fd / "api-v2/_handler-utils.ts").read_text().endswith("'v2')\n")
    assert (fd / "api-v2/index.ts").exists()  # not rebuilt from a partial selection
    assert (fd / "api-v2/server-only.ts").exists()
    assert not (fd / "api-v2/README.md").exists()  # api-v2 itself was not pushed
    # and diff of orders now agrees with the server
    assert repo.run("diff", "orders", "--exit-code").code == 0


def test_files_edgesync_ignores_survive_a_push_and_a_rollback(
    repo: Project, sandbox: Sandbox
) -> None:
    repo.write("wpp-create/index.ts", serve("v2"))
    repo.write("wpp-create/check.test.ts", "// a local test\n")
    server(sandbox, "wpp-create/index.ts", serve("v1"))
    server(sandbox, "wpp-create/.env", "WPP_TOKEN=server-secret\n")
    server(sandbox, "wpp-create/.envrc", "export X=1\n")
    server(sandbox, "wpp-create/node_modules/dep/index.js", "module.exports = 1\n")
    server(sandbox, "wpp-create/old.test.ts", "// a test on the server\n")
    server(sandbox, "wpp-create/stale.ts", "// deleted locally\n")
    r = repo.run("push", "wpp-create", "--json", "--no-logs")
    assert r.code == 0, r.err
    fd = sandbox.functions_dir / "wpp-create"
    assert (fd / "index.ts").read_text() == serve("v2")
    assert (fd / ".env").read_text() == "WPP_TOKEN=server-secret\n"
    assert (fd / ".envrc").exists() and (fd / "node_modules/dep/index.js").exists()
    assert (fd / "old.test.ts").exists()  # test files are not edgesync's: left as they are
    assert not (fd / "check.test.ts").exists()  # and never uploaded
    assert not (fd / "stale.ts").exists()  # the mirror still removes a deleted file
    assert {f["path"] for f in r.json()["files"]} == {"wpp-create/index.ts", "wpp-create/stale.ts"}
    r = repo.run("rollback", "--yes", "--no-logs")
    assert r.code == 0, r.err
    assert (fd / "index.ts").read_text() == serve("v1")
    assert (fd / ".env").read_text() == "WPP_TOKEN=server-secret\n"
    assert (fd / "stale.ts").exists()


def test_env_lookalikes_are_never_uploaded(repo: Project, sandbox: Sandbox) -> None:
    for name in (".env", ".envrc", ".env-production", ".env_local", "secrets.env", ".ENV"):
        repo.write(f"wpp-create/{name}", "SECRET=local\n")
    repo.write("wpp-create/index.ts", serve("v"))
    r = repo.run("push", "--json", "--no-logs")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (sandbox.functions_dir / "wpp-create").iterdir()) == ["index.ts"]


def test_import_map_aliases_bring_the_files_and_the_map(repo: Project, sandbox: Sandbox) -> None:
    repo.write("deno.json", json.dumps({"imports": {"@shared/": "./_shared/"}}))
    repo.write("_shared/http.ts", "export const ok = () => new Response('ok')\n")
    repo.write("_shared/unused.ts", "export {}\n")
    repo.write("wpp-qr/index.ts", "import { ok } from '@shared/http.ts'\nDeno.serve(ok)\n")
    r = repo.run("push", "wpp-qr", "--json", "--no-logs")
    assert r.code == 0, r.err
    sent = {f["path"] for f in r.json()["files"]}
    assert sent == {"wpp-qr/index.ts", "_shared/http.ts", "deno.json"}


def test_a_shared_folder_without_underscore(repo: Project, sandbox: Sandbox) -> None:
    repo.write("utils/table.ts", "export const t = 1\n")
    repo.write("utils/unused.ts", "export const u = 1\n")
    repo.write("report/index.ts", serve("report", "../utils/table.ts"))
    r = repo.run("push", "--json", "--no-logs")
    assert r.code == 0, r.err
    assert (sandbox.functions_dir / "utils/table.ts").exists()
    assert not (sandbox.functions_dir / "utils/unused.ts").exists()  # nothing loads it
    assert repo.run("diff", "--exit-code").code == 0


def test_an_import_leaving_the_functions_folder_is_exit_9_and_others_still_push(
    repo: Project, sandbox: Sandbox
) -> None:
    repo.write("domain/index.ts", "import { x } from '../../../packages/domain/src/x.ts'\n")
    repo.write("fine/index.ts", serve("fine"))
    r = repo.run("push", "domain", "--no-logs")
    assert r.code == 9, r.err
    assert "domain/index.ts:1" in r.err and "../../../packages/domain/src/x.ts" in r.err
    assert not (sandbox.functions_dir / "domain").exists()
    assert not (sandbox.project_dir / ".edgesync").exists()  # refused before connecting
    r = repo.run("push", "--json", "--no-logs")
    assert r.code == 9, r.err
    assert r.json()["blocked"] == ["domain"] and r.json()["functions"] == ["fine"]
    assert (sandbox.functions_dir / "fine/index.ts").exists()
    r = repo.run("diff", "--exit-code", "--json")
    assert r.code == 1  # never "in sync" while a function cannot be deployed
    assert r.json()["blocked"][0]["name"] == "domain"
    assert "cannot be deployed" in repo.run("ls").out


def test_an_import_into_main_is_refused(repo: Project, sandbox: Sandbox) -> None:
    main_before = tree(sandbox.functions_dir / "main")
    repo.write("main/index.ts", serve("a local copy of the router"))
    repo.write("main/util.ts", "export const u = 1\n")
    repo.write("sneaky/index.ts", "import { u } from '../main/util.ts'\n")
    r = repo.run("push", "sneaky", "--no-logs")
    assert r.code == 9 and "main" in r.err, r.err
    r = repo.run("push", "--no-logs")
    assert r.code == 9
    assert tree(sandbox.functions_dir / "main") == main_before


def test_a_missing_local_module_is_exit_9(repo: Project, sandbox: Sandbox) -> None:
    repo.write("wpp-status/index.ts", "import { s } from '../_shared/status.ts'\n")
    r = repo.run("push", "wpp-status", "--no-logs")
    assert r.code == 9
    assert "wpp-status/index.ts:1" in r.err and "../_shared/status.ts" in r.err


def test_test_files_and_their_helpers_stay_local(repo: Project, sandbox: Sandbox) -> None:
    repo.write("wpp/index.ts", serve("wpp", "../_shared/wpp.ts"))
    repo.write("wpp/index.test.ts", "import '../_shared/test-helpers.ts'\n")
    repo.write("wpp/tests/fixture.ts", "export {}\n")
    repo.write("wpp/__tests__/a.spec.ts", "export {}\n")
    repo.write("_shared/wpp.ts", "export {}\n")
    repo.write("_shared/test-helpers.ts", "export {}\n")
    r = repo.run("push", "wpp", "--json", "--no-logs")
    assert r.code == 0, r.err
    assert {f["path"] for f in r.json()["files"]} == {"wpp/index.ts", "_shared/wpp.ts"}


def test_a_shared_change_names_every_function_it_changes(repo: Project, sandbox: Sandbox) -> None:
    for fn in ("wpp-create", "wpp-qr", "wpp-status"):
        repo.write(f"{fn}/index.ts", serve(fn, "../_shared/wpp.ts"))
    repo.write("_shared/wpp.ts", "export const v = 1\n")
    assert repo.run("push", "--no-logs").code == 0
    repo.write("_shared/wpp.ts", "export const v = 2\n")
    r = repo.run("push", "wpp-create", "--no-logs", "--dry-run")
    assert r.code == 0, r.err
    assert "also changes wpp-qr (it loads _shared/wpp.ts)" in r.out
    assert "also changes wpp-status (it loads _shared/wpp.ts)" in r.out
    r = repo.run("push", "wpp-create", "--json", "--no-logs")
    assert r.json()["affected"] == ["wpp-create", "wpp-qr", "wpp-status"]
    assert r.json()["functions"] == []  # only the shared file changed


def test_a_disabled_function_is_skipped_with_a_note(repo: Project, sandbox: Sandbox) -> None:
    (repo.functions.parent / "config.toml").write_text("[functions.legacy]\nenabled = false\n")
    repo.write("legacy/index.ts", serve("off"))
    repo.write("live/index.ts", serve("on"))
    r = repo.run("push", "--json", "--no-logs")
    assert r.code == 0, r.err
    assert r.json()["functions"] == ["live"]
    assert "legacy: enabled = false" in r.err
    assert repo.run("push", "legacy", "--no-logs").code == 0  # named: pushed anyway
