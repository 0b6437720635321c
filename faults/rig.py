"""The rig: a sandbox server, a local repository, server images, edgesync as a subprocess.

Everything lives below one root folder. The sandbox (a real sshd on loopback, `sandbox/`) is
started on a free port; a slow `mv` is put first on its sessions' PATH (it sleeps before the
real `mv` while a flag file exists), which widens the server-side swap so that kills land in
it. edgesync is only ever driven through its CLI (`python -m edgesync -c CONFIG ...`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from faults import procs
from faults.workload import Files, Sizes, Workload, write_tree
from sandbox import Sandbox, start_sandbox
from sandbox.server import SERVER_TREE, STATE_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
SLOW_MV_FLAG = "faults-slow-mv"
SLOW_HISTORY_FLAG = "faults-slow-history"
SCRUBBED_ENV = ("SSH_AUTH_SOCK", "EDGESYNC_TARGET", "EDGESYNC_SSH_KEY", "EDGESYNC_KNOWN_HOSTS")
CLI_TIMEOUT = 240.0


@dataclass(frozen=True)
class Run:
    """One edgesync invocation: its exit code (-9 when we killed it), output and duration."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.code < 0

    def text(self) -> str:
        """stdout and stderr, for messages."""
        return (self.out + "\n" + self.err).strip()

    def last_line(self) -> str:
        """The most telling line of the output (the error, usually)."""
        lines = [ln.strip() for ln in self.text().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lower().startswith(("error", "edgesync: error"))]
        return (errors or lines or ["(no output)"])[-1][:300]


@dataclass(frozen=True)
class ServerState:
    """What the server holds: files of the functions folder, history, journal and lock."""

    files: dict[str, str]  # path -> sha256 (symlinks: "symlink:<target>")
    folders: frozenset[str]  # every folder below the functions folder
    history_ids: tuple[str, ...]
    bad_history: tuple[str, ...]  # "line N: why"
    journal: str | None
    lock: str | None  # None, "dir", "file", "symlink"
    lock_files: tuple[str, ...]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_files(root: Path) -> tuple[dict[str, str], frozenset[str]]:
    """path -> sha256 of every file below `root`, and every folder."""
    files: dict[str, str] = {}
    folders: set[str] = set()
    if not root.is_dir():
        return files, frozenset()
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for d in list(dirnames):
            rel = (base / d).relative_to(root).as_posix()
            if (base / d).is_symlink():
                files[rel] = "symlink:" + os.readlink(base / d)
                dirnames.remove(d)
            else:
                folders.add(rel)
        for name in filenames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                files[rel] = "symlink:" + os.readlink(path)
            else:
                files[rel] = sha256_file(path)
    return files, frozenset(folders)


