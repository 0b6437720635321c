"""The import scans kept between runs (`scancache.py`): a shortcut that never changes a result."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgesync.local import deps, scancache
from edgesync.local.tree import LocalTree, scan_local

FILES = {
    "fn-a/index.ts": "import { x } from '../_shared/x.ts';\nimport './own.ts';\n",
    "fn-a/own.ts": "export const own = 1;\n",
    "fn-b/index.ts": "import { y } from '../_shared/y.ts';\n",
    "_shared/x.ts": "import { y } from './y.ts';\nexport const x = y;\n",
    "_shared/y.ts": "export const y = 2;\n",
}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(scancache.CACHE_ENV, str(folder))
    return folder


def make_tree(root: Path, files: dict[str, str] = FILES) -> LocalTree:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return scan_local(root)


def analyse(tree: LocalTree) -> dict[str, frozenset[str]]:
    found = deps.all_dependencies(tree, tree.functions)
    assert not deps.blocked(tree, tree.functions)
    return found


EXPECTED = {"fn-a": {"_shared/x.ts", "_shared/y.ts"}, "fn-b": {"_shared/y.ts"}}


def test_a_second_run_reads_no_file_again(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "functions"
    first = make_tree(root)
    assert analyse(first) == EXPECTED
    assert deps.resolver(first).newly_scanned == 0  # saved
    assert len(list(cache.glob("imports-*.json"))) == 1
    # The next run, with the same contents: the scans come from the cache, not the files
    # (which this test empties behind the tree's back: reading one would find no import).
    second = dataclasses.replace(first)
    assert second.cache == {}
    for path in root.rglob("*.ts"):
        path.write_text("")
    assert analyse(second) == EXPECTED
    assert deps.resolver(second).newly_scanned == 0


def test_a_changed_file_is_scanned_again(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "functions"
    analyse(make_tree(root))
    changed = make_tree(root, {"fn-b/index.ts": "import { x } from '../_shared/x.ts';\n"})
    assert analyse(changed) == {**EXPECTED, "fn-b": {"_shared/x.ts", "_shared/y.ts"}}
    kept = json.loads(next(cache.glob("imports-*.json")).read_text())["imports"]
    assert set(kept) == {e.sha256 for e in changed.manifest.files.values()}  # only what is there


@pytest.mark.parametrize(
    "content", ["not json", '{"code": "x", "imports": {}}', '{"imports": 3}', "[]"]
)
def test_an_unreadable_or_foreign_cache_is_ignored(
    tmp_path: Path, cache: Path, content: str
) -> None:
    root = tmp_path / "functions"
    tree = make_tree(root)
    path = scancache.cache_file(root)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert analyse(tree) == EXPECTED
    assert json.loads(path.read_text())["code"] == scancache._code_digest()  # replaced


def test_scans_of_another_edgesync_are_not_reused(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "functions"
    analyse(make_tree(root))
    monkeypatch.setattr(scancache, "_code_digest", lambda: "another lexer")
    assert scancache.load(root) == {}


def test_no_writable_cache_folder_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(scancache.CACHE_ENV, str(blocker / "cache"))  # under a file
    assert analyse(make_tree(tmp_path / "functions")) == EXPECTED


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scancache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")
    assert scancache.cache_dir() == Path("/x/edgesync")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/h")
    assert scancache.cache_dir() == Path("/h/.cache/edgesync")
    monkeypatch.setenv(scancache.CACHE_ENV, "/c")
    assert scancache.cache_dir() == Path("/c")
