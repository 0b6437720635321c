"""The suite: server images, calibration, the kill points, and the checks after each case."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from faults import judge, procs
from faults.inject import SLOW_MV_SECONDS, Windows, run_faulted
from faults.model import Case, Outcome, Scope, push_one, scopes
from faults.rig import Rig, Run, ServerState
from faults.workload import FUNCTIONS, NEW_FUNCTION

QUIESCE_SECONDS = 90.0
WINDOW_SHARE = 0.95  # kill points spread over this share of a calibrated window (runs vary)

# Share of the kill points per kind, and the scopes each kind cycles through.
WEIGHTS = {
    "client-kill": 0.20,
    "cut-c2s": 0.125,
    "cut-s2c": 0.125,
    "server-session": 0.10,
    "server-tar": 0.10,
    "server-apply": 0.15,
    "server-undo": 0.10,
    "server-group": 0.10,
}
PUSH_SCOPES = ("all", "one", "prune", "new-fn", "rollback")
KIND_SCOPES = {kind: PUSH_SCOPES for kind in WEIGHTS} | {"server-undo": ("recover",)}


class SuiteError(RuntimeError):
    """The suite cannot run (a clean push failed, an image could not be made)."""


@dataclass(frozen=True)
class Calibration:
    """A clean run of one scope through the proxy with the slow mv."""

    seconds: float
    bytes_c2s: int
    bytes_s2c: int
    windows: Windows


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split `total` over the kinds by weight (largest remainder), each kind at least one."""
    if total <= 0:
        return {}
    raw = {k: total * w / sum(weights.values()) for k, w in weights.items()}
    counts = {k: max(1, int(v)) for k, v in raw.items()}
    order = sorted(raw, key=lambda k: raw[k] - int(raw[k]), reverse=True)
    i = 0
    while sum(counts.values()) < total:
        counts[order[i % len(order)]] += 1
        i += 1
    return counts


def plan_kill_points(
    total: int, seed: int, push_scopes: tuple[str, ...] = PUSH_SCOPES
) -> list[tuple[str, str, float]]:
    """(kind, scope, fraction) per kill point: stratified over each kind's window, seeded."""
    rng = random.Random(seed)
    points: list[tuple[str, str, float]] = []
    for kind, n in allocate(total, WEIGHTS).items():
        kind_scopes = push_scopes if KIND_SCOPES[kind] == PUSH_SCOPES else KIND_SCOPES[kind]
        per_scope: dict[str, int] = {}
        for i in range(n):
            per_scope[kind_scopes[i % len(kind_scopes)]] = (
                per_scope.get(kind_scopes[i % len(kind_scopes)], 0) + 1
            )
        for scope, m in per_scope.items():
            for j in range(m):
                points.append((kind, scope, (j + rng.random()) / m))
    return points


