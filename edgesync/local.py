"""The local functions tree: discovery, ignore rules, hashing, import graph.

`scan_local` walks the functions folder once and hashes every file edgesync
compares. `import_graph` and `dependencies` answer "which files outside a
function's folder does it need on the server" from the relative imports of its
source files, so that `push wpp-create` also uploads `_shared/wpp.ts`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote

from edgesync.errors import LocalTreeError
from edgesync.manifest import ENTRY_FILES, FileEntry, Kind, Manifest, classify, is_ignored

# Files whose relative imports are followed.
CODE_SUFFIXES = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".mts", ".cts", ".cjs")
# Tried, in order, when an import names a path without its extension (Node-style code).
RESOLVE_SUFFIXES = (".ts", ".tsx", ".js", ".mjs", ".jsx")
_CHUNK = 1 << 20
_SYMLINK_HINT = (
    "edgesync uploads only files inside the functions folder; "
    "replace the link with a copy of its target, or exclude it in edgesync.yaml"
)


# --------------------------------------------------------------------------- exclude globs


def _glob_to_regex(glob: str) -> str:
    """Translate one gitignore-style glob (without leading/trailing '/') to a regex body.

    `*` and `?` never cross '/'; `**` as a whole path segment spans any number of
    folders (`a/**/b` matches `a/b` and `a/x/y/b`; a trailing `/**` matches
    everything inside); `[...]` is a character class (`!` or `^` negates).
    """
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            j = i
            while j < n and glob[j] == "*":
                j += 1
            whole_segment = (i == 0 or glob[i - 1] == "/") and (j == n or glob[j] == "/")
            if j - i >= 2 and whole_segment:
                if j == n:
                    out.append(".*")
                    i = j
                else:  # "**/": zero or more folders
                    out.append("(?:.*/)?")
                    i = j + 1
                continue
            out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":  # a leading ']' is literal
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal '['
                out.append(re.escape(c))
                i += 1
                continue
            body = glob[i + 1 : j]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            escaped = "".join(ch if ch == "-" else re.escape(ch) for ch in body)
            out.append(f"(?!/)[{'^' if negate else ''}{escaped}]")
            i = j + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _union(regexes: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{r})" for r in regexes), re.S) if regexes else None


class ExcludeRules:
    """The config's `exclude` globs, with gitignore-like semantics.

    A pattern without '/' matches a name at any depth (`*.test.ts`, `fixtures`);
    one with '/' is anchored at the functions folder (`hello/tmp/*`, `/deno.lock`);
    a trailing '/' matches folders only (`fixtures/`). Negation (`!`) is refused.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        any_kind: list[str] = []
        dirs_only: list[str] = []
        kept: list[str] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern or pattern.startswith("#"):
                continue
            if pattern.startswith("!"):
                raise LocalTreeError(
                    f"exclude pattern {raw!r}: negation ('!') is not supported",
                    hint="list only the paths to leave out",
                )
            kept.append(pattern)
            folder_only = pattern.endswith("/")
            body = pattern.strip("/")
            if not body:
                continue
            regex = _glob_to_regex(body)
            if "/" not in pattern.rstrip("/"):  # a bare name: at any depth
                regex = "(?:.*/)?" + regex
            (dirs_only if folder_only else any_kind).append(regex)
        self.patterns: tuple[str, ...] = tuple(kept)
        self._any = _union(any_kind)
        self._dirs = _union(dirs_only)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str, is_dir: bool = False) -> bool:
        """True when `path` itself (relative, '/'-separated) matches a pattern."""
        if self._any is not None and self._any.fullmatch(path):
            return True
        return is_dir and self._dirs is not None and self._dirs.fullmatch(path) is not None

    def excludes(self, path: str) -> bool:
        """True when the file `path` or any folder above it matches a pattern."""
        parts = path.split("/")
        for i in range(1, len(parts)):
            if self.matches("/".join(parts[:i]), is_dir=True):
                return True
        return self.matches(path)


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class _Analysis:
    graph: Mapping[str, frozenset[str]]
    unresolved: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True)
class LocalTree:
    """The local functions folder as edgesync sees it."""

    root: Path
    manifest: Manifest
    functions: tuple[str, ...]
    shared: tuple[str, ...]
    root_files: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    # The import analysis, computed on first use (the tree itself never changes).
    _analysis: dict[str, _Analysis] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )


