"""Running the whole suite: rigs (one per job), images, calibration, cases, the outcomes."""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from faults.diskfull import DiskFull
from faults.model import KINDS, Case, Outcome
from faults.rig import Rig
from faults.suite import PUSH_SCOPES, Suite, plan_kill_points
from faults.workload import FULL, SMALL, Sizes

IMAGES = {"all": "old", "one": "old", "new-fn": "old", "prune": "old-prunable"}
IMAGES |= {"rollback": "released", "recover": "interrupted"}


@dataclass(frozen=True)
class Options:
    kill_points: int = 200
    seed: int = 1
    concurrency: bool = False
    disk_full: bool = False
    jobs: int = 1
    small: bool = False
    replay: tuple[str, ...] = ()
    only: tuple[int, ...] = ()
    kinds: tuple[str, ...] = ()
    scopes: tuple[str, ...] = PUSH_SCOPES  # what the kill points other than undo push
    root: Path | None = None
    keep: bool = False


@dataclass
class Result:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    seconds: float = 0.0


def parse_replay(spec: str, index: int) -> Case:
    """`kind:scope:point` (as printed in the report) -> a case."""
    kind, scope, point = spec.split(":", 2)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return Case(index, kind, scope, point)


def run_suite(opts: Options, log: Callable[[str], None] = print) -> Result:
    """Everything `python -m faults` does, returning the outcomes."""
    root = opts.root or Path(tempfile.mkdtemp(prefix="edgesync-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    say_lock = threading.Lock()

    def say(text: str) -> None:
        with say_lock:
            log(text)

    result = Result()
    started = time.monotonic()
    rigs: list[Rig] = []
    try:
        cases, points = _planned_cases(opts)
        scope_names = sorted({c.scope for c in cases if c.kind not in ("concurrency", "disk-full")})
        if any(c.kind == "disk-full" for c in cases):
            scope_names = sorted(set(scope_names) | {"all"})
        jobs = max(1, min(opts.jobs, len(cases) or 1))
        say(f"faults: {len(cases)} cases, {jobs} job(s), working in {root}")
        images = {IMAGES[s] for s in scope_names if s in IMAGES}
        suites = _start(root, jobs, SMALL if opts.small else FULL, images, say, rigs)
        first = suites[0]
        if points:
            say("calibrating (one clean run per scope through the proxy, slow mv)")
            _calibrate(suites, [s for s in scope_names if s in IMAGES])
            cases = [*first.place(points), *[c for c in cases if c not in points]]
            if opts.only:
                cases = [c for c in cases if c.index in opts.only]
        result.setup_seconds = time.monotonic() - started
        disk = [c for c in cases if c.kind == "disk-full"]
        rest = [c for c in cases if c.kind != "disk-full"]
        result.outcomes += _run_parallel(suites, rest, say, len(cases))
        if disk:
            result.outcomes += _run_disk_full(first, disk, result, say, len(cases))
        result.outcomes.sort(key=lambda o: o.case.index)
    finally:
        for rig in rigs:
            rig.stop()
        if not opts.keep and opts.root is None:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def _start(
    root: Path,
    jobs: int,
    sizes: Sizes,
    images: set[str],
    say: Callable[[str], None],
    rigs: list[Rig],
) -> list[Suite]:
    """One rig (sandbox, repository, images) per job, set up side by side."""
    suites: list[Suite] = []
    errors: list[BaseException] = []

    def setup(i: int) -> None:
        try:
            rig = Rig(root / f"w{i}", sizes)
            rigs.append(rig)
            rig.start()
            suite = Suite(rig, say)
            if i == 1:
                suite.prepare(images)
            suites.append(suite)
        except BaseException as e:  # re-raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=setup, args=(i,)) for i in range(1, jobs + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    suites.sort(key=lambda s: str(s.rig.root))
    for other in suites[1:]:  # the images hold no absolute path: every rig can use them
        other.rig.images.rmdir()
        shutil.copytree(suites[0].rig.images, other.rig.images, symlinks=True)
        other.base_ids = dict(suites[0].base_ids)
    return suites


def _calibrate(suites: list[Suite], names: list[str]) -> None:
    """Calibrate the scopes, spread over the rigs; every suite gets every calibration."""
    errors: list[BaseException] = []

    def work(suite: Suite, mine: list[str]) -> None:
        try:
            suite.calibrate(mine)
        except BaseException as e:  # re-raised below
            errors.append(e)

    threads = [
        threading.Thread(target=work, args=(suite, names[i :: len(suites)]))
        for i, suite in enumerate(suites)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    merged = {k: v for suite in suites for k, v in suite.calibration.items()}
    for suite in suites:
        suite.calibration = dict(merged)


def _planned_cases(opts: Options) -> tuple[list[Case], list[Case]]:
    """All cases, and the kill points among them still to be placed by calibration."""
    if opts.replay:
        return [parse_replay(s, i) for i, s in enumerate(opts.replay, 1)], []
    points = [
        Case(i, kind, scope, "", fraction)
        for i, (kind, scope, fraction) in enumerate(
            plan_kill_points(opts.kill_points, opts.seed, opts.scopes), 1
        )
        if not opts.kinds or kind in opts.kinds
    ]
    cases = list(points)
    n = opts.kill_points + 1
    if opts.concurrency:
        for target in ("same", "different", "new-fn"):
            for count in (2, 5):
                for wait in (False, True):
                    point = f"{count}x" + ("+wait" if wait else "")
                    cases.append(Case(n, "concurrency", target, point))
                    n += 1
    if opts.disk_full:
        cases.append(Case(n, "disk-full", "*", "*"))  # expanded once the tmpfs is set up
    return cases, points


def _run_parallel(
    suites: list[Suite], cases: list[Case], say: Callable[[str], None], total: int
) -> list[Outcome]:
    todo: queue.Queue[Case] = queue.Queue()
    for c in cases:
        todo.put(c)
    outcomes: list[Outcome] = []
    done = [0]
    lock = threading.Lock()

    def work(suite: Suite) -> None:
        while True:
            try:
                case = todo.get_nowait()
            except queue.Empty:
                return
            o = run_one(suite, case)
            with lock:
                outcomes.append(o)
                done[0] += 1
                n = done[0]
            say(progress(o, n, total))

    threads = [threading.Thread(target=work, args=(s,)) for s in suites]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def run_one(suite: Suite, case: Case) -> Outcome:
    """One case; an error of the harness itself is reported as a violation, never silently."""
    try:
        if case.kind == "concurrency":
            return suite.run_concurrency(case)
        if case.scope not in suite.scopes:
            raise ValueError(f"unknown scope {case.scope} (one of {', '.join(suite.scopes)})")
        return suite.run_case(case)
    except Exception as e:  # the harness broke: say so loudly, keep going
        o = Outcome(case, landed=False)
        o.violations.append(f"HARNESS ERROR {type(e).__name__}: {e}")
        o.decide()
        return o


def _run_disk_full(
    suite: Suite,
    placeholder: list[Case],
    result: Result,
    say: Callable[[str], None],
    total: int,
) -> list[Outcome]:
    disk = DiskFull(suite)
    outcomes: list[Outcome] = []
    try:
        reason = disk.setup()
        if reason is not None:
            result.skipped.append(f"disk-full cases skipped: {reason}")
            say(f"disk-full cases skipped: {reason}")
            return []
        given = [c for c in placeholder if c.point != "*"]
        cases = given or disk.cases(placeholder[0].index if placeholder else total)
        for n, case in enumerate(cases, 1):
            try:
                o = disk.run(case)
            except Exception as e:
                o = Outcome(case, landed=False)
                o.violations.append(f"HARNESS ERROR {type(e).__name__}: {e}")
                o.decide()
            outcomes.append(o)
            say(progress(o, n, len(cases), prefix="disk-full "))
    finally:
        disk.teardown()
    return outcomes


def progress(o: Outcome, n: int, total: int, prefix: str = "") -> str:
    codes = ",".join(str(c) for c in o.exit_codes) or "-"
    miss = "" if o.landed else " (missed)"
    return (
        f"  {prefix}[{n:>3}/{total}] #{o.case.index} {o.case.spec:<34} exit {codes:<8} "
        f"{o.outcome}{miss}  {o.seconds:.1f}s"
    )
