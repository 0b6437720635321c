"""The local functions tree: discovery, ignore rules, exclude globs, hashing.

`scan_local` walks the functions folder once and hashes every file edgesync
compares; symlinks are followed only inside the folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from edgesync.errors import LocalTreeError
from edgesync.manifest import (
    ENTRY_FILES,
    TEST_PATTERNS,
    FileEntry,
    Kind,
    Manifest,
    classify,
    is_ignored,
)

_CHUNK = 1 << 20
_SYMLINK_HINT = (
    "edgesync uploads only files inside the functions folder; "
    "replace the link with a copy of its target, or exclude it in edgesync.yaml"
)


# --------------------------------------------------------------------------- exclude globs


def _glob_to_regex(glob: str) -> str:  # noqa: C901 - one translation loop
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

    def matches(self, path: str, *, is_dir: bool = False) -> bool:
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
class LocalTree:
    """The local functions folder as edgesync sees it."""

    root: Path
    manifest: Manifest
    functions: tuple[str, ...]
    shared: tuple[str, ...]
    root_files: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    rules: ExcludeRules = field(default_factory=ExcludeRules, compare=False)
    # Analyses of the tree (the import graph), computed on first use: the tree never changes.
    cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def function_names(self) -> frozenset[str]:
        """`functions` as a set, for membership tests."""
        return frozenset(self.functions)


def display_root(root: Path) -> str:
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
        self.shown = display_root(root)
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
        # os.open/os.read rather than open(): no file object per file (a third faster on
        # trees of small files); a file that grows meanwhile is read to its end.
        digest = hashlib.sha256()
        size = 0
        view = memoryview(self.buffer)
        try:
            fd = os.open(fs_path, os.O_RDONLY)
            try:
                mode = os.fstat(fd).st_mode & 0o777
                while n := os.readv(fd, [view]):
                    digest.update(view[:n])
                    size += n
            finally:
                os.close(fd)
        except OSError as e:
            raise LocalTreeError(f"{self.show(rel)}: cannot read: {e.strerror}") from e
        # interned: the import-scan cache holds the same 64-character strings
        self.entries.append(FileEntry(rel, sys.intern(digest.hexdigest()), size, mode))

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
            if self.rules.matches(child, is_dir=is_dir):
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

    def top_folder(self, entry: os.DirEntry[str], name: str, top: frozenset[str]) -> Kind:
        """Walk one top-level folder: a function when it holds an entry file, else shared code."""
        is_link = entry.is_symlink()
        real = self.follow(entry.path, name) if is_link else os.path.join(self.root, name)
        if real in top:
            raise self.loop_error(entry.path, name)
        files_before = len(self.entries)
        self.walk(entry.path, name, real, top | {real})
        found = {e.path for e in self.entries[files_before:]}
        has_entry = any(f"{name}/{entry_file}" in found for entry_file in ENTRY_FILES)
        kind = classify(name, is_folder=True, has_entry=has_entry)
        assert kind is not None  # dot-folders are ignored before
        return kind

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


def exclude_rules(exclude: Sequence[str] = (), *, tests: bool = False) -> ExcludeRules:
    """The config's `exclude` globs, plus the test-file patterns unless tests are deployed."""
    patterns = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    return ExcludeRules(patterns if tests else (*patterns, *TEST_PATTERNS))


def scan_local(root: Path, exclude: Sequence[str] = (), *, tests: bool = False) -> LocalTree:
    """Walk the functions folder `root`: classify its entries and hash every kept file.

    Ignored paths (`manifest.is_ignored`), `exclude` globs and (unless `tests`)
    test files are left out and their folders not entered. A top-level folder is
    a function when it holds an entry file, else a folder of shared code.
    Raises `LocalTreeError` when the folder is missing, or a symlink is broken,
    loops, or leads outside the folder.
    """
    given = Path(root).expanduser()
    if not given.is_dir():
        what = "is not a folder" if given.exists() else "not found"
        raise LocalTreeError(
            f"functions folder {given} {what}",
            hint="set functions_dir in edgesync.yaml (relative to that file)",
        )
    rules = exclude_rules(exclude, tests=tests)
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
        if rules.matches(name, is_dir=is_dir):
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
        kind = scanner.top_folder(entry, name, top)
        if kind is Kind.SHARED:
            shared.append(name)
        elif kind is Kind.FUNCTION:
            functions.append(name)
    return LocalTree(
        root=scanner.root_path,
        manifest=Manifest.of(scanner.entries, folders=[*functions, *shared]),
        functions=tuple(sorted(functions)),
        shared=tuple(sorted(shared)),
        root_files=tuple(sorted(root_files)),
        warnings=tuple(scanner.warnings),
        rules=rules,
    )
