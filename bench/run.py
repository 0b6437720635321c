"""edgesync against rsync and the manual scp+ssh way, through a latency proxy. See README.md.

    python -m bench                       # the default set (make bench)
    python -m bench --quick               # sizes 10,100, 1 repetition (make bench-quick)
    python -m bench --sizes 1000 --rtt 0,80 --reps 3 --only diff,push1

The server is the sandbox (a real OpenSSH sshd on 127.0.0.1 with a stand-in docker); the
proxy (tools/netproxy.py) sits between every client and that sshd, adds the round-trip time
and counts bytes and round trips. edgesync runs as a subprocess through its CLI only.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import dataclasses
import importlib.util
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.tree import changed_text, function_name, make_tree  # noqa: E402
from sandbox import Sandbox, SandboxError, start_sandbox  # noqa: E402
from tools.netproxy import Proxy, ProxyStats  # noqa: E402

OPERATIONS = ("diff", "push1", "full", "startup", "cpu")
RUN_TIMEOUT = 900.0
ESTIMATE = "estimate"  # a tool's note: not run, estimated from its round trips at 0 ms
STARTUP_RUNS = 10


class BenchError(Exception):
    """The benchmark cannot go on (a tool failed, something is missing)."""


# --------------------------------------------------------------------------- measuring


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished process: wall time, CPU time and peak RSS of it and its waited children."""

    argv: tuple[str, ...]
    code: int
    wall: float
    cpu: float  # user + system seconds
    maxrss_kb: int
    stdout: str
    stderr: str
    net: ProxyStats | None = None
    killed: bool = False  # stopped at its time limit


