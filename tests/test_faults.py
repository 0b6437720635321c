"""The CI sample of the fault-injection suite (`make faults` runs the full one), and one
deterministic reproduction per problem the suite found (`faults/repro.py`).

30 seeded kill points across every kind (client SIGKILL, connection cut each way, SIGKILL of
each server process: the session shell, its tar, apply.sh, undo.sh, the whole process group),
on the small workload, two sandboxes side by side. After each: the invariants of
`faults/judge.py`, the lock visible and clearable, the next push converging. No violation and
no false success may be found; the table and every finding are in the failure message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faults import report, repro
from faults.model import KINDS
from faults.rig import Rig
from faults.run import Options, run_suite
from faults.workload import SMALL
from sandbox.server import SSHD

KILL_POINTS = 30
SEED = 7
SCOPES = ("all", "one", "rollback")  # make faults also pushes with --prune and a new function
KILL_KINDS = [k for k in KINDS if k not in ("concurrency", "disk-full")]


def test_fault_injection_sample(tmp_path: Path) -> None:
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: the fault-injection sample needs OpenSSH's server")
    lines: list[str] = []
    result = run_suite(
        Options(
            kill_points=KILL_POINTS,
            seed=SEED,
            small=True,
            jobs=2,
            scopes=SCOPES,
            root=tmp_path / "faults",
        ),
        log=lines.append,
    )
    outcomes = result.outcomes
    text = "\n".join(
        [
            *lines,
            "",
            report.table(outcomes),
            report.repairs(outcomes),
            report.details(outcomes, SEED, KILL_POINTS, what="false success"),
            report.details(outcomes, SEED, KILL_POINTS, what="violation"),
            f"{result.seconds:.0f}s",
        ]
    )
    print(text)
    assert len(outcomes) == KILL_POINTS, text
    assert {o.case.kind for o in outcomes} == set(KILL_KINDS), text
    # a kill can miss a process that already ended; most must land
    assert sum(o.landed for o in outcomes) >= KILL_POINTS * 2 // 3, text
    bad = [o for o in outcomes if o.outcome in ("violation", "false success")]
    assert not bad, text


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: the reproductions need OpenSSH's server")
    with Rig(tmp_path_factory.mktemp("repro"), SMALL) as r:
        yield r


@pytest.mark.parametrize("name", list(repro.SCENARIOS))
def test_reproduction(rig: Rig, name: str) -> None:
    """One fault at one exact point of the protocol; nothing may be left wrong."""
    try:
        problems = repro.SCENARIOS[name](rig)
    except repro.CannotMount as e:
        pytest.skip(str(e))
    assert not problems, f"{name}: {repro.SCENARIOS[name].__doc__}\n" + "\n".join(problems)
