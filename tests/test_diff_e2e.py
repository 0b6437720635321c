"""`diff` and `ls` end to end, through the real sshd of the sandbox server."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sandbox import Sandbox
from tests.helpers import Project


def server_write(sandbox: Sandbox, rel: str, text: str) -> None:
    path = sandbox.functions_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def copy_server_hello(project: Project, sandbox: Sandbox) -> None:
    project.write("hello/index.ts", (sandbox.functions_dir / "hello/index.ts").read_text())


def test_diff_json_shape(project: Project, sandbox: Sandbox) -> None:
    copy_server_hello(project, sandbox)
    project.write("wpp-create/index.ts", "import '../_shared/wpp.ts'\n")
    project.write("_shared/wpp.ts", "export const v = 2\n")
    project.write(".env", "SECRET=local\n")
    server_write(sandbox, "_shared/wpp.ts", "export const v = 1\n")
    server_write(sandbox, "_shared/old.ts", "x\n")
    r = project.run("diff", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["target"] == "sandbox"
    assert data["in_sync"] is False
    entries = {e["name"]: e for e in data["entries"]}
    assert set(entries) == {"hello", "wpp-create", "_shared"}  # never main/ or .env
    assert entries["hello"] == {
        "name": "hello",
        "kind": "function",
        "status": "unchanged",
        "files": [{"path": "hello/index.ts", "status": "unchanged"}],
    }
    assert entries["wpp-create"]["status"] == "added"
    assert entries["_shared"]["kind"] == "shared"
    assert entries["_shared"]["status"] == "modified"
    assert entries["_shared"]["files"] == [
        {"path": "_shared/old.ts", "status": "removed"},
        {"path": "_shared/wpp.ts", "status": "modified"},
    ]


def test_diff_text_and_exit_code(project: Project, sandbox: Sandbox) -> None:
    copy_server_hello(project, sandbox)
    r = project.run("diff", "--exit-code")
    assert r.code == 0, r.err
    assert "in sync" in r.out
    project.write("wpp-provision/index.ts", "Deno.serve(() => new Response('ok'))\n")
    r = project.run("diff", "--exit-code")
    assert r.code == 1
    assert "wpp-provision  added (not on the server)" in r.out
    assert "  added     wpp-provision/index.ts" in r.out
    assert project.run("diff").code == 0  # without --exit-code a difference is not a failure


def test_diff_named_function_shows_its_shared_files(project: Project, sandbox: Sandbox) -> None:
    copy_server_hello(project, sandbox)
    project.write("wpp-create/index.ts", "import { x } from '../_shared/wpp.ts'\n")
    project.write("_shared/wpp.ts", "import './cors.ts'\nexport const x = 1\n")
    project.write("_shared/cors.ts", "export {}\n")
    project.write("_shared/unrelated.ts", "export {}\n")
    project.write("other/index.ts", "export {}\n")
    data = project.run("diff", "wpp-create", "--json").json()
    files = {f["path"] for e in data["entries"] for f in e["files"]}
    assert files == {"wpp-create/index.ts", "_shared/wpp.ts", "_shared/cors.ts"}


def test_diff_unknown_name(project: Project, sandbox: Sandbox) -> None:
    project.write("wpp-create/index.ts", "x\n")
    r = project.run("diff", "wpp-craete")
    assert r.code == 2
    assert "no function or shared folder named 'wpp-craete'" in r.err
    assert "wpp-create" in r.err


def test_diff_patch(project: Project, sandbox: Sandbox) -> None:
    project.write("hello/index.ts", "line one\nline two changed\n")
    server_write(sandbox, "hello/index.ts", "line one\nline two\n")
    project.write("hello/logo.png", b"\x89PNG\0\0new")
    (sandbox.functions_dir / "hello/logo.png").write_bytes(b"\x89PNG\0\0old")
    r = project.run("diff", "hello", "--patch")
    assert r.code == 0, r.err
    assert "--- server/hello/index.ts" in r.out
    assert "+++ local/hello/index.ts" in r.out
    assert "-line two\n+line two changed" in r.out
    assert "Binary file hello/logo.png differs" in r.out


AWKWARD = [
    "hello/with space.ts",
    'hello/it\'s "quoted".ts',
    "hello/ünïcödé €.ts",
    "hello/new\nline.ts",
    "hello/$(touch pwned).ts",
]


def test_awkward_names_round_trip(project: Project, sandbox: Sandbox) -> None:
    copy_server_hello(project, sandbox)
    for i, name in enumerate(AWKWARD):
        project.write(name, f"v{i}\n")
        server_write(sandbox, name, f"v{i}\n")
    r = project.run("diff", "--json", "--exit-code")
    assert r.code == 0, (r.out, r.err)
    (hello,) = [e for e in r.json()["entries"] if e["name"] == "hello"]
    assert {f["path"] for f in hello["files"]} == {"hello/index.ts", *AWKWARD}
    assert not (sandbox.functions_dir / "hello" / "pwned").exists()
    # and a change in one of them is seen
    project.write(AWKWARD[3], "changed\n")
    r = project.run("diff", "--json")
    changed = [
        f["path"] for e in r.json()["entries"] for f in e["files"] if f["status"] != "unchanged"
    ]
    assert changed == [AWKWARD[3]]


def test_ls(project: Project, sandbox: Sandbox) -> None:
    copy_server_hello(project, sandbox)
    project.write("wpp-provision/index.ts", "import '../_shared/wpp.ts'\n")
    project.write("wpp-create/index.ts", "import '../_shared/wpp.ts'\n")
    project.write("_shared/wpp.ts", "v2\n")
    server_write(sandbox, "wpp-create/index.ts", "import '../_shared/wpp.ts'\n")
    server_write(sandbox, "_shared/wpp.ts", "v1\n")
    server_write(sandbox, "legacy/index.ts", "old\n")
    server_write(sandbox, "broken/readme.md", "no entry\n")
    r = project.run("ls")
    assert r.code == 0, r.err
    lines = {line.split()[0]: line for line in r.out.splitlines() if "local=" in line}
    assert set(lines) == {"hello", "wpp-provision", "wpp-create", "legacy", "broken"}
    assert "not deployed" in lines["wpp-provision"]
    assert "edgesync push wpp-provision" in lines["wpp-provision"]
    assert "in sync" in lines["hello"]
    assert "differs" in lines["wpp-create"] and "_shared/wpp.ts" in lines["wpp-create"]
    assert "only on server" in lines["legacy"]
    assert "no entry file on the server" in lines["broken"]
    data = project.run("ls", "--json").json()
    states = {f["name"]: f["state"] for f in data["functions"]}
    assert states["wpp-provision"] == "not deployed"


def test_outside_symlink_refused(project: Project, sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload\n")
    project.write("hello/index.ts", "x\n")
    (project.functions / "hello" / "leak.txt").symlink_to(secret)
    r = project.run("diff")
    assert r.code == 3
    assert "hello/leak.txt" in r.err and "leaves the functions folder" in r.err


def test_missing_project_dir(project: Project, sandbox: Sandbox) -> None:
    text = project.config.read_text().replace(str(sandbox.project_dir), "/nonexistent/supabase")
    project.config.write_text(text)
    r = project.run("diff")
    assert r.code == 5
    assert "project_dir /nonexistent/supabase does not exist" in r.err


def test_missing_functions_folder(project: Project, sandbox: Sandbox) -> None:
    project.config.write_text(project.config.read_text() + "    functions_dir: volumes/nope\n")
    r = project.run("ls")
    assert r.code == 5
    assert "volumes/nope does not exist" in r.err


def test_remote_hashes_are_real(project: Project, sandbox: Sandbox) -> None:
    """Equal content means unchanged, even when only one byte differs it does not."""
    body = "x" * 100_000
    project.write("big/index.ts", body + "a")
    server_write(sandbox, "big/index.ts", body + "b")
    data = project.run("diff", "big", "--json").json()
    assert data["entries"][0]["status"] == "modified"
    server_write(sandbox, "big/index.ts", body + "a")
    assert (
        hashlib.sha256((sandbox.functions_dir / "big/index.ts").read_bytes()).hexdigest()
        == hashlib.sha256((project.functions / "big/index.ts").read_bytes()).hexdigest()
    )
    data = project.run("diff", "big", "--json").json()
    assert data["entries"][0]["status"] == "unchanged"