def read_state(project_dir: Path) -> ServerState:
    """The server's state, read directly from its folders."""
    files, folders = read_files(project_dir / "volumes" / "functions")
    state = project_dir / ".edgesync"
    ids: list[str] = []
    bad: list[str] = []
    history = state / "history.jsonl"
    if history.is_file():
        for n, line in enumerate(history.read_bytes().split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                ids.append(str(record["id"]))
            except (ValueError, KeyError, TypeError) as e:
                bad.append(f"line {n}: {type(e).__name__} ({len(line)} bytes)")
    journal_path = state / "journal"
    journal = None
    if journal_path.is_file():
        journal = journal_path.read_text(errors="replace").strip() or "(empty)"
    lock_path = state / "lock"
    lock: str | None = None
    lock_files: tuple[str, ...] = ()
    if lock_path.is_symlink():
        lock = "symlink"
    elif lock_path.is_dir():
        lock = "dir"
        lock_files = tuple(sorted(p.name for p in lock_path.iterdir()))
    elif lock_path.exists():
        lock = "file"
    return ServerState(files, folders, tuple(ids), tuple(bad), journal, lock, lock_files)


class Rig:
    """A sandbox server plus a local repository holding NEW, all below `root`."""

    def __init__(self, root: Path, sizes: Sizes) -> None:
        self.root = root.resolve()
        self.sizes = sizes
        self.sandbox: Sandbox | None = None
        hello = {
            f"hello/{p.name}": p.read_bytes()
            for p in sorted((SERVER_TREE / "volumes" / "functions" / "hello").iterdir())
        }
        self.workload = Workload.build(sizes, hello)
        self.repo = self.root / "repo"
        self.home = self.root / "home"
        self.images = self.root / "images"
        self.logs = self.root / "logs"
        self.config = self.repo / "edgesync.yaml"
        self._proxy_config = self.repo / "edgesync-proxy.yaml"
        self._seq = 0

    # -- lifecycle

    def start(self) -> Rig:
        for folder in (self.home, self.images, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.sandbox = start_sandbox(self.root / "sandbox")
        self._install_slow_mv()
        write_tree(self.workload.new, self.repo / "supabase" / "functions", clean=True)
        self.config.write_text(self.config_yaml(self.sb.port, self.sb.known_hosts))
        (self.repo / ".gitignore").write_text("edgesync-*.yaml\n")
        self._git("init", "-q")
        self._git("add", "-A")
        self._git("commit", "-q", "-m", "NEW")
        return self

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def __enter__(self) -> Rig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def sb(self) -> Sandbox:
        assert self.sandbox is not None, "the rig is not started"
        return self.sandbox

    def _git(self, *args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=faults", "-c", "user.email=faults@localhost", *args],
            cwd=self.repo,
            check=True,
            capture_output=True,
        )

    # -- configs

    def config_yaml(
        self, port: int, known_hosts: Path, project_dir: Path | None = None, extra: str = ""
    ) -> str:
        sb = self.sb
        lines = [
            "functions_dir: supabase/functions",
            "default_target: sandbox",
            "targets:",
            "  sandbox:",
            f"    host: {sb.host}",
            f"    port: {port}",
            f"    project_dir: {json.dumps(str(project_dir or sb.project_dir))}",
            f"    identity_file: {json.dumps(str(sb.client_key))}",
            f"    known_hosts_file: {json.dumps(str(known_hosts))}",
        ]
        lines += ["    " + ln for ln in extra.splitlines() if ln.strip()]
        return "\n".join(lines) + "\n"

    def proxy_config(self, port: int, project_dir: Path | None = None) -> Path:
        """A config whose target goes through a proxy listening on `port`."""
        known = self.root / f"known_hosts-{port}"
        known.write_text(f"[{self.sb.host}]:{port} {self.sb.host_key_pub}\n")
        path = self.repo / f"edgesync-proxy-{port}.yaml"
        path.write_text(self.config_yaml(port, known, project_dir))
        return path

    def drop_proxy_config(self, port: int) -> None:
        (self.root / f"known_hosts-{port}").unlink(missing_ok=True)
        (self.repo / f"edgesync-proxy-{port}.yaml").unlink(missing_ok=True)

    def direct_config(self, project_dir: Path) -> Path:
        """A config for another project folder on the same server (disk-full cases)."""
        path = self.repo / "edgesync-other.yaml"
        path.write_text(self.config_yaml(self.sb.port, self.sb.known_hosts, project_dir))
        return path

    # -- edgesync as a subprocess

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.update(HOME=str(self.home), NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1")
        return env

    def argv(self, args: tuple[str, ...], config: Path | None) -> list[str]:
        return [sys.executable, "-m", "edgesync", "-c", str(config or self.config), *args]

    def edgesync(self, *args: str, config: Path | None = None, timeout: float = CLI_TIMEOUT) -> Run:
        """Run edgesync to completion."""
        start = time.monotonic()
        try:
            p = subprocess.run(
                self.argv(args, config),
                capture_output=True,
                text=True,
                env=self.env(),
                cwd=self.repo,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            out = e.stdout if isinstance(e.stdout, str) else ""
            return Run(args, 124, out, f"timed out after {timeout:.0f}s", timeout)
        return Run(args, p.returncode, p.stdout, p.stderr, time.monotonic() - start)

    def spawn(self, *args: str, config: Path | None = None) -> Spawned:
        """Start edgesync in the background (output to files)."""
        self._seq += 1
        out = self.logs / f"run-{self._seq}.out"
        err = self.logs / f"run-{self._seq}.err"
        with out.open("wb") as o, err.open("wb") as e:
            p = subprocess.Popen(
                self.argv(args, config),
                stdout=o,
                stderr=e,
                env=self.env(),
                cwd=self.repo,
                stdin=subprocess.DEVNULL,
            )
        return Spawned(args, p, out, err, time.monotonic())

    # -- the server

    @property
    def marker(self) -> bytes:
        """What every server process of a push has in its command line (the state folder)."""
        return marker_of(self.sb.project_dir)

    def server_pids(self) -> list[int]:
        """Processes of the sandbox's SSH sessions (edgesync's server side and its children)."""
        return procs.with_env(STATE_ENV, str(self.sb.state_dir))

    def quiesce(self, timeout: float) -> list[str]:
        """Wait for the server side to finish; kill and return what still ran after `timeout`."""
        left = procs.wait_gone(self.server_pids(), timeout)
        left = [p for p in left if p in self.server_pids()]
        shown = procs.describe(left)
        if left:
            procs.kill_all(left)
            procs.wait_gone(left, 5)
        return shown

    def slow_mv(self, seconds: float | None) -> None:
        """Make the server's `mv` sleep `seconds` first (None: full speed)."""
        flag = self.sb.root / SLOW_MV_FLAG
        if seconds is None:
            flag.unlink(missing_ok=True)
            self.slow_history(None)
        else:
            flag.write_text(f"{seconds:.3f}\n")

    def slow_history(self, seconds: float | None) -> None:
        """Make the server's `cp`/`cat` of the history's new line sleep `seconds` first."""
        flag = self.sb.root / SLOW_HISTORY_FLAG
        if seconds is None:
            flag.unlink(missing_ok=True)
        else:
            flag.write_text(f"{seconds:.3f}\n")

    def _install_slow_mv(self) -> None:
        """Wrappers first on the sessions' PATH: `mv` sleeps while the slow-mv flag exists;
        `cp`, `cat` and `mv` sleep on the history's files while the slow-history flag exists."""
        mv_flag = shlex.quote(str(self.sb.root / SLOW_MV_FLAG))
        history_flag = shlex.quote(str(self.sb.root / SLOW_HISTORY_FLAG))
        for tool in ("mv", "cp", "cat"):
            real = shutil.which(tool, path="/usr/bin:/bin")
            assert real, f"no {tool} on this machine"
            lines = ["#!/bin/sh", f"# faults: a slow {tool} (see faults/rig.py)"]
            if tool == "mv":
                lines.append(f'if [ -f {mv_flag} ]; then read -r d < {mv_flag} && sleep "$d"; fi')
            lines += [
                f"if [ -f {history_flag} ]; then",
                '  case "$*" in *history.new*|*/history.json)',
                f'    read -r d < {history_flag} && sleep "$d" ;;',
                "  esac",
                "fi",
                f'exec {shlex.quote(real)} "$@"',
            ]
            path = self.sb.root / "bin" / tool
            path.write_text("\n".join(lines) + "\n")
            path.chmod(0o755)

    def seed(self, files: Files, project_dir: Path | None = None) -> None:
        """A fresh server: the base compose project with `files` as its functions folder."""
        self.slow_mv(None)
        if project_dir is None:
            self.sb.reset()
            project_dir = self.sb.project_dir
        else:
            clear_folder(project_dir)
            shutil.copytree(SERVER_TREE, project_dir, dirs_exist_ok=True)
        functions = project_dir / "volumes" / "functions"
        for entry in functions.iterdir():
            if entry.name not in ("main", ".env"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        write_tree(files, functions)

    def save_image(self, name: str, project_dir: Path | None = None) -> None:
        """Keep the server's functions folder and state folder as `name`."""
        project = project_dir or self.sb.project_dir
        image = self.images / name
        if image.exists():
            shutil.rmtree(image)
        shutil.copytree(project / "volumes" / "functions", image / "functions", symlinks=True)
        if (project / ".edgesync").exists():
            shutil.copytree(project / ".edgesync", image / "state", symlinks=True)

    def restore(self, name: str, project_dir: Path | None = None) -> None:
        """Put image `name` back on a freshly reset server (or project folder)."""
        self.slow_mv(None)
        image = self.images / name
        if project_dir is None:
            self.sb.reset()
            project = self.sb.project_dir
        else:
            project = project_dir
            clear_folder(project)
            shutil.copytree(SERVER_TREE, project, dirs_exist_ok=True)
        functions = project / "volumes" / "functions"
        shutil.rmtree(functions)
        shutil.copytree(image / "functions", functions, symlinks=True)
        if (image / "state").exists():
            shutil.copytree(image / "state", project / ".edgesync", symlinks=True)

    def state(self, project_dir: Path | None = None) -> ServerState:
        return read_state(project_dir or self.sb.project_dir)


@dataclass
class Spawned:
    """An edgesync process running in the background."""

    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    started: float

    def wait(self, timeout: float = CLI_TIMEOUT) -> Run:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = 124
        return self.result(code)

    def kill(self) -> Run:
        """SIGKILL it now and collect what it printed."""
        self.process.kill()
        self.process.wait()
        return self.result(self.process.returncode)

    def result(self, code: int) -> Run:
        seconds = time.monotonic() - self.started
        out = self.out.read_text(errors="replace")
        err = self.err.read_text(errors="replace")
        return Run(self.args, code, out, err, seconds)


def marker_of(project_dir: Path) -> bytes:
    """The state folder's path: every server process of a push names it."""
    return str(project_dir / ".edgesync").encode()


def clear_folder(folder: Path) -> None:
    """Remove everything inside `folder`, keeping the folder (it may be a mount point)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
