"""Parsing the one-command remote manifest, as GNU coreutils and BusyBox print it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from edgesync.errors import RemoteError
from edgesync.remote import scripts
from edgesync.remote.snapshot import parse_manifest_output

MANIFEST_SCRIPT = scripts.load("snapshot")

H = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("a", "b", "c")}


def test_busybox_style_raw_names_with_newline() -> None:
    # BusyBox does not escape names: the raw newline is inside the line.
    data = (
        b"d\0./fn\0f\0./fn/index.ts\0f\0./fn/new\nline.ts\0h\0"
        + f"{H['a']}  ./fn/index.ts\n{H['b']}  ./fn/new\nline.ts\n".encode()
    )
    m = parse_manifest_output(data)
    assert m.files["fn/index.ts"].sha256 == H["a"]
    assert m.files["fn/new\nline.ts"].sha256 == H["b"]
    assert m.folders == {"fn"}


def test_gnu_style_escaped_names() -> None:
    data = (
        b"f\0./fn/back\\slash\0f\0./fn/x\ny\0h\0"
        + f"\\{H['a']}  ./fn/back\\\\slash\n\\{H['b']}  ./fn/x\\ny\n".encode()
    )
    m = parse_manifest_output(data)
    assert m.files["fn/back\\slash"].sha256 == H["a"]
    assert m.files["fn/x\ny"].sha256 == H["b"]


def test_ignored_paths_are_dropped() -> None:
    data = b"d\0./main\0f\0./.env\0f\0./fn/.env\0h\0" + (
        f"{H['a']}  ./.env\n{H['b']}  ./fn/.env\n".encode()
    )
    m = parse_manifest_output(data)
    assert dict(m.files) == {} and m.folders == {"main"}


def test_missing_hash_is_an_error() -> None:
    with pytest.raises(RemoteError):
        parse_manifest_output(b"f\0./fn/a\0f\0./fn/b\0h\0" + f"{H['a']}  ./fn/a\n".encode())


def test_script_against_real_tree(tmp_path: Path) -> None:
    """The script itself, run by the local sh, on awkward names."""
    fdir = tmp_path / "project" / "volumes" / "functions"
    names = [
        "hello/index.ts",
        'hello/it\'s "q" ü.ts',
        "hello/new\nline.ts",
        "hello/b\\s.ts",
        "sp ace/x.ts",
        "node_modules/x/y.js",
    ]
    for i, n in enumerate(names):
        p = fdir / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content {i}")
    (fdir / "empty").mkdir()
    out = subprocess.run(
        ["sh", "-c", MANIFEST_SCRIPT, "sh", str(tmp_path / "project"), str(fdir)],
        capture_output=True,
        check=True,
    ).stdout
    m = parse_manifest_output(out)
    expected = {
        n: hashlib.sha256(f"content {i}".encode()).hexdigest()
        for i, n in enumerate(names)
        if not n.startswith("node_modules")
    }
    assert {p: e.sha256 for p, e in m.files.items()} == expected
    assert m.folders == {"hello", "sp ace", "empty"}


def test_script_exit_codes(tmp_path: Path) -> None:
    def code(project: Path, fdir: Path) -> int:
        return subprocess.run(
            ["sh", "-c", MANIFEST_SCRIPT, "sh", str(project), str(fdir)], capture_output=True
        ).returncode

    assert code(tmp_path / "nope", tmp_path / "nope" / "f") == 10
    assert code(tmp_path, tmp_path / "f") == 11
