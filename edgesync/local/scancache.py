"""What the import scan found in each file, kept between runs, by content hash.

Finding the module specifiers of every file is most of the resolver's work, and
the tree scan hashes every file anyway: a file whose sha256 was scanned before
is not read or lexed again. One JSON file per functions folder, in
`$EDGESYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/edgesync`, else `~/.cache/edgesync`;
it holds only the hashes of that folder's last run, and it is tied to the code
that scanned it (a digest of the lexer's source), so a new edgesync starts
afresh. The cache is only ever a shortcut: when it is missing, unreadable or not
writable, files are scanned as if it were not there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

from edgesync.local import graph, imports
from edgesync.local.graph import Import, Imports

CACHE_ENV = "EDGESYNC_CACHE_DIR"
FORMAT = 1


def cache_dir() -> Path | None:
    """Where edgesync keeps caches on this machine (None: no home to keep them in)."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "edgesync"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "edgesync" if home else None


def _code_digest() -> str:
    """The scanning code itself: results from another version of it are not reused."""
    digest = hashlib.sha256(str(FORMAT).encode())
    for module in (imports, graph):
        with open(str(module.__file__), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def cache_file(root: Path) -> Path | None:
    """The cache of the functions folder `root`."""
    folder = cache_dir()
    if folder is None:
        return None
    return folder / f"imports-{folder_key(root)}.json"


def load(root: Path) -> dict[str, Imports]:
    """The scans kept for `root` (empty when there are none, or they cannot be read)."""
    path = cache_file(root)
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("code") != _code_digest():
            return {}
        # The same import recurs in many files: one object each (10,000 functions, 200,000
        # imports, a few hundred distinct).
        known: dict[tuple[int, str, bool], Import] = {}
        out: dict[str, Imports] = {}
        for sha, found in data["imports"].items():
            items = []
            for line, spec, json_ok in found:
                key = (int(line), sys.intern(str(spec)), bool(json_ok))
                item = known.get(key)
                if item is None:
                    item = known[key] = Import(*key)
                items.append(item)
            out[sys.intern(sha)] = tuple(items)  # the tree scan's hash strings are interned too
        return out
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}  # a shortcut only: scan again


def save(root: Path, scanned: Mapping[str, Imports], keep: Collection[str]) -> None:
    """Keep the scans of the hashes in `keep` (the folder's files now) for the next run."""
    path = cache_file(root)
    if path is None:
        return
    wanted = set(keep)
    write_json(
        path,
        {
            "code": _code_digest(),
            "imports": {
                sha: [[i.line, i.specifier, i.json_ok] for i in found]
                for sha, found in scanned.items()
                if sha in wanted
            },
        },
    )


def write_json(path: Path, data: object) -> None:
    """Write a cache file whole or not at all (a rename); a cache that cannot be written
    is no error: the next run works without it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"), ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def folder_key(root: Path) -> str:
    """A name for the caches of one functions folder."""
    return hashlib.sha256(str(root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
