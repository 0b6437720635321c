"""Module specifiers in JS/TS source.

`module_specifiers` is a small lexer: it blanks out comments, strings, templates
and regular expressions so that only real `import`/`export … from`/`import()`
statements are seen. `graph.py` resolves what it finds the way Deno does.
"""

from __future__ import annotations

import re

_STRING_BODY = {
    "'": re.compile(r"(?:[^'\\\n]|\\[\s\S])*"),
    '"': re.compile(r'(?:[^"\\\n]|\\[\s\S])*'),
}
_TEMPLATE_BODY = re.compile(r"(?:[^`\\$]|\\[\s\S]|\$(?!\{))*")
_REGEX_BODY = re.compile(r"(?:[^/\\\[\n]|\\.|\[(?:[^\]\\\n]|\\.)*\])+/[\w$]*")
_SPECIAL = re.compile(r"""['"`/]""")
_SPECIAL_IN_TEMPLATE = re.compile(r"""['"`/{}]""")
_TRAILING_WORD = re.compile(r"[\w$]+$")
# After these words a '/' starts a regular expression, not a division.
_KEYWORDS_BEFORE_EXPRESSION = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case"}
    | {"do", "else", "yield", "await"}
)
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
# Run on source whose comments, strings, templates and regexes are blanked out;
# the group marks the opening quote of the specifier.
_IMPORT = re.compile(
    r"""(?<![\w$.])(?:
        (?:import|export)(?![\w$])[\w$\s{},*]*?(?<![\w$])from\s*(?P<from>['"])
      | import\s*(?P<bare>['"])
      | import\s*\(\s*(?P<dynamic>['"`])
    )""",
    re.X,
)
# The same statements matched on the raw source, comments allowed wherever `_IMPORT` allows
# blanks: every place `_IMPORT` matches once the source is masked is one of these (they may
# also start inside strings and comments, and have no lookbehind: a regex literal's flags
# are blanked by the mask). Lexing can stop after the last of them (see `_mask`).
_COMMENT = r"(?:/\*[\s\S]*?\*/|//[^\n]*)"
_FROM = rf"(?![\w$])(?:[\w$\s{{}},*]|{_COMMENT})*?(?<![\w$])from(?:\s|{_COMMENT})*['\"]"
_CANDIDATE = {
    "export": re.compile("export" + _FROM),
    "import": re.compile(
        rf"import(?:{_FROM}|(?:\s|{_COMMENT})*['\"]|(?:\s|{_COMMENT})*\((?:\s|{_COMMENT})*['\"`])"
    ),
}


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] == "u" and len(esc) > 1:
            return chr(int(esc[2:-1] if esc[1] == "{" else esc[1:], 16))
        if esc[0] == "x" and len(esc) == 3:
            return chr(int(esc[1:], 16))
        if esc in ("\n", "\r\n", "\r", "\u2028", "\u2029"):  # line continuation
            return ""
        return _SIMPLE_ESCAPES.get(esc, esc)

    return _ESCAPE.sub(one, body) if "\\" in body else body


def _operand_before(last: str, last_code: str) -> bool:
    """True when a '/' after this code is a division (else it starts a regex)."""
    if last in ")]}'\"`":
        return True
    if not (last.isalnum() or last in "_$"):
        return False
    word = _TRAILING_WORD.search(last_code[-12:])
    return word is None or word.group() not in _KEYWORDS_BEFORE_EXPRESSION


