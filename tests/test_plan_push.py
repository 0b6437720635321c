"""`plan_push`, table-tested: what a push replaces, puts, keeps and deletes. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest

from edgesync.manifest import FileEntry, Manifest
from edgesync.plan import PushPlan, plan_push


def m(files: dict[str, str], folders: tuple[str, ...] = ()) -> Manifest:
    return Manifest.of([FileEntry(p, h, 1) for p, h in files.items()], folders)


LOCAL = m(
    {
        "fn-a/index.ts": "a2",  # modified
        "fn-a/same.ts": "s",  # unchanged: kept on the server, not sent
        "fn-b/index.ts": "b",  # new function
        "fn-c/index.ts": "c",  # in sync
        "_shared/x.ts": "x2",  # modified, imported by fn-a
        "_shared/y.ts": "y",  # new, imported by fn-b
        "_shared/unused.ts": "u2",  # modified, imported by nobody
        "deno.json": "d2",  # top-level file, modified
    }
)
REMOTE = m(
    {
        "main/index.ts": "router",
        "fn-a/index.ts": "a1",
        "fn-a/same.ts": "s",
        "fn-a/gone.ts": "g",  # deleted locally: goes with the mirror
        "fn-c/index.ts": "c",
        "legacy/index.ts": "l",  # only on the server
        "_shared/x.ts": "x1",
        "_shared/unused.ts": "u1",
        "_shared/server-only.ts": "so",
        "deno.json": "d1",
        "old.json": "o",  # top-level, only on the server
    }
)
FUNCTIONS = ("fn-a", "fn-b", "fn-c")
DEPS: Mapping[str, Collection[str]] = {
    "fn-a": {"_shared/x.ts"},
    "fn-b": {"_shared/y.ts"},
    "fn-c": set(),
}


def summary(plan: PushPlan) -> dict[str, object]:
    return {
        "functions": {
            f.name: (f.existed, sorted(f.upload), sorted(f.keep), sorted(f.delete))
            for f in plan.functions
        },
        "puts": {p.path: p.existed for p in plan.puts},
        "deletes": {d.path: d.is_function for d in plan.deletes},
    }


CASES = [
    (
        "one function brings only the shared files it imports",
        ["fn-a"],
        False,
        {
            "functions": {
                "fn-a": (True, ["fn-a/index.ts"], ["fn-a/same.ts"], ["fn-a/gone.ts"]),
            },
            "puts": {"_shared/x.ts": True},
            "deletes": {},
        },
    ),
    (
        "a new function and a new shared file",
        ["fn-b"],
        False,
        {
            "functions": {"fn-b": (False, ["fn-b/index.ts"], [], [])},
            "puts": {"_shared/y.ts": False},
            "deletes": {},
        },
    ),
    (
        "a function in sync: nothing",
        ["fn-c"],
        False,
        {"functions": {}, "puts": {}, "deletes": {}},
    ),
    (
        "no names: every difference, shared and top-level files too, nothing deleted",
        [],
        False,
        {
            "functions": {
                "fn-a": (True, ["fn-a/index.ts"], ["fn-a/same.ts"], ["fn-a/gone.ts"]),
                "fn-b": (False, ["fn-b/index.ts"], [], []),
            },
            "puts": {
                "_shared/unused.ts": True,
                "_shared/x.ts": True,
                "_shared/y.ts": False,
                "deno.json": True,
            },
            "deletes": {},
        },
    ),
    (
        "--prune: server-only functions and files go too, never main/",
        [],
        True,
        {
            "functions": {
                "fn-a": (True, ["fn-a/index.ts"], ["fn-a/same.ts"], ["fn-a/gone.ts"]),
                "fn-b": (False, ["fn-b/index.ts"], [], []),
            },
            "puts": {
                "_shared/unused.ts": True,
                "_shared/x.ts": True,
                "_shared/y.ts": False,
                "deno.json": True,
            },
            "deletes": {"_shared/server-only.ts": False, "legacy": True, "old.json": False},
        },
    ),
    (
        "a named shared folder is whole; --prune deletes its server-only files",
        ["_shared"],
        True,
        {
            "functions": {},
            "puts": {"_shared/unused.ts": True, "_shared/x.ts": True, "_shared/y.ts": False},
            "deletes": {"_shared/server-only.ts": False},
        },
    ),
    (
        "a named top-level file",
        ["deno.json"],
        False,
        {"functions": {}, "puts": {"deno.json": True}, "deletes": {}},
    ),
]


@pytest.mark.parametrize(("why", "names", "prune", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_push_table(
    why: str, names: list[str], prune: bool, expected: dict[str, object]
) -> None:
    plan = plan_push(LOCAL, REMOTE, FUNCTIONS, names, DEPS, prune=prune)
    assert summary(plan) == expected, why


def test_plan_shows_only_what_will_happen() -> None:
    # unchanged files are kept on the server, not shown; untouched entries are left out
    plan = plan_push(LOCAL, REMOTE, FUNCTIONS, ["fn-a"], DEPS)
    shown = {e.name: [(f.path, f.status.value) for f in e.files] for e in plan.comparison.entries}
    assert shown == {
        "fn-a": [("fn-a/gone.ts", "removed"), ("fn-a/index.ts", "modified")],
        "_shared": [("_shared/x.ts", "modified")],
    }
    assert plan.uploads == ("fn-a/index.ts", "_shared/x.ts")
    assert plan.removed == ("fn-a/gone.ts",)


def test_plan_in_sync_is_empty() -> None:
    assert plan_push(REMOTE, REMOTE, ("fn-a", "fn-c"), [], {}).empty
