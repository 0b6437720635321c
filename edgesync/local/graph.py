"""A function's module graph, resolved exactly as Deno resolves it, from the entry file.

`Resolver(root, files, config_toml).function(name)` answers "which local files does
this function load, through which config files, and why can it not be deployed as
it is" without running anything: it reads local files only, lazily (a function
reads what it reaches), and caches parsed imports per file so that many functions
share the work.

How the import map is chosen (the Supabase CLI's order, `GetFunctionConfig` and
`ShouldUseDenoJsonDiscovery` in supabase/cli):

1. `[functions.NAME] import_map` in config.toml (relative to the supabase folder);
2. `deno.json`, then `deno.jsonc`, beside the entry file, then in the function folder;
3. `import_map.json` in the function folder (deprecated by the CLI);
4. `functions/import_map.json`;
5. none: Deno's own discovery.

A `deno.json`/`deno.jsonc` beside the entry file means discovery, as Deno does it:
every `deno.json`/`deno.jsonc` from the entry's folder up to the filesystem root
takes part. The nearest one (or the workspace root that lists it as a member) is
the base map: its `imports`/`scopes`, or, when it has neither, the file its
`importMap` names (strict JSON). Every other one adds its `imports` as a scope for
its own folder, so an ancestor's entry beats the nearest one's for the same key
(Deno 2's synthetic workspace map). Any other chosen file is a plain import map
given with `--import-map`: only its `imports`/`scopes`, strict JSON, and the
discovered `deno.json` imports are then ignored.

Specifiers follow the WHATWG import map rules as Deno implements them: URL-like
keys and addresses resolve against the map file, prefixes need a trailing '/',
the longest key wins, scopes apply by the importing module's URL. There is no
extension probing (`./x` never means `./x.ts`). Remote specifiers (`npm:`, `jsr:`,
`https:`, `node:`, `data:` ...) are neither files nor problems.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import sys
from collections.abc import Collection, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from edgesync.local.imports import module_specifiers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

# The order in which edge-runtime probes a service folder for its entry file.
ENTRY_FILES = ("index.ts", "index.tsx", "index.js", "index.mjs", "index.jsx")
ROUTER = "main"
DENO_CONFIG_NAMES = ("deno.json", "deno.jsonc")
# Files whose imports Deno follows; a file without an extension is parsed as code too.
_CODE_EXTENSIONS = frozenset({".ts", ".mts", ".cts", ".tsx", ".js", ".mjs", ".cjs", ".jsx"})
_JSON_EXTENSIONS = frozenset({".json", ".jsonc", ".json5"})
_LEAF_EXTENSIONS = frozenset({".wasm"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_SPECIAL_SCHEMES = frozenset({"http", "https", "file", "ws", "wss", "ftp"})
_REMOTE_EXPANDED = ("npm:", "jsr:")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Problem:
    """Why a function cannot be deployed as it is.

    `reason` is one of: "missing" (no such local file, or one edgesync ignores),
    "outside" (leaves the functions folder, or relies on a config file outside it),
    "router" (reaches into main/), "unmapped" (a bare specifier no import map maps),
    "unsupported" (a folder, a JSON module without `with { type: "json" }`, a file
    type Deno cannot import), "absolute" (an absolute path: only valid on this
    machine), "bad-config" (an unreadable deno.json, import map or config.toml),
    "no-entry" (the folder has no index.* file).
    """

    file: str  # importing file, relative to the functions folder, '/'-separated
    line: int  # 1-based line of the specifier; 0 for config-file problems
    specifier: str
    reason: str
    detail: str


@dataclass(frozen=True)
class FunctionGraph:
    """What one function loads: its modules, config files and static files."""

    name: str
    entry: str | None
    modules: frozenset[str]
    config_files: frozenset[str]
    static_files: frozenset[str]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    import_map: str | None = None  # the chosen map ("deno.json", "import_map.json", ...)

    @cached_property
    def files(self) -> frozenset[str]:
        """Every local file this function needs on the server."""
        if not self.config_files and not self.static_files:
            return self.modules  # no copy: 10,000 functions hold 250,000 paths
        return self.modules | self.config_files | self.static_files


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class _Import:
    line: int
    specifier: str
    json_ok: bool  # a static import carrying `with { type: "json" }`, or a dynamic import


Imports = tuple[_Import, ...]  # what `scan_imports` finds in one file
Import = _Import


_TRIPLE_SLASH = re.compile(r"""///\s*<reference\s+(?:path|types)\s*=\s*(['"])(.*?)\1""")
_TYPES_PRAGMA = re.compile(r"""(?://|/\*)\s*@(?:deno|ts)-types\s*=\s*(['"])(.*?)\1""")
_IMPORT_REQUIRE = re.compile(
    r"""(?<![\w$.])import\s+(?:type\s+)?[\w$]+\s*=\s*require\s*\(\s*(['"])(.*?)\1\s*\)"""
)
_LEADING_TRIVIA = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.S)
_JSON_STATIC = re.compile(r"""\s*(?:with|assert)\s*\{\s*type\s*:\s*(['"])json\1""")
_DYNAMIC_BEFORE = re.compile(r"import\s*\(\s*$")
_DYNAMIC_AFTER = re.compile(r"\s*[,)]")
_DYNAMIC_ANY = re.compile(r"import\s*\(")


