"""Table tests of edgesync.local.graph's pure rules: import maps, specifiers, map choice, problems."""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from edgesync.local import graph
from edgesync.local.graph import (
    ImportMap,
    ImportMapError,
    Problem,
    Resolver,
    parse_import_map,
    scan_imports,
    strip_jsonc,
)

MAP = "/p/functions/import_map.json"


def tree(root: Path, files: dict[str, str]) -> Resolver:
    """Write `files` under root/supabase/functions; a Resolver over them (config.toml too)."""
    functions = root / "supabase" / "functions"
    for rel, text in files.items():
        path = root / "supabase" / rel if rel == "config.toml" else functions / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    kept = [rel for rel in files if rel != "config.toml" and ".env" not in rel]
    toml = root / "supabase" / "config.toml"
    return Resolver(functions, kept, toml if toml.exists() else None)


# --------------------------------------------------------------------------- import maps


def resolve(value: Mapping[str, object], specifier: str, referrer: str) -> str:
    return parse_import_map(value, MAP).resolve(specifier, referrer)[0]


@pytest.mark.parametrize(
    ("imports", "specifier", "expected"),
    [
        ({"@s/": "./_shared/"}, "@s/a.ts", "file:///p/functions/_shared/a.ts"),
        (
            {"@s/": "./_shared/", "@s/deep/": "./deep/"},
            "@s/deep/a.ts",
            "file:///p/functions/deep/a.ts",
        ),
        (
            {"@s/": "./_shared/", "@s/deep/": "./deep/"},
            "@s/other.ts",
            "file:///p/functions/_shared/other.ts",
        ),
        ({"cors": "./_shared/cors.ts"}, "cors", "file:///p/functions/_shared/cors.ts"),
        ({"zod": "npm:zod@3"}, "zod", "npm:zod@3"),
        ({"std/": "https://deno.land/std/"}, "std/http.ts", "https://deno.land/std/http.ts"),
        ({"@s/": "../shared/"}, "@s/a.ts", "file:///p/shared/a.ts"),
        ({"@s/": "/abs/"}, "@s/a.ts", "file:///abs/a.ts"),
        # URL-like keys remap relative imports that resolve under them
        ({"./_shared/": "./_shared_v2/"}, "../_shared/a.ts", "file:///p/functions/_shared_v2/a.ts"),
        # query and hash ride along
        ({"@s/": "./_shared/"}, "@s/a.ts?v=1", "file:///p/functions/_shared/a.ts?v=1"),
        # relative specifiers pass through a map that does not name them
        ({"@s/": "./_shared/"}, "./b.ts", "file:///p/functions/fn/b.ts"),
    ],
)
def test_import_map_imports(imports: dict[str, str], specifier: str, expected: str) -> None:
    """Keys match exactly or as '/'-prefixes, the longest first; addresses are map-relative."""
    assert resolve({"imports": imports}, specifier, "/p/functions/fn/index.ts") == expected


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("/p/functions/legacy/index.ts", "file:///p/functions/_v1/x.ts"),
        ("/p/functions/legacy/deep/a.ts", "file:///p/functions/_v1/x.ts"),
        ("/p/functions/legacy/special.ts", "file:///p/functions/_special/x.ts"),
        ("/p/functions/modern/index.ts", "file:///p/functions/_shared/x.ts"),
    ],
)
def test_import_map_scopes(referrer: str, expected: str) -> None:
    """Scopes apply by the importing module's URL, the most specific scope first."""
    value = {
        "imports": {"s/": "./_shared/"},
        "scopes": {
            "./legacy/": {"s/": "./_v1/"},
            "./legacy/special.ts": {"s/": "./_special/"},
        },
    }
    assert resolve(value, "s/x.ts", referrer) == expected


def test_scope_falls_back_to_imports() -> None:
    """A scope that does not name a specifier leaves it to the top-level imports."""
    value = {"imports": {"log": "./log.ts"}, "scopes": {"./legacy/": {"s/": "./_v1/"}}}
    assert resolve(value, "log", "/p/functions/legacy/index.ts") == "file:///p/functions/log.ts"


