"""The workload: an OLD and a NEW version of a functions folder, generated deterministically.

Six functions, three of them with MB-sized files, plus `_shared/` with ~160 small modules the
functions import by relative path (`import '../_shared/x017.ts'`), some transitively. The server
is seeded with OLD; the cases push NEW (or roll back to OLD).

    alpha    changed index, a changed 2 MB blob, imports x000-x029 (some changed)
    bravo    changed index, a file removed and one added (mirror deletes), imports x020-x059
    charlie  changed index, an unchanged 1 MB file (kept on the server, not uploaded)
    delta    changed index and a changed 1.5 MB file, imports x060-x099
    echo     its own files unchanged: only shared modules it imports changed (x100-x139)
    foxtrot  new: absent from OLD; imports x140-x159 (x150-x159 are new too)
    hello    the sandbox's own sample function, identical on both sides (never touched)
    legacy   only in OLD (server-only: `push --prune` deletes it)
    _shared/gone/*  only in OLD (`--prune` deletes them)

`Workload.small()` is a lighter variant (the CI sample): the same shape, smaller files.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SHARED = "_shared"
ROUTER = "main"
HELLO = "hello"
SERVER_ONLY = "legacy"
NEW_FUNCTION = "foxtrot"
FUNCTIONS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
IMPORT_RE = re.compile(r"""import\s+['"]([^'"]+)['"]""")

Files = dict[str, bytes]  # path relative to the functions folder -> content


def _blob(seed: str, size: int) -> bytes:
    """`size` pseudo-random bytes, the same for the same seed."""
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    rng = random.Random(block)
    while len(out) < size:
        out += rng.randbytes(min(65536, size - len(out)))
    return bytes(out)


def _shared_module(i: int, version: str, upto: int) -> bytes:
    lines = [f"// shared module {i:03d} ({version})"]
    if i % 10 == 0 and i + 1 < upto:  # transitive imports: x010 -> x011, ...
        lines.append(f"import './x{i + 1:03d}.ts'")
    if i % 25 == 0:
        lines.append("import './util/strings.ts'")
    lines.append(f"export const x{i:03d} = '{version}-{i}'")
    return ("\n".join(lines) + "\n").encode()


def _index(name: str, version: str, imports: Iterable[int]) -> bytes:
    lines = [f"// {name} ({version})"]
    lines += [f"import '../{SHARED}/x{i:03d}.ts'" for i in imports]
    lines.append(f"Deno.serve(() => new Response('{name} {version}'))")
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Sizes:
    """File sizes of a workload variant."""

    alpha_blob: int
    charlie_model: int
    delta_data: int
    shared_old: int  # x000 .. x{shared_old-1} exist in OLD
    shared_new: int  # x000 .. x{shared_new-1} exist in NEW


FULL = Sizes(2 << 20, 1 << 20, 3 << 19, 150, 160)
SMALL = Sizes(1 << 20, 256 << 10, 512 << 10, 100, 110)


def _imports(sizes: Sizes) -> dict[str, range]:
    n = sizes.shared_new
    step = n // 8
    return {
        "alpha": range(0, 2 * step - 2),
        "bravo": range(step, 3 * step),
        "charlie": range(2 * step, 3 * step + 4),
        "delta": range(3 * step, 5 * step),
        "echo": range(5 * step, 7 * step),
        "foxtrot": range(7 * step, n),
    }


def _shared_files(version: str, count: int, changed: Mapping[int, bool]) -> Files:
    files: Files = {}
    for i in range(count):
        tag = "new" if version == "new" and changed.get(i, False) else "old"
        files[f"{SHARED}/x{i:03d}.ts"] = _shared_module(i, tag, count)
    util = "new" if version == "new" else "old"
    files[f"{SHARED}/util/strings.ts"] = f"export const trim = '{util}'\n".encode()
    return files


def generate(sizes: Sizes) -> tuple[Files, Files, Files]:
    """(OLD, NEW, PRUNABLE): the functions folder's versions, and what only the server has."""
    imports = _imports(sizes)
    # every third shared module changes; those past shared_old are new files
    changed = {i: i % 3 == 0 or i >= sizes.shared_old for i in range(sizes.shared_new)}
    old: Files = {}
    new: Files = {}
    old.update(_shared_files("old", sizes.shared_old, changed))
    new.update(_shared_files("new", sizes.shared_new, changed))
    prunable: Files = {
        f"{SHARED}/gone/g{k}.ts": f"export const g{k} = 'gone'\n".encode() for k in range(3)
    }
    # the functions
    for name in FUNCTIONS:
        if name != NEW_FUNCTION:
            old_imports = [i for i in imports[name] if i < sizes.shared_old]
            old[f"{name}/index.ts"] = _index(name, "old", old_imports)
        new[f"{name}/index.ts"] = _index(name, "new", imports[name])
    old["echo/index.ts"] = new["echo/index.ts"] = _index("echo", "same", imports["echo"])
    old["alpha/assets/blob.bin"] = _blob("alpha-old", sizes.alpha_blob)
    new["alpha/assets/blob.bin"] = _blob("alpha-new", sizes.alpha_blob)
    old["alpha/README.md"] = new["alpha/README.md"] = b"# alpha\n"
    old["bravo/lib/util.ts"] = new["bravo/lib/util.ts"] = b"export const u = 1\n"
    old["bravo/lib/old.ts"] = b"export const removed = true\n"
    new["bravo/lib/new.ts"] = b"export const added = true\n"
    model = _blob("charlie-model", sizes.charlie_model)
    old["charlie/data/model.json"] = new["charlie/data/model.json"] = model
    old["delta/data.bin"] = _blob("delta-old", sizes.delta_data)
    new["delta/data.bin"] = _blob("delta-new", sizes.delta_data)
    old["echo/config.ts"] = new["echo/config.ts"] = b"export const config = {}\n"
    new["foxtrot/handler.ts"] = b"export const handler = 'new'\n"
    prunable[f"{SERVER_ONLY}/index.ts"] = b"// legacy (server only)\nDeno.serve(() => 1)\n"
    return old, new, prunable