def scan_imports(source: str) -> tuple[_Import, ...]:
    """Every specifier Deno's module graph takes from `source`, with its 1-based line.

    `module_specifiers` finds imports and re-exports; this drops dynamic imports
    whose argument is more than one literal (`import("./x/" + name)`, which Deno
    cannot analyse) and adds what Deno also follows: `/// <reference path|types>`
    at the top of the file, `// @deno-types=` / `// @ts-types=` pragmas and
    TypeScript's `import x = require("...")`.
    """
    found: list[_Import] = []
    lines: list[str] | None = None
    has_dynamic = _DYNAMIC_ANY.search(source) is not None
    for line, specifier in module_specifiers(source):
        is_json = ".json" in specifier and (
            posixpath.splitext(_strip_suffix(specifier))[1] in _JSON_EXTENSIONS
        )
        if not (has_dynamic or is_json):
            found.append(_Import(line, specifier, json_ok=True))
            continue
        if lines is None:
            lines = source.split("\n")
        dynamic, json_typed = _context(lines, line, specifier)
        if dynamic is None:
            continue  # a dynamic import of an expression: not in Deno's graph
        found.append(_Import(line, specifier, dynamic or json_typed or not is_json))
    if "///" in source:
        top = _LEADING_TRIVIA.match(source)
        header = source[: top.end()] if top else ""
        for m in _TRIPLE_SLASH.finditer(header):
            found.append(_Import(source.count("\n", 0, m.start()) + 1, m.group(2), json_ok=True))
    if "-types" in source:
        for m in _TYPES_PRAGMA.finditer(source):
            found.append(_Import(source.count("\n", 0, m.start()) + 1, m.group(2), json_ok=True))
    if "require" in source:
        for m in _IMPORT_REQUIRE.finditer(source):
            found.append(_Import(source.count("\n", 0, m.start()) + 1, m.group(2), json_ok=True))
    return tuple(found)


def _context(lines: list[str], line: int, specifier: str) -> tuple[bool | None, bool]:
    """How the literal `specifier` on `line` is imported: (dynamic, json-typed).

    dynamic is None for `import("a" + b)`: Deno only follows a dynamic import
    whose whole argument is one literal.
    """
    text = "\n".join(lines[line - 1 : line + 3])
    for quote in ("'", '"', "`"):
        literal = quote + specifier + quote
        start = text.find(literal)
        while start >= 0:
            after = start + len(literal)
            if _DYNAMIC_BEFORE.search(text, 0, start):
                if _DYNAMIC_AFTER.match(text, after) is None:
                    return None, False
                return True, True  # Deno loads dynamic JSON imports without the attribute
            if _JSON_STATIC.match(text, after):
                return False, True
            start = text.find(literal, start + 1)
    return False, False


# --------------------------------------------------------------------------- URLs

# Local modules are handled as "file://" + decoded absolute path (+ "?query#hash"):
# import map keys, scopes and referrers all compare in that one form.
_FILE = "file://"


def _strip_suffix(specifier: str) -> str:
    """The specifier without its ?query and #hash."""
    if "?" not in specifier and "#" not in specifier:
        return specifier
    cut = min(i for i in (specifier.find("?"), specifier.find("#")) if i >= 0)
    return specifier[:cut]


def _split_suffix(specifier: str) -> tuple[str, str]:
    path = _strip_suffix(specifier)
    return path, specifier[len(path) :]


def _join(base_dir: str, raw_path: str) -> str:
    """Resolve a raw URL path (percent-encoded, maybe relative) against a decoded folder.

    Dot segments are removed as the URL parser does (`%2e` counts as '.'), a
    trailing '/' is kept, and each segment is percent-decoded.
    """
    raw_path = raw_path.replace("\\", "/")  # file: is a special scheme
    if "%" not in raw_path and "/./" not in base_dir + "/" and "/../" not in base_dir + "/":
        return _join_plain(base_dir, raw_path)
    return _join_decoding(base_dir, raw_path)


def _join_decoding(base_dir: str, raw_path: str) -> str:
    """`_join`, segment by segment (any path: `%2e` segments, percent-encoding)."""
    if raw_path.startswith("/"):
        out: list[str] = []
    else:
        out = [s for s in base_dir.split("/") if s]
    segments = raw_path.split("/")
    trailing = False
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        lowered = segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            trailing = last
        elif lowered in (".", "%2e") or segment == "":
            trailing = last
        else:
            out.append(unquote(segment))
            trailing = False
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def _join_plain(base_dir: str, raw_path: str) -> str:
    """`_join` for a path with nothing to decode, against a folder without dot segments."""
    joined = posixpath.normpath(raw_path if raw_path.startswith("/") else f"{base_dir}/{raw_path}")
    if joined.startswith("//"):  # POSIX keeps two leading slashes; a URL path does not
        joined = "/" + joined.lstrip("/")
    if raw_path.rsplit("/", 1)[-1] in ("", ".", "..") and joined != "/":
        joined += "/"
    return joined


