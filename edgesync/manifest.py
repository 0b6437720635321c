"""What a functions folder holds, the same shape for the local tree and the server.

The layout rules from the self-hosted setup live here too, so that both sides
classify and ignore paths identically.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from types import MappingProxyType

FUNCTION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# The order in which edge-runtime looks for a function's entry file.
ENTRY_FILES = ("index.ts", "index.tsx", "index.js", "index.mjs", "index.jsx")
ROUTER = "main"
# Never compared, uploaded or deleted, at any depth; on the server they stay as they are.
IGNORED_NAMES = frozenset({".git", "node_modules", ".DS_Store"})
# Folders the server listing does not enter (their contents are kept whole).
PRUNED_NAMES = frozenset({".git", "node_modules"})
# Tests stay local unless edgesync.yaml says `deploy_tests: true` (exclude-glob syntax;
# test folders only below a function's top, so a function named `test` is still one).
TEST_PATTERNS = (
    "*_test.*",
    "*.test.*",
    "*.spec.*",
    "*/**/test/",
    "*/**/tests/",
    "*/**/__tests__/",
)


class Kind(str, Enum):
    """What a top-level entry of the functions folder is."""

    FUNCTION = "function"
    SHARED = "shared"
    ROOT = "root"


@dataclass(frozen=True, slots=True)  # slots: a tree of 50,000 files holds 100,000 of them
class FileEntry:
    """One regular file: path relative to the functions folder, '/'-separated."""

    path: str
    sha256: str
    size: int
    mode: int | None = None  # permission bits (0o644), when known


@dataclass(frozen=True)
class Manifest:
    """Every file of a functions folder by path, plus its top-level folders.

    `folders` matters for folders that hold no comparable file (an empty
    function folder on the server still exists there).
    """

    files: Mapping[str, FileEntry] = field(default_factory=lambda: MappingProxyType({}))
    folders: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[FileEntry], folders: Iterable[str] = ()) -> Manifest:
        """Build a manifest; top-level folders of the files are added to `folders`."""
        # one dict, built in path order (sorted is stable: the last of a repeated path wins)
        files = {e.path: e for e in sorted(entries, key=_path_of)}
        tops = {p.split("/", 1)[0] for p in files if "/" in p}
        return cls(MappingProxyType(files), frozenset(tops | set(folders)))

    def has_entry(self, top: str) -> bool:
        """True when the folder `top` holds an entry file (`index.ts`, …)."""
        return any(f"{top}/{e}" in self.files for e in ENTRY_FILES)

    def kind_of(self, top: str) -> Kind | None:
        """The kind of a top-level entry of this side."""
        return classify(top, is_folder=top in self.folders, has_entry=self.has_entry(top))

    @cached_property
    def _by_top(self) -> Mapping[str, dict[str, FileEntry]]:
        index: dict[str, dict[str, FileEntry]] = {}
        for path, entry in self.files.items():
            index.setdefault(path.split("/", 1)[0], {})[path] = entry
        return index

    def under(self, top: str) -> dict[str, FileEntry]:
        """The files of one top-level entry (a folder, or a top-level file)."""
        return dict(self._by_top.get(top, {}))

    def without(self, drop: Callable[[str], bool]) -> tuple[Manifest, tuple[str, ...]]:
        """This manifest without the files `drop` matches, and those files."""
        dropped = tuple(p for p in self.files if drop(p))
        if not dropped:
            return self, ()
        gone = set(dropped)
        kept = [e for p, e in self.files.items() if p not in gone]
        return Manifest.of(kept, self.folders), dropped


def _path_of(entry: FileEntry) -> str:
    return entry.path


def is_secret_like(name: str) -> bool:
    """`.env`, `.env.local`, `.envrc`, `.ENV`, `secrets.env`, …: never read, sent or hashed."""
    low = name.lower()
    return low.startswith(".env") or low.endswith(".env")


def is_ignored(path: str) -> bool:
    """True for paths edgesync never compares, uploads or deletes.

    Dot-entries at the top (`.env`, `.vscode`), `.git`, `node_modules` and
    `.DS_Store` at any depth, and anything that looks like an env file.
    """
    parts = path.split("/")
    if parts[0].startswith("."):
        return True
    return any(p in IGNORED_NAMES or is_secret_like(p) for p in parts)


def classify(top: str, *, is_folder: bool, has_entry: bool = False) -> Kind | None:
    """The kind of a top-level name, or None when it is not ours to handle (dot-entries).

    A function is a folder with a valid name and an entry file (`main`, the
    router, among them: callers leave it out unless it is named); every other
    folder holds shared code (`_shared/`, `utils/`, a folder without `index.*`).
    """
    if top.startswith("."):
        return None
    if not is_folder:
        return Kind.ROOT
    if not top.startswith("_") and FUNCTION_NAME_RE.match(top) and has_entry:
        return Kind.FUNCTION
    return Kind.SHARED


def top_of(path: str) -> str:
    """The top-level entry a path belongs to."""
    return path.split("/", 1)[0]
