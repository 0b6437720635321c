"""The history index: what the releases leave behind, kept on the server beside
history.jsonl so that a listing need not send every release.

Pure: an index plus the releases after it answers exactly what the whole history
answers. Script: snapshot.sh sends the index only while the history still starts
with the lines it was made from. Real sshd: pushes write it, old servers and old
clients keep working, and the listing stays small.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgesync.history import (
    INDEX_IDS,
    BadRecord,
    History,
    HistoryIndex,
    IncompleteHistory,
    drifted,
    last_release_of,
    parse_history,
    recorded_state,
)
from edgesync.manifest import FileEntry, Manifest
from edgesync.remote import scripts
from edgesync.remote.shell import sh_script
from edgesync.remote.snapshot import parse_snapshot
from sandbox import Sandbox
from tests.helpers import Project, serve

SHA = {n: f"{n:064x}" for n in range(1, 40)}


def rid(n: int) -> str:
    return f"20261125T12{n // 60:02d}{n % 60:02d}Z-{n:04x}"


def push(n: int, after: dict[str, str], functions: list[str], **extra: Any) -> dict[str, Any]:
    ops = [{"op": "function", "name": f, "existed": True} for f in functions]
    ops += [
        {"op": "put", "path": p, "existed": True} for p in after if p.split("/")[0] not in functions
    ]
    return {
        "schema": 2,
        "id": rid(n),
        "kind": "push",
        "user": "dev",
        "commit": f"{n:040x}",
        "functions": functions,
        "ops": ops,
        "after": after,
        "files": [{"path": p, "action": "upload", "sha256": s} for p, s in after.items()],
        **extra,
    }


RECORDS = [
    push(1, {"fn-a/index.ts": SHA[1], "fn-a/x.ts": SHA[2], "_shared/s.ts": SHA[3]}, ["fn-a"]),
    push(2, {"fn-b/index.ts": SHA[4]}, ["fn-b"]),
    push(3, {"fn-a/index.ts": SHA[5]}, ["fn-a"]),  # fn-a/x.ts gone: replaced whole
    push(4, {"_shared/s.ts": SHA[6]}, []),
    {
        "schema": 2,
        "id": rid(5),
        "kind": "rollback",
        "rolled_back": [rid(4)],
        "reason": "verification failed",
        "ops": [{"op": "put", "path": "_shared/s.ts", "existed": True}],
        "after": {"_shared/s.ts": SHA[3]},
    },
    push(6, {}, [], ops=[{"op": "delete", "path": "fn-b", "is_function": True}]),
    push(7, {"fn-c/index.ts": SHA[7]}, ["fn-c"]),
]
LINES = [json.dumps(r) for r in RECORDS]


def text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def answers(h: History) -> tuple[Any, ...]:
    """Everything diff, ls and push ask of a history."""
    remote = Manifest.of(
        [FileEntry("fn-a/index.ts", SHA[9], 1), FileEntry("fn-c/index.ts", SHA[7], 1)]
    )
    latest = h.latest
    return (
        recorded_state(h),
        last_release_of(h),
        h.ids,
        h.failed,
        latest.id if latest else None,
        latest.commit if latest else None,
        drifted(remote, h),
        h.skipped,
    )


@pytest.mark.parametrize("cut", range(len(LINES) + 1))
def test_an_index_and_the_lines_after_it_answer_as_the_whole_history(cut: int) -> None:
    whole = parse_history(text(LINES))
    index = parse_history(text(LINES[:cut])).index_after()
    stored = HistoryIndex.from_json(json.loads(json.dumps(index.to_json())), cut)
    partial = parse_history(text(LINES[cut:]), index=stored)
    assert answers(partial) == answers(whole)
    assert partial.index_after().to_json() == whole.index_after().to_json()


def test_the_index_after_a_release_includes_it() -> None:
    base = parse_history(text(LINES[:3]))
    new = parse_history(text(LINES[3:4])).tail[0]
    assert answers(parse_history(text(LINES[:4]))) == answers(
        History(index=base.index_after(new), skipped=base.skipped)
    )


def test_unreadable_lines_keep_their_numbers_across_the_index() -> None:
    lines = [LINES[0], "{not json", LINES[1], "[]", LINES[2]]
    whole = parse_history(text(lines))
    index = HistoryIndex.from_json(parse_history(text(lines[:2])).index_after().to_json(), 2)
    partial = parse_history(text(lines[2:]), index=index)
    assert partial.skipped == whole.skipped
    assert [s.split(":")[0] for s in whole.skipped] == [
        "history.jsonl line 2",
        "history.jsonl line 4",
    ]


def test_only_a_whole_history_lists_every_release() -> None:
    index = parse_history(text(LINES)).index_after()
    with pytest.raises(IncompleteHistory):
        _ = History(index=index).releases
    assert parse_history(text(LINES)).releases[0].id == rid(1)


def test_an_index_keeps_the_newest_ids_only() -> None:
    many = [json.dumps(push(n, {"fn-a/index.ts": SHA[1]}, ["fn-a"])) for n in range(INDEX_IDS + 20)]
    index = parse_history(text(many)).index_after()
    assert list(index.ids) == [rid(n) for n in range(20, INDEX_IDS + 20)]


@pytest.mark.parametrize(
    "broken",
    [
        {"files": {"../etc/passwd": SHA[1]}},
        {"files": {"fn-a/index.ts": "not a hash"}},
        {"ids": ["not-an-id"]},
        {"last_release": {"fn-a": "x"}},
        {"functions": ["a/b"]},
        {"format": 99},
        {"latest": {"id": "bad"}},
    ],
)
def test_an_index_edgesync_did_not_write_is_refused(broken: dict[str, Any]) -> None:
    data = {**parse_history(text(LINES)).index_after().to_json(), **broken}
    with pytest.raises(BadRecord):
        HistoryIndex.from_json(data, 7)


def test_when_a_release_writes_a_new_index() -> None:
    assert not History().wants_index()  # the first release: its line is the whole history
    assert parse_history(text(LINES[:1])).wants_index()  # none yet
    index = parse_history(text(LINES)).index_after()
    assert not History(index=index).wants_index(2000)
    assert History(index=index, tail_bytes=60 << 10).wants_index(8 << 10)  # the tail grows long
    many = parse_history(text(LINES * 8), index=index)
    assert many.wants_index()


# --------------------------------------------------------------------------- snapshot.sh


class State:
    """A state folder and an empty functions folder, listed by snapshot.sh with the local sh."""

    def __init__(self, tmp: Path) -> None:
        self.project = tmp / "project"
        self.fd = self.project / "functions"
        self.state = self.project / ".edgesync"
        self.fd.mkdir(parents=True)
        self.state.mkdir()

    def write_history(self, lines: list[str]) -> None:
        (self.state / "history.jsonl").write_text(text(lines))

    def write_index(self, lines: list[str]) -> None:
        """What session.sh writes after a release: N, the sha256 of the first N lines, the JSON."""
        covered = text(lines).encode()
        digest = subprocess.run(["sha256sum"], input=covered, capture_output=True, check=True)
        body = json.dumps(parse_history(text(lines)).index_after().to_json())
        header = f"{len(lines)} {digest.stdout.decode().split()[0]}\n"
        (self.state / "history.idx").write_text(header + body + "\n")

    def list(self, mode: str) -> tuple[bytes, History]:
        command = sh_script(scripts.load("snapshot"), self.project, self.fd, self.state, mode)
        r = subprocess.run(["sh", "-c", command], capture_output=True, check=True)
        return r.stdout, parse_snapshot(r.stdout, "history.jsonl").history


def test_the_listing_sends_the_index_and_the_lines_after_it(tmp_path: Path) -> None:
    s = State(tmp_path)
    s.write_history(LINES)
    s.write_index(LINES[:5])
    out, h = s.list("index")
    assert out.startswith(b"X\0005\0") and LINES[4].encode() not in out
    assert [r.id for r in h.tail] == [rid(6), rid(7)]
    assert answers(h) == answers(parse_history(text(LINES)))
    out, h = s.list("full")
    assert h.complete and b"X\0" not in out and LINES[0].encode() in out


def test_an_index_of_another_history_is_not_sent(tmp_path: Path) -> None:
    s = State(tmp_path)
    s.write_index(LINES[:5])
    s.write_history([LINES[0], LINES[2], *LINES[3:]])  # rewritten (a repair, by hand)
    out, h = s.list("index")
    assert h.complete and out.startswith(b"H\0")
    s.write_history(LINES[:3])  # shorter than the index
    assert s.list("index")[1].complete


@pytest.mark.parametrize("header", ["", "x abc", "5", "-1 abc", "99999 " + "0" * 64])
def test_a_broken_index_header_means_the_whole_history(tmp_path: Path, header: str) -> None:
    s = State(tmp_path)
    s.write_history(LINES)
    (s.state / "history.idx").write_text(header + "\n{}\n")
    out, h = s.list("index")
    assert h.complete and out.startswith(b"H\0")


def test_an_unreadable_index_body_is_said(tmp_path: Path) -> None:
    s = State(tmp_path)
    s.write_history(LINES)
    s.write_index(LINES)
    idx = s.state / "history.idx"
    idx.write_text(idx.read_text().split("\n")[0] + '\n{"format": 1, "files": 3}\n')
    command = sh_script(scripts.load("snapshot"), s.project, s.fd, s.state, "index")
    out = subprocess.run(["sh", "-c", command], capture_output=True, check=True).stdout
    assert parse_snapshot(out, "history.jsonl").index_unreadable


def test_an_index_behind_a_link_is_not_read(tmp_path: Path) -> None:
    s = State(tmp_path)
    s.write_history(LINES)
    s.write_index(LINES)
    (s.state / "history.idx").rename(tmp_path / "elsewhere")
    (s.state / "history.idx").symlink_to(tmp_path / "elsewhere")
    assert s.list("index")[1].complete


# --------------------------------------------------------------------------- real sshd


@pytest.fixture
def repo(project: Project) -> Project:
    project.write("hello/index.ts", serve("hello v1"))
    project.write("fn-a/index.ts", serve("a v1", "../_shared/x.ts"))
    project.write("_shared/x.ts", "export const x = 1\n")
    return project


def listing(sandbox: Sandbox, mode: str = "index") -> bytes:
    state = sandbox.project_dir / ".edgesync"
    command = sh_script(
        scripts.load("snapshot"), sandbox.project_dir, sandbox.functions_dir, state, mode
    )
    return subprocess.run(["sh", "-c", command], capture_output=True, check=True).stdout


def covered(sandbox: Sandbox) -> int | None:
    """How many history lines the listing sends as the index (None: it sends them all)."""
    index = parse_snapshot(listing(sandbox), "history.jsonl").history.index
    return None if index is None else index.lines


def test_pushes_keep_the_index_and_drift_is_found_through_it(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs", "--no-restart").code == 0
    idx = sandbox.project_dir / ".edgesync/history.idx"
    assert not idx.exists()  # one release: the history is as short as an index would be
    repo.write("hello/index.ts", serve("hello v2"))
    assert repo.run("push", "hello", "--no-logs", "--no-restart").code == 0
    repo.write("fn-a/index.ts", serve("a v2", "../_shared/x.ts"))
    assert repo.run("push", "fn-a", "--no-logs", "--no-restart").code == 0
    assert idx.read_text().startswith("2 ")  # written by the second release; the third follows
    out = listing(sandbox)
    assert out.count(b'"id"') == 1 + 1  # the index's latest summary, and the one line after it
    (sandbox.functions_dir / "fn-a/index.ts").write_text("// hotfix on the server\n")
    data = repo.run("diff", "--json").json()
    assert data["changed_on_server"] == ["fn-a/index.ts"]
    ls = {f["name"]: f for f in repo.run("ls", "--json").json()["functions"]}
    history = [json.loads(line) for line in (idx.parent / "history.jsonl").read_text().splitlines()]
    assert ls["fn-a"]["last_release"] == history[2]["id"]
    assert ls["hello"]["last_release"] == history[1]["id"]


def test_a_server_without_an_index_gets_one_with_the_next_release(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs", "--no-restart").code == 0
    idx = sandbox.project_dir / ".edgesync/history.idx"
    idx.unlink(missing_ok=True)  # an older edgesync kept none
    (sandbox.functions_dir / "hello/index.ts").write_text("// by hand\n")
    assert repo.run("diff", "--json").json()["changed_on_server"] == ["hello/index.ts"]
    assert covered(sandbox) is None  # the whole history, as before
    repo.write("fn-a/index.ts", serve("a v2", "../_shared/x.ts"))
    assert repo.run("push", "fn-a", "--no-logs", "--no-restart").code == 0
    assert idx.read_text().startswith("2 ")
    assert covered(sandbox) == 2
    assert repo.run("diff", "--json").json()["changed_on_server"] == ["hello/index.ts"]


def test_releases_an_older_edgesync_appends_are_read_after_the_index(
    repo: Project, sandbox: Sandbox
) -> None:
    assert repo.run("push", "--no-logs", "--no-restart").code == 0
    repo.write("hello/index.ts", serve("hello v2"))
    assert repo.run("push", "--no-logs", "--no-restart").code == 0
    history = sandbox.project_dir / ".edgesync/history.jsonl"
    first = json.loads(history.read_text().splitlines()[0])
    # an older edgesync replaced fn-a (and kept no index): its line follows the index
    later = {**first, "id": first["id"][:-4] + "ffff", "functions": ["fn-a"]}
    later["ops"] = [{"op": "function", "name": "fn-a", "existed": True}]
    later["after"] = {"fn-a/index.ts": "0" * 64}
    with history.open("a") as f:
        f.write(json.dumps(later) + "\n")
    assert covered(sandbox) == 2
    data = repo.run("diff", "--json").json()
    assert data["changed_on_server"] == ["fn-a/index.ts"]  # recorded by the later line
    ls = {f["name"]: f for f in repo.run("ls", "--json").json()["functions"]}
    assert ls["fn-a"]["last_release"] == later["id"]


def test_history_and_rollback_read_every_release(repo: Project, sandbox: Sandbox) -> None:
    for n in range(3):
        repo.write("fn-a/index.ts", serve(f"a v{n}", "../_shared/x.ts"))
        assert repo.run("push", "--no-logs", "--no-restart").code == 0
    r = repo.run("history", "--json")
    assert len(r.json()["releases"]) == 3
    r = repo.run("rollback", "--yes", "--no-logs", "--no-restart", "--json")
    assert r.code == 0, r.err
    assert covered(sandbox) == 4  # a rollback writes the index too