def _parse_url_like(specifier: str, base_file: str) -> str | None:
    """The URL a URL-like specifier names (relative to the file `base_file`), else None."""
    if specifier.startswith(("/", "./", "../")):
        path, suffix = _split_suffix(specifier)
        return _FILE + _join(posixpath.dirname(base_file), path) + suffix
    m = _SCHEME.match(specifier)
    if m is None:
        return None
    if m.group(1).lower() == "file":
        path, suffix = _split_suffix(specifier[m.end() :])
        if path.startswith("//"):  # file://host/path: the host is dropped
            slash = path.find("/", 2)
            path = "/" if slash < 0 else path[slash:]
        return _FILE + _join("/", path) + suffix
    return specifier


def _is_file_url(url: str) -> bool:
    return url.startswith(_FILE)


def _url_path(url: str) -> str:
    return _strip_suffix(url[len(_FILE) :])


# --------------------------------------------------------------------------- import maps


class _ConfigError(ValueError):
    """A config file or import map Deno cannot read; `path` is that file."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.path = path


class ImportMapError(Exception):
    """A specifier the import map cannot resolve (Deno refuses to load it)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Entry:
    key: str
    address: str | None  # None: an invalid address, the key is blocked
    origin: str  # absolute path of the config file that declared the entry


@dataclass(frozen=True)
class ImportMap:
    """A parsed import map: entries sorted longest-key-first, scopes likewise."""

    imports: tuple[_Entry, ...] = ()
    scopes: tuple[tuple[str, tuple[_Entry, ...]], ...] = ()

    @cached_property
    def by_folder(self) -> bool:
        """True when what a specifier resolves to depends on the importing file's folder
        only: no scope names a single file."""
        return all(scope.endswith("/") for scope, _ in self.scopes)

    def resolve(self, specifier: str, referrer: str) -> tuple[str, _Entry | None]:
        """The URL `specifier` imported from the file `referrer` names, and the entry used.

        Raises ImportMapError for a bare specifier no entry maps, a blocked
        entry, or a prefix match that climbs above its address.
        """
        as_url = _parse_url_like(specifier, referrer)
        normalized = specifier if as_url is None else as_url
        referrer_url = _FILE + referrer
        for scope, entries in self.scopes:
            if scope == referrer_url or (scope.endswith("/") and referrer_url.startswith(scope)):
                hit = _match(normalized, as_url, entries)
                if hit is not None:
                    return hit
        hit = _match(normalized, as_url, self.imports)
        if hit is not None:
            return hit
        if as_url is not None:
            return as_url, None
        raise ImportMapError(
            "unmapped",
            f"bare specifier {specifier!r} is not in the import map"
            + (" (Node built-ins need the 'node:' prefix)" if "/" not in specifier else ""),
        )


def _match(
    normalized: str, as_url: str | None, entries: tuple[_Entry, ...]
) -> tuple[str, _Entry] | None:
    for entry in entries:
        key = entry.key
        if key == normalized:
            if entry.address is None:
                raise ImportMapError("unmapped", f"{key!r} is blocked by an invalid map entry")
            return entry.address, entry
        if not key.endswith("/") or not normalized.startswith(key):
            continue
        scheme = _SCHEME.match(as_url) if as_url is not None else None
        if scheme is not None and scheme.group(1).lower() not in _SPECIAL_SCHEMES:
            continue  # prefixes do not apply to npm:, jsr: ... URLs
        if entry.address is None:
            raise ImportMapError("unmapped", f"{key!r} is blocked by an invalid map entry")
        rest = normalized[len(key) :]
        if not _is_file_url(entry.address):
            return entry.address + rest, entry
        path, suffix = _split_suffix(rest)
        base = _url_path(entry.address)
        resolved = _FILE + _join(base, path) + suffix
        if not resolved.startswith(entry.address):
            raise ImportMapError("unmapped", f"{normalized!r} climbs above its map prefix {key!r}")
        return resolved, entry
    return None


def _entries(imports: object, base_file: str, origin: str) -> list[_Entry]:
    """Normalise one `imports` object (keys and addresses resolved against `base_file`)."""
    if not isinstance(imports, dict):
        raise ValueError("'imports' must be an object")
    out: list[_Entry] = []
    for key, value in imports.items():
        if not key:
            continue
        normal_key = _parse_url_like(key, base_file) or key
        address = _parse_url_like(value, base_file) if isinstance(value, str) else None
        if address is not None and key.endswith("/") and not address.endswith("/"):
            address = None  # Deno: "Invalid address ... for package specifier"
        out.append(_Entry(normal_key, address, origin))
    return out


def _expand(entries: list[_Entry]) -> list[_Entry]:
    """Deno's expansion for deno.json maps: `"x": "npm:x"` also maps `x/...`."""
    keys = {e.key for e in entries}
    extra = [
        _Entry(e.key + "/", e.address.split(":", 1)[0] + ":/" + e.key + "/", e.origin)
        for e in entries
        if e.address is not None
        and not e.key.endswith("/")
        and e.address.startswith(_REMOTE_EXPANDED)
        and e.key + "/" not in keys
    ]
    return entries + extra


def _sorted(entries: Iterable[_Entry]) -> tuple[_Entry, ...]:
    by_key = {e.key: e for e in entries}  # a later duplicate wins, as in a JSON object
    return tuple(by_key[k] for k in sorted(by_key, reverse=True))