@pytest.mark.parametrize(
    ("imports", "specifier"),
    [
        ({}, "lodash"),
        ({"@s/": "./_shared/"}, "@s"),  # a prefix key needs the '/'
        ({"@s": "./_shared/"}, "@s/a.ts"),  # and an exact key is no prefix
        ({"@s/": "./_shared/a.ts"}, "@s/b.ts"),  # a prefix to a non-folder is invalid
        ({"@s/": "./_shared/"}, "@s/../../etc/passwd"),  # climbing above the prefix
        ({"x": "bare-address"}, "x"),  # an address must be URL-like
    ],
)
def test_import_map_refusals(imports: dict[str, str], specifier: str) -> None:
    """What Deno refuses to load is an ImportMapError with reason 'unmapped'."""
    with pytest.raises(ImportMapError) as raised:
        resolve({"imports": imports}, specifier, "/p/functions/fn/index.ts")
    assert raised.value.reason == "unmapped"


def test_prefix_keys_do_not_apply_to_npm_urls() -> None:
    """`npm:` is not a special scheme: a 'npm:x/' prefix does not capture 'npm:x/y'."""
    value = {"imports": {"npm:x/": "./vendored/"}}
    assert resolve(value, "npm:x/y", "/p/functions/fn/index.ts") == "npm:x/y"


@pytest.mark.parametrize(
    ("specifier", "expected"),
    [
        ("./my%20module.ts", "file:///p/functions/fn/my module.ts"),
        ("./%C3%BCn%C3%AF.ts", "file:///p/functions/fn/ünï.ts"),
        ("./a/%2e%2e/b.ts", "file:///p/functions/fn/b.ts"),
        ("./a/./../b.ts#x", "file:///p/functions/fn/b.ts#x"),
        ("../../../../../x.ts", "file:///x.ts"),
        ("file:///p/functions/_shared/a.ts", "file:///p/functions/_shared/a.ts"),
        ("./a\\b.ts", "file:///p/functions/fn/a/b.ts"),
    ],
)
def test_url_forms(specifier: str, expected: str) -> None:
    """Percent-encoding, dot segments, backslashes and file: URLs as the URL parser does."""
    assert ImportMap().resolve(specifier, "/p/functions/fn/index.ts")[0] == expected


def test_deno_json_maps_expand_npm_and_jsr_prefixes() -> None:
    """In a deno.json, `"zod": "npm:zod@3"` also maps `zod/v4` (Deno's expansion)."""
    value = {"imports": {"zod": "npm:zod@3", "@std/http": "jsr:@std/http@1"}}
    expanded = parse_import_map(value, MAP, expand=True)
    assert expanded.resolve("zod/v4", "/p/functions/fn/index.ts")[0].startswith("npm:")
    with pytest.raises(ImportMapError):
        parse_import_map(value, MAP).resolve("zod/v4", "/p/functions/fn/index.ts")


def test_strip_jsonc() -> None:
    """Comments and trailing commas go; strings (with '//' or ',}') and line numbers stay."""
    text = '{\n  // c\n  "a": "http://x,}", /* b\n */ "b": [1, 2,],\n}\n'
    assert strip_jsonc(text).count("\n") == text.count("\n")
    assert json.loads(strip_jsonc(text)) == {"a": "http://x,}", "b": [1, 2]}


# --------------------------------------------------------------------------- specifiers


def test_scan_imports_lines_and_kinds() -> None:
    """Deno's extra dependency forms are found with their lines; expressions are not."""
    source = textwrap.dedent(
        """\
        /// <reference path="./globals.d.ts" />
        /// <reference types="./env.d.ts" />
        import a from "./a.ts";
        // @deno-types="./b.d.ts"
        import b from "./b.js";
        import c = require("./c.ts");
        const d = await import("./d.ts");
        const e = await import("./e/" + name);
        import f from "./f.json" with { type: "json" };
        import g from "./g.json";
        const h = await import("./h.json");
        const s = "import x from './not-code.ts'";
        /// <reference path="./too-late.d.ts" />
        """
    )
    found = {(i.line, i.specifier, i.json_ok) for i in scan_imports(source)}
    assert found == {
        (1, "./globals.d.ts", True),
        (2, "./env.d.ts", True),
        (3, "./a.ts", True),
        (4, "./b.d.ts", True),
        (5, "./b.js", True),
        (6, "./c.ts", True),
        (7, "./d.ts", True),
        (9, "./f.json", True),
        (10, "./g.json", False),
        (11, "./h.json", True),
    }


