"""The server-side release scripts, run with the local `sh` on temporary trees.

apply.sh and undo.sh are generated per release (a library plus one quoted call
per operation). These tests pin the generated text, then run the scripts the
way bootstrap.sh does: after a complete apply the functions folder equals the
local tree; after a kill at any step of the swap, undo.sh brings back exactly
what was there before.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from edgesync.history import Actor, History, build_bundle, installed_by_push
from edgesync.manifest import FileEntry, Manifest
from edgesync.plan import Comparison, DeletePath, PushPlan, PutFile, ReplaceFunction, plan_push
from edgesync.remote.release import apply_script, checksums, tar_stream, undo_script
from edgesync.remote.shell import RemoteExit

RID = "20261125T120000Z-abcd"
ACTOR = Actor("dev", "laptop", 1, "0" * 40, dirty=False, version="test")


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def manifest_of(root: Path) -> Manifest:
    entries = [
        FileEntry(p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(), 1)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    folders = [p.name for p in root.iterdir() if p.is_dir()]
    return Manifest.of(entries, folders)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


SERVER = {
    "main/index.ts": "router\n",
    "fn-a/index.ts": "a v1\n",
    "fn-a/same.ts": "same\n",
    "fn-a/gone.ts": "deleted locally\n",
    "legacy/index.ts": "server only\n",
    "_shared/x.ts": "x v1\n",
    "_we ird/it's $(x).ts": "odd name v1\n",
}
LOCAL = {
    "fn-a/index.ts": "a v2\n",
    "fn-a/same.ts": "same\n",
    "fn-b/index.ts": "b v1\n",
    "_shared/x.ts": "x v2\n",
    "_shared/new.ts": "new\n",
    "_we ird/it's $(x).ts": "odd name v2\n",
}


class Server:
    """A functions folder and a state folder, staged the way bootstrap.sh stages a release."""

    def __init__(self, tmp: Path) -> None:
        self.fd = tmp / "functions"
        self.state = tmp / "state"
        self.local = tmp / "local"
        write_tree(self.fd, SERVER)
        write_tree(self.local, LOCAL)
        self.before = tree(self.fd)
        remote = manifest_of(self.fd)
        local = manifest_of(self.local)
        functions = ("fn-a", "fn-b")
        deps = {"fn-a": {"_shared/x.ts"}, "fn-b": {"_shared/new.ts"}}
        self.plan = plan_push(local, remote, functions, [], deps, prune=True)
        self.bundle = build_bundle(
            self.plan,
            kind="push",
            remote=remote,
            expected=installed_by_push(self.plan, local),
            history=History(),
            kept=(),
            keep=10,
            actor=ACTOR,
            target="t",
            rid=RID,
        )
        self.stage = self.state / "staging" / RID

    def unpack(self, apply_text: str | None = None) -> None:
        record = json.dumps(self.bundle.record.to_json()) + "\n"
        extra = {
            "apply.sh": apply_text or apply_script(self.plan, self.bundle.expected),
            "undo.sh": undo_script(self.plan),
            "checksums": checksums(self.bundle.expected),
            "release.json": record,
            "history.json": record,
        }
        data = b"".join(tar_stream(self.local, sorted(self.plan.uploads), extra))
        (self.state / "releases").mkdir(parents=True, exist_ok=True)
        self.stage.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse odd members
                tar.extractall(self.stage, filter="data")
            else:  # pragma: no cover - older Pythons (our own archive: no odd members)
                tar.extractall(self.stage)  # noqa: S202

    def apply(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(self.stage / "apply.sh"), str(self.state), str(self.fd), RID],
            capture_output=True,
            text=True,
        )

    def undo(self) -> subprocess.CompletedProcess[str]:
        release = self.state / "releases" / RID
        return subprocess.run(
            ["sh", str(release / "undo.sh"), str(self.fd), str(release)],
            capture_output=True,
            text=True,
        )


def test_plan_covers_every_operation(tmp_path: Path) -> None:
    plan = Server(tmp_path).plan
    assert [(f.name, f.existed) for f in plan.functions] == [("fn-a", True), ("fn-b", False)]
    assert {p.path for p in plan.puts} == {"_shared/x.ts", "_shared/new.ts", "_we ird/it's $(x).ts"}
    assert [d.path for d in plan.deletes] == ["legacy"]


def test_generated_calls_golden() -> None:
    plan = PushPlan(
        functions=(
            ReplaceFunction(
                "fn-a", existed=True, upload=("fn-a/i.ts",), keep=("fn-a/k.ts",), delete=()
            ),
            ReplaceFunction(
                "old", existed=True, upload=(), keep=(), delete=(), source="releases/r1/before/old"
            ),
        ),
        puts=(PutFile("_shared/it's.ts", existed=False),),
        deletes=(DeletePath("legacy", is_function=True),),
        comparison=Comparison(()),
    )
    expected = {"fn-a/i.ts": "a" * 64, "fn-a/k.ts": "b" * 64, "odd\nname.ts": "c" * 64}
    apply = apply_script(plan, expected, retire=("r0",))
    generated = apply.split("# -- the release (generated)\n", 1)[1]
    assert generated == (
        "# 1. complete the staged folders\n"
        "stage_function fn-a\n"
        "keep_file fn-a/k.ts\n"
        "restore_function releases/r1/before/old old\n"
        "# 2. verify every staged file against its expected hash\n"
        "verify_staged\n"
        f"check_hash 'odd\nname.ts' {'c' * 64}\n"
        "# 3. swap, keeping what is replaced in the release\n"
        "begin_swap\n"
        "swap_function fn-a 1\n"
        "swap_function old 1\n"
        "put_file '_shared/it'\"'\"'s.ts' 0\n"
        "delete_path legacy\n"
        "# 4. verify what is installed\n"
        "verify_installed\n"
        f"check_installed 'odd\nname.ts' {'c' * 64}\n"
        "count_files fn-a 2\n"
        "# 5. the release is complete once it is in the history\n"
        "commit_release\n"
        "retire r0\n"
        'printf "released %s\\n" "$rid"\n'
    )
    undo = undo_script(plan).split("# -- the release (generated)\n", 1)[1]
    assert undo == (
        "undo_delete legacy\n"
        "undo_put '_shared/it'\"'\"'s.ts' 0\n"
        "undo_function old 1\n"
        "undo_function fn-a 1\n"
        "exit $rc\n"
    )
    assert apply.startswith("# shellcheck disable=SC2034")
    assert f"EXIT_STALE_PLAN={RemoteExit.STALE_PLAN.value}\n" in apply


def test_apply_installs_the_local_tree_and_records_the_release(tmp_path: Path) -> None:
    s = Server(tmp_path)
    s.unpack()
    r = s.apply()
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"released {RID}\n"
    after = tree(s.fd)
    for rel, text in LOCAL.items():
        assert after[rel] == text.encode()
    assert "fn-a/gone.ts" not in after and "legacy/index.ts" not in after
    assert after["main/index.ts"] == b"router\n"  # never touched
    history = (s.state / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in history] == [RID]
    assert not (s.state / "journal").exists()
    before = tree(s.state / "releases" / RID / "before")
    assert before["fn-a/gone.ts"] == b"deleted locally\n"
    assert before["legacy/index.ts"] == b"server only\n"
    assert before["_shared/x.ts"] == b"x v1\n"
    # and the release's undo.sh brings everything back
    assert s.undo().returncode == 0
    assert tree(s.fd) == s.before


def test_stale_plan_changes_nothing(tmp_path: Path) -> None:
    s = Server(tmp_path)
    s.unpack()
    (s.fd / "fn-a/same.ts").write_text("edited on the server\n")  # a kept file changed
    expected_after = tree(s.fd)
    r = s.apply()
    assert r.returncode == RemoteExit.STALE_PLAN, r.stderr
    assert tree(s.fd) == expected_after
    assert not (s.state / "journal").exists()
    assert not (s.state / "history.jsonl").exists()


def swap_calls(apply_text: str) -> tuple[str, list[str], str]:
    """(text up to begin_swap included, the swap and verification calls, the commit)."""
    head, rest = apply_text.split("begin_swap\n", 1)
    swap, tail = rest.split("# 5.", 1)
    calls = [c for c in swap.strip("\n").splitlines() if not c.startswith("#")]
    return head + "begin_swap\n", calls, "# 5." + tail


def test_a_kill_at_every_swap_step_is_undone_exactly(tmp_path: Path) -> None:
    plan_text = apply_script(
        Server(tmp_path / "probe").plan, Server(tmp_path / "probe2").bundle.expected
    )
    head, calls, _ = swap_calls(plan_text)
    assert len(calls) >= 5
    for k in range(len(calls) + 1):
        s = Server(tmp_path / f"kill-{k}")
        # the script stops after k swap steps, as if the process were killed there
        s.unpack(head + "".join(c + "\n" for c in calls[:k]) + "exit 137\n")
        r = s.apply()
        assert r.returncode == 137, r.stderr
        assert (s.state / "journal").read_text().strip() == RID
        # what bootstrap.sh does on the next push: run the journaled release's undo.sh
        u = s.undo()
        assert u.returncode == 0, (k, u.stderr)
        assert tree(s.fd) == s.before, f"killed after {k} swap steps"


@pytest.mark.parametrize("step", ["stage_function", "keep_file", "verify_staged"])
def test_a_kill_before_the_swap_leaves_the_server_alone(tmp_path: Path, step: str) -> None:
    s = Server(tmp_path)
    text = apply_script(s.plan, s.bundle.expected)
    cut = text.index(step, text.index("# -- the release (generated)"))
    s.unpack(text[:cut] + "exit 137\n")
    assert s.apply().returncode == 137
    assert tree(s.fd) == s.before
    assert not (s.state / "journal").exists()
