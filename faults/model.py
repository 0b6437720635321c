"""What a case is: the scope pushed, the fault injected, and what came out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from faults.workload import SHARED, Workload

Hashes = dict[str, str]

KINDS = (
    "client-kill",
    "cut-c2s",
    "cut-s2c",
    "server-session",
    "server-tar",
    "server-apply",
    "server-undo",
    "server-group",
    "concurrency",
    "disk-full",
)
SERVER_ROLES = ("session", "tar", "apply", "undo", "group")
OUTCOMES = ("ok", "recovered", "false failure", "violation", "false success")


def top(path: str) -> str:
    return path.split("/", 1)[0]


def under(files: Mapping[str, str], name: str) -> Hashes:
    """The files of one top-level entry."""
    return {p: h for p, h in files.items() if p == name or p.startswith(name + "/")}


@dataclass(frozen=True)
class Scope:
    """One operation and the two states the server may be in around it.

    `before` and `after` are the functions folder (path -> sha256, without `main/` and `.env`)
    before the operation and after it succeeded. `pre_half` marks a server that already holds an
    interrupted release (the undo cases).
    """

    name: str
    args: tuple[str, ...]
    image: str
    before: Hashes
    after: Hashes
    prune: bool = False
    pre_half: bool = False

    @property
    def changed(self) -> tuple[str, ...]:
        """Paths whose content differs between before and after."""
        paths = set(self.before) | set(self.after)
        return tuple(sorted(p for p in paths if self.before.get(p) != self.after.get(p)))


def push_one(before: Hashes, w: Workload, name: str) -> Hashes:
    """The server after `push NAME`: the function mirrored, its shared imports put."""
    new = w.hashes("new")
    after = {p: h for p, h in before.items() if top(p) != name}
    after.update(under(new, name))
    for dep in w.deps(name):
        after[dep] = new[dep]
    return after


def push_all(before: Hashes, w: Workload, *, prune: bool) -> Hashes:
    """The server after `push` (every function and shared file), with or without --prune."""
    new = w.hashes("new")
    if prune:
        return dict(new)
    after = dict(new)
    local_tops = {top(p) for p in new}
    for p, h in before.items():
        if p in new:
            continue
        t = top(p)
        if t.startswith("_") or t not in local_tops:  # shared leftovers, server-only functions
            after[p] = h
    return after


def scopes(w: Workload) -> dict[str, Scope]:
    """Every scope a case can push."""
    old, new = w.hashes("old"), w.hashes("new")
    prunable = w.hashes("old-prunable")
    base = ("--yes", "--no-logs")
    return {
        "one": Scope("one", ("push", "bravo", *base), "old", old, push_one(old, w, "bravo")),
        "new-fn": Scope(
            "new-fn", ("push", "foxtrot", *base), "old", old, push_one(old, w, "foxtrot")
        ),
        "all": Scope("all", ("push", *base), "old", old, push_all(old, w, prune=False)),
        "prune": Scope(
            "prune",
            ("push", "--prune", *base),
            "old-prunable",
            prunable,
            push_all(prunable, w, prune=True),
            prune=True,
        ),
        "rollback": Scope("rollback", ("rollback", *base), "released", new, old),
        "recover": Scope(
            "recover", ("push", *base), "interrupted", old, new, prune=False, pre_half=True
        ),
    }


@dataclass(frozen=True)
class Case:
    """One kill point (or one concurrency / disk-full case)."""

    index: int
    kind: str
    scope: str
    point: str  # a replayable parameter: seconds, "c2s@BYTES", "5x --lock-wait", ...
    fraction: float = 0.0  # where in the calibrated window the point lies (0..1)

    @property
    def spec(self) -> str:
        """`kind:scope:point`, accepted by `python -m faults --replay`."""
        return f"{self.kind}:{self.scope}:{self.point}"


@dataclass
class Outcome:
    """What one case found."""

    case: Case
    outcome: str = "ok"
    landed: bool = True  # the fault happened (a kill can miss a process that already ended)
    exit_codes: tuple[int, ...] = ()
    summary: str = ""  # what the faulted run printed last
    fault: str = ""  # what was done, when
    at_rest: str = ""  # old / new / half
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    false_success: bool = False
    false_failure: bool = False
    repaired: bool = False  # the server needed the next push (or a lock release) to be whole
    lock_cleared: str = ""  # "", "release", "release --force"
    seconds: float = 0.0

    def decide(self) -> None:
        """Set `outcome` from what was found."""
        if self.false_success:
            self.outcome = "false success"
        elif self.violations:
            self.outcome = "violation"
        elif self.false_failure:
            self.outcome = "false failure"
        elif self.repaired:
            self.outcome = "recovered"
        else:
            self.outcome = "ok"


def shared_note(files: Mapping[str, str], scope: Scope) -> str:
    """How many of the scope's shared files are old / new (for half states)."""
    old = new = other = 0
    for p in scope.changed:
        if not top(p).startswith("_") or not p.startswith(SHARED):
            continue
        cur = files.get(p)
        if cur == scope.after.get(p):
            new += 1
        elif cur == scope.before.get(p):
            old += 1
        else:
            other += 1
    return f"shared files: {new} new, {old} old" + (f", {other} neither" if other else "")