class Suite:
    """Runs cases against one rig and checks the invariants after each."""

    def __init__(self, rig: Rig, log: Callable[[str], None] = print) -> None:
        self.rig = rig
        self.log = log
        self.scopes: dict[str, Scope] = scopes(rig.workload)
        self.calibration: dict[str, Calibration] = {}
        self.base_ids: dict[str, tuple[str, ...]] = {}

    # -- images

    def prepare(self, needed: Iterable[str]) -> None:
        """Make the server images the scopes start from."""
        rig, w = self.rig, self.rig.workload
        needed = set(needed)
        rig.seed(w.old)
        rig.save_image("old")
        self.base_ids["old"] = ()
        if "old-prunable" in needed:
            rig.seed(w.version("old-prunable"))
            rig.save_image("old-prunable")
            self.base_ids["old-prunable"] = ()
        if "released" in needed:
            rig.restore("old")
            r = rig.edgesync("push", "--yes", "--no-logs")
            if r.code != 0 or judge.split(rig.state().files)[0] != w.hashes("new"):
                raise SuiteError(f"a clean push failed (exit {r.code}): {r.last_line()}")
            rig.save_image("released")
            self.base_ids["released"] = rig.state().history_ids
        if "interrupted" in needed:
            self._interrupted_image()

    def _interrupted_image(self, attempts: int = 4) -> None:
        """A push of everything whose server side was killed mid-swap: every function swapped,
        a dozen shared files put, the others old, the journal naming it; the lock released."""
        rig = self.rig
        sc = self.scopes["recover"]
        for _ in range(attempts):
            rig.restore("old")
            rig.slow_mv(0.05)
            spawned = rig.spawn("push", "--yes", "--no-logs")
            killed = self._kill_mid_swap(spawned.process.pid)
            spawned.wait()
            rig.quiesce(QUIESCE_SECONDS)
            rig.slow_mv(None)
            st = rig.state()
            s = judge.shape(st.files, st.folders, sc.before, sc.after)
            if killed and s.whole == "half" and not s.broken and st.journal:
                r = rig.edgesync("lock", "release", "--yes")
                if rig.state().lock is None:
                    rig.save_image("interrupted")
                    self.base_ids["interrupted"] = ()
                    return
                raise SuiteError(f"cannot release the lock of a killed push: {r.last_line()}")
        raise SuiteError("could not interrupt a push in the middle of its swap")

    def _kill_mid_swap(self, client_pid: int) -> bool:
        rig = self.rig
        fd = rig.sb.functions_dir
        state = rig.sb.project_dir / ".edgesync"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            befores = list(state.glob("releases/*/before"))
            # the shared files' backups are whole (moved in by keep_backups): the functions
            # are swapped, the shared files are being put (their mv is slowed)
            done = [b for b in befores if (fd / NEW_FUNCTION).is_dir() and (b / "_shared").is_dir()]
            if done:
                session = procs.by_role(procs.scan(rig.marker)).get("session")
                if session is None:
                    return False
                # the client too: once it reconnects, it undoes a release it finds cut off
                procs.kill(client_pid)
                return procs.kill(session.pgid, group=True)
            if not _alive(client_pid):
                return False
            time.sleep(0.003)
        return False

    # -- calibration

    def calibrate(self, names: Iterable[str]) -> None:
        """One clean faulted-style run per scope: its duration, bytes and process windows."""
        for name in names:
            sc = self.scopes[name]
            self.rig.restore(sc.image)
            f = run_faulted(self.rig, sc.args, kind="clean")
            self.rig.quiesce(QUIESCE_SECONDS)
            self.rig.slow_mv(None)
            managed, _ = judge.split(self.rig.state().files)
            if f.run.code != 0 or managed != sc.after:
                raise SuiteError(
                    f"the clean run of scope {name} failed (exit {f.run.code}): {f.run.last_line()}"
                )
            self.calibration[name] = Calibration(f.run.seconds, f.bytes_c2s, f.bytes_s2c, f.windows)
            w = f.windows
            order = sorted(w.first, key=lambda r: w.first[r])
            roles = ", ".join(f"{r} {w.first[r]:.2f}-{w.last[r]:.2f}s" for r in order)
            self.log(
                f"  calibrated {name:9} {f.run.seconds:5.2f}s, {f.bytes_c2s} B up, "
                f"{f.bytes_s2c} B down; {roles}"
            )

    def place(self, points: Iterable[Case]) -> list[Case]:
        """Give kill points their concrete, replayable value from the calibrated windows."""
        cases = []
        for c in points:
            cal = self.calibration[c.scope]
            f = c.fraction * WINDOW_SHARE
            if c.kind == "client-kill":
                point = f"{f * cal.seconds:.3f}"
            elif c.kind.startswith("cut-"):
                total = cal.bytes_c2s if c.kind == "cut-c2s" else cal.bytes_s2c
                point = str(max(1, int(f * total)))
            else:
                life = cal.windows.lifetime(c.kind.removeprefix("server-")) or 0.5
                point = f"{f * life:.3f}"
            cases.append(Case(c.index, c.kind, c.scope, point, c.fraction))
        return cases

    # -- one kill point

    def run_case(self, case: Case) -> Outcome:
        rig = self.rig
        sc = self.scopes[case.scope]
        out = Outcome(case)
        started = time.monotonic()
        rig.restore(sc.image)
        f = run_faulted(rig, sc.args, kind=case.kind, value=float(case.point))
        leftovers = rig.quiesce(QUIESCE_SECONDS)
        rig.slow_mv(None)
        out.fault, out.landed = f.fault, f.landed
        out.exit_codes = (f.run.code,)
        out.summary = f.run.last_line() if not f.run.killed else "(killed)"
        if leftovers:
            out.violations.append(
                f"server processes still ran {QUIESCE_SECONDS:.0f}s after the run: "
                + "; ".join(leftovers[:3])
            )
        st = rig.state()
        verdict = judge.at_rest(
            sc, st, self.base_ids.get(sc.image, ()), f.run, lock_expected=f.holder_killed
        )
        out.at_rest = verdict.shape.whole
        out.violations += verdict.violations
        out.false_success = verdict.false_success
        out.false_failure = verdict.false_failure
        if verdict.half_pending or st.journal is not None:
            out.repaired = True
            out.notes.append(f"at rest: {verdict.shape.whole}, journal {st.journal}")
        self.clear_lock(st, out)
        self.converge(sc, out)
        out.seconds = time.monotonic() - started
        out.decide()
        return out

    # -- after every case

    def clear_lock(self, st: ServerState, out: Outcome, config: Path | None = None) -> None:
        """A lock left behind must show in `lock status` and go with `lock release`."""
        if st.lock is None:
            return
        rig = self.rig
        out.repaired = True
        status = rig.edgesync("lock", "status", "--json", config=config)
        try:
            held = status.code == 0 and json.loads(status.out).get("held") is True
        except ValueError:
            held = False
        if not held:
            out.violations.append(
                f"the lock ({st.lock}: {', '.join(st.lock_files) or 'empty'}) is not shown by "
                f"`lock status` (exit {status.code}: {status.last_line()})"
            )
        r = rig.edgesync("lock", "release", "--yes", config=config)
        out.lock_cleared = "lock release"
        if r.code != 0:
            r = rig.edgesync("lock", "release", "--yes", "--force", config=config)
            out.lock_cleared = "lock release --force"
        project = _project_of(rig, config)
        if rig.state(project).lock is not None:
            out.violations.append(
                f"`lock release` did not clear the lock (exit {r.code}: {r.last_line()})"
            )
            lock = project / ".edgesync" / "lock"
            shutil.rmtree(lock) if lock.is_dir() and not lock.is_symlink() else lock.unlink()

    def converge(
        self, sc: Scope, out: Outcome, config: Path | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        """The next plain push repairs whatever was left, and diff then finds nothing."""
        rig = self.rig
        args = ("push", "--yes", "--no-logs", *(("--prune",) if sc.prune else ()), *extra)
        r = rig.edgesync(*args, config=config)
        if r.code != 0:
            out.violations.append(f"the next push failed: exit {r.code}: {r.last_line()}")
        text = r.text()
        if "interrupted" in text or "was complete" in text:
            out.repaired = True
            out.notes.append("next push: " + _line_with(text, ("interrupted", "was complete")))
        d = rig.edgesync("diff", "--exit-code", config=config)
        if d.code != 0:
            out.violations.append(
                f"`diff --exit-code` after the next push: exit {d.code}: {d.last_line()}"
            )
        st = rig.state(_project_of(rig, config))
        managed, fixed = judge.split(st.files)
        want = rig.workload.hashes("new")
        if managed != want:
            s = judge.shape(st.files, st.folders, sc.before, want)
            out.violations.append(
                "after the next push the server is not the local tree: "
                + "; ".join(s.broken or (s.detail,))
            )
        if fixed != judge.FIXED:
            out.violations.append("after the next push main/ or .env differ")
        if st.journal or st.lock or st.bad_history:
            out.violations.append(
                f"after the next push: journal {st.journal}, lock {st.lock}, "
                f"unreadable history {list(st.bad_history)}"
            )

    # -- concurrency

    def run_concurrency(self, case: Case) -> Outcome:
        rig, w = self.rig, self.rig.workload
        out = Outcome(case)
        started = time.monotonic()
        n = int(case.point.split("x")[0])
        wait = case.point.endswith("+wait")
        if case.scope == "same":
            names = ["bravo"] * n
        elif case.scope == "new-fn":
            names = [NEW_FUNCTION] * n
        else:
            names = [f for f in FUNCTIONS if f != NEW_FUNCTION][:n]
        old = w.hashes("old")
        union = old
        for name in dict.fromkeys(names):
            union = push_one(union, w, name)
        rig.restore("old")
        rig.slow_mv(SLOW_MV_SECONDS)
        extra = ("--lock-wait", "60") if wait else ()
        spawned = [rig.spawn("push", name, "--yes", "--no-logs", *extra) for name in names]
        runs = [s.wait() for s in spawned]
        leftovers = rig.quiesce(QUIESCE_SECONDS)
        rig.slow_mv(None)
        out.exit_codes = tuple(r.code for r in runs)
        out.fault = f"{n} concurrent pushes of {', '.join(dict.fromkeys(names))}" + (
            " with --lock-wait 60" if wait else ""
        )
        out.summary = "; ".join(sorted({f"{r.code}: {r.last_line()[:120]}" for r in runs}))[:400]
        if leftovers:
            out.violations.append("server processes still ran: " + "; ".join(leftovers[:3]))
        st = rig.state()
        self._judge_concurrent(st, names, runs, union, wait=wait, out=out)
        self.clear_lock(st, out)
        self.converge(self.scopes["all"], out)
        out.seconds = time.monotonic() - started
        out.decide()
        return out

    def _judge_concurrent(
        self,
        st: ServerState,
        names: list[str],
        runs: list[Run],
        union: dict[str, str],
        *,
        wait: bool,
        out: Outcome,
    ) -> None:
        w = self.rig.workload
        old = w.hashes("old")
        s = judge.shape(st.files, st.folders, old, union)
        out.at_rest = s.whole
        out.violations += s.broken
        managed, _ = judge.split(st.files)
        new = w.hashes("new")
        for name, run in zip(names, runs, strict=True):
            mine = push_one(old, w, name)
            missing = [p for p in mine if mine[p] != old.get(p) and managed.get(p) != mine[p]]
            if run.code == 0 and missing:
                out.false_success = True
                out.violations.append(
                    f"push {name} exited 0 but {len(missing)} of its files are not new "
                    f"(e.g. {missing[0]})"
                )
            elif run.code != 0 and (wait or run.code != 6):
                out.violations.append(
                    f"push {name}{' --lock-wait 60' if wait else ''} failed: exit {run.code}: "
                    f"{run.last_line()}"
                )
        for fn in dict.fromkeys(names):
            fn_new = {p: h for p, h in new.items() if p.startswith(fn + "/")}
            fn_old = {p: h for p, h in old.items() if p.startswith(fn + "/")}
            if fn_new == fn_old:  # only its shared files change: nothing tells it is "new"
                continue
            if {p: h for p, h in managed.items() if p.startswith(fn + "/")} == fn_new:
                stale = [d for d in w.deps(fn) if managed.get(d) != new[d]]
                if stale:
                    out.violations.append(f"{fn} is new but {len(stale)} of its shared files not")
        if st.bad_history:
            out.violations.append(f"history.jsonl unreadable: {st.bad_history[0]}")
        if st.journal:
            out.violations.append(f"a journal ({st.journal}) was left with no push killed")
        if st.lock:
            out.violations.append("a lock was left behind with no push killed")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _project_of(rig: Rig, config: Path | None) -> Path:
    if config is None or config == rig.config:
        return rig.sb.project_dir
    for line in config.read_text().splitlines():
        if line.strip().startswith("project_dir:"):
            return Path(json.loads(line.split(":", 1)[1].strip()))
    return rig.sb.project_dir


def _line_with(text: str, words: tuple[str, ...]) -> str:
    for line in text.splitlines():
        if any(w in line for w in words):
            return line.strip()[:200]
    return ""