def _mask(source: str, until: int | None = None) -> tuple[str, dict[int, str]]:  # noqa: C901
    """Blank out comments, strings, templates and regex literals, keeping offsets.

    Returns the masked text and the value of every string literal and every
    template without `${}` by the offset of its opening quote. With `until`, only
    the text up to the first string, template or `/` that starts at or after
    `until` (that one included) is masked and returned: an import statement
    starting before `until` has its specifier there at the latest, since only
    names, blanks, comments and `{},*` separate its keyword from it.
    """
    out: list[str] = []
    literals: dict[int, str] = {}
    # One brace counter per open `${`: its `}` resumes the template.
    substitutions: list[int] = []
    last = ""  # the last significant character of code
    last_code = ""  # the last stretch of code, right-stripped (for the word before a '/')
    pos, n = 0, len(source)
    stop = n if until is None else until

    def template(start: int, quote_at: int | None) -> int:
        # `start` is just after "`" or after the "}" closing a substitution.
        m = _TEMPLATE_BODY.match(source, start)
        end = m.end() if m else start
        out.append(" " * (end - start))
        if source.startswith("`", end):
            if quote_at is not None:
                literals[quote_at] = _unescape(source[start:end])
            out.append("`")
            return end + 1
        if source.startswith("${", end):
            substitutions.append(0)
            out.append("${")
            return end + 2
        return end  # unterminated: end of file

    while pos < n:
        m = (_SPECIAL_IN_TEMPLATE if substitutions else _SPECIAL).search(source, pos)
        if m is None:
            out.append(source[pos:])
            break
        i = m.start()
        if i > pos:
            chunk = source[pos:i]
            out.append(chunk)
            code = chunk.rstrip()
            if code:
                last, last_code = code[-1], code
        c = source[i]
        if c in "'\"":
            body = _STRING_BODY[c].match(source, i + 1)
            end = body.end() if body else i + 1
            closed = source.startswith(c, end)
            if closed:
                literals[i] = _unescape(source[i + 1 : end])
            out.append(c + " " * (end - i - 1) + (c if closed else ""))
            pos = end + 1 if closed else end
            last = last_code = c
        elif c == "`":
            out.append("`")
            pos = template(i + 1, i)
            last = last_code = "`"
        elif c == "{":
            substitutions[-1] += 1
            out.append("{")
            pos = i + 1
            last = last_code = "{"
        elif c == "}":
            out.append("}")
            if substitutions[-1] == 0:
                substitutions.pop()
                pos = template(i + 1, None)
                last = last_code = "`"
            else:
                substitutions[-1] -= 1
                pos = i + 1
                last = last_code = "}"
        elif source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            pos = end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(" " * (end - i))
            pos = end
        else:
            regex = None
            if not _operand_before(last, last_code):
                regex = _REGEX_BODY.match(source, i + 1)
            if regex is None:
                out.append("/")
                pos = i + 1
                last = last_code = "/"
            else:
                out.append("/" + " " * (regex.end() - i - 1))
                pos = regex.end()
                last = last_code = ")"  # a regex literal is an operand
        if i >= stop and c in "'\"`/" and not source.startswith(("//", "/*"), i):
            break
    return "".join(out), literals


def _last_candidate(source: str) -> int:
    """Where the last `_CANDIDATE` starts (looked for from the end), or -1."""
    imports, exports = source.rfind("import"), source.rfind("export")
    while imports >= 0 or exports >= 0:
        if imports > exports:
            if _CANDIDATE["import"].match(source, imports):
                return imports
            imports = source.rfind("import", 0, imports + 5)  # the one before
        else:
            if _CANDIDATE["export"].match(source, exports):
                return exports
            exports = source.rfind("export", 0, exports + 5)
    return -1


def module_specifiers(source: str) -> tuple[tuple[int, str], ...]:
    """Every module specifier `source` imports or re-exports, with its 1-based line.

    Covers static `import … from`, `import type`, side-effect `import '…'`,
    `export … from`, and `import('…')` with a string or a template literal
    without `${}`. Comments and the contents of strings are not looked at.
    """
    if "import" not in source and "export" not in source:
        return ()
    last = _last_candidate(source)
    if last < 0:
        return ()
    masked, literals = _mask(source, until=last)
    found: list[tuple[int, str]] = []
    line, counted = 1, 0
    for m in _IMPORT.finditer(masked):
        quote_at = m.start(m.lastgroup or 0)
        value = literals.get(quote_at)
        if value is not None:
            line += source.count("\n", counted, quote_at)
            counted = quote_at
            found.append((line, value))
    return tuple(found)