# --------------------------------------------------------------------------- map choice


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({"deno.json": '{"imports": {}}'}, "deno.json"),
        ({"import_map.json": "{}"}, "import_map.json"),
        ({"import_map.json": "{}", "deno.json": "{}"}, "import_map.json"),
        ({"fn/import_map.json": "{}", "import_map.json": "{}"}, "fn/import_map.json"),
        ({"fn/deno.jsonc": "{}", "fn/import_map.json": "{}"}, "fn/deno.jsonc"),
        ({"fn/deno.json": "{}", "fn/deno.jsonc": "{}"}, "fn/deno.json"),
        ({"fn/deno.json": '{"importMap": "../m.json"}', "m.json": "{}"}, "m.json"),
        (
            {
                "config.toml": '[functions.fn]\nimport_map = "./functions/m.json"\n',
                "m.json": "{}",
                "fn/deno.json": "{}",
            },
            "m.json",
        ),
    ],
)
def test_map_precedence(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    """config.toml > the function's deno.json/.jsonc > its import_map.json >
    functions/import_map.json > Deno's discovery (functions/deno.json)."""
    resolver = tree(tmp_path, {"fn/index.ts": "export {};\n", **files})
    graph = resolver.function("fn")
    assert graph.import_map == expected
    assert not graph.problems
    if expected is not None:
        assert expected in graph.config_files


def test_discovery_ancestor_wins_over_the_function_deno_json(tmp_path: Path) -> None:
    """Deno 2 turns an ancestor deno.json into a scope that beats the nearest one's key."""
    resolver = tree(
        tmp_path,
        {
            "deno.json": '{"imports": {"x/": "./_a/"}}',
            "fn/deno.json": '{"imports": {"x/": "../_b/", "y/": "../_b/"}}',
            "fn/index.ts": 'import "x/m.ts";\nimport "y/m.ts";\n',
            "_a/m.ts": "",
            "_b/m.ts": "",
        },
    )
    graph = resolver.function("fn")
    assert graph.modules == {"fn/index.ts", "_a/m.ts", "_b/m.ts"}
    assert graph.config_files == {"deno.json", "fn/deno.json"}


def test_deno_lock_beside_the_applied_config(tmp_path: Path) -> None:
    resolver = tree(
        tmp_path,
        {"deno.json": "{}", "deno.lock": "{}", "fn/index.ts": "", "other/deno.lock": "{}"},
    )
    assert resolver.function("fn").config_files == {"deno.json", "deno.lock"}


def test_explicit_map_notes_what_the_self_hosted_runtime_does(tmp_path: Path) -> None:
    resolver = tree(tmp_path, {"import_map.json": "{}", "deno.json": "{}", "fn/index.ts": ""})
    graph = resolver.function("fn")
    assert graph.config_files == {"import_map.json", "deno.json"}
    assert any("self-hosted router passes no import map" in n for n in graph.notes)


# --------------------------------------------------------------------------- problems


def test_problems_name_file_line_and_specifier(tmp_path: Path) -> None:
    resolver = tree(
        tmp_path,
        {
            "fn/index.ts": """\
                import { a } from "./a";
                import "../_shared/ok.ts";
                import "../../../outside.ts";
                import "../main/routes.ts";
                import "/etc/hosts.ts";
                import "lodash";
                import "./.env.ts";
                import "https://esm.sh/x";
                import "npm:y";
                """,
            "fn/a.ts": "",
            "fn/.env.ts": "",
            "_shared/ok.ts": "",
            "main/index.ts": "",
            "main/routes.ts": "",
        },
    )
    graph = resolver.function("fn")
    assert graph.modules == {"fn/index.ts", "_shared/ok.ts"}
    got = {(p.file, p.line, p.specifier, p.reason) for p in graph.problems}
    assert got == {
        ("fn/index.ts", 1, "./a", "missing"),
        ("fn/index.ts", 3, "../../../outside.ts", "outside"),
        ("fn/index.ts", 4, "../main/routes.ts", "router"),
        ("fn/index.ts", 5, "/etc/hosts.ts", "absolute"),
        ("fn/index.ts", 6, "lodash", "unmapped"),
        ("fn/index.ts", 7, "./.env.ts", "missing"),
    }
    details = {p.specifier: p.detail for p in graph.problems}
    assert "did you mean fn/a.ts?" in details["./a"]
    assert "../outside.ts" in details["../../../outside.ts"]
    assert "ignores" in details["./.env.ts"]
    # main itself may import its own files
    assert resolver.function("main").problems == ()


def test_problems_stay_with_their_function(tmp_path: Path) -> None:
    resolver = tree(
        tmp_path,
        {
            "bad/index.ts": 'import "./gone.ts";\n',
            "good/index.ts": 'import "../_s/x.ts";\n',
            "_s/x.ts": "",
        },
    )
    assert [p.reason for p in resolver.function("bad").problems] == ["missing"]
    assert resolver.function("good").problems == ()


def test_bad_config_is_reported_once_per_file(tmp_path: Path) -> None:
    resolver = tree(tmp_path, {"deno.json": '{"imports": ', "fn/index.ts": 'import "x/y.ts";\n'})
    assert resolver.function("fn").problems == (
        Problem("deno.json", 0, "", "bad-config", resolver.function("fn").problems[0].detail),
    )


def test_no_entry(tmp_path: Path) -> None:
    graph = tree(tmp_path, {"fn/main.ts": ""}).function("fn")
    assert graph.entry is None and [p.reason for p in graph.problems] == ["no-entry"]


def test_entry_order_is_the_runtime_probe_order(tmp_path: Path) -> None:
    graph = tree(tmp_path, {"fn/index.js": "", "fn/index.tsx": ""}).function("fn")
    assert graph.entry == "fn/index.tsx"


# --------------------------------------------------------------------------- config.toml


def test_config_toml_settings(tmp_path: Path) -> None:
    resolver = tree(
        tmp_path,
        {
            "config.toml": """\
                [functions.fn]
                enabled = false
                entrypoint = "./functions/fn/main.ts"
                static_files = ["./functions/fn/assets/*.html", "../secrets/*"]
                """,
            "fn/main.ts": "",
            "fn/assets/a.html": "",
            "fn/assets/b.txt": "",
            "fn/assets/sub/c.html": "",
        },
    )
    graph = resolver.function("fn")
    assert graph.entry == "fn/main.ts"
    assert graph.static_files == {"fn/assets/a.html"}
    assert graph.files == {"fn/main.ts", "fn/assets/a.html"}
    assert [(p.file, p.line, p.reason) for p in graph.problems] == [
        ("../config.toml", 4, "outside")
    ]
    assert any("enabled = false" in n for n in graph.notes)
    assert any("only runs index.*" in n for n in graph.notes)


def test_unreadable_config_toml(tmp_path: Path) -> None:
    graph = tree(tmp_path, {"config.toml": "[functions\n", "fn/index.ts": ""}).function("fn")
    assert [(p.file, p.reason) for p in graph.problems] == [("../config.toml", "bad-config")]


# --------------------------------------------------------------------------- laziness


def test_importers_and_laziness(tmp_path: Path) -> None:
    resolver = tree(
        tmp_path,
        {
            "deno.json": '{"imports": {"@s/": "./_shared/"}}',
            "a/index.ts": 'import "@s/x.ts";\n',
            "b/index.ts": 'import "../_shared/y.ts";\n',
            "c/index.ts": "",
            "c/index.test.ts": 'import "../_shared/test-helpers.ts";\n',
            "_shared/x.ts": 'import "./y.ts";\n',
            "_shared/y.ts": "",
            "_shared/test-helpers.ts": "",
        },
    )
    graph = resolver.function("a")
    assert resolver.function("a") is graph
    assert set(resolver._imports) == {"a/index.ts", "_shared/x.ts", "_shared/y.ts"}
    assert resolver.importers(
        ["_shared/y.ts", "_shared/test-helpers.ts", "deno.json"], ["a", "b", "c"]
    ) == {
        "_shared/y.ts": {"a", "b"},
        "_shared/test-helpers.ts": frozenset(),
        "deno.json": {"a", "b", "c"},
    }


def test_plain_paths_join_as_the_segment_by_segment_url_rules() -> None:
    """The shortcut for paths with nothing to decode gives what the URL rules give."""
    rng = random.Random(7)
    segments = ["a", "b", ".", "..", "", "x.ts", "...", ".hidden", "%2e", "c%20d", "\\", "e"]
    for _ in range(20000):
        base = "/" + "/".join(rng.choice(["r", "s", ".cfg", "", "t", ".", ".."]) for _ in range(4))
        raw = ("/" if rng.random() < 0.2 else "") + "/".join(
            rng.choice(segments) for _ in range(rng.randint(0, 5))
        )
        assert graph._join(base, raw) == graph._join_decoding(base, raw.replace("\\", "/")), (
            base,
            raw,
        )