def dependencies(files: Files, function: str) -> frozenset[str]:
    """The shared files a function of `files` imports, transitively."""
    seen: set[str] = set()
    pending = [p for p in files if p.startswith(function + "/") and p.endswith(".ts")]
    while pending:
        path = pending.pop()
        folder = path.rsplit("/", 1)[0]
        for spec in IMPORT_RE.findall(files[path].decode()):
            parts: list[str] = folder.split("/")
            for part in spec.split("/"):
                if part == "..":
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            target = "/".join(parts)
            if target in files and not target.startswith(function + "/") and target not in seen:
                seen.add(target)
                pending.append(target)
    return frozenset(seen)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Workload:
    """OLD and NEW as path -> sha256, and the files themselves."""

    old: Files
    new: Files
    prunable: Files = field(default_factory=dict)  # only on the server, in --prune cases

    @classmethod
    def build(cls, sizes: Sizes = FULL, hello: Files | None = None) -> Workload:
        """The generated versions; `hello` (a function identical on both sides) added to both."""
        old, new, prunable = generate(sizes)
        extra = dict(hello or {})
        return cls({**old, **extra}, {**new, **extra}, prunable)

    def version(self, which: str) -> Files:
        """old, new, or old+prunable ("old-prunable")."""
        if which == "old-prunable":
            return {**self.old, **self.prunable}
        return self.old if which == "old" else self.new

    def hashes(self, which: str) -> dict[str, str]:
        return {p: digest(b) for p, b in self.version(which).items()}

    def function(self, which: str, name: str) -> dict[str, str]:
        """path -> sha256 of one function folder in OLD or NEW ({} when absent)."""
        return {p: h for p, h in self.hashes(which).items() if p.startswith(name + "/")}

    def deps(self, name: str) -> frozenset[str]:
        """Shared files `name` imports in NEW."""
        return dependencies(self.new, name)

    @property
    def functions(self) -> tuple[str, ...]:
        """Every function folder in OLD or NEW (not `main`)."""
        names = {p.split("/", 1)[0] for p in (*self.old, *self.new)}
        return tuple(sorted(n for n in names if not n.startswith("_")))

    @property
    def total_bytes(self) -> int:
        return sum(len(b) for b in self.new.values())


def write_tree(files: Mapping[str, bytes], root: Path, *, clean: bool = False) -> None:
    """Write `files` below `root` (emptied first when `clean`)."""
    if clean and root.exists():
        shutil.rmtree(root)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
