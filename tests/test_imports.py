"""Import parsing, the import graph, and the files a function depends on."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesync.errors import LocalTreeError
from edgesync.local.imports import (
    dependencies,
    import_graph,
    module_specifiers,
    unresolved_imports,
)
from edgesync.local.tree import LocalTree, scan_local


def tree_of(root: Path, files: dict[str, str]) -> LocalTree:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    root.mkdir(parents=True, exist_ok=True)
    return scan_local(root)


def specs(source: str) -> list[str]:
    return [spec for _, spec in module_specifiers(source)]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import x from './a.ts'", "./a.ts"),
        ('import x from "./a.ts";', "./a.ts"),
        ("import {a, b} from './a.ts'", "./a.ts"),
        ("import {\n  a,\n  b as c,\n} from './a.ts'", "./a.ts"),
        ("import * as ns from './a.ts'", "./a.ts"),
        ("import type { T } from './a.ts'", "./a.ts"),
        ("import type T from './a.ts'", "./a.ts"),
        ("import x, { y } from './a.ts'", "./a.ts"),
        ("import x, * as y from './a.ts'", "./a.ts"),
        ("import{a}from'./a.ts'", "./a.ts"),
        ("export { a } from './a.ts'", "./a.ts"),
        ("export { default as a, b } from './a.ts'", "./a.ts"),
        ("export type { T } from './a.ts'", "./a.ts"),
        ("export * from './a.ts'", "./a.ts"),
        ("export * as ns from './a.ts'", "./a.ts"),
        ("import './a.ts'", "./a.ts"),
        ("import'./a.ts'", "./a.ts"),
        ("const m = await import('./a.ts')", "./a.ts"),
        ('const m = await import( "./a.ts" )', "./a.ts"),
        ("const m = await import(`./a.ts`)", "./a.ts"),
        ("const m = import('./a.ts', { with: { type: 'json' } })", "./a.ts"),
        ('import data from "./a.json" with { type: "json" }', "./a.json"),
        ("import data from './a.json' assert { type: 'json' }", "./a.json"),
        ("import x from '../_shared/wpp.ts'", "../_shared/wpp.ts"),
        ("import x from './it\\'s.ts'", "./it's.ts"),
        ("import x from './\\u00e9.ts'", "./é.ts"),
        ("import { serve } from 'https://deno.land/std/http/server.ts'", None),
    ],
)
def test_import_forms(source: str, expected: str | None) -> None:
    if expected is None:
        assert specs(source) == ["https://deno.land/std/http/server.ts"]
    else:
        assert specs(source) == [expected]


def test_line_numbers() -> None:
    source = (
        "// header\n"
        "import a from './a.ts'\n"
        "\n"
        "import {\n"
        "  b,\n"
        "} from './b.ts'\n"
        "const s = `multi\nline`\n"
        "export * from './c.ts'\n"
    )
    assert module_specifiers(source) == ((2, "./a.ts"), (6, "./b.ts"), (9, "./c.ts"))


@pytest.mark.parametrize(
    "source",
    [
        "// import x from './a.ts'",
        "/* import x from './a.ts' */",
        "/**\n * import x from './a.ts'\n * import('./b.ts')\n */",
        "const s = \"import x from './a.ts'\"",
        "const s = 'import(\"./a.ts\")'",
        "const s = `import x from './a.ts'`",
        "const s = `export * from './a.ts'`",
        "const r = /import '.\\/a.ts'/g",
        "const r = /[/]import '.\\/a.ts'/",
        "function f() { return /'/ }\nconst x = 1 // import './a.ts'",
        "x.import('./a.ts')",
        "const important = 1; imports('./a.ts')",
        "const m = import(`./${name}.ts`)",
        "const m = import(name)",
        "const m = import.meta.url",
        "export const x = 1; export default { from: './a.ts' }",
        "export { a, b }\nconst from = './a.ts'",
        "import x = require('./a.ts')",
    ],
)
def test_not_imports(source: str) -> None:
    assert specs(source) == []


def test_comment_markers_inside_strings_do_not_hide_code() -> None:
    source = (
        "const url = 'https://example.com/*'\n"
        "import a from './a.ts'\n"
        'const s = "// not a comment"; import b from "./b.ts"\n'
        "const q = 10 / 2 / 5; import c from './c.ts'\n"
        "const d = x / y; const e = '/'; import f from './f.ts' // */ '\n"
    )
    assert specs(source) == ["./a.ts", "./b.ts", "./c.ts", "./f.ts"]


def test_templates_with_nested_code() -> None:
    source = (
        "const u = `${ {a: 1}['a'] } and ${ `inner ${ await import('./inner.ts') }` }`\n"
        "import after from './after.ts'\n"
    )
    assert module_specifiers(source) == ((1, "./inner.ts"), (2, "./after.ts"))


def test_unterminated_constructs_do_not_crash() -> None:
    for source in ["import x from './a.ts", "const s = `abc ${", "/* open", "const r = /abc"]:
        module_specifiers(source)


# --------------------------------------------------------------------------- graph


def test_graph_resolution(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "hello/index.ts": (
                "import a from './a.ts'\n"
                "import b from './b'\n"  # extension added
                "import c from './c.js'\n"  # TypeScript-style .js meaning c.ts
                "import d from './lib'\n"  # folder index
                "import e from './lib/'\n"
                "import j from './data.json' with { type: 'json' }\n"
                "import s from '../_shared/wpp.ts'\n"
                "import z from 'npm:zod'\n"
                "import y from 'jsr:@std/assert'\n"
                "import w from 'https://esm.sh/x'\n"
                "import v from 'bare'\n"
                "import './my%20file.ts'\n"
                "import './q.ts?v=2'\n"
            ),
            "hello/a.ts": "",
            "hello/b.tsx": "",
            "hello/c.ts": "",
            "hello/lib/index.ts": "",
            "hello/data.json": "{}",
            "hello/my file.ts": "",
            "hello/q.ts": "",
            "hello/README.md": "import x from './nope.ts'",  # not code: not parsed
            "_shared/wpp.ts": "",
        },
    )
    graph = import_graph(tree)
    assert graph["hello/index.ts"] == frozenset(
        {
            "hello/a.ts",
            "hello/b.tsx",
            "hello/c.ts",
            "hello/lib/index.ts",
            "hello/data.json",
            "hello/my file.ts",
            "hello/q.ts",
            "_shared/wpp.ts",
        }
    )
    assert graph["hello/a.ts"] == frozenset()
    assert "hello/README.md" not in graph
    assert "hello/data.json" not in graph
    assert unresolved_imports(tree) == ()
    assert import_graph(tree) is graph  # computed once per tree


def test_exact_path_wins_over_added_extension(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {"hello/index.ts": "import './x'", "hello/x": "", "hello/x.ts": ""})
    assert import_graph(tree)["hello/index.ts"] == frozenset({"hello/x"})


def test_unresolved_imports_are_reported(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "hello/index.ts": "import a from './a.ts'\n\nimport m from '../_shared/missing.ts'\n",
            "hello/a.ts": "export * from './gone.ts'",
            "hello/skipped.test.ts": "",
        },
    )
    assert import_graph(tree)["hello/index.ts"] == frozenset({"hello/a.ts"})
    assert unresolved_imports(tree) == (
        ("hello/a.ts", 1, "./gone.ts"),
        ("hello/index.ts", 3, "../_shared/missing.ts"),
    )


def test_import_of_an_excluded_file_is_unresolved(tmp_path: Path) -> None:
    for rel, text in {"hello/index.ts": "import './x.test.ts'", "hello/x.test.ts": ""}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    tree = scan_local(tmp_path, ["**/*.test.ts"])
    assert unresolved_imports(tree) == (("hello/index.ts", 1, "./x.test.ts"),)


def test_import_outside_the_root_names_file_line_and_specifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "supabase" / "functions"
    tree = tree_of(
        root,
        {"hello/index.ts": "import a from './a.ts'\n\nimport x from '../../lib/x.ts'\n"},
    )
    with pytest.raises(LocalTreeError) as err:
        import_graph(tree)
    assert err.value.message == (
        "supabase/functions/hello/index.ts:3: import '../../lib/x.ts' "
        "resolves outside the functions folder"
    )
    with pytest.raises(LocalTreeError):
        dependencies(tree, "hello")


def test_import_outside_from_a_root_file(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {"util.ts": "import '../x.ts'"})
    with pytest.raises(LocalTreeError, match=r"util\.ts:1: import '\.\./x\.ts'"):
        import_graph(tree)


def test_imports_that_climb_and_come_back_are_fine(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "hello/index.ts": "",
            "hello/sub/index.ts": "import '../../_shared/../_shared/a.ts'",
            "_shared/a.ts": "",
        },
    )
    assert import_graph(tree)["hello/sub/index.ts"] == frozenset({"_shared/a.ts"})


# --------------------------------------------------------------------------- dependencies


def test_transitive_dependencies(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "wpp-create/index.ts": "import { send } from '../_shared/wpp.ts'\nimport './util.ts'",
            "wpp-create/util.ts": "import { cors } from '../_shared/cors.ts'",
            "_shared/wpp.ts": "import type { T } from './types.ts'\nexport const send = 1",
            "_shared/types.ts": "export type T = string",
            "_shared/cors.ts": "export const cors = {}",
            "_shared/unused.ts": "",
            "wpp-list/index.ts": "import '../_shared/unused.ts'",
        },
    )
    assert dependencies(tree, "wpp-create") == frozenset(
        {"_shared/wpp.ts", "_shared/types.ts", "_shared/cors.ts"}
    )
    assert dependencies(tree, "wpp-list") == frozenset({"_shared/unused.ts"})
    assert dependencies(tree, "unknown") == frozenset()


def test_dependency_on_another_function_and_back(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "wpp-provision/index.ts": "import { u } from '../wpp-create/util.ts'",
            "wpp-create/index.ts": "",
            "wpp-create/util.ts": "import '../_shared/a.ts'",
            "_shared/a.ts": "import '../wpp-provision/helper.ts'",
            "wpp-provision/helper.ts": "import './deeper.ts'",
            "wpp-provision/deeper.ts": "import '../_shared/b.ts'",
            "_shared/b.ts": "",
        },
    )
    # Own files reached through shared code are followed but not reported.
    assert dependencies(tree, "wpp-provision") == frozenset(
        {"wpp-create/util.ts", "_shared/a.ts", "_shared/b.ts"}
    )


def test_cycles_terminate(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "hello/index.ts": "import '../_shared/a.ts'\nimport './index.ts'",
            "_shared/a.ts": "import './b.ts'",
            "_shared/b.ts": "import './a.ts'\nimport '../hello/index.ts'",
        },
    )
    assert dependencies(tree, "hello") == frozenset({"_shared/a.ts", "_shared/b.ts"})
    assert import_graph(tree)["hello/index.ts"] == frozenset({"_shared/a.ts"})  # no self-edge


def test_dependencies_of_main_and_of_shared_folders(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "main/index.ts": "import '../_shared/router.ts'",
            "_shared/router.ts": "import '../_lib/x.ts'",
            "_lib/x.ts": "",
        },
    )
    assert dependencies(tree, "main") == frozenset({"_shared/router.ts", "_lib/x.ts"})
    assert dependencies(tree, "_shared") == frozenset({"_lib/x.ts"})


def test_dependencies_include_non_code_files(tmp_path: Path) -> None:
    tree = tree_of(
        tmp_path,
        {
            "hello/index.ts": "import cfg from '../_shared/config.json' with { type: 'json' }",
            "_shared/config.json": "{}",
        },
    )
    assert dependencies(tree, "hello") == frozenset({"_shared/config.json"})
