"""Every result rendered through recording Rich consoles: terminal (wide, narrow) and plain."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import MappingProxyType

import pytest
from rich.console import Console

from edgesync.history import FileRecord, Release
from edgesync.loglines import LogLine
from edgesync.manifest import Kind
from edgesync.output import Output, step_summary_markdown
from edgesync.plan import Comparison, Deployment, EntryDiff, FileChange, FunctionState, Status
from edgesync.remote.lock import LockStatus
from edgesync.results import (
    DiffResult,
    HistoryResult,
    InitResult,
    LockResult,
    LsResult,
    Patch,
    PlanPreview,
    PushResult,
    Result,
    RollbackPreview,
    RollbackResult,
)

RID = "20261125T101500Z-3f2a"
COMP = Comparison(
    (
        EntryDiff(
            "wpp-create",
            Kind.FUNCTION,
            Status.MODIFIED,
            (
                FileChange("wpp-create/index.ts", Status.MODIFIED),
                FileChange("wpp-create/old.ts", Status.REMOVED),
            ),
        ),
        EntryDiff(
            "wpp-provision",
            Kind.FUNCTION,
            Status.ADDED,
            (FileChange("wpp-provision/index.ts", Status.ADDED),),
        ),
        EntryDiff(
            "_shared",
            Kind.SHARED,
            Status.MODIFIED,
            (FileChange("_shared/wpp.ts", Status.MODIFIED),),
        ),
    ),
    changed_on_server=frozenset({"wpp-create/index.ts"}),
)
STATES = (
    FunctionState("hello", True, True, Deployment.IN_SYNC, (), (), True, last_release=RID),
    FunctionState(
        "wpp-create",
        True,
        True,
        Deployment.DIFFERS,
        ("wpp-create/index.ts",),
        ("_shared/wpp.ts",),
        True,
        changed_on_server=("wpp-create/index.ts",),
    ),
    FunctionState("wpp-provision", True, False, Deployment.NOT_DEPLOYED, (), (), True),
    FunctionState("legacy", False, True, Deployment.ONLY_ON_SERVER, (), (), False),
)
RELEASES = (
    Release(
        id=RID,
        kind="rollback",
        time="2026-11-25T10:15:00+00:00",
        user="ci",
        host="runner",
        commit="1a2b3c4d5e6f",
        rolled_back=("20261125T101400Z-0001",),
        files=(FileRecord("wpp-create", "restore"),),
    ),
    Release(
        id="20261125T101400Z-0001",
        time="2026-11-25T10:14:00+00:00",
        user="dev",
        host="laptop",
        commit="9f8e7d6c5b4a",
        dirty=True,
        functions=("wpp-create", "wpp-provision"),
        files=(FileRecord("wpp-create/index.ts", "upload", "a" * 64),),
    ),
)

RESULTS: list[tuple[Result, list[str]]] = [
    (
        DiffResult("prod", "automation@api:/srv/functions", COMP, (Patch("a.ts", "+x\n"),)),
        ["wpp-create/index.ts", "wpp-provision", "_shared/wpp.ts", "3 differ", "+x"],
    ),
    (PlanPreview("prod", "automation@api:/srv/functions", COMP), ["wpp-create/old.ts"]),
    (
        LsResult("prod", "automation@api:/srv/functions", STATES),
        ["hello", RID, "not deployed", "only on server", "edgesync push wpp-provision"],
    ),
    (
        PushResult(
            "prod",
            RID,
            functions=("wpp-create",),
            uploaded=("wpp-create/index.ts",),
            bytes_sent=2048,
            restarted=True,
        ),
        [RID, "wpp-create", "2.0 KiB"],
    ),
    (PushResult("prod", None), ["in sync: nothing to push to prod"]),
    (PushResult("prod", None, dry_run=True), ["dry run: nothing was changed"]),
    (
        RollbackResult("prod", RID, ("20261125T101400Z-0001",), "20261125T101400Z-0001"),
        [RID, "rolled back 20261125T101400Z-0001", "(not restarted)"],
    ),
    (
        HistoryResult("prod", RELEASES),
        [RID, "20261125T101400Z-0001", "ci@runner", "9f8e7d6c+dirty", "rollback of"],
    ),
    (HistoryResult("prod", ()), ["no releases recorded on prod yet"]),
    (
        LockResult(
            "prod",
            LockStatus(
                held=True,
                info=MappingProxyType({"user": "dev", "host": "laptop", "pid": 7, "since": "t"}),
                server_process="gone",
            ),
        ),
        ["locked by dev@laptop", "stale"],
    ),
    (LockResult("prod", LockStatus(held=False)), ["prod: not locked"]),
    (
        LockResult("prod", LockStatus(held=True, kind="file", readable=False)),
        ["a file named lock", "lock release"],
    ),
    (
        LockResult("prod", LockStatus(held=True, readable=False)),
        ["records no holder", "lock release"],
    ),
    (InitResult(Path("/repo/edgesync.yaml")), ["wrote /repo/edgesync.yaml"]),
]


def recording(*, terminal: bool, width: int) -> tuple[Output, Console, Console]:
    out = Console(record=True, width=width, force_terminal=terminal, file=io.StringIO())
    err = Console(record=True, width=width, force_terminal=terminal, file=io.StringIO())
    return Output(out=out, err=err), out, err


@pytest.mark.parametrize(("terminal", "width"), [(True, 120), (True, 60), (False, 120)])
@pytest.mark.parametrize(("result", "shown"), RESULTS, ids=lambda r: type(r).__name__)
def test_every_result_renders(result: Result, shown: list[str], terminal: bool, width: int) -> None:
    output, out, err = recording(terminal=terminal, width=width)
    output.render(result)
    text = out.export_text() + out.file.getvalue() + err.export_text()  # type: ignore[attr-defined]
    flat = " ".join(text.split())
    for piece in shown:
        if width >= 120:  # narrow tables may wrap a value; wide ones never do
            assert piece in flat, (piece, text)
    assert text.strip()


def test_plain_diff_is_stable_text() -> None:
    output, out, _ = recording(terminal=False, width=200)
    output.render(DiffResult("prod", "x", COMP))
    lines = out.export_text().splitlines()
    assert lines[:3] == [
        "function  wpp-create     modified",
        "  modified  wpp-create/index.ts  (changed on server)",
        "  removed   wpp-create/old.ts",
    ]


def test_json_mode_prints_only_json() -> None:
    out = Console(record=True, width=80, file=io.StringIO())
    err = Console(record=True, width=80, file=io.StringIO())
    output = Output(json_mode=True, out=out, err=err)
    for result, _ in RESULTS:
        if isinstance(result, (PlanPreview, RollbackPreview)):
            output.show(result)  # intermediate views never reach stdout in JSON mode
            continue
        out.file = io.StringIO()
        output.render(result)
        assert json.loads(out.file.getvalue()) == result.to_json()


def test_log_lines() -> None:
    output, out, _ = recording(terminal=False, width=120)
    output.log_line(LogLine("[Info] hi", "wpp-create"))
    output.log_line(LogLine("worker boot error: x", None, is_boot_error=True))
    assert out.export_text().splitlines() == ["[wpp-create] [Info] hi", "worker boot error: x"]


def test_step_summary() -> None:
    md = step_summary_markdown(
        PushResult("prod", RID, functions=("a",), uploaded=("a/index.ts",), commit="1a2b3c4d")
    )
    assert f"- release: `{RID}`" in md and "| `a/index.ts` | upload |" in md
    assert "already in sync" in step_summary_markdown(PushResult("prod", None))


HOSTILE = (
    "x\x1b]0;pwned\x07\x1b[2J[/oops][link=http://evil]hi[/link]\n::error::fake\u202eevil\udcff"
)


def hostile_results() -> list[Result]:
    h = HOSTILE
    comp = Comparison(
        (EntryDiff(h, Kind.FUNCTION, Status.MODIFIED, (FileChange(h + "/i.ts", Status.ADDED),)),),
        changed_on_server=frozenset({h + "/i.ts"}),
    )
    release = Release(
        id=h,
        kind="rollback",
        time=h,
        user=h,
        host=h,
        commit=h,
        functions=(h,),
        rolled_back=(h,),
        files=(FileRecord(h, "upload"),),
    )
    state = FunctionState(
        h, True, True, Deployment.DIFFERS, (h,), (h,), False, (h,), last_release=h, problems=(h,)
    )
    return [
        DiffResult(h, h, comp, (Patch(h, h + "\n-" + h + "\n"),)),
        PlanPreview(h, h, comp, ((h, (h,)),)),
        LsResult(h, h, (state,)),
        PushResult(h, h, functions=(h,), uploaded=(h,), deleted=(h,)),
        RollbackPreview(h, (h,), (h,), (h,)),
        RollbackResult(h, h, (h,), h),
        HistoryResult(h, (release,)),
        LockResult(h, LockStatus(held=True, info=MappingProxyType({"user": h, "host": h}))),
    ]


@pytest.mark.parametrize(("terminal", "width"), [(True, 120), (True, 40), (False, 120)])
def test_server_text_never_reaches_the_terminal_raw(terminal: bool, width: int) -> None:
    for result in hostile_results():
        output, out, err = recording(terminal=terminal, width=width)
        output.render(result)
        output.log_line(LogLine(HOSTILE, HOSTILE))
        output.error(HOSTILE, HOSTILE)
        output.warn(HOSTILE)
        text = out.file.getvalue() + err.file.getvalue()  # type: ignore[attr-defined]
        for raw in ("\x1b]", "\x07", "\x1b[2J", "\u202e", "\x1b]8;"):
            assert raw not in text, (type(result).__name__, raw)
        assert not any(line.lstrip().startswith("::") for line in text.splitlines())
        assert "\\x1b]0;pwned\\x07" in text  # shown, visibly escaped


def test_json_keeps_server_text_exact() -> None:
    out = Console(record=True, width=80, file=io.StringIO())
    Output(json_mode=True, out=out).render(PushResult(HOSTILE, HOSTILE.replace("\udcff", "")))
    assert json.loads(out.file.getvalue())["target"] == HOSTILE  # type: ignore[attr-defined]
