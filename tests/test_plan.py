"""Pure comparison: table-tested, no I/O."""

from __future__ import annotations

from edgesync.manifest import FileEntry, Kind, Manifest
from edgesync.plan import (
    Comparison,
    Deployment,
    EntryDiff,
    Status,
    compare,
    function_states,
    selection_for,
)


def m(files: dict[str, str], folders: tuple[str, ...] = ()) -> Manifest:
    return Manifest.of([FileEntry(p, h, 1) for p, h in files.items()], folders)


LOCAL = m(
    {
        "wpp-create/index.ts": "new",
        "wpp-provision/index.ts": "p",
        "wpp-qr/index.ts": "q",
        "_shared/wpp.ts": "w2",
        "_shared/cors.ts": "c",
        "deno.json": "d",
    }
)
REMOTE = m(
    {
        "main/index.ts": "router",
        "hello/index.ts": "h",
        "wpp-create/index.ts": "old",
        "wpp-create/stale.ts": "s",
        "wpp-qr/index.ts": "q",
        "_shared/wpp.ts": "w1",
        "_shared/cors.ts": "c",
        "_shared/server-only.ts": "x",
    }
)


def by_name(comp: Comparison) -> dict[str, EntryDiff]:
    return {e.name: e for e in comp.entries}


def test_compare_everything_but_main() -> None:
    comp = compare(LOCAL, REMOTE)
    e = by_name(comp)
    assert "main" not in e
    assert e["wpp-provision"].status is Status.ADDED
    assert e["hello"].status is Status.REMOVED
    assert e["wpp-qr"].status is Status.UNCHANGED
    assert e["wpp-create"].status is Status.MODIFIED
    assert {(f.path, f.status) for f in e["wpp-create"].files} == {
        ("wpp-create/index.ts", Status.MODIFIED),
        ("wpp-create/stale.ts", Status.REMOVED),
    }
    assert e["_shared"].kind is Kind.SHARED and e["_shared"].status is Status.MODIFIED
    assert e["deno.json"].kind is Kind.ROOT and e["deno.json"].status is Status.ADDED
    assert not comp.in_sync
    # functions first, then shared, then top-level files
    assert [x.kind for x in comp.entries] == sorted(
        (x.kind for x in comp.entries), key=[Kind.FUNCTION, Kind.SHARED, Kind.ROOT].index
    )


def test_in_sync() -> None:
    same = m({"a/index.ts": "1", "_shared/x.ts": "2"})
    comp = compare(same, same)
    assert comp.in_sync and len(comp.entries) == 2


def test_empty_remote_folder_is_on_server() -> None:
    comp = compare(m({"a/index.ts": "1"}), m({}, folders=("a",)))
    assert by_name(comp)["a"].status is Status.MODIFIED


def test_selection_brings_only_imported_shared_files() -> None:
    sel = selection_for(["wpp-create"], {"wpp-create": {"_shared/wpp.ts"}})
    comp = compare(LOCAL, REMOTE, sel)
    e = by_name(comp)
    assert set(e) == {"wpp-create", "_shared"}
    assert [f.path for f in e["_shared"].files] == ["_shared/wpp.ts"]


def test_selection_named_shared_is_whole() -> None:
    sel = selection_for(["wpp-create", "_shared"], {"wpp-create": {"_shared/wpp.ts"}})
    assert sel["_shared"] is None
    comp = compare(LOCAL, REMOTE, sel)
    assert len(by_name(comp)["_shared"].files) == 3


def test_main_only_when_named() -> None:
    comp = compare(LOCAL, REMOTE, selection_for(["main"], {}))
    assert by_name(comp)["main"].status is Status.REMOVED


def test_function_states() -> None:
    deps = {"wpp-create": {"_shared/wpp.ts"}, "wpp-qr": {"_shared/cors.ts"}}
    states = {
        s.name: s
        for s in function_states(LOCAL, REMOTE, ("wpp-create", "wpp-provision", "wpp-qr"), deps)
    }
    assert "main" not in states
    assert states["wpp-provision"].state is Deployment.NOT_DEPLOYED
    assert states["hello"].state is Deployment.ONLY_ON_SERVER
    assert states["wpp-qr"].state is Deployment.IN_SYNC
    assert states["wpp-create"].state is Deployment.DIFFERS
    assert states["wpp-create"].changed_deps == ("_shared/wpp.ts",)


def test_function_differs_through_shared_only() -> None:
    local = m({"f/index.ts": "1", "_shared/a.ts": "new"})
    remote = m({"f/index.ts": "1", "_shared/a.ts": "old"})
    (state,) = function_states(local, remote, ("f",), {"f": {"_shared/a.ts"}})
    assert state.state is Deployment.DIFFERS and state.changed_files == ()


def test_remote_function_without_entry_file() -> None:
    (state,) = function_states(m({}), m({"f/readme.md": "1"}), (), {})
    assert state.state is Deployment.ONLY_ON_SERVER and not state.remote_has_entry