def parse_import_map(
    value: Mapping[str, Any], base_file: str, origin: str | None = None, *, expand: bool = False
) -> ImportMap:
    """Build an ImportMap from a JSON value whose relative URLs are based at `base_file`."""
    origin = origin or base_file
    imports = _entries(value.get("imports", {}), base_file, origin)
    scopes: dict[str, list[_Entry]] = {}
    raw_scopes = value.get("scopes", {})
    if not isinstance(raw_scopes, dict):
        raise ValueError("'scopes' must be an object")
    for scope, scope_imports in raw_scopes.items():
        scope_url = _parse_url_like(scope, base_file) or scope
        scopes[scope_url] = _entries(scope_imports, base_file, origin)
    if expand:
        imports = _expand(imports)
        scopes = {k: _expand(v) for k, v in scopes.items()}
    return ImportMap(
        _sorted(imports),
        tuple((k, _sorted(scopes[k])) for k in sorted(scopes, reverse=True)),
    )


def strip_jsonc(text: str) -> str:
    """JSONC to JSON: drop comments (keeping line breaks) and trailing commas."""
    out: list[str] = []
    i, n = 0, len(text)
    pending_comma = -1  # index in `out` of a comma that may be trailing
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            pending_comma = -1
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        else:
            if c in "}]" and pending_comma >= 0:
                out[pending_comma] = ""
            if c == ",":
                pending_comma = len(out)
            elif not c.isspace():
                pending_comma = -1
            out.append(c)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- config.toml


@dataclass(frozen=True)
class _FunctionSettings:
    import_map: str | None = None
    entrypoint: str | None = None
    static_files: tuple[str, ...] = ()
    enabled: bool = True
    lines: Mapping[str, int] = field(default_factory=dict)


def _text(value: object) -> str | None:
    """A non-empty string setting, else None."""
    return value if isinstance(value, str) and value else None


def _toml_lines(text: str, name: str) -> dict[str, int]:
    """The 1-based line of each key in the `[functions.NAME]` table (best effort)."""
    lines: dict[str, int] = {}
    inside = False
    header = re.compile(r"""^\s*\[\s*functions\s*\.\s*(?:"([^"]*)"|'([^']*)'|([\w-]+))\s*\]""")
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            m = header.match(stripped)
            inside = m is not None and name in m.groups()
            continue
        if inside:
            key = re.match(r"^([\w-]+)\s*=", stripped)
            if key:
                lines.setdefault(key.group(1), number)
    return lines


# --------------------------------------------------------------------------- the resolver


@dataclass(frozen=True)
class _MapChoice:
    """The map the Supabase CLI picks for a function, and how Deno then applies it."""

    discovery_from: str | None  # discovery: the folder it starts in (absolute)
    explicit: str | None  # --import-map: the file (absolute)
    label: str | None  # display name of the chosen file
    why: str


@dataclass
class _BuiltMap:
    key: str  # what the map is built from (import map file, or the discovered configs)
    import_map: ImportMap
    config_files: set[str]  # absolute paths
    problems: list[tuple[str, str]]  # (config file absolute, detail) -> bad-config
    base_label: str | None


_Outcome = tuple[str | None, tuple[str, str] | None]  # (module, None) | (None, (reason, detail))


