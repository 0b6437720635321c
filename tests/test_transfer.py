"""How a release travels: one tar stream, gzipped when the server has gzip, in large writes.

session.sh runs here with the local `sh`, the way the server runs it, with and
without gzip on its PATH.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from edgesync.remote import scripts
from edgesync.remote.release import CHUNK, SNAPSHOT_END, coalesced, gzipped, tar_stream
from edgesync.remote.shell import RemoteExit, sh_script
from edgesync.remote.snapshot import parse_snapshot


def test_gzipped_is_one_gzip_stream_of_the_same_bytes() -> None:
    chunks = [os.urandom(100), b"a" * 300_000, b"", b"tail"]
    packed = list(gzipped(chunks))
    assert zlib.decompress(b"".join(packed), 31) == b"".join(chunks)
    assert all(len(p) >= CHUNK for p in packed[:-2])  # large writes, not one per input


def test_coalesced_joins_small_pieces() -> None:
    pieces = [b"x" * 512] * 1000
    out = list(coalesced(pieces))
    assert b"".join(out) == b"".join(pieces)
    assert len(out) == -(-512_000 // CHUNK) and all(len(o) >= CHUNK for o in out[:-1])


def test_source_text_shrinks_in_the_stream(tmp_path: Path) -> None:
    for n in range(40):
        (tmp_path / f"f{n}.ts").write_text(
            f"export const value{n} = {n};\n" + "// a comment line of source text\n" * 60
        )
    names = sorted(p.name for p in tmp_path.iterdir())
    raw = b"".join(tar_stream(tmp_path, names, {"apply.sh": "exit 0\n"}))
    packed = b"".join(gzipped([raw]))
    assert len(packed) * 5 < len(raw)
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(packed, 31))) as tar:
        assert sorted(tar.getnames()) == sorted([*(f"new/{n}" for n in names), "apply.sh"])


def bin_without_gzip(tmp_path: Path) -> str:
    """A PATH with the tools session.sh uses, gzip left out."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("sh", "mkdir", "cat", "tar", "find", "sha256sum", "stat", "rm", "du", "cut",
                 "sleep", "grep", "mv", "cp", "head", "tail", "wc", "sed", "mkfifo", "printf"):  # fmt: skip
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return str(folder)


def session(tmp_path: Path, stream: bytes, path: str | None = None) -> tuple[int, bytes]:
    """session.sh on a fresh server tree: what it printed before the upload, and its exit."""
    project = tmp_path / "project"
    (project / "functions").mkdir(parents=True)
    state = project / ".edgesync"
    command = sh_script(
        scripts.load("session"),
        state,
        project / "functions",
        "20261125T120000Z-abcd",
        json.dumps({"user": "t"}),
        "token",
        20,
        project,
        scripts.load("snapshot"),
        "index",
    )
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    r = subprocess.run(["sh", "-c", command], input=stream, capture_output=True, env=env)
    head = r.stdout.split(SNAPSHOT_END, 1)[0]
    return r.returncode, head


def release_tar(tmp_path: Path) -> bytes:
    marker = tmp_path / "applied"
    apply = f"echo applied > '{marker}'\n"
    return b"".join(tar_stream(tmp_path, [], {"apply.sh": apply}))


@pytest.mark.parametrize("has_gzip", [True, False])
def test_the_server_says_whether_it_takes_gzip_and_unpacks_either(
    tmp_path: Path, has_gzip: bool
) -> None:
    path = None if has_gzip else bin_without_gzip(tmp_path)
    stream = release_tar(tmp_path)
    if has_gzip:
        stream = b"".join(gzipped([stream]))
    code, head = session(tmp_path, stream, path)
    assert code == 0
    assert parse_snapshot(head, "history.jsonl").gzip is has_gzip
    assert (tmp_path / "applied").read_text() == "applied\n"


def test_a_cut_gzip_stream_is_an_interrupted_upload(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(300_000))
    apply = f"echo applied > '{tmp_path / 'applied'}'\n"
    raw = b"".join(tar_stream(tmp_path, ["big.bin"], {"apply.sh": apply}))
    stream = b"".join(gzipped([raw]))
    code, _ = session(tmp_path, stream[: len(stream) // 2])
    assert code == RemoteExit.UPLOAD_INTERRUPTED
    assert not (tmp_path / "applied").exists()


def test_a_lock_that_goes_away_while_we_look_is_taken(tmp_path: Path) -> None:
    """Another deploy's lock makes our mkdir fail, then is released before we look at it:
    five concurrent pushes saw "cannot create the lock" (exit 5) there; we must try again."""
    folder = tmp_path / "bin"
    folder.mkdir()
    flag = tmp_path / "failed-once"
    real = shutil.which("mkdir")
    wrapper = folder / "mkdir"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in */lock) if [ ! -e "{flag}" ]; then : > "{flag}"; exit 1; fi ;; esac\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    stream = b"".join(gzipped([release_tar(tmp_path)]))
    code, _ = session(tmp_path, stream, f"{folder}:{os.environ['PATH']}")
    assert flag.exists()  # the lock's mkdir did fail once
    assert code == 0
    assert (tmp_path / "applied").read_text() == "applied\n"