def _display_root(root: Path) -> str:
    """The functions folder as the user knows it: relative to the cwd when inside it."""
    try:
        rel = root.relative_to(Path.cwd())
    except (ValueError, OSError):  # outside the cwd, or the cwd is gone
        return root.as_posix()
    return "" if str(rel) == "." else rel.as_posix()


class _Scanner:
    """One walk of the functions folder; collects entries and warnings."""

    def __init__(self, root: Path, rules: ExcludeRules) -> None:
        self.root_path = root
        self.root = str(root)
        self.root_prefix = os.path.join(self.root, "")
        self.shown = _display_root(root)
        self.rules = rules
        self.entries: list[FileEntry] = []
        self.warnings: list[str] = []
        self.buffer = bytearray(_CHUNK)

    def show(self, rel: str) -> str:
        return posixpath.join(self.shown, rel) if self.shown else rel

    def check_name(self, rel: str) -> None:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError as e:
            raise LocalTreeError(
                f"{self.show(rel)!r}: file name is not valid UTF-8",
                hint="rename it; the server side needs UTF-8 paths",
            ) from e

    def follow(self, fs_path: str, rel: str) -> str:
        """Validate a symlink; return its resolved target (always inside the root)."""
        target = os.readlink(fs_path)
        try:
            os.stat(fs_path)
        except OSError as e:
            reason = "symlink loop" if e.errno == errno.ELOOP else "broken symlink"
            raise LocalTreeError(f"{self.show(rel)} -> {target}: {reason}", _SYMLINK_HINT) from e
        real = os.path.realpath(fs_path)
        if real != self.root and not real.startswith(self.root_prefix):
            raise LocalTreeError(
                f"{self.show(rel)} -> {target}: symlink leaves the functions folder",
                _SYMLINK_HINT,
            )
        if real != self.root:
            inside = Path(real).relative_to(self.root).as_posix()
            if is_ignored(inside):
                # Following it would upload e.g. a .env under another name.
                raise LocalTreeError(
                    f"{self.show(rel)} -> {target}: symlink points to an ignored path ({inside})",
                    _SYMLINK_HINT,
                )
        return real

    def hash_file(self, fs_path: str, rel: str) -> None:
        digest = hashlib.sha256()
        size = 0
        view = memoryview(self.buffer)
        try:
            with open(fs_path, "rb", buffering=0) as f:
                while n := f.readinto(view):
                    digest.update(view[:n])
                    size += n
        except OSError as e:
            raise LocalTreeError(f"{self.show(rel)}: cannot read: {e.strerror}") from e
        self.entries.append(FileEntry(rel, digest.hexdigest(), size))

    def list_dir(self, fs_path: str, rel: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(fs_path) as it:
                return sorted(it, key=lambda entry: entry.name)
        except OSError as e:
            where = f"{self.show(rel)}/" if rel else self.show(rel) or "."
            raise LocalTreeError(f"{where}: cannot read folder: {e.strerror}") from e

    def walk(self, fs_path: str, rel: str, real: str, ancestors: frozenset[str]) -> None:
        """Hash every kept file below the folder `rel`.

        `real` is the folder's resolved path and `ancestors` the resolved paths of
        the folders above it (itself included), to stop symlink loops.
        """
        for entry in self.list_dir(fs_path, rel):
            child = f"{rel}/{entry.name}"
            self.check_name(child)
            if is_ignored(child):
                continue
            is_dir = _is_dir(entry)
            if self.rules.matches(child, is_dir):
                continue
            is_link = entry.is_symlink()
            if is_link:
                child_real = self.follow(entry.path, child)
            else:
                child_real = os.path.join(real, entry.name)
            if is_dir:
                if child_real in ancestors:
                    raise self.loop_error(entry.path, child)
                self.walk(entry.path, child, child_real, ancestors | {child_real})
            elif entry.is_file():
                self.hash_file(entry.path, child)
            else:
                self.warnings.append(f"{child}: not a regular file — skipped")

    def loop_error(self, fs_path: str, rel: str) -> LocalTreeError:
        return LocalTreeError(
            f"{self.show(rel)} -> {os.readlink(fs_path)}: symlink loop "
            "(it points to a folder that contains it)",
            _SYMLINK_HINT,
        )


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A folder, or a symlink to one; False for broken or looping symlinks."""
    try:
        return entry.is_dir()
    except OSError:  # ELOOP; reported when the link is followed
        return False


def _entry_file(fs_dir: str, name: str, rules: ExcludeRules) -> bool:
    """Cheap pre-check: does the folder hold something named like an entry file?"""
    return any(
        os.path.lexists(os.path.join(fs_dir, entry)) and not rules.matches(f"{name}/{entry}")
        for entry in ENTRY_FILES
    )


def scan_local(root: Path, exclude: Sequence[str] = ()) -> LocalTree:
    """Walk the functions folder `root`: classify its entries and hash every kept file.

    Ignored paths (`manifest.is_ignored`) and `exclude` globs are left out and
    their folders not entered. Folders that are neither functions nor shared
    code are skipped with a warning. Raises `LocalTreeError` when the folder is
    missing, or a symlink is broken, loops, or leads outside the folder.
    """
    given = Path(root).expanduser()
    if not given.is_dir():
        what = "is not a folder" if given.exists() else "not found"
        raise LocalTreeError(
            f"functions folder {given} {what}",
            hint="set functions_dir in edgesync.yaml (relative to that file)",
        )
    rules = ExcludeRules((exclude,) if isinstance(exclude, str) else exclude)
    scanner = _Scanner(given.resolve(), rules)
    top = frozenset({scanner.root})
    functions: list[str] = []
    shared: list[str] = []
    root_files: list[str] = []
    for entry in scanner.list_dir(scanner.root, ""):
        name = entry.name
        scanner.check_name(name)
        if is_ignored(name):
            continue
        is_dir = _is_dir(entry)
        if rules.matches(name, is_dir):
            continue
        is_link = entry.is_symlink()
        if not is_dir:
            if is_link:
                scanner.follow(entry.path, name)
            if entry.is_file():
                scanner.hash_file(entry.path, name)
                root_files.append(name)
            else:
                scanner.warnings.append(f"{name}: not a regular file — skipped")
            continue
        kind = classify(name, is_folder=True)
        no_entry = f"{name}/: no entry file ({', '.join(ENTRY_FILES)}), not a function — skipped"
        if kind is None:
            scanner.warnings.append(f"{name}/: not a valid function name — skipped")
            continue
        if kind is Kind.FUNCTION and not _entry_file(entry.path, name, rules):
            scanner.warnings.append(no_entry)
            continue
        real = scanner.follow(entry.path, name) if is_link else os.path.join(scanner.root, name)
        if real in top:
            raise scanner.loop_error(entry.path, name)
        files_before, warnings_before = len(scanner.entries), len(scanner.warnings)
        scanner.walk(entry.path, name, real, top | {real})
        if kind is Kind.SHARED:
            shared.append(name)
            continue
        found = {e.path for e in scanner.entries[files_before:]}
        if not any(f"{name}/{entry_file}" in found for entry_file in ENTRY_FILES):
            del scanner.entries[files_before:]
            del scanner.warnings[warnings_before:]
            scanner.warnings.append(no_entry)
            continue
        functions.append(name)
    return LocalTree(
        root=scanner.root_path,
        manifest=Manifest.of(scanner.entries, folders=[*functions, *shared]),
        functions=tuple(sorted(functions)),
        shared=tuple(sorted(shared)),
        root_files=tuple(sorted(root_files)),
        warnings=tuple(scanner.warnings),
    )


# --------------------------------------------------------------------------- imports

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


def _mask(source: str) -> tuple[str, dict[int, str]]:
    """Blank out comments, strings, templates and regex literals, keeping offsets.

    Returns the masked text and the value of every string literal and every
    template without `${}` by the offset of its opening quote.
    """
    out: list[str] = []
    literals: dict[int, str] = {}
    # One brace counter per open `${`: its `}` resumes the template.
    substitutions: list[int] = []
    last = ""  # the last significant character of code
    last_code = ""  # the last stretch of code, right-stripped (for the word before a '/')
    pos, n = 0, len(source)

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
    return "".join(out), literals


def module_specifiers(source: str) -> tuple[tuple[int, str], ...]:
    """Every module specifier `source` imports or re-exports, with its 1-based line.

    Covers static `import … from`, `import type`, side-effect `import '…'`,
    `export … from`, and `import('…')` with a string or a template literal
    without `${}`. Comments and the contents of strings are not looked at.
    """
    if "import" not in source and "export" not in source:
        return ()
    masked, literals = _mask(source)
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


def _is_relative(specifier: str) -> bool:
    return specifier.startswith(("./", "../"))


def _candidates(path: str) -> Iterable[str]:
    """Manifest paths an import of `path` (already normalised) may mean, best first."""
    if path != ".":
        yield path
        for suffix in RESOLVE_SUFFIXES:
            yield path + suffix
        stem, ext = posixpath.splitext(path)
        if ext in (".js", ".jsx", ".mjs"):  # TypeScript's ESM style: "./x.js" means x.ts
            yield stem + ".ts"
            yield stem + ".tsx"
    folder = "" if path == "." else path + "/"
    for suffix in RESOLVE_SUFFIXES:
        yield f"{folder}index{suffix}"


def _resolve(tree: LocalTree, importer: str, line: int, specifier: str) -> str | None:
    """The manifest path a relative specifier names, or None when there is none."""
    bare = specifier.split("#", 1)[0].split("?", 1)[0]
    files = tree.manifest.files
    base = posixpath.dirname(importer)
    for variant in dict.fromkeys((bare, unquote(bare))):
        path = posixpath.normpath(posixpath.join(base, variant))
        if path == ".." or path.startswith("../"):
            raise LocalTreeError(
                f"{_shown(tree, importer)}:{line}: import {specifier!r} "
                "resolves outside the functions folder",
                hint="only the functions folder is deployed; move that code into _shared/",
            )
        for candidate in _candidates(path):
            if candidate in files:
                return candidate
    return None


def _shown(tree: LocalTree, rel: str) -> str:
    shown = _display_root(tree.root)
    return posixpath.join(shown, rel) if shown else rel


def _analyse(tree: LocalTree) -> _Analysis:
    cached = tree._analysis.get("imports")
    if cached is not None:
        return cached
    graph: dict[str, frozenset[str]] = {}
    unresolved: list[tuple[str, int, str]] = []
    resolved: dict[tuple[str, str], str | None] = {}  # (importing folder, specifier)
    for path in tree.manifest.files:
        if not path.endswith(CODE_SUFFIXES):
            continue
        try:
            source = (tree.root / path).read_bytes().decode("utf-8", errors="replace")
        except OSError as e:
            raise LocalTreeError(f"{_shown(tree, path)}: cannot read: {e.strerror}") from e
        targets: set[str] = set()
        for line, specifier in module_specifiers(source):
            if not _is_relative(specifier):
                continue
            key = (posixpath.dirname(path), specifier)
            if key not in resolved:
                resolved[key] = _resolve(tree, path, line, specifier)
            target = resolved[key]
            if target is None:
                unresolved.append((path, line, specifier))
            elif target != path:
                targets.add(target)
        graph[path] = frozenset(targets)
    analysis = _Analysis(MappingProxyType(graph), tuple(unresolved))
    tree._analysis["imports"] = analysis
    return analysis


def import_graph(tree: LocalTree) -> Mapping[str, frozenset[str]]:
    """For each source file in the manifest, the manifest paths it imports by relative path.

    Raises `LocalTreeError` (naming file, line and specifier) for an import that
    leads outside the functions folder. Imports that match no file are left out;
    `unresolved_imports` lists them.
    """
    return _analyse(tree).graph


def unresolved_imports(tree: LocalTree) -> tuple[tuple[str, int, str], ...]:
    """Relative imports that match no file of the manifest, as (file, line, specifier)."""
    return _analyse(tree).unresolved


def dependencies(tree: LocalTree, function: str) -> frozenset[str]:
    """Manifest paths outside the folder `function` that its files import, transitively.

    Works for any top-level folder (a function, `main`, a shared folder); an
    unknown name has no files and so no dependencies.
    """
    graph = import_graph(tree)
    prefix = function + "/"
    pending = [path for path in graph if path.startswith(prefix)]
    seen: set[str] = set(pending)
    while pending:
        for target in graph.get(pending.pop(), ()):
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return frozenset(path for path in seen if not path.startswith(prefix))
