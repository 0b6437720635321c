"""scan_local: discovery, ignore rules, exclude globs, hashing, odd names, symlinks."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from edgesync.errors import LocalTreeError
from edgesync.local.tree import ExcludeRules, LocalTree, scan_local


def make(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (relative path -> content) below `root`; return `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    root.mkdir(parents=True, exist_ok=True)
    return root


def paths(tree: LocalTree) -> list[str]:
    return list(tree.manifest.files)


@pytest.fixture
def fns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty functions folder; the cwd is the repository holding it."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "supabase" / "functions"
    root.mkdir(parents=True)
    return root


# --------------------------------------------------------------------------- root


def test_missing_root_names_path_and_hints(tmp_path: Path) -> None:
    missing = tmp_path / "supabase" / "functions"
    with pytest.raises(LocalTreeError) as err:
        scan_local(missing)
    assert str(missing) in err.value.message
    assert err.value.hint is not None and "functions_dir" in err.value.hint
    assert err.value.exit_code == 3


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "functions").write_text("")
    with pytest.raises(LocalTreeError, match="is not a folder"):
        scan_local(tmp_path / "functions")


def test_root_is_resolved(tmp_path: Path) -> None:
    real = make(tmp_path / "real", {"hello/index.ts": ""})
    (tmp_path / "link").symlink_to(real)
    tree = scan_local(tmp_path / "link")
    assert tree.root == real.resolve()
    assert tree.functions == ("hello",)


def test_empty_folder(fns: Path) -> None:
    tree = scan_local(fns)
    assert (tree.functions, tree.shared, tree.root_files, tree.warnings) == ((), (), (), ())
    assert tree.manifest.files == {}


# --------------------------------------------------------------------------- discovery


def test_discovery(fns: Path) -> None:
    make(
        fns,
        {
            "wpp-create/index.ts": "export {}",
            "wpp-create/lib/deep/util.ts": "export const x = 1",
            "wpp_provision/index.js": "",
            "mjs-fn/index.mjs": "",
            "tsx-fn/index.tsx": "",
            "jsx-fn/index.jsx": "",
            "main/index.ts": "router",
            "_shared/wpp.ts": "",
            "_shared/types/t.ts": "",
            "_utils/x.ts": "",
            "deno.json": "{}",
            "import_map.json": "{}",
            "README.md": "# fns",
        },
    )
    tree = scan_local(fns)
    assert tree.functions == ("jsx-fn", "main", "mjs-fn", "tsx-fn", "wpp-create", "wpp_provision")
    assert tree.shared == ("_shared", "_utils")
    assert tree.root_files == ("README.md", "deno.json", "import_map.json")
    assert tree.warnings == ()
    assert "wpp-create/lib/deep/util.ts" in tree.manifest.files
    assert "_shared/types/t.ts" in tree.manifest.files
    assert set(tree.manifest.folders) == set(tree.functions) | set(tree.shared)
    assert paths(tree) == sorted(paths(tree))


def test_folders_without_an_entry_or_a_function_name_hold_shared_code(fns: Path) -> None:
    # any folder can hold code a function imports (`../utils/table.ts`): none is skipped
    make(
        fns,
        {
            "bad name/index.ts": "",
            "1st/index.ts": "",
            "wpp-x/util.ts": "",
            "nested-only/sub/index.ts": "",
            "_shared/index.ts": "",
            "hello/index.ts": "",
        },
    )
    (fns / "empty-fn").mkdir()
    tree = scan_local(fns)
    assert tree.functions == ("hello",)
    assert tree.shared == ("1st", "_shared", "bad name", "empty-fn", "nested-only", "wpp-x")
    assert paths(tree) == [
        "1st/index.ts",
        "_shared/index.ts",
        "bad name/index.ts",
        "hello/index.ts",
        "nested-only/sub/index.ts",
        "wpp-x/util.ts",
    ]
    assert tree.warnings == ()
    assert "wpp-x" in tree.manifest.folders and "empty-fn" in tree.manifest.folders


def test_entry_file_must_be_a_file(fns: Path) -> None:
    make(fns, {"odd/index.ts/inner.ts": ""})
    tree = scan_local(fns)
    assert tree.functions == ()
    assert tree.shared == ("odd",)
    assert paths(tree) == ["odd/index.ts/inner.ts"]


def test_empty_shared_folder_is_listed(fns: Path) -> None:
    (fns / "_empty").mkdir()
    tree = scan_local(fns)
    assert tree.shared == ("_empty",)
    assert "_empty" in tree.manifest.folders


def test_special_files_are_skipped_with_a_warning(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    os.mkfifo(fns / "hello" / "pipe")
    tree = scan_local(fns)
    assert paths(tree) == ["hello/index.ts"]
    assert tree.warnings == ("hello/pipe: not a regular file — skipped",)


# --------------------------------------------------------------------------- ignores


def test_builtin_ignores(fns: Path) -> None:
    make(
        fns,
        {
            ".env": "SECRET=1",
            ".env.local": "SECRET=1",
            ".vscode/settings.json": "{}",
            ".hidden": "",
            ".DS_Store": "",
            "hello/index.ts": "",
            "hello/.env": "SECRET=1",
            "hello/.env.production": "SECRET=1",
            "hello/.DS_Store": "",
            "hello/.git/config": "",
            "hello/node_modules/pkg/index.js": "",
            "hello/.well-known/x.txt": "kept: only top-level dot names are ignored",
            "_shared/node_modules/a.js": "",
        },
    )
    tree = scan_local(fns)
    assert paths(tree) == ["hello/.well-known/x.txt", "hello/index.ts"]
    assert tree.root_files == ()
    assert tree.warnings == ()


def test_ignored_folders_are_not_entered(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    nm = fns / "hello" / "node_modules"
    nm.mkdir()
    (nm / "escape").symlink_to("/etc")  # would be an error if visited
    (fns / ".git").mkdir()
    (fns / ".git" / "broken").symlink_to(fns / "nowhere")
    assert paths(scan_local(fns)) == ["hello/index.ts"]


def test_exclude_globs(fns: Path) -> None:
    make(
        fns,
        {
            "hello/index.ts": "",
            "hello/index.test.ts": "",
            "hello/lib/a.test.ts": "",
            "hello/lib/deep/b.test.ts": "",
            "top.test.ts": "",
            "hello/fixtures/data.json": "",
            "_shared/fixtures/x/y.json": "",
            "hello/fixtures.ts": "kept: 'fixtures/' matches folders only",
            "hello/tmp/scratch.ts": "",
            "hello/tmp/keep/inner.ts": "kept: '*' does not cross '/'",
            "deno.lock": "",
            "_shared/deno.lock": "kept: '/deno.lock' is anchored",
            "wpp-old/index.ts": "",
            "hello/a/b.snap": "",
            "hello/a/x/y/b.snap": "",
        },
    )
    exclude = [
        "**/*.test.ts",
        "fixtures/",
        "hello/tmp/*.ts",
        "/deno.lock",
        "wpp-old/",
        "hello/a/**/*.snap",
    ]
    tree = scan_local(fns, exclude)
    assert paths(tree) == [
        "_shared/deno.lock",
        "hello/fixtures.ts",
        "hello/index.ts",
        "hello/tmp/keep/inner.ts",
    ]
    assert tree.functions == ("hello",)
    assert tree.warnings == ()


def test_bare_name_pattern_matches_at_any_depth(fns: Path) -> None:
    make(fns, {"hello/index.ts": "", "hello/x/notes.md": "", "notes.md": "", "hello/y.md": ""})
    assert paths(scan_local(fns, ["*.md"])) == ["hello/index.ts"]
    assert paths(scan_local(fns, "notes.md")) == ["hello/index.ts", "hello/y.md"]


def test_excluded_folders_are_not_entered(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "fixtures").mkdir()
    (fns / "hello" / "fixtures" / "out").symlink_to("/etc/passwd")
    assert paths(scan_local(fns, ["fixtures/"])) == ["hello/index.ts"]
    with pytest.raises(LocalTreeError):
        scan_local(fns)


def test_excluding_the_entry_file_unmakes_the_function(fns: Path) -> None:
    make(fns, {"hello/index.ts": "", "hello/util.ts": ""})
    tree = scan_local(fns, ["hello/index.ts"])
    assert tree.functions == ()
    assert tree.shared == ("hello",)
    assert paths(tree) == ["hello/util.ts"]


def test_negated_exclude_is_refused() -> None:
    with pytest.raises(LocalTreeError, match="negation"):
        ExcludeRules(["!keep.ts"])


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("**/*.test.ts", "a.test.ts", False, True),
        ("**/*.test.ts", "a/b.test.ts", False, True),
        ("**/*.test.ts", "a/b/c.test.ts", False, True),
        ("**/*.test.ts", "a/b.ts", False, False),
        ("*.test.ts", "a/b/c.test.ts", False, True),
        ("hello/*.ts", "hello/a.ts", False, True),
        ("hello/*.ts", "hello/x/a.ts", False, False),
        ("hello/*.ts", "x/hello/a.ts", False, False),
        ("hello/**", "hello/x/a.ts", False, True),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**/b", "a/x/y/c", False, False),
        ("fixtures/", "hello/fixtures", True, True),
        ("fixtures/", "hello/fixtures", False, False),
        ("fixtures", "hello/fixtures", False, True),
        ("/deno.lock", "deno.lock", False, True),
        ("/deno.lock", "x/deno.lock", False, False),
        ("?.ts", "a.ts", False, True),
        ("?.ts", "ab.ts", False, False),
        ("[ab].ts", "b.ts", False, True),
        ("[!ab].ts", "b.ts", False, False),
        ("[!ab].ts", "c.ts", False, True),
        ("x[.ts", "x[.ts", False, True),
        ("a*b", "a/b", False, False),
        ("*.ts", "a b/c d.ts", False, True),
        ("my file.ts", "x/my file.ts", False, True),
        ("a+b(c).ts", "a+b(c).ts", False, True),
    ],
)
def test_exclude_rule_table(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ExcludeRules([pattern]).matches(path, is_dir=is_dir) is expected


def test_excludes_checks_parent_folders() -> None:
    rules = ExcludeRules(["fixtures/", "hello/tmp"])
    assert rules.excludes("hello/fixtures/a/b.json")
    assert rules.excludes("hello/tmp/x.ts")
    assert not rules.excludes("hello/fixtures.ts")
    assert not ExcludeRules([])


# --------------------------------------------------------------------------- hashing


def test_hashes_and_sizes(fns: Path) -> None:
    big = os.urandom(2 * 1024 * 1024 + 123)  # larger than one read chunk
    make(fns, {"hello/index.ts": "console.log('hi')\n", "hello/big.bin": big, "hello/empty": b""})
    files = scan_local(fns).manifest.files
    for rel in ("hello/index.ts", "hello/big.bin", "hello/empty"):
        data = (fns / rel).read_bytes()
        assert files[rel].sha256 == hashlib.sha256(data).hexdigest()
        assert files[rel].size == len(data)
        assert files[rel].path == rel


def test_odd_file_names(fns: Path) -> None:
    names = ["with space.ts", 'it\'s "quoted".ts', "new\nline.ts", "ünïcødé ☃.ts", "back\\slash.ts"]
    make(fns, {"hello/index.ts": "", **{f"hello/{n}": n for n in names}})
    make(fns, {"_shared côté/a b.ts": "x", "$weird.json": "{}"})
    tree = scan_local(fns)
    for n in names:
        entry = tree.manifest.files[f"hello/{n}"]
        assert entry.sha256 == hashlib.sha256(n.encode()).hexdigest()
    assert "_shared côté/a b.ts" in tree.manifest.files
    assert tree.shared == ("_shared côté",)
    assert tree.root_files == ("$weird.json",)


def test_non_utf8_name_is_refused(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    try:
        with open(os.fsencode(fns / "hello") + b"/bad\xff.ts", "wb"):
            pass
    except OSError:
        pytest.skip("filesystem refuses non-UTF-8 names")
    with pytest.raises(LocalTreeError, match="not valid UTF-8"):
        scan_local(fns)


def test_scan_is_fast(fns: Path) -> None:
    for i in range(200):
        folder = fns / f"fn-{i}"
        folder.mkdir()
        for j in range(5):
            (folder / ("index.ts" if j == 0 else f"f{j}.ts")).write_text(f"// {i} {j}\n" * 50)
    start = time.perf_counter()
    tree = scan_local(fns, ["**/*.test.ts", "fixtures/"])
    elapsed = time.perf_counter() - start
    assert len(tree.functions) == 200 and len(tree.manifest.files) == 1000
    assert elapsed < 1.0


# --------------------------------------------------------------------------- symlinks


def test_symlinks_inside_are_followed(fns: Path) -> None:
    make(fns, {"hello/index.ts": "entry", "_shared/cors.ts": "cors", "_shared/sub/t.ts": "t"})
    (fns / "hello" / "cors.ts").symlink_to("../_shared/cors.ts")
    (fns / "hello" / "shared").symlink_to(fns / "_shared")  # absolute, still inside
    (fns / "alias").symlink_to("hello")  # a top-level folder link
    (fns / "deno.json").symlink_to("_shared/cors.ts")
    tree = scan_local(fns)
    files = tree.manifest.files
    assert files["hello/cors.ts"].sha256 == hashlib.sha256(b"cors").hexdigest()
    assert files["hello/shared/sub/t.ts"].sha256 == hashlib.sha256(b"t").hexdigest()
    assert "alias/index.ts" in files and "alias/shared/cors.ts" in files
    assert tree.functions == ("alias", "hello")
    assert files["deno.json"].size == 4


def test_symlink_to_a_file_outside(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "secret.ts").symlink_to("/etc/passwd")
    with pytest.raises(LocalTreeError) as err:
        scan_local(fns)
    assert err.value.message == (
        "supabase/functions/hello/secret.ts -> /etc/passwd: symlink leaves the functions folder"
    )
    assert "\n" not in err.value.message and err.value.hint


def test_symlink_to_a_folder_outside(fns: Path, tmp_path: Path) -> None:
    make(tmp_path / "elsewhere", {"x.ts": ""})
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "lib").symlink_to("../../../elsewhere")
    with pytest.raises(
        LocalTreeError, match=r"hello/lib -> \.\./\.\./\.\./elsewhere: symlink leaves"
    ):
        scan_local(fns)


def test_top_level_symlinks_outside(fns: Path, tmp_path: Path) -> None:
    make(tmp_path / "other", {"index.ts": ""})
    (fns / "stolen").symlink_to(tmp_path / "other")
    with pytest.raises(LocalTreeError, match="stolen -> .*: symlink leaves"):
        scan_local(fns)
    (fns / "stolen").unlink()
    (fns / "deno.json").symlink_to(tmp_path / "other" / "index.ts")
    with pytest.raises(LocalTreeError, match="deno.json -> .*: symlink leaves"):
        scan_local(fns)


def test_symlink_via_inside_link_to_outside(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "_shared").mkdir()
    (fns / "_shared" / "out").symlink_to("/etc/hostname")
    (fns / "hello" / "chain.ts").symlink_to("../_shared/out")
    with pytest.raises(LocalTreeError, match="symlink leaves"):
        scan_local(fns)


def test_broken_symlink(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "gone.ts").symlink_to("missing.ts")
    with pytest.raises(LocalTreeError, match=r"hello/gone\.ts -> missing\.ts: broken symlink"):
        scan_local(fns)


def test_symlink_loop_between_links(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "a").symlink_to("b")
    (fns / "hello" / "b").symlink_to("a")
    with pytest.raises(LocalTreeError, match="symlink loop"):
        scan_local(fns)


def test_symlink_loop_to_an_ancestor_folder(fns: Path) -> None:
    make(fns, {"hello/index.ts": "", "hello/sub/x.ts": ""})
    (fns / "hello" / "sub" / "up").symlink_to("..")
    with pytest.raises(LocalTreeError, match=r"hello/sub/up -> \.\.: symlink loop"):
        scan_local(fns)


def test_symlink_to_the_root_is_a_loop(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "all").symlink_to("..")
    with pytest.raises(LocalTreeError, match="symlink loop"):
        scan_local(fns)


def test_mutual_folder_links_inside_terminate(fns: Path) -> None:
    make(fns, {"hello/index.ts": "", "_a/x.ts": "", "_b/y.ts": ""})
    (fns / "_a" / "to_b").symlink_to("../_b")
    (fns / "_b" / "to_a").symlink_to("../_a")
    with pytest.raises(LocalTreeError, match="symlink loop"):
        scan_local(fns)


def test_symlink_to_an_ignored_file_is_refused(fns: Path) -> None:
    make(fns, {"hello/index.ts": "", ".env": "SECRET=1"})
    (fns / "hello" / "config.ts").symlink_to("../.env")
    with pytest.raises(LocalTreeError, match=r"points to an ignored path \(\.env\)"):
        scan_local(fns)


def test_excluded_symlinks_are_not_checked(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / "hello" / "x.test.ts").symlink_to("/etc/passwd")
    assert paths(scan_local(fns, ["*.test.ts"])) == ["hello/index.ts"]


def test_links_in_ignored_or_excluded_folders_are_not_checked(fns: Path) -> None:
    make(fns, {"hello/index.ts": ""})
    (fns / ".hidden").mkdir()
    (fns / ".hidden" / "x").symlink_to("/etc/passwd")
    (fns / "scratch").mkdir()
    (fns / "scratch" / "x").symlink_to("/etc/passwd")
    assert paths(scan_local(fns, ["scratch/"])) == ["hello/index.ts"]
    with pytest.raises(LocalTreeError, match="leaves the functions folder"):
        scan_local(fns)  # scratch/ holds shared code unless excluded: its links are checked


def test_error_path_is_absolute_outside_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make(tmp_path / "fns", {"hello/index.ts": ""})
    (root / "hello" / "s.ts").symlink_to("/etc/passwd")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(LocalTreeError) as err:
        scan_local(root)
    assert err.value.message.startswith(f"{root.resolve()}/hello/s.ts -> /etc/passwd")
