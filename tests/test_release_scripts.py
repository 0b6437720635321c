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
import os
import shlex
import shutil
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

    def __init__(
        self,
        tmp: Path,
        server: dict[str, str] = SERVER,
        local_files: dict[str, str] = LOCAL,
        deps: dict[str, set[str]] | None = None,
    ) -> None:
        self.fd = tmp / "functions"
        self.state = tmp / "state"
        self.local = tmp / "local"
        write_tree(self.fd, server)
        write_tree(self.local, local_files)
        self.before = tree(self.fd)
        remote = manifest_of(self.fd)
        local = manifest_of(self.local)
        if deps is None:
            deps = {"fn-a": {"_shared/x.ts"}, "fn-b": {"_shared/new.ts"}}
        functions = tuple(sorted(deps))
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

    def apply(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(self.stage / "apply.sh"), str(self.state), str(self.fd), RID],
            capture_output=True,
            text=True,
            env=env,
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
                "fn-a",
                existed=True,
                upload=("fn-a/i.ts",),
                keep=("fn-a/k.ts", "fn-a/sub/l.ts", "fn-a/m.ts"),
                delete=(),
                preserve=("fn-a/.env",),
                preserve_files=1,
            ),
            ReplaceFunction("fn-n", existed=False, upload=("fn-n/index.ts",), keep=(), delete=()),
            ReplaceFunction(
                "old", existed=True, upload=(), keep=(), delete=(), source="releases/r1/before/old"
            ),
        ),
        puts=(
            PutFile("_shared/it's.ts", existed=False),
            PutFile("_shared/x.ts", existed=True),
            PutFile("_shared/y.ts", existed=True),
            PutFile("deno.json", existed=True),
        ),
        deletes=(DeletePath("legacy", is_function=True),),
        comparison=Comparison(()),
    )
    expected = {"fn-a/i.ts": "a" * 64, "fn-a/k.ts": "b" * 64, "odd\nname.ts": "c" * 64}
    apply = apply_script(plan, expected, retire=("r0", "r00"))
    generated = apply.split("# -- the release (generated)\n", 1)[1]
    assert generated == (
        "# 1. complete the staged folders\n"
        "stage_dirs fn-a fn-a/sub fn-n\n"
        "copy_in fn-a/k.ts fn-a/sub/l.ts fn-a/m.ts fn-a/.env\n"
        "restore_functions releases/r1/before old\n"
        "# 2. verify every staged file against its expected hash\n"
        "verify_staged\n"
        f"check_hash 'odd\nname.ts' {'c' * 64}\n"
        "# 3. swap, keeping what is replaced in the release\n"
        "begin_swap\n"
        "swap_out fn-a old\n"
        "swap_in fn-a fn-n old\n"
        "backup_dirs _shared\n"
        "backup_files _shared/x.ts _shared/y.ts deno.json\n"
        "keep_backups _shared deno.json\n"
        "install_files _shared 1 x.ts y.ts\n"
        "install_files . 1 deno.json\n"
        "install_files _shared 0 'it'\"'\"'s.ts'\n"
        "delete_path legacy\n"
        "# 4. verify what is installed\n"
        "verify_installed\n"
        f"check_installed 'odd\nname.ts' {'c' * 64}\n"
        "count_files fn-a 5 fn-n 1\n"
        "# 5. the release is complete once it is in the history\n"
        "commit_release\n"
        "retire r0 r00\n"
        'printf "released %s\\n" "$rid"\n'
    )
    undo = undo_script(plan).split("# -- the release (generated)\n", 1)[1]
    assert undo == (
        "undo_delete legacy\n"
        "undo_put deno.json 1\n"
        "undo_put _shared/y.ts 1\n"
        "undo_put _shared/x.ts 1\n"
        "undo_put '_shared/it'\"'\"'s.ts' 0\n"
        "undo_function old 1\n"
        "undo_function fn-n 0\n"
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


# Several functions and shared files of each kind, so that every batch call of the swap
# takes more than one name.
BIG_SERVER = {
    **{f"fn-{c}/index.ts": f"{c} v1\n" for c in "abcd"},
    **{f"fn-{c}/keep.ts": "kept\n" for c in "abcd"},
    "fn-c/gone.ts": "deleted locally\n",
    **{f"_shared/{c}.ts": f"{c} v1\n" for c in "pqr"},
    "deno.json": "{}\n",
    "legacy/index.ts": "server only\n",
    "main/index.ts": "router\n",
}
BIG_LOCAL = {
    **{f"fn-{c}/index.ts": f"{c} v2\n" for c in "abcdef"},
    **{f"fn-{c}/keep.ts": "kept\n" for c in "abcd"},
    **{f"_shared/{c}.ts": f"{c} v2\n" for c in "pqrst"},
    "deno.json": '{"imports": {}}\n',
}
BIG_DEPS = {f"fn-{c}": {f"_shared/{s}.ts" for s in "pqrst"} | {"deno.json"} for c in "abcdef"}


def prefixes(call: str) -> list[str]:
    """A batch call and the calls it is made of when it is killed part way: its names are
    moved or copied one after the other, so a kill leaves the first ones done."""
    words = shlex.split(call)
    fixed = {"swap_out": 1, "swap_in": 1, "backup_files": 1, "install_files": 3}.get(words[0])
    if fixed is None or len(words) <= fixed + 1:
        return [call]
    return [shlex.join(words[: fixed + k]) for k in range(1, len(words) - fixed + 1)]


@pytest.mark.parametrize("big", [False, True])
def test_a_kill_at_every_swap_step_is_undone_exactly(tmp_path: Path, big: bool) -> None:
    trees = (BIG_SERVER, BIG_LOCAL, BIG_DEPS) if big else (SERVER, LOCAL, None)
    probe = Server(tmp_path / "probe", *trees)
    head, calls, _ = swap_calls(apply_script(probe.plan, probe.bundle.expected))
    assert len(calls) >= 5
    # every point a kill can leave: after k whole calls, and inside each batch call
    points = [
        [*calls[:k], partial] for k in range(len(calls)) for partial in prefixes(calls[k])[:-1]
    ] + [calls[:k] for k in range(len(calls) + 1)]
    if big:
        assert len(points) > len(calls) + 10
    for n, done in enumerate(points):
        s = Server(tmp_path / f"kill-{n}", *trees)
        # the script stops there, as if the process were killed
        s.unpack(head + "".join(c + "\n" for c in done) + "exit 137\n")
        r = s.apply()
        assert r.returncode == 137, r.stderr
        assert (s.state / "journal").read_text().strip() == RID
        # what session.sh does on the next push: run the journaled release's undo.sh
        u = s.undo()
        assert u.returncode == 0, (done, u.stderr)
        assert tree(s.fd) == s.before, f"killed after {done}"


def test_a_big_release_installs_the_local_tree(tmp_path: Path) -> None:
    s = Server(tmp_path, BIG_SERVER, BIG_LOCAL, BIG_DEPS)
    s.unpack()
    r = s.apply()
    assert r.returncode == 0, r.stderr
    after = tree(s.fd)
    assert {k: v for k, v in after.items() if k in BIG_LOCAL} == {
        k: v.encode() for k, v in BIG_LOCAL.items()
    }
    assert "fn-c/gone.ts" not in after and "legacy/index.ts" not in after  # pruned
    assert s.undo().returncode == 0
    assert tree(s.fd) == s.before


@pytest.mark.parametrize("step", ["stage_dirs", "copy_in", "verify_staged"])
def test_a_kill_before_the_swap_leaves_the_server_alone(tmp_path: Path, step: str) -> None:
    s = Server(tmp_path)
    text = apply_script(s.plan, s.bundle.expected)
    cut = text.index(step, text.index("# -- the release (generated)"))
    s.unpack(text[:cut] + "exit 137\n")
    assert s.apply().returncode == 137
    assert tree(s.fd) == s.before
    assert not (s.state / "journal").exists()


def logging_path(tmp: Path, log: Path) -> dict[str, str]:
    """An environment whose PATH first finds shims that log each command they run."""
    shims = tmp / "shims"
    shims.mkdir()
    for tool in ("mkdir", "cp", "mv", "rm", "sha256sum", "find", "sh", "cat", "tail", "tar"):
        real = shutil.which(tool)
        assert real is not None
        shim = shims / tool
        shim.write_text(
            f'#!{real if tool == "sh" else "/bin/sh"}\necho {tool} >> "{log}"\nexec {real} "$@"\n'
        )
        shim.chmod(0o755)
    return {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"}


def many(count: int, version: str) -> dict[str, str]:
    files = {
        f"fn-{n:03d}/{name}.ts": f"{n} {name} {version}\n" for n in range(count) for name in "abc"
    }
    files |= {f"fn-{n:03d}/index.ts": f"{n} index\n" for n in range(count)}  # unchanged: kept
    return files | {f"_shared/s{n}.ts": f"{n} {version}\n" for n in range(count)}


@pytest.mark.parametrize("first", [True, False])
def test_a_release_runs_as_many_processes_for_60_functions_as_for_6(
    tmp_path: Path, first: bool
) -> None:
    """Staging, swapping and checking take a few processes per release, not per function
    or file (a first push into an empty server, and one that replaces every function)."""
    counts = []
    for count in (6, 60):
        folder = tmp_path / f"n{count}"
        folder.mkdir()
        server = {"main/index.ts": "router\n"} | ({} if first else many(count, "v1"))
        deps = {f"fn-{n:03d}": {f"_shared/s{n}.ts"} for n in range(count)}
        s = Server(folder, server, many(count, "v2"), deps)
        s.unpack()
        log = folder / "commands.log"
        r = s.apply(logging_path(folder, log))
        assert r.returncode == 0, r.stderr
        assert tree(s.fd) == {**tree(s.local), "main/index.ts": b"router\n"}
        counts.append(len(log.read_text().splitlines()))
    assert counts[0] == counts[1]
    assert counts[1] < 40
