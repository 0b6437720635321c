"""Import parsing: every module specifier, with its line, and nothing else."""

from __future__ import annotations

import random

import pytest

from edgesync.local import imports
from edgesync.local.imports import module_specifiers


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


# --------------------------------------------------------------------------- the fast path

# Pieces of code that put imports, look-alikes in comments, strings, templates and regexes,
# and unbalanced quotes, braces and slashes next to each other.
PIECES = (
    "import x from './a.ts';",
    'import "./b.ts"',
    "import('./c.ts')",
    "import(`./d.ts`)",
    "export * from './e.ts'",
    'export {a, b} from "./f.ts"',
    "export { a };",
    "export type { T } from './t.ts'",
    "export const from = 1;",
    "// import x from './no.ts'\n",
    "/* import './no2.ts' */",
    "'import \"./no3.ts\"'",
    "`${import('./g.ts')}`",
    "`import './no4.ts'`",
    "x = a / b / c;",
    "r = /import '.\\/no5.ts'/g;",
    "/re/gimport './h.ts'",
    "import.meta.url",
    "export /* import './no6.ts' */ {a} from './i.ts'",
    "import x, {y as z} from /* c */ './j.ts'",
    "import /*c*/ './k.ts'",
    "import(\n  './l.ts'\n)",
    "export default from './m.ts'",
    "return /x/.test(y)",
    "a = b\n/x/g.exec(c)",
    "import type X = require('./n.ts')",
    "import x from\n'./o.ts'",
    "async function f() { await import('./p.ts') }",
    "import json from './q.json' with { type: 'json' }",
    *("\n", " ", "{", "}", "(", ")", "'", '"', "`", "/", "*", "${", "import", "export", "from"),
)


def full_lexer(source: str) -> tuple[tuple[int, str], ...]:
    """module_specifiers without its shortcut: the whole source masked."""
    masked, literals = imports._mask(source)
    found = []
    for m in imports._IMPORT.finditer(masked):
        quote_at = m.start(m.lastgroup or 0)
        if quote_at in literals:
            found.append((source.count("\n", 0, quote_at) + 1, literals[quote_at]))
    return tuple(found)


def test_lexing_stops_after_the_last_import_without_missing_one() -> None:
    """Masking stops after the last place an import can start: same result as masking all."""
    rng = random.Random(14)
    for _ in range(4000):
        source = "".join(
            rng.choice(PIECES) + rng.choice(("", " ", "\n", ";")) for _ in range(rng.randint(1, 25))
        )
        assert module_specifiers(source) == full_lexer(source), source
