"""What a functions folder holds, the same shape for the local tree and the server.

The layout rules from the self-hosted setup live here too, so that both sides
classify and ignore paths identically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

FUNCTION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
ENTRY_FILES = ("index.ts", "index.js", "index.tsx", "index.jsx", "index.mjs")
ROUTER = "main"
# Never compared, uploaded or deleted, at any depth.
IGNORED_NAMES = frozenset({".git", "node_modules", ".DS_Store"})


class Kind(str, Enum):
    """What a top-level entry of the functions folder is."""

    FUNCTION = "function"
    SHARED = "shared"
    ROOT = "root"


@dataclass(frozen=True)
class FileEntry:
    """One regular file: path relative to the functions folder, '/'-separated."""

    path: str
    sha256: str
    size: int


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
        files = {e.path: e for e in entries}
        tops = {p.split("/", 1)[0] for p in files if "/" in p}
        return cls(MappingProxyType(dict(sorted(files.items()))), frozenset(tops | set(folders)))

    def under(self, top: str) -> dict[str, FileEntry]:
        """The files of one top-level entry (a folder, or a top-level file)."""
        prefix = top + "/"
        return {p: e for p, e in self.files.items() if p == top or p.startswith(prefix)}


def is_ignored(path: str) -> bool:
    """True for paths edgesync never compares or touches (.env, .git, dot-entries at top)."""
    parts = path.split("/")
    if parts[0].startswith("."):
        return True
    return any(p in IGNORED_NAMES or p == ".env" or p.startswith(".env.") for p in parts)


def classify(top: str, *, is_folder: bool) -> Kind | None:
    """The kind of a top-level name, or None when it is not ours to handle.

    `main` (the router) is a function by name but is excluded by callers unless
    named explicitly; folders whose names are not valid function names and do
    not start with `_` are None.
    """
    if top.startswith("."):
        return None
    if not is_folder:
        return Kind.ROOT
    if top.startswith("_"):
        return Kind.SHARED
    if FUNCTION_NAME_RE.match(top):
        return Kind.FUNCTION
    return None


def top_of(path: str) -> str:
    """The top-level entry a path belongs to."""
    return path.split("/", 1)[0]
