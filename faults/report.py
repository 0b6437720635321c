"""The table (kind x runs x outcome) and the details of every violation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from faults.model import KINDS, OUTCOMES, Outcome

COLUMNS = ("runs", "landed", *OUTCOMES)


def table(outcomes: Sequence[Outcome]) -> str:
    """One row per kind that ran, then the totals."""
    rows: list[tuple[str, list[int]]] = []
    kinds = [k for k in KINDS if any(o.case.kind == k for o in outcomes)]
    totals = [0] * len(COLUMNS)
    for kind in kinds:
        mine = [o for o in outcomes if o.case.kind == kind]
        counts = [len(mine), sum(o.landed for o in mine)]
        counts += [sum(o.outcome == name for o in mine) for name in OUTCOMES]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        rows.append((kind, counts))
    rows.append(("total", totals))
    width = max(len(k) for k, _ in rows)
    head = f"{'kind':<{width}}  " + "  ".join(f"{c:>{max(len(c), 5)}}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for kind, counts in rows:
        if kind == "total":
            lines.append("-" * len(head))
        cells = "  ".join(f"{n:>{max(len(c), 5)}}" for n, c in zip(counts, COLUMNS, strict=True))
        lines.append(f"{kind:<{width}}  {cells}")
    return "\n".join(lines)


def repairs(outcomes: Sequence[Outcome]) -> str:
    """How often a user had to clear a lock, and how often the next push repaired something."""
    released = sum(o.lock_cleared == "lock release" for o in outcomes)
    forced = sum(o.lock_cleared == "lock release --force" for o in outcomes)
    repaired = sum(any(n.startswith("next push:") for n in o.notes) for o in outcomes)
    half = sum(any(n.startswith("at rest: half") for n in o.notes) for o in outcomes)
    return (
        f"stale locks cleared before the next push: {released + forced} "
        f"(`lock release --yes`: {released}, needing --force: {forced}); "
        f"half states left for the next push: {half}; "
        f"the next push repaired an interrupted release: {repaired}"
    )


def reproduce(o: Outcome, seed: int | None, kill_points: int | None) -> str:
    exact = f"python -m faults --replay '{o.case.spec}'"
    if seed is None or o.case.kind in ("concurrency", "disk-full"):
        return exact
    seeded = f"python -m faults --kill-points {kill_points} --seed {seed} --only {o.case.index}"
    return f"{exact}   (or: {seeded})"


def details(
    outcomes: Sequence[Outcome], seed: int | None, kill_points: int | None, *, what: str
) -> str:
    """Every case with the outcome `what`, with what was found and how to reproduce it."""
    chosen = [o for o in outcomes if o.outcome == what]
    if not chosen:
        return f"{what}: none"
    lines = [f"{what} ({len(chosen)}):"]
    for o in chosen:
        lines.append(f"  #{o.case.index} {o.case.spec}")
        lines.append(f"    fault: {o.fault}")
        codes = ", ".join(str(c) for c in o.exit_codes)
        lines.append(f"    exit {codes}: {o.summary}")
        lines.append(f"    at rest: {o.at_rest}")
        for v in o.violations:
            lines.append(f"    - {v}")
        for n in o.notes:
            lines.append(f"    . {n}")
        lines.append(f"    reproduce: {reproduce(o, seed, kill_points)}")
    return "\n".join(lines)


def write_json(path: Path, outcomes: Sequence[Outcome], meta: dict[str, object]) -> None:
    data = {"meta": meta, "outcomes": [asdict(o) for o in outcomes]}
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
