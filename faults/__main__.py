"""`python -m faults --kill-points 200 [--seed N] [--concurrency] [--disk-full]`.

Prints a progress line per case, then the table (kind x runs x outcome), the details of every
violation, false success and false failure, and how to reproduce each. Exit status 1 when any
violation or false success was found, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faults import report
from faults.model import KINDS
from faults.run import Options, run_suite
from faults.suite import PUSH_SCOPES


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse(argv: list[str] | None) -> tuple[Options, Path | None]:
    p = argparse.ArgumentParser(prog="python -m faults", description=__doc__.splitlines()[0])
    p.add_argument("--kill-points", type=int, default=200, help="how many (default 200)")
    p.add_argument("--seed", type=int, default=1, help="places the kill points (default 1)")
    p.add_argument("--concurrency", action="store_true", help="add the concurrency matrix")
    p.add_argument("--disk-full", action="store_true", help="add the disk-full cases (tmpfs)")
    p.add_argument("--jobs", type=int, default=1, help="sandboxes run side by side (default 1)")
    p.add_argument("--small", action="store_true", help="the lighter workload (CI sample)")
    p.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="KIND:SCOPE:POINT",
        help="run exactly this case (as printed under 'reproduce'); repeatable",
    )
    p.add_argument("--only", type=_ints, default=(), metavar="N,N", help="only these case numbers")
    p.add_argument("--kinds", default="", help=f"comma-separated subset of: {', '.join(KINDS)}")
    p.add_argument(
        "--scopes",
        default=",".join(PUSH_SCOPES),
        help=f"what the kill points push (default {','.join(PUSH_SCOPES)}; undo kills: recover)",
    )
    p.add_argument("--root", type=Path, default=None, help="work folder (kept)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--json", type=Path, default=None, help="also write the outcomes as JSON")
    a = p.parse_args(argv)
    kinds = tuple(k for k in a.kinds.split(",") if k)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        p.error(f"unknown kind(s): {', '.join(unknown)}")
    scopes = tuple(s for s in a.scopes.split(",") if s)
    if not scopes or any(s not in PUSH_SCOPES for s in scopes):
        p.error(f"--scopes takes some of: {', '.join(PUSH_SCOPES)}")
    opts = Options(
        kill_points=a.kill_points,
        seed=a.seed,
        concurrency=a.concurrency,
        disk_full=a.disk_full,
        jobs=a.jobs,
        small=a.small,
        replay=tuple(a.replay),
        only=a.only,
        kinds=kinds,
        scopes=scopes,
        root=a.root,
        keep=a.keep,
    )
    return opts, a.json


def main(argv: list[str] | None = None) -> int:
    opts, json_path = parse(argv)
    result = run_suite(opts)
    seed = None if opts.replay else opts.seed
    outcomes = result.outcomes
    print()
    print(report.table(outcomes))
    print()
    print(report.repairs(outcomes))
    for reason in result.skipped:
        print(reason)
    for what in ("false success", "violation", "false failure"):
        print()
        print(report.details(outcomes, seed, opts.kill_points, what=what))
    print()
    print(
        f"setup {result.setup_seconds:.0f}s, total {result.seconds:.0f}s "
        f"({len(outcomes)} cases, seed {opts.seed})"
    )
    if json_path is not None:
        report.write_json(json_path, outcomes, {"seed": opts.seed, "seconds": result.seconds})
    bad = [o for o in outcomes if o.outcome in ("violation", "false success")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