def run(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Run:
    """Run ``argv`` to completion (or ``timeout`` seconds: killed); its resource usage comes
    from wait4 (this child and the children it waited for)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            process.kill()

        timer = threading.Timer(timeout or RUN_TIMEOUT, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            argv=tuple(argv),
            code=process.returncode,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            maxrss_kb=usage.ru_maxrss,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            killed=killed.is_set() and timeout is not None,
        )


def through(proxy: Proxy | None, argv: Sequence[str], env: dict[str, str]) -> Run:
    """``run`` with the proxy's counters for exactly this run (its connections closed)."""
    if proxy is None:
        return run(argv, env)
    proxy.wait_idle(5)
    proxy.reset_stats()
    result = run(argv, env)
    proxy.wait_idle(5)
    return dataclasses.replace(result, net=proxy.reset_stats())


def check(result: Run, what: str, codes: tuple[int, ...] = (0,)) -> Run:
    if result.code not in codes:
        raise BenchError(
            f"{what} failed (exit {result.code}): {shlex.join(result.argv)}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    return result


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class Row:
    """One line of the table: one operation at one size and RTT, every tool's runs."""

    op: str
    label: str
    n: int | None
    rtt: int | None
    runs: dict[str, list[Run]] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    content: tuple[int, int] | None = None  # raw bytes, tar|gzip -1 bytes

    def add(self, tool: str, result: Run) -> None:
        self.runs.setdefault(tool, []).append(result)

    def median(self, tool: str, key: Callable[[Run], float]) -> float | None:
        runs = self.runs.get(tool)
        return float(statistics.median(key(r) for r in runs)) if runs else None

    def wall(self, tool: str) -> float | None:
        return self.median(tool, lambda r: r.wall)

    def net(self, tool: str, field: str) -> float | None:
        runs = [r for r in self.runs.get(tool, []) if r.net is not None]
        if not runs:
            return None
        return float(statistics.median(getattr(r.net, field) for r in runs))


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "-"
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return f"{count:.0f}"


TOOLS = ("edgesync", "rsync", "scp")
BEFORE = "before"  # the --baseline edgesync, run beside the current one
# A tool's column title, its short name in the round-trip and wire columns.
TITLES = {"edgesync": ("edgesync", "es"), BEFORE: ("before", "before"),
          "rsync": ("rsync", "rsync"), "scp": ("scp+ssh", "scp")}  # fmt: skip


def tools_of(rows: Sequence[Row]) -> tuple[str, ...]:
    """The tools in the table: the baseline's columns only when it was run."""
    with_before = any(BEFORE in r.runs for r in rows)
    return ("edgesync", BEFORE, "rsync", "scp") if with_before else TOOLS


def header(tools: Sequence[str]) -> list[str]:
    cells = ["RTT", "operation", "N", *(TITLES[t][0] for t in tools), "es/rsync"]
    if BEFORE in tools:
        cells += ["before/rsync", "es/before"]
    cells += [f"RT {TITLES[t][1]}" for t in tools]
    cells += [f"wire {TITLES[t][1]} ↑/↓" for t in tools]
    return [*cells, "content raw/gz"]


def cpu_cell(row: Row, tool: str) -> str:
    """CPU time, peak RSS and wall time of a cpu row's tool."""
    cpu = row.median(tool, lambda r: r.cpu)
    rss = row.median(tool, lambda r: r.maxrss_kb)
    if cpu is None or rss is None:
        return "-"
    wall = fmt_time(row.wall(tool))
    if any(r.killed for r in row.runs.get(tool, [])):
        return f">{cpu:.1f}s cpu >{rss / 1024:.0f}MB (stopped at {wall})"
    return f"{cpu:.2f}s cpu {rss / 1024:.0f}MB ({wall})"


def time_cell(row: Row, zero: Row | None, tool: str) -> str:
    """A tool's median time, or its estimate when it was not run at this RTT."""
    if row.notes.get(tool) == ESTIMATE and zero is not None and row.rtt:
        w0, trips0 = zero.wall(tool), zero.net(tool, "round_trips")
        if w0 is not None and trips0 is not None:
            return f"~{fmt_time(w0 + trips0 * row.rtt / 1000)} (est.)"
    return row.notes.get(tool) or fmt_time(row.wall(tool))


def trips_cell(row: Row, zero: Row | None, tool: str) -> str:
    """Round trips counted, and at a non-zero RTT what the delay cost in round trips."""
    trips = row.net(tool, "round_trips")
    if trips is None:
        return "-"
    cell = f"{trips:.0f}"
    if row.rtt and zero is not None and zero is not row:
        w, w0 = row.wall(tool), zero.wall(tool)
        if w is not None and w0 is not None:
            cell += f" ~{(w - w0) / (row.rtt / 1000):.0f}"
    return cell


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def render_row(row: Row, zero: Row | None, tools: Sequence[str] = TOOLS) -> list[str]:
    cells = [
        "-" if row.rtt is None else f"{row.rtt} ms",
        row.label,
        "-" if row.n is None else f"{row.n:,}",
    ]
    measure: Callable[[str], float | None]
    if row.op == "cpu":
        cells += [cpu_cell(row, tool) for tool in tools]
        measure = lambda tool: row.median(tool, lambda r: r.cpu)  # noqa: E731
    else:
        cells += [time_cell(row, zero, tool) for tool in tools]
        measure = row.wall
    cells.append(ratio(measure("edgesync"), measure("rsync")))
    if BEFORE in tools:
        cells.append(ratio(measure(BEFORE), measure("rsync")))
        cells.append(ratio(measure("edgesync"), measure(BEFORE)))
    cells += [trips_cell(row, zero, tool) for tool in tools]
    for tool in tools:
        up, down = row.net(tool, "bytes_c2s"), row.net(tool, "bytes_s2c")
        cells.append("-" if up is None else f"{fmt_bytes(up)}/{fmt_bytes(down)}")
    content = row.content
    cells.append("-" if content is None else f"{fmt_bytes(content[0])}/{fmt_bytes(content[1])}")
    return cells


def render(rows: list[Row]) -> str:
    """The one table."""
    base = {(r.op, r.n): r for r in rows if r.rtt == 0}
    tools = tools_of(rows)
    titles = header(tools)
    lines = [render_row(row, base.get((row.op, row.n)), tools) for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(titles)]
    out = ["  ".join(h.ljust(w) for h, w in zip(titles, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)


LEGEND = """\
Times: medians of interleaved repetitions (edgesync, rsync, scp, edgesync, ...), wall clock of
the whole client process. es/rsync: edgesync's median / rsync's (cpu rows: CPU time).
RT: round trips the proxy counted (c2s->s2c turns, summed over connections; SSH window
adjustments during an upload count too). At a non-zero RTT, "~K" is what the delay cost in
round trips: (time at this RTT - time at 0 ms) / RTT; noisy when the times are CPU-bound.
wire: bytes client->server / server->client through the proxy (median per run).
content raw/gz (full push): the tree's size and its `tar -cf - . | gzip -1` size.
push 1 fn: one line of one file of one function changed; the restart is excluded for every
tool (edgesync --no-restart; rsync and scp only copy). full: into an empty functions folder
(and no .edgesync state); scp's runs are cut to --scp-budget seconds per RTT, "(est.)" = its
time + round trips x RTT from 0 ms. startup: edgesync column = `edgesync --version`/`--help`,
rsync column = `python -c "import typer"` in the same venv. before (with --baseline DIR):
the edgesync of DIR, run right after the current one each time; es/before = current / baseline.
cpu: `edgesync diff` and `rsync -anc` of an in-sync tree, no proxy: user+sys CPU and peak RSS
of the client and its children (wall time in parentheses); ">... (stopped at T)": stopped by
--cpu-timeout; "no cache": each edgesync run starts with an empty cache folder, "warm cache":
after one unmeasured run. Other rows: edgesync keeps its caches (import scans, pre-flight
results) under the bench's HOME across repetitions, as on a developer's machine, unless
--cold-cache."""


# --------------------------------------------------------------------------- setup


def ensure_tools() -> None:
    """rsync, ssh and scp on PATH: install what is missing when root, else say what to run."""
    missing = {
        package
        for tool, package in (
            ("rsync", "rsync"),
            ("ssh", "openssh-client"),
            ("scp", "openssh-client"),
        )
        if shutil.which(tool) is None
    }
    if not missing:
        return
    names = " ".join(sorted(missing))
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(
            f"missing: {names}; install it first (Debian/Ubuntu: sudo apt-get install {names})"
        )
    print(f"installing {names} (needed by the benchmark)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", *sorted(missing)]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(
                f"could not install {names} with apt-get (exit {done.returncode}):\n"
                f"{done.stderr[-2000:]}\ninstall it by hand and run the benchmark again"
            )
    still = [t for t in ("rsync", "ssh", "scp") if shutil.which(t) is None]
    if still:
        raise BenchError(f"still missing after apt-get: {' '.join(still)}")


def edgesync_argv() -> list[str]:
    script = Path(sys.executable).parent / "edgesync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "edgesync"]


def tree_bytes(root: Path) -> tuple[int, int]:
    """(raw size of the files, size of `tar -cf - . | gzip -1`) of a folder."""
    raw = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    tar = subprocess.Popen(["tar", "-C", str(root), "-cf", "-", "."], stdout=subprocess.PIPE)
    gz = subprocess.Popen(["gzip", "-1"], stdin=tar.stdout, stdout=subprocess.PIPE)
    assert tar.stdout is not None and gz.stdout is not None
    tar.stdout.close()
    size = 0
    while chunk := gz.stdout.read(1 << 20):
        size += len(chunk)
    if gz.wait() != 0 or tar.wait() != 0:
        raise BenchError(f"tar | gzip -1 of {root} failed")
    return raw, size


def scp_fits(rows: dict[int, Row], rtt: int, spent: float, budget: float) -> bool:
    """Whether scp's full push gets another run at ``rtt`` within ``budget`` seconds.

    scp (SFTP) waits for several round trips per file, so over a slow link a big tree takes
    minutes. Its first run at 0 ms always happens; further runs only while the budget lasts,
    judged by its last run or, before any run at this RTT, by its time and round trips at 0 ms.
    A RTT where not even one run fits is shown as an estimate from those.
    """
    row = rows[rtt]
    expected = row.wall("scp")
    if expected is None and rtt and 0 in rows:
        w0, trips0 = rows[0].wall("scp"), rows[0].net("scp", "round_trips")
        if w0 is not None and trips0 is not None:
            expected = w0 + trips0 * rtt / 1000
    if expected is None:
        return True
    if spent + expected <= budget or (rtt == 0 and spent == 0):
        return True
    if row.wall("scp") is None:
        row.notes["scp"] = ESTIMATE
    return False


@dataclasses.dataclass
class Bench:
    """Everything one benchmark run holds: the sandbox, the proxies, the trees, the configs."""

    work: Path
    sandbox: Sandbox
    proxies: dict[int, Proxy]  # RTT in ms -> proxy
    env: dict[str, str]
    known_hosts: Path
    reps: int
    verbose: bool
    baseline: list[str] | None = None  # argv of the edgesync to compare with (--baseline)
    cold_cache: bool = False  # every edgesync run starts without its caches (--cold-cache)
    trees: dict[int, Path] = dataclasses.field(default_factory=dict)
    started: float = dataclasses.field(default_factory=time.perf_counter)

    # -- commands

    @property
    def remote_dir(self) -> str:
        return str(self.sandbox.functions_dir)

    @property
    def login(self) -> str:
        return f"{self.sandbox.user}@{self.sandbox.host}"

    def ssh_options(self) -> list[str]:
        """OpenSSH options equivalent to edgesync's paramiko connection (no mux, no compression)."""
        return [
            "-F", "/dev/null",
            "-i", str(self.sandbox.client_key),
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ControlMaster=no",
            "-o", "ControlPath=none",
            "-o", "Compression=no",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip

    def rsync_e(self, port: int) -> str:
        return shlex.join(["ssh", "-p", str(port), *self.ssh_options()])

    def rsync_dry_run(self, n: int, port: int) -> list[str]:
        """rsync's no-op compare: checksums, deletions, main/ and .env left alone like edgesync."""
        return [
            "rsync", "-anc", "--delete", "--exclude=/main/", "--exclude=.env",
            "-e", self.rsync_e(port), f"{self.tree(n)}/", f"{self.login}:{self.remote_dir}/",
        ]  # fmt: skip

    def config(self, n: int, port: int) -> Path:
        """An edgesync.yaml for tree ``n`` that connects to ``port`` (a proxy or sshd)."""
        folder = self.work / "configs" / f"n{n}-p{port}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "edgesync.yaml"
        sb = self.sandbox
        path.write_text(
            f"functions_dir: {self.trees[n]}\n"
            "default_target: bench\n"
            "targets:\n"
            "  bench:\n"
            f"    host: {sb.host}\n"
            f"    port: {port}\n"
            f"    identity_file: {sb.client_key}\n"
            f"    known_hosts_file: {self.known_hosts}\n"
            f"    project_dir: {sb.project_dir}\n"
        )
        return path

    def edgesync(self, n: int, port: int, *args: str, tool: str = "edgesync") -> list[str]:
        """argv of the current edgesync, or with tool=BEFORE of the --baseline one."""
        program = self.baseline if tool == BEFORE and self.baseline else edgesync_argv()
        return [*program, "-c", str(self.config(n, port)), *args]

    @property
    def editions(self) -> tuple[str, ...]:
        """The edgesync builds measured: the current one, and the baseline when given."""
        return ("edgesync", BEFORE) if self.baseline else ("edgesync",)

    @property
    def tools(self) -> tuple[str, ...]:
        return (*self.editions, "rsync", "scp")

    def env_for(self, tool: str, *, cold: bool | None = None) -> dict[str, str]:
        """The environment of one run: with --cold-cache (or `cold`), an edgesync run gets
        an empty cache folder of its own (edgesync keeps its import scans and pre-flight
        results in $EDGESYNC_CACHE_DIR, else ~/.cache/edgesync under the bench's HOME)."""
        if tool not in self.editions or not (self.cold_cache if cold is None else cold):
            return self.env
        folder = Path(tempfile.mkdtemp(prefix="cache-", dir=self.work))
        return {**self.env, "EDGESYNC_CACHE_DIR": str(folder)}

    # -- server states

    def tree(self, n: int) -> Path:
        if n not in self.trees:
            folder = self.work / "trees" / f"n{n}" / "supabase" / "functions"
            t = time.perf_counter()
            files = make_tree(folder, n)
            self.log(f"generated {n} functions ({files} files) in {time.perf_counter() - t:.1f}s")
            self.trees[n] = folder
        return self.trees[n]

    def empty_server(self) -> None:
        """Functions folder with only main/ and .env; no edgesync state (a fresh server)."""
        functions = self.sandbox.functions_dir
        for entry in functions.iterdir():
            if entry.name in ("main", ".env"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        state = self.sandbox.project_dir / ".edgesync"
        if state.exists():
            shutil.rmtree(state)

    def server_in_sync(self, n: int) -> None:
        """The server holds exactly tree ``n`` (and main/, .env), with no edgesync state."""
        self.sandbox.reset()
        self.empty_server()
        subprocess.run(
            ["cp", "-a", f"{self.tree(n)}/.", str(self.sandbox.functions_dir)], check=True
        )

    def same_as_local(self, n: int, names: Sequence[str] | None = None) -> None:
        """Raise unless the server holds the local files (of ``names``, default all)."""
        local = self.tree(n)
        remote = self.sandbox.functions_dir
        tops = list(names) if names is not None else [p.name for p in local.iterdir()]
        for top in tops:
            for path in (local / top).rglob("*"):
                if path.is_file():
                    other = remote / path.relative_to(local)
                    if not other.is_file() or other.read_bytes() != path.read_bytes():
                        raise BenchError(
                            f"after the push, the server's {other} differs from {path}"
                        )

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[bench] {message}", file=sys.stderr, flush=True)

    def progress(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[bench] {elapsed:4.0f}s {message}", file=sys.stderr, flush=True)

    # -- operations

    def op_diff(self, n: int, rtts: list[int]) -> list[Row]:
        """No-op compare: `edgesync diff` vs `rsync -anc --delete` of an in-sync tree."""
        self.server_in_sync(n)
        rows = {rtt: Row("diff", "no-op compare (diff / rsync -anc)", n, rtt) for rtt in rtts}
        for rep in range(self.reps):
            for rtt in rtts:
                proxy = self.proxies[rtt]
                for tool in self.editions:
                    argv = self.edgesync(n, proxy.port, "diff", tool=tool)
                    es = through(proxy, argv, self.env_for(tool))
                    check(es, f"{tool} diff")
                    if "in sync" not in es.stdout:
                        raise BenchError(
                            f"{tool} diff did not find the tree in sync:\n{es.stdout[-2000:]}"
                        )
                    rows[rtt].add(tool, es)
                rs = through(proxy, self.rsync_dry_run(n, proxy.port), self.env)
                rows[rtt].add("rsync", check(rs, "rsync -anc"))
                self.log(f"diff n={n} rtt={rtt} rep={rep}: es {es.wall:.2f}s rsync {rs.wall:.2f}s")
        return list(rows.values())

    def op_push1(self, n: int, rtts: list[int]) -> list[Row]:
        """One file of one function changed: edgesync push FN vs rsync -ac vs scp."""
        self.server_in_sync(n)
        local = self.tree(n)
        name = function_name(42 if n > 42 else n // 2)
        rel = f"{name}/index.ts"
        local_file, remote_file = local / rel, self.sandbox.functions_dir / rel
        original = local_file.read_bytes()
        stamp = local_file.stat()
        label = f"push 1 fn ({name}, 1 file; no restart)"
        rows = {rtt: Row("push1", label, n, rtt) for rtt in rtts}

        def restore_local() -> None:
            local_file.write_bytes(original)
            os.utime(local_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))

        # Outside a timed push the server's file holds what edgesync pushed last (`recorded`,
        # at first the baseline): edgesync's release records stay true, so it never sees the
        # other tools' pushes as changes made outside edgesync (drift, exit 8), and every timed
        # push starts with exactly one file differing.
        recorded = original
        try:
            for rep in range(self.reps):
                for rtt in rtts:
                    proxy = self.proxies[rtt]
                    for tool in self.tools:
                        text = changed_text(original.decode(), f"{tool} {rep} {rtt}").encode()
                        local_file.write_bytes(text)
                        if tool in self.editions:
                            argv = self.edgesync(
                                n,
                                proxy.port,
                                *("push", name, "--yes", "--no-logs", "--no-restart"),
                                tool=tool,
                            )
                        elif tool == "rsync":
                            argv = [
                                "rsync", "-ac", "--relative", "-e", self.rsync_e(proxy.port),
                                f"{local}/./{name}", f"{local}/./_shared",
                                f"{self.login}:{self.remote_dir}/",
                            ]  # fmt: skip
                        else:
                            argv = [
                                "scp", "-q", "-P", str(proxy.port), *self.ssh_options(),
                                str(local_file), f"{self.login}:{remote_file}",
                            ]  # fmt: skip
                        result = check(
                            through(proxy, argv, self.env_for(tool)), f"{tool} push of {name}"
                        )
                        if remote_file.read_bytes() != text:
                            raise BenchError(
                                f"{tool} reported success but {remote_file} is not the new text"
                            )
                        rows[rtt].add(tool, result)
                        self.log(f"push1 n={n} rtt={rtt} rep={rep} {tool}: {result.wall:.2f}s")
                        if tool in self.editions:
                            recorded = text
                        else:
                            remote_file.write_bytes(recorded)
        finally:
            restore_local()
        return list(rows.values())

    def op_full(self, n: int, rtts: list[int], scp_budget: float, reps: int) -> list[Row]:
        """First push into an empty functions folder: edgesync push vs rsync -a vs scp -r."""
        local = self.tree(n)
        content = tree_bytes(local)
        rows = {rtt: Row("full", "full push (empty server)", n, rtt) for rtt in rtts}
        for row in rows.values():
            row.content = content
        entries = sorted(str(p) for p in local.iterdir())
        scp_spent: dict[int, float] = dict.fromkeys(rtts, 0.0)  # seconds scp took, per RTT
        for rep in range(reps):
            for rtt in rtts:
                proxy = self.proxies[rtt]
                for tool in self.tools:
                    if tool == "scp" and not scp_fits(rows, rtt, scp_spent[rtt], scp_budget):
                        continue
                    self.empty_server()
                    if tool in self.editions:
                        argv = self.edgesync(
                            n, proxy.port, "push", "--yes", "--no-logs", "--no-restart", tool=tool
                        )
                    elif tool == "rsync":
                        argv = ["rsync", "-a", "-e", self.rsync_e(proxy.port),
                                f"{local}/", f"{self.login}:{self.remote_dir}/"]  # fmt: skip
                    else:
                        argv = ["scp", "-q", "-r", "-P", str(proxy.port), *self.ssh_options(),
                                *entries, f"{self.login}:{self.remote_dir}/"]  # fmt: skip
                    result = check(through(proxy, argv, self.env_for(tool)), f"{tool} full push")
                    self.same_as_local(n)
                    if tool == "scp":
                        scp_spent[rtt] += result.wall
                    rows[rtt].add(tool, result)
                    self.log(f"full n={n} rtt={rtt} rep={rep} {tool}: {result.wall:.2f}s")
        self.server_in_sync(n)
        return list(rows.values())

    def op_startup(self, runs: int) -> list[Row]:
        """`edgesync --version` / `--help` vs `python -c "import typer"`, many runs, interleaved."""
        version = Row("startup", "startup: --version (vs import typer)", None, None)
        helps = Row("startup", "startup: --help (vs import typer)", None, None)
        floor = [sys.executable, "-c", "import typer"]
        programs = {"edgesync": edgesync_argv()}
        if self.baseline:
            programs[BEFORE] = self.baseline
        for _ in range(2):  # warm the page cache
            for program in programs.values():
                run([*program, "--version"], self.env)
            run(floor, self.env)
        for _ in range(runs):
            for tool, program in programs.items():
                v = check(run([*program, "--version"], self.env), f"{tool} --version")
                version.add(tool, v)
            b = check(run(floor, self.env), "python -c 'import typer'")
            version.add("rsync", b)
            helps.add("rsync", b)
            for tool, program in programs.items():
                h = check(run([*program, "--help"], self.env), f"{tool} --help")
                helps.add(tool, h)
        return [version, helps]

    def op_cpu(self, n: int, reps: int, timeout: float | None) -> list[Row]:
        """Client CPU and peak RSS of `edgesync diff` (and `rsync -anc`), no proxy: with no
        cache (every run starts with an empty cache folder: a first run, or CI), and with
        warm caches (after one unmeasured run: the import scans and pre-flight results of an
        unchanged tree). The baseline has no cache: it runs the same in both rows.

        With ``timeout``, an edgesync run that takes longer is stopped there and shown as such
        (its CPU time and peak RSS so far are lower bounds).
        """
        self.server_in_sync(n)
        port = self.sandbox.port
        rows = []
        for cold in (True, False):
            label = "client cpu/rss: diff, " + ("no cache" if cold else "warm cache")
            row = Row("cpu", label + " (no proxy)", n, None)
            warm = {**self.env, "EDGESYNC_CACHE_DIR": str(self.work / f"cache-cpu-{n}")}
            if not cold:
                run(self.edgesync(n, port, "diff"), warm, timeout=timeout)  # fills the caches
            for rep in range(reps):
                for tool in self.editions:
                    env = self.env_for(tool, cold=True) if cold else warm
                    es = run(self.edgesync(n, port, "diff", tool=tool), env, timeout=timeout)
                    if not es.killed:
                        check(es, f"{tool} diff")
                    row.add(tool, es)
                rs = run(self.rsync_dry_run(n, port), self.env)
                row.add("rsync", check(rs, "rsync -anc"))
                self.log(
                    f"cpu n={n} cold={cold} rep={rep}: es {es.cpu:.2f}s cpu rsync {rs.cpu:.2f}s"
                )
            rows.append(row)
        return rows


def client_env(home: Path) -> dict[str, str]:
    """The environment for every client: an empty HOME (no ~/.ssh), no agent, not CI."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EDGESYNC_", "GITHUB_", "SSH_")) and k not in ("CI", "GITLAB_CI")
    }
    env.update(HOME=str(home), NO_COLOR="1", COLUMNS="120", LC_ALL="C.UTF-8")
    return env


def compile_sources(*folders: Path) -> None:
    """Byte-compile the edgesync packages measured, as `pip install` does.

    Without .pyc files (a fresh worktree, or PYTHONDONTWRITEBYTECODE=1 in the environment,
    which the clients inherit) every run compiles every module it imports from source:
    ~0.1-0.3 s of each edgesync run that an installed edgesync never pays."""
    for folder in folders:
        compileall.compile_dir(str(folder), quiet=1)


def edgesync_package() -> Path:
    """The folder of the edgesync package the clients import (the same sys.path as ours)."""
    spec = importlib.util.find_spec("edgesync")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("edgesync is not importable: run the benchmark with the venv's Python")
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def bench_setup(
    work: Path, rtts: list[int], reps: int, *, verbose: bool, baseline: Path | None = None
) -> Iterator[Bench]:
    try:
        sandbox = start_sandbox(work / "sandbox")
    except SandboxError as e:
        raise BenchError(f"could not start the sandbox server: {e}") from e
    proxies: dict[int, Proxy] = {}
    try:
        for rtt in rtts:
            proxies[rtt] = Proxy(sandbox.host, sandbox.port, delay_ms=rtt / 2).start()
        known_hosts = work / "known_hosts"
        ports = [sandbox.port, *(p.port for p in proxies.values())]
        known_hosts.write_text(
            "".join(f"[{sandbox.host}]:{port} {sandbox.host_key_pub}\n" for port in ports)
        )
        home = work / "home"
        home.mkdir(exist_ok=True)
        program = baseline_program(work, baseline) if baseline is not None else None
        compile_sources(
            edgesync_package(), *([baseline / "edgesync"] if baseline is not None else [])
        )
        yield Bench(work, sandbox, proxies, client_env(home), known_hosts, reps, verbose, program)
    finally:
        for proxy in proxies.values():
            proxy.close()
        sandbox.stop()


def baseline_program(work: Path, source: Path) -> list[str]:
    """argv that runs the edgesync of the source tree ``source`` with this venv's Python, the
    way its console script would (``git archive COMMIT | tar -x -C DIR`` makes such a tree)."""
    if not (source / "edgesync" / "cli.py").is_file():
        raise BenchError(f"--baseline {source}: no edgesync/cli.py there")
    script = work / "baseline-edgesync"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(source.resolve())!r})\n"
        "from edgesync.cli import main\n"
        "sys.exit(main())\n"
    )
    return [sys.executable, str(script)]


def parse_ints(text: str) -> list[int]:
    try:
        return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None


def parse_ops(text: str) -> list[str]:
    ops = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown operation(s) {', '.join(unknown)}; choose from {', '.join(OPERATIONS)}"
        )
    return ops


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="edgesync vs rsync vs scp+ssh through a latency proxy; prints one table.",
    )
    parser.add_argument(
        "--sizes",
        type=parse_ints,
        default=None,
        help="functions per tree for diff and push1 (default 100,1000; --quick 10,100)",
    )
    parser.add_argument(
        "--full-sizes",
        type=parse_ints,
        default=None,
        help="sizes for the full push (default 1000; --quick 10,100)",
    )
    parser.add_argument(
        "--cpu-sizes",
        type=parse_ints,
        default=None,
        help="sizes for the client CPU/RSS rows (default 100,1000,10000)",
    )
    parser.add_argument(
        "--rtt", type=parse_ints, default=None, help="round-trip times in ms (default 0,80)"
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help="repetitions per measurement (default 3: 5 takes about 15 minutes)",
    )
    parser.add_argument(
        "--full-reps",
        type=int,
        default=None,
        help="repetitions for the full push (default: --reps, at most 2)",
    )
    parser.add_argument(
        "--cpu-reps",
        type=int,
        default=None,
        help="repetitions for the CPU rows (default: --reps, at most 3; 1 from 10,000)",
    )
    parser.add_argument("--startup-runs", type=int, default=STARTUP_RUNS)
    parser.add_argument(
        "--only",
        type=parse_ops,
        default=list(OPERATIONS),
        help=f"operations to run, from {','.join(OPERATIONS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: sizes 10,100 (cpu 100), 1 repetition, 5 startup runs",
    )
    parser.add_argument(
        "--scp-budget",
        type=float,
        default=None,
        help="seconds scp's full push may take in all per RTT: after its first run at 0 ms, "
        "its repetitions are cut to fit; at a RTT where none fits, its time is estimated from "
        "its time and round trips at 0 ms "
        "(default 30, --quick 10)",
    )
    parser.add_argument(
        "--cpu-timeout",
        type=float,
        default=60.0,
        help="stop an `edgesync diff` of the cpu rows after this many seconds and show "
        "lower bounds (0: no limit; default 60)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="also run the edgesync of this source tree (e.g. `git archive main | tar -x -C "
        "DIR`), interleaved with the current one: a 'before' column and es/before ratios",
    )
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="every edgesync run starts with an empty cache folder (import scans, pre-flight "
        "results): as a first run or a fresh CI job (cpu rows measure both anyway)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every measurement")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    sizes = args.sizes or ([10, 100] if quick else [100, 1000])
    rtts = sorted(set(args.rtt if args.rtt is not None else [0, 80]) | {0})  # ~K needs 0 ms
    reps = args.reps or (1 if quick else 3)
    return Settings(
        sizes=sizes,
        full_sizes=args.full_sizes or ([10, 100] if quick else [1000]),
        cpu_sizes=args.cpu_sizes or ([100] if quick else [100, 1000, 10000]),
        rtts=rtts,
        reps=reps,
        cpu_reps=args.cpu_reps,
        startup_runs=5 if quick and args.startup_runs == STARTUP_RUNS else args.startup_runs,
        only=args.only,
        scp_budget=args.scp_budget if args.scp_budget is not None else (10.0 if quick else 30.0),
        full_reps=args.full_reps or min(reps, 2),
        cpu_timeout=args.cpu_timeout or None,
        keep=args.keep,
        verbose=args.verbose,
        baseline=args.baseline,
        cold_cache=args.cold_cache,
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to measure (from the command line)."""

    sizes: list[int]
    full_sizes: list[int]
    cpu_sizes: list[int]
    rtts: list[int]
    reps: int
    cpu_reps: int | None  # None: min(reps, 3), and 1 from 10,000 functions
    startup_runs: int
    only: list[str]
    scp_budget: float
    full_reps: int
    cpu_timeout: float | None
    keep: bool
    verbose: bool
    baseline: Path | None = None
    cold_cache: bool = False

    def reps_for_cpu(self, n: int) -> int:
        if self.cpu_reps is not None:
            return self.cpu_reps
        return 1 if n >= 10_000 else min(self.reps, 3)


def measure(bench: Bench, settings: Settings) -> list[Row]:
    """Every operation of ``settings.only``, in the order of OPERATIONS."""
    rows: list[Row] = []
    rtts = settings.rtts
    for op in [o for o in OPERATIONS if o in settings.only]:
        if op == "startup":
            bench.progress(f"startup ({settings.startup_runs} runs)")
            rows += bench.op_startup(settings.startup_runs)
        elif op == "cpu":
            for n in settings.cpu_sizes:
                bench.progress(f"cpu: N={n}, {settings.reps_for_cpu(n)} reps")
                rows += bench.op_cpu(n, settings.reps_for_cpu(n), settings.cpu_timeout)
        else:
            for n in settings.full_sizes if op == "full" else settings.sizes:
                bench.progress(f"{op}: N={n}, RTT {','.join(map(str, rtts))} ms")
                if op == "diff":
                    rows += bench.op_diff(n, rtts)
                elif op == "push1":
                    rows += bench.op_push1(n, rtts)
                else:
                    rows += bench.op_full(n, rtts, settings.scp_budget, settings.full_reps)
    order = {op: i for i, op in enumerate(OPERATIONS)}
    rows.sort(key=lambda r: (order[r.op], r.rtt if r.rtt is not None else -1, r.n or 0))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    started = time.perf_counter()
    try:
        ensure_tools()
        work = Path(tempfile.mkdtemp(prefix="edgesync-bench-"))
        try:
            with bench_setup(
                work,
                settings.rtts,
                settings.reps,
                verbose=settings.verbose,
                baseline=settings.baseline,
            ) as bench:
                bench.cold_cache = settings.cold_cache
                rows = measure(bench, settings)
        finally:
            if settings.keep:
                print(f"[bench] work folder kept: {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print()
    print(render(rows))
    print()
    print(LEGEND)
    rsync_version = subprocess.run(["rsync", "--version"], capture_output=True, text=True)
    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True)
    cpu_reps = ", ".join(f"{settings.reps_for_cpu(n)} at {n:,}" for n in settings.cpu_sizes)
    print(
        f"\n{settings.reps} reps (full push: {settings.full_reps}; cpu rows: {cpu_reps}; "
        f"startup {settings.startup_runs} runs); "
        f"edgesync caches: {'cold at every run' if settings.cold_cache else 'kept'}; "
        f"{time.perf_counter() - started:.0f} s in all; "
        f"{os.cpu_count()} CPUs; {' '.join(rsync_version.stdout.splitlines()[0].split())}; "
        f"{ssh_version.stderr.strip()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