class Resolver:
    """Resolves functions of one functions folder; caches per file and per map."""

    def __init__(
        self,
        root: Path,
        files: Collection[str],
        config_toml: Path | None,
        *,
        scanned: MutableMapping[str, tuple[_Import, ...]] | None = None,
        hashes: Mapping[str, str] | None = None,
    ) -> None:
        """`root`: the functions folder; `files`: every file edgesync keeps (relative
        paths, already filtered by ignore rules); `config_toml`: supabase/config.toml or None.

        `scanned` maps a file's sha256 to the imports `scan_imports` found in it (from an
        earlier run: `scancache.py`); with `hashes` (path -> sha256, from the tree scan) a
        file found there is not read again. What is scanned here is added to it.
        """
        self.root = os.path.abspath(root)
        self._prefix = self.root + "/"
        self.files = frozenset(files)
        self.config_toml = os.path.abspath(config_toml) if config_toml else None
        self.scanned = scanned if scanned is not None else {}
        self.newly_scanned = 0  # entries added to `scanned` since it was last saved
        self._hashes = hashes or {}
        self._imports: dict[str, tuple[_Import, ...]] = {}
        self._import_objects: dict[_Import, _Import] = {}
        self._maps: dict[str, _BuiltMap] = {}
        self._discovery: dict[str, tuple[str, ...]] = {}
        self._outcomes: dict[tuple[str, str, str, bool, bool], _Outcome] = {}
        self._graphs: dict[str, FunctionGraph] = {}
        self._json: dict[str, Any] = {}
        self._settings: dict[str, _FunctionSettings] | None = None
        self._toml_problem: Problem | None = None
        self._toml_text = ""

    # ----------------------------------------------------------- paths

    def _rel(self, path: str) -> str:
        """A path relative to the functions folder ('../x' when outside)."""
        if path.startswith(self._prefix):
            return path[len(self._prefix) :]
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def _inside(self, path: str) -> bool:
        return path.startswith(self._prefix)

    def _is_file(self, path: str) -> bool:
        if self._inside(path):
            return self._rel(path) in self.files
        return os.path.isfile(path)

    def _config_in(self, folder: str) -> str | None:
        for name in DENO_CONFIG_NAMES:
            candidate = posixpath.join(folder, name)
            if self._is_file(candidate):
                return candidate
        return None

    # ----------------------------------------------------------- config.toml

    def _function_settings(self, name: str) -> _FunctionSettings:
        if self._settings is None:
            self._settings = self._load_config_toml()
        return self._settings.get(name, _FunctionSettings())

    def _load_config_toml(self) -> dict[str, _FunctionSettings]:
        if self.config_toml is None or not os.path.isfile(self.config_toml):
            return {}
        try:
            with open(self.config_toml, encoding="utf-8") as f:
                self._toml_text = f.read()
            data = tomllib.loads(self._toml_text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            self._toml_problem = Problem(
                self._rel(self.config_toml), 0, "", "bad-config", f"cannot read config.toml: {e}"
            )
            return {}
        functions = data.get("functions", {})
        settings: dict[str, _FunctionSettings] = {}
        if not isinstance(functions, dict):
            return settings
        for name, table in functions.items():
            if not isinstance(table, dict):
                continue
            static = table.get("static_files", [])
            settings[name] = _FunctionSettings(
                import_map=_text(table.get("import_map")),
                entrypoint=_text(table.get("entrypoint")),
                static_files=tuple(s for s in static if isinstance(s, str) and s)
                if isinstance(static, list)
                else (),
                enabled=table.get("enabled", True) is not False,
                lines=_toml_lines(self._toml_text, name),
            )
        return settings

    def _supabase_path(self, value: str) -> str:
        """A config.toml path (relative to the supabase folder) made absolute."""
        base = os.path.dirname(self.config_toml) if self.config_toml else os.path.dirname(self.root)
        return posixpath.normpath(posixpath.join(base, value))

    # ----------------------------------------------------------- JSON

    def _read_json(self, path: str, *, jsonc: bool) -> Any:
        key = ("c:" if jsonc else "j:") + path
        if key not in self._json:
            try:
                with open(path, encoding="utf-8-sig") as f:
                    text = f.read()
                self._json[key] = json.loads(strip_jsonc(text) if jsonc else text)
            except (OSError, UnicodeDecodeError, ValueError) as e:
                self._json[key] = e
        value = self._json[key]
        if isinstance(value, Exception):
            raise ValueError(str(value)) from value
        return value

    # ----------------------------------------------------------- map choice

    def _choose_map(self, name: str, entry_path: str | None) -> tuple[_MapChoice, list[str]]:
        settings = self._function_settings(name)
        fn_dir = posixpath.join(self.root, name)
        entry_dir = posixpath.dirname(entry_path) if entry_path else fn_dir
        notes: list[str] = []

        def pick(path: str, why: str) -> _MapChoice:
            label = self._rel(path)
            if (
                posixpath.basename(path) in DENO_CONFIG_NAMES
                and posixpath.dirname(path) == entry_dir
            ):
                return _MapChoice(entry_dir, None, label, why)
            return _MapChoice(None, path, label, why)

        if settings.import_map:
            path = self._supabase_path(settings.import_map)
            return pick(path, f"import_map = {settings.import_map!r} in config.toml"), notes
        for folder in dict.fromkeys((entry_dir, fn_dir)):
            found = self._config_in(folder)
            if found is not None:
                return pick(found, "the function's own config"), notes
        own_map = posixpath.join(fn_dir, "import_map.json")
        if self._is_file(own_map):
            notes.append(
                f"{name}/import_map.json: the Supabase CLI uses it but calls it deprecated; "
                "the self-hosted runtime never reads it (use deno.json)"
            )
            return pick(own_map, "the function's import_map.json"), notes
        fallback = posixpath.join(self.root, "import_map.json")
        if self._is_file(fallback):
            return pick(fallback, "the fallback functions/import_map.json"), notes
        return _MapChoice(entry_dir, None, None, "Deno's discovery"), notes

    def _discovered(self, folder: str) -> tuple[str, ...]:
        """deno.json/deno.jsonc files from `folder` up to the filesystem root, nearest first."""
        cached = self._discovery.get(folder)
        if cached is None:
            parent = posixpath.dirname(folder)
            above = self._discovered(parent) if parent != folder else ()
            config = self._config_in(folder)
            cached = self._discovery[folder] = (config, *above) if config else above
        return cached

    def _build_map(self, choice: _MapChoice) -> _BuiltMap:
        if choice.explicit is not None:
            key = "import-map:" + choice.explicit
        else:  # functions that discover the same config files share one map
            key = "discovered:" + "|".join(self._discovered(choice.discovery_from or self.root))
        cached = self._maps.get(key)
        if cached is not None:
            return cached
        built = _BuiltMap(key, ImportMap(), set(), [], choice.label)
        try:
            if choice.explicit is not None:
                self._build_explicit(choice.explicit, built)
            elif choice.discovery_from is not None:
                self._build_discovered(choice.discovery_from, built)
        except _ConfigError as e:
            built.import_map = ImportMap()
            built.problems.append((e.path, str(e)))
        self._maps[key] = built
        return built

    def _build_explicit(self, path: str, built: _BuiltMap) -> None:
        if not self._is_file(path):
            raise _ConfigError(path, f"import map {self._rel(path)} does not exist")
        built.config_files.add(path)
        try:
            value = self._read_json(path, jsonc=False)  # Deno reads a given map as strict JSON
        except ValueError as e:
            raise _ConfigError(path, f"{self._rel(path)}: not valid JSON: {e}") from e
        if not isinstance(value, dict):
            raise _ConfigError(path, f"{self._rel(path)}: an import map must be a JSON object")
        try:
            built.import_map = parse_import_map(value, path)
        except ValueError as e:
            raise _ConfigError(path, f"{self._rel(path)}: {e}") from e

    def _load_config(self, path: str) -> dict[str, Any]:
        try:
            value = self._read_json(path, jsonc=True)
        except ValueError as e:
            raise _ConfigError(path, f"{self._rel(path)}: not valid JSON: {e}") from e
        if not isinstance(value, dict):
            raise _ConfigError(path, f"{self._rel(path)}: a config file must be a JSON object")
        return value

    def _build_discovered(self, start: str, built: _BuiltMap) -> None:
        configs = self._discovered(start)
        if not configs:
            return
        built.config_files.update(configs)
        values = {path: self._load_config(path) for path in configs}
        root_config = self._workspace_root(configs, values)
        root_value = values[root_config]
        base_file, base_value = self._base_map(root_config, root_value, built)
        built.base_label = self._rel(base_file)
        try:
            base = parse_import_map(base_value, base_file, expand=True)
        except ValueError as e:
            raise _ConfigError(base_file, f"{self._rel(base_file)}: {e}") from e
        scopes = dict(base.scopes)
        base_dir = posixpath.dirname(base_file)
        for path in configs:
            if path == root_config:
                continue
            imports = values[path].get("imports")
            if imports is None:
                continue
            folder = posixpath.dirname(path)
            # Deno keys the scope by the folder relative to the base map; a config in
            # the base map's own folder gets "./" + "" + "/" and so never matches.
            scope = _FILE + folder + "/" if folder != base_dir else _FILE + base_dir + "//"
            try:
                entries = _expand(_entries(imports, path, path))
            except ValueError as e:
                raise _ConfigError(path, f"{self._rel(path)}: {e}") from e
            scopes[scope] = _sorted([*entries, *scopes.get(scope, ())])
        built.import_map = ImportMap(
            base.imports, tuple((k, scopes[k]) for k in sorted(scopes, reverse=True))
        )
        lock_path = self._lock_file(root_config, root_value)
        if lock_path is not None and self._inside(lock_path) and self._is_file(lock_path):
            built.config_files.add(lock_path)

    @staticmethod
    def _workspace_root(configs: Sequence[str], values: Mapping[str, dict[str, Any]]) -> str:
        """The nearest config, or the workspace root that lists its folder as a member."""
        nearest_dir = posixpath.dirname(configs[0])
        for path in configs[1:]:
            members = values[path].get("workspace")
            if isinstance(members, dict):
                members = members.get("members")
            if isinstance(members, list) and any(
                isinstance(m, str)
                and posixpath.normpath(posixpath.join(posixpath.dirname(path), m)) == nearest_dir
                for m in members
            ):
                return path
        return configs[0]

    def _base_map(
        self, root_config: str, root_value: dict[str, Any], built: _BuiltMap
    ) -> tuple[str, Any]:
        """The file and JSON value of the base import map: the config itself, or its importMap."""
        if "imports" in root_value or "scopes" in root_value:
            return root_config, root_value
        target = root_value.get("importMap")
        if not isinstance(target, str):
            return root_config, {}
        url = _parse_url_like(target, root_config)
        if url is None:
            url = _FILE + _join(posixpath.dirname(root_config), target)
        if not _is_file_url(url):
            raise _ConfigError(
                root_config, f"{self._rel(root_config)}: importMap {target!r} is not local"
            )
        base_file = _url_path(url)
        if not self._is_file(base_file):
            raise _ConfigError(
                root_config, f"{self._rel(root_config)}: importMap {target!r} does not exist"
            )
        built.config_files.add(base_file)
        try:
            base_value = self._read_json(base_file, jsonc=False)
        except ValueError as e:
            raise _ConfigError(base_file, f"{self._rel(base_file)}: not valid JSON: {e}") from e
        if not isinstance(base_value, dict):
            raise _ConfigError(
                base_file, f"{self._rel(base_file)}: an import map must be a JSON object"
            )
        return base_file, base_value

    @staticmethod
    def _lock_file(root_config: str, root_value: dict[str, Any]) -> str | None:
        """deno.lock beside the config, or where its `lock` key says; None when disabled."""
        lock = root_value.get("lock", True)
        folder = posixpath.dirname(root_config)
        if lock is False:
            return None
        if isinstance(lock, str):
            return posixpath.normpath(posixpath.join(folder, lock))
        if isinstance(lock, dict) and isinstance(lock.get("path"), str):
            return posixpath.normpath(posixpath.join(folder, lock["path"]))
        return posixpath.join(folder, "deno.lock")

    # ----------------------------------------------------------- sources

    def _imports_of(self, rel: str) -> tuple[_Import, ...]:
        cached = self._imports.get(rel)
        if cached is None:
            known = self._hashes.get(rel)
            cached = self.scanned.get(known) if known is not None else None
            if cached is None:
                try:
                    with open(posixpath.join(self.root, rel), "rb") as f:
                        data = f.read()
                except OSError:
                    data = b""
                cached = tuple(
                    self._import_objects.setdefault(item, item)  # one object per distinct import
                    for item in scan_imports(data.decode("utf-8", errors="replace"))
                )
                if data:  # keyed by what was read (the file may have changed since the scan)
                    digest = hashlib.sha256(data).hexdigest()
                    self.scanned[known if digest == known else digest] = cached
                    self.newly_scanned += 1
            self._imports[rel] = cached
        return cached

    # ----------------------------------------------------------- functions

    def _entry(self, name: str, problems: list[Problem], notes: list[str]) -> str | None:
        settings = self._function_settings(name)
        toml_rel = self._rel(self.config_toml) if self.config_toml else "config.toml"
        if settings.entrypoint:
            path = self._supabase_path(settings.entrypoint)
            notes.append(
                f"entrypoint = {settings.entrypoint!r} in config.toml: the self-hosted "
                "router ignores it and only runs index.*"
            )
            line = settings.lines.get("entrypoint", 0)
            if not self._inside(path):
                problems.append(
                    Problem(
                        toml_rel,
                        line,
                        settings.entrypoint,
                        "outside",
                        f"entrypoint resolves to {self._rel(path)}, outside the functions folder",
                    )
                )
                return None
            if not self._is_file(path):
                problems.append(
                    Problem(
                        toml_rel,
                        line,
                        settings.entrypoint,
                        "missing",
                        f"entrypoint {self._rel(path)} does not exist",
                    )
                )
                return None
            return self._rel(path)
        for candidate in ENTRY_FILES:
            if f"{name}/{candidate}" in self.files:
                return f"{name}/{candidate}"
        problems.append(
            Problem(name, 0, "", "no-entry", f"{name}/ has no {', '.join(ENTRY_FILES)}")
        )
        return None

    def function(self, name: str) -> FunctionGraph:
        """The module graph of the function folder `name` (cached)."""
        cached = self._graphs.get(name)
        if cached is not None:
            return cached
        problems: list[Problem] = []
        notes: list[str] = []
        settings = self._function_settings(name)
        if self._toml_problem is not None:
            problems.append(self._toml_problem)
        if not settings.enabled:
            notes.append(
                "enabled = false in config.toml: the Supabase CLI skips it, "
                "the self-hosted router still serves it"
            )
        entry = self._entry(name, problems, notes)
        entry_path = posixpath.join(self.root, entry) if entry else None
        choice, choice_notes = self._choose_map(name, entry_path)
        notes.extend(choice_notes)
        built = self._build_map(choice)
        for path, detail in built.problems:
            problems.append(Problem(self._rel(path), 0, "", "bad-config", detail))
        config_files = {self._rel(p) for p in built.config_files if self._inside(p)}
        if choice.explicit is not None:
            discovered = self._discovered(posixpath.dirname(entry_path or choice.explicit))
            inside = [self._rel(p) for p in discovered if self._inside(p)]
            config_files.update(inside)
            notes.append(
                f"the Supabase CLI resolves imports through {choice.label} ({choice.why}); "
                "the self-hosted router passes no import map, so the runtime resolves with "
                + (" and ".join(inside) if inside else "no import map at all")
            )
        modules: set[str] = set()
        if entry is not None:
            # With an unreadable map Deno loads nothing; bare specifiers are then not
            # reported one by one (the bad-config problem says it), relative ones are.
            quiet = bool(built.problems)
            modules = self._walk(name, entry, built, problems, quiet=quiet)
        static = self._static_files(name, settings, problems, notes)
        graph = FunctionGraph(
            name=name,
            entry=entry,
            modules=frozenset(modules),
            config_files=frozenset(config_files),
            static_files=frozenset(static),
            problems=tuple(dict.fromkeys(problems)),
            notes=tuple(notes),
            import_map=built.base_label if choice.explicit is None else choice.label,
        )
        self._graphs[name] = graph
        return graph

    def _walk(
        self,
        name: str,
        entry: str,
        built: _BuiltMap,
        problems: list[Problem],
        *,
        quiet: bool,
    ) -> set[str]:
        modules = {entry}
        pending = [entry]
        own: dict[tuple[str, str, str, bool, bool], _Outcome] = {}  # this function's folder
        while pending:
            rel = pending.pop()
            if posixpath.splitext(rel)[1] not in _CODE_EXTENSIONS and "." in posixpath.basename(
                rel
            ):
                continue  # JSON and Wasm modules import nothing
            for item in self._imports_of(rel):
                target = self._target(name, rel, item, built, problems, own, quiet=quiet)
                if target is not None and target not in modules:
                    modules.add(target)
                    pending.append(target)
        return modules

    def _target(
        self,
        name: str,
        rel: str,
        item: _Import,
        built: _BuiltMap,
        problems: list[Problem],
        own: dict[tuple[str, str, str, bool, bool], _Outcome],
        *,
        quiet: bool,
    ) -> str | None:
        """The local module `item` loads, or None (remote, or a problem recorded)."""
        # Files of one folder resolve a specifier alike (unless a scope names one file):
        # one outcome per folder, not per file. Outcomes in the function's own folder are
        # kept for its walk only (no other function asks for them, as a rule).
        where = posixpath.dirname(rel) + "/" if built.import_map.by_folder else rel
        key = (built.key, where, item.specifier, item.json_ok, name == ROUTER)
        cache = own if where.startswith(name + "/") else self._outcomes
        outcome = cache.get(key)
        if outcome is None:
            outcome = cache[key] = self._outcome(name, rel, item, built.import_map)
        target, problem = outcome
        if problem is not None and not (quiet and problem[0] == "unmapped"):
            problems.append(Problem(rel, item.line, item.specifier, problem[0], problem[1]))
        return target

    def _outcome(
        self, name: str, rel: str, item: _Import, import_map: ImportMap
    ) -> tuple[str | None, tuple[str, str] | None]:
        """(module, None) for a local module, (None, (reason, detail)) for a problem,
        (None, None) for a remote specifier."""
        spec = item.specifier
        try:
            url, entry = import_map.resolve(spec, posixpath.join(self.root, rel))
        except ImportMapError as e:
            return None, (e.reason, e.detail)
        if entry is not None and not self._inside(entry.origin):
            detail = f"mapped by {self._rel(entry.origin)}, which is outside the functions folder"
            return None, ("outside", detail)
        if not _is_file_url(url):
            return None, None
        path = _url_path(url)
        if entry is None and (spec.startswith("/") or spec.lower().startswith("file:")):
            return None, ("absolute", "an absolute path exists only on this machine")
        if not self._inside(path):
            return None, ("outside", f"resolves to {self._rel(path)}, outside the functions folder")
        target = self._rel(path)
        if target.split("/", 1)[0] == ROUTER and name != ROUTER:
            return None, ("router", f"resolves to {target}, inside the router main/")
        if url.endswith("/") or (target not in self.files and os.path.isdir(path)):
            hint = self._suggest(target.rstrip("/") + "/index")
            return None, ("unsupported", f"{target} is a folder: Deno imports files only{hint}")
        if target not in self.files:
            if os.path.isfile(path):
                return None, ("missing", f"{target} exists but edgesync ignores it")
            return None, ("missing", f"{target} does not exist{self._suggest(target)}")
        ext = posixpath.splitext(target)[1]
        if ext in _JSON_EXTENSIONS and not item.json_ok:
            return None, ("unsupported", 'a JSON module needs `with { type: "json" }`')
        if ext and ext not in _CODE_EXTENSIONS | _JSON_EXTENSIONS | _LEAF_EXTENSIONS:
            return None, ("unsupported", f"Deno does not import {ext} files as modules")
        return target, None

    def _suggest(self, target: str) -> str:
        stem, ext = posixpath.splitext(target)
        candidates = [target + e for e in (".ts", ".tsx", ".js", ".jsx", ".mjs", ".mts", ".d.ts")]
        if ext in (".js", ".jsx", ".mjs"):
            candidates[:0] = [stem + ".ts", stem + ".tsx", stem + ".mts"]
        candidates += [f"{target}/index.ts", f"{target}/index.js"]
        for candidate in candidates:
            if candidate in self.files:
                return f" (did you mean {candidate}?)"
        return ""

    def _static_files(
        self,
        name: str,  # noqa: ARG002 - one signature for every per-function pass
        settings: _FunctionSettings,
        problems: list[Problem],
        notes: list[str],
    ) -> set[str]:
        found: set[str] = set()
        toml_rel = self._rel(self.config_toml) if self.config_toml else "config.toml"
        for pattern in settings.static_files:
            absolute = self._supabase_path(pattern)
            if not self._inside(absolute):
                problems.append(
                    Problem(
                        toml_rel,
                        settings.lines.get("static_files", 0),
                        pattern,
                        "outside",
                        f"static_files pattern {pattern!r} is outside the functions folder",
                    )
                )
                continue
            parts = self._rel(absolute).split("/")
            go_parts = [p.replace("[^", "[!") for p in parts]
            matched = {
                f
                for f in self.files
                if f.count("/") == len(parts) - 1
                and all(fnmatchcase(s, p) for s, p in zip(f.split("/"), go_parts, strict=True))
            }
            if not matched:
                notes.append(f"static_files pattern {pattern!r} matches no file")
            found |= matched
        return found

    def discovered_configs(self, name: str) -> tuple[str, ...]:
        """The deno.json/deno.jsonc files Deno discovers from the function's entry folder up
        to the filesystem root, nearest first (absolute paths)."""
        entry = self.function(name).entry
        folder = posixpath.dirname(posixpath.join(self.root, entry or name + "/x"))
        return self._discovered(folder)

    def enabled(self, name: str) -> bool:
        """False when config.toml says `[functions.NAME] enabled = false`."""
        return self._function_settings(name).enabled

    def importers(
        self, paths: Collection[str], functions: Collection[str]
    ) -> dict[str, frozenset[str]]:
        """For each of `paths`, which of `functions` load it (module, config or static file)."""
        loads = {name: self.function(name).files for name in functions}
        return {
            path: frozenset(name for name, files in loads.items() if path in files)
            for path in paths
        }
