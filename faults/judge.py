"""The invariants, checked on the server's files after every case.

At rest (the faulted run ended and every server process of it is gone):

* every function folder is byte-identical to its version before or after the operation
  (absent counts only where a version is absent); every shared file is one of its two versions;
  no nested (`fn/fn/...`) or stray entries; `main/` and `.env` untouched;
* the whole folder is the state before ("old"), after ("new") or neither ("half"); a half state
  is allowed only while a journal names the interrupted release, and never after a failure exit
  of a push that started from a whole state ("a failure exit never leaves a half state");
* exit 0 means the server holds the operation's result and a release was recorded (else a
  "false success"); a failure exit while the release is recorded and installed is a
  "false failure"; a recorded release means the server is new; history.jsonl is readable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from faults.model import Hashes, Scope, shared_note, top, under
from faults.rig import Run, ServerState, read_files
from sandbox.server import SERVER_TREE

FIXED_TOPS = ("main", ".env")


def fixed_reference() -> Hashes:
    """`main/` and `.env` of a fresh sandbox server."""
    files, _ = read_files(SERVER_TREE / "volumes" / "functions")
    return {p: h for p, h in files.items() if top(p) in FIXED_TOPS}


FIXED = fixed_reference()


def split(files: Mapping[str, str]) -> tuple[Hashes, Hashes]:
    """(managed files, main/ and .env)."""
    managed = {p: h for p, h in files.items() if top(p) not in FIXED_TOPS}
    fixed = {p: h for p, h in files.items() if top(p) in FIXED_TOPS}
    return managed, fixed


@dataclass(frozen=True)
class Shape:
    """The at-rest state against a scope: whole old/new or half, and what is broken."""

    whole: str  # old | new | half
    broken: tuple[str, ...]  # structural violations (mixed, missing, nested, stray, fixed)
    detail: str  # which functions are old / new, and the shared files (for half states)


def _describe_function(name: str, cur: Hashes, old: Hashes, new: Hashes) -> str:
    nested = sorted({p for p in cur if p.startswith(f"{name}/{name}/")})
    if nested:
        return f"{name}/ holds a nested {name}/{name}/ ({len(nested)} files)"
    if not cur:
        return f"{name}/ is missing (it should be old or new)"
    from_old = sum(1 for p, h in cur.items() if old.get(p) == h)
    from_new = sum(1 for p, h in cur.items() if new.get(p) == h)
    foreign = sorted(p for p, h in cur.items() if old.get(p) != h and new.get(p) != h)
    text = f"{name}/ is mixed: {len(cur)} files, {from_old} match old, {from_new} match new"
    if foreign:
        text += f", {len(foreign)} neither (e.g. {foreign[0]})"
    lacking = sorted(set(new) - set(cur)) if from_new >= from_old else sorted(set(old) - set(cur))
    if lacking:
        text += f", {len(lacking)} missing (e.g. {lacking[0]})"
    return text


def _entries(
    managed: Hashes, before: Hashes, after: Hashes
) -> tuple[list[str], list[str], list[str]]:
    """(functions old, functions new, problems) per top-level entry."""
    tops = {top(p) for p in (*before, *after)}
    old_fns: list[str] = []
    new_fns: list[str] = []
    broken: list[str] = []
    for name in sorted(tops | {top(p) for p in managed}):
        cur, old, new = under(managed, name), under(before, name), under(after, name)
        if name not in tops:
            broken.append(f"stray entry {name} on the server ({len(cur)} files)")
        elif name.startswith("_"):
            for p in sorted(set(cur) | set(old) | set(new)):
                if cur.get(p) not in (old.get(p), new.get(p)):
                    state = "missing" if p not in cur else "neither old nor new"
                    broken.append(f"shared file {p} is {state}")
        elif cur == old and cur == new:
            continue
        elif cur in (old, new):
            (old_fns if cur == old else new_fns).append(name)
        else:
            broken.append(_describe_function(name, cur, old, new))
    return old_fns, new_fns, broken


def _parents(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for p in paths:
        parts = p.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def _stray_folders(
    folders: Iterable[str], managed: Hashes, before: Hashes, after: Hashes, whole: str
) -> list[str]:
    """Empty folders no version has (nested `fn/fn/`, leftovers of an undone new function)."""
    expected = _parents([*before, *after])
    if whole != "half":  # a whole state has the folders of its own version only (at the top)
        mine = before if whole == "old" else after
        expected -= {top(p) for p in (*before, *after)} - {top(p) for p in mine}
    out = []
    for folder in sorted(folders):
        if top(folder) in FIXED_TOPS or folder in expected or under(managed, folder):
            continue
        out.append(f"stray empty folder {folder}/ on the server")
    return out


def shape(
    files: Mapping[str, str],
    folders: Iterable[str],
    before: Hashes,
    after: Hashes,
) -> Shape:
    """Compare the server's files with the states before and after an operation."""
    managed, fixed = split(files)
    broken: list[str] = []
    if fixed != FIXED:
        changed = sorted(set(fixed) ^ set(FIXED) | {p for p in fixed if fixed[p] != FIXED.get(p)})
        broken.append(f"main/ or .env changed: {', '.join(changed[:3])}")
    old_fns, new_fns, problems = _entries(managed, before, after)
    broken += problems
    whole = "old" if managed == before else "new" if managed == after else "half"
    broken += _stray_folders(folders, managed, before, after, whole)
    detail = ""
    if whole == "half":
        scope = Scope("", (), "", before, after)
        detail = (
            f"functions new: {', '.join(new_fns) or '-'}; old: {', '.join(old_fns) or '-'}; "
            + shared_note(managed, scope)
        )
    return Shape(whole, tuple(broken[:8]), detail)


@dataclass(frozen=True)
class Verdict:
    """The at-rest checks of one faulted run."""

    shape: Shape
    violations: tuple[str, ...]
    false_success: bool
    false_failure: bool
    half_pending: bool  # a half state that a journal lets the next push repair


def at_rest(
    scope: Scope,
    st: ServerState,
    base_ids: Iterable[str],
    run: Run,
    *,
    lock_expected: bool,
) -> Verdict:
    """Check the invariants on the server state after `run` (see the module doc)."""
    s = shape(st.files, st.folders, scope.before, scope.after)
    v: list[str] = list(s.broken)
    new_ids = [i for i in st.history_ids if i not in set(base_ids)]
    committed = bool(new_ids)
    if st.bad_history:
        v.append(f"history.jsonl has unreadable lines: {'; '.join(st.bad_history[:2])}")
    if committed and s.whole != "new":
        v.append(f"release {new_ids[-1]} is recorded but the server is {s.whole}: {s.detail}")
    if s.whole == "new" and not committed and scope.changed:
        v.append("the server is new but no release was recorded in history.jsonl")
    false_success = run.code == 0 and not (s.whole == "new" and committed)
    if false_success:
        v.append(f"exit 0 but the server is {s.whole}" + (f": {s.detail}" if s.detail else ""))
    false_failure = run.code > 0 and s.whole == "new" and committed
    half_pending = False
    if s.whole == "half":
        if st.journal is None:
            v.append(f"half state and no journal to repair it: {s.detail}")
        elif run.code > 0 and not scope.pre_half:
            v.append(
                f"failure exit {run.code} left a half state (journal {st.journal}): {s.detail}"
            )
        else:
            half_pending = True
    if st.lock is not None and not lock_expected:
        v.append(
            f"a lock ({st.lock}: {', '.join(st.lock_files) or 'empty'}) was left behind by a "
            "session that was not killed"
        )
    return Verdict(s, tuple(v), false_success, false_failure, half_pending)
