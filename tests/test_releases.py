"""Pure release reasoning: recorded state, drift, rollback planning."""

from __future__ import annotations

from typing import Any

import pytest

from edgesync.errors import UsageError
from edgesync.history import drifted, recorded_state, rollback_plan, to_retire
from edgesync.manifest import FileEntry, Manifest


def m(files: dict[str, str]) -> Manifest:
    return Manifest.of([FileEntry(p, h, 1) for p, h in files.items()])


ID1, ID2 = "20261123T100000Z-0001", "20261123T100001Z-0002"
R1 = {
    "id": ID1,
    "ops": [
        {"op": "function", "name": "a", "existed": False},
        {"op": "put", "path": "_shared/x.ts", "existed": True},
    ],
    "before": {"_shared/x.ts": "x0"},
    "after": {"a/index.ts": "a1", "a/old.ts": "o1", "_shared/x.ts": "x1"},
}
R2 = {
    "id": ID2,
    "ops": [
        {"op": "function", "name": "a", "existed": True},
        {"op": "delete", "path": "legacy", "is_function": True},
    ],
    "before": {"a/index.ts": "a1", "a/old.ts": "o1", "legacy/index.ts": "l0"},
    "after": {"a/index.ts": "a2"},
}


def test_recorded_state_replays_whole_folders() -> None:
    rec = recorded_state([R1, R2])
    assert dict(rec.files) == {"a/index.ts": "a2", "_shared/x.ts": "x1"}  # a/old.ts mirrored away
    assert rec.functions == {"a"}


def test_drift_edited_deleted_and_added_by_hand() -> None:
    server = m({"a/index.ts": "HAND", "a/new.ts": "n", "other/index.ts": "o"})
    assert drifted(server, [R1, R2]) == ("_shared/x.ts", "a/index.ts", "a/new.ts")
    assert drifted(m({"a/index.ts": "a2", "_shared/x.ts": "x1"}), [R1, R2]) == ()
    assert drifted(server, []) == ()  # nothing recorded: nothing can drift


def test_rollback_before_first_release_uses_oldest_backup() -> None:
    server = m({"a/index.ts": "a2", "_shared/x.ts": "x1"})
    rb = rollback_plan([R1, R2], {ID1, ID2}, server, ID1)
    assert rb.undone == (ID1, ID2) and rb.before_release == ID1
    # `a` did not exist before r1: removed; `legacy` was deleted by r2: restored from r2
    assert [(d.path, d.is_function) for d in rb.plan.deletes] == [("a", True)]
    assert [(f.name, f.source) for f in rb.plan.functions] == [
        ("legacy", "releases/" + ID2 + "/before/legacy")
    ]
    assert [(p.path, p.source) for p in rb.plan.puts] == [
        ("_shared/x.ts", "releases/" + ID1 + "/before/_shared/x.ts")
    ]
    assert dict(rb.expected) == {"legacy/index.ts": "l0", "_shared/x.ts": "x0"}


def test_rollback_latest_only() -> None:
    rb = rollback_plan([R1, R2], {ID1, ID2}, m({"a/index.ts": "a2"}), None)
    assert rb.undone == (ID2,)
    assert [(f.name, f.source) for f in rb.plan.functions] == [
        ("a", "releases/" + ID2 + "/before/a"),
        ("legacy", "releases/" + ID2 + "/before/legacy"),
    ]


@pytest.mark.parametrize(
    ("history", "kept", "release", "message"),
    [
        ([], set(), None, "no release is recorded"),
        ([R1, R2], {ID1, ID2}, "r9", "no release 'r9'"),
        ([R1, R2], {ID2}, ID1, "the backups of release " + ID1 + " were removed"),
        ([{"id": "old", "files": []}], {"old"}, None, "without the details a rollback needs"),
        ([{**R1, "id": "../../etc"}], {"../../etc"}, None, "release id edgesync did not write"),
        (
            [{**R1, "ops": [{"op": "put", "path": "../../.ssh/authorized_keys", "existed": True}]}],
            {ID1},
            None,
            "unsafe path",
        ),
        (
            [{**R1, "ops": [{"op": "delete", "path": ".env", "is_function": False}]}],
            {ID1},
            None,
            "unsafe path",
        ),
    ],
)
def test_rollback_refusals(
    history: list[dict[str, Any]], kept: set[str], release: str | None, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        rollback_plan(history, kept, m({}), release)
    assert message in info.value.message


def test_retention_follows_history_order_not_names() -> None:
    history = ["b-first", "a-second", "c-third"]
    assert to_retire({"b-first", "a-second", "c-third", "orphan"}, history, "new", 2) == (
        "a-second",
        "b-first",
        "orphan",
    )
    assert to_retire(set(), [], "new", 10) == ()
