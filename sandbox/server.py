"""A real OpenSSH server on loopback that looks like a self-hosted Supabase host.

``start_sandbox(root)`` runs ``/usr/sbin/sshd`` on 127.0.0.1 with throwaway keys below ``root``.
Sessions get ``root/bin`` first on PATH, where a stand-in ``docker``/``docker-compose``
(``sandbox/bin/docker``) records every call and runs the functions service: a Deno program
(``sandbox/runtime/``) that serves the mounted functions like edge-runtime and its router, on
``127.0.0.1:<kong_port>`` (the project's ``KONG_HTTP_PORT``), and writes the service's log. The
compose project ``root/supabase-project`` is laid out like the official self-hosted setup.

Nothing outside ``root`` is touched, except ``/run/sshd`` (sshd's privilege separation folder,
needed only when running as root). Stdlib only; Deno comes from the ``deno`` package (a dev
dependency), ``$EDGESYNC_SANDBOX_DENO`` or PATH.
"""

from __future__ import annotations

import contextlib
import getpass
import http.client
import importlib.machinery
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

SSHD = Path("/usr/sbin/sshd")
PACKAGE_DIR = Path(__file__).resolve().parent
SERVER_TREE = PACKAGE_DIR / "server_tree"
DOCKER_STUB = PACKAGE_DIR / "bin" / "docker"
RUNTIME_DIR = PACKAGE_DIR / "runtime"
FUNCTIONS_CONTAINER = "supabase-edge-functions"
STATE_ENV = "EDGESYNC_SANDBOX_STATE"
DENO_ENV = "EDGESYNC_SANDBOX_DENO"
START_TIMEOUT = 10.0

_stub: ModuleType | None = None
_deno: Path | None = None


class SandboxError(RuntimeError):
    """The sandbox could not be started or used."""


class ServiceDown(SandboxError):
    """Nothing listens on the Kong port: the functions service is stopped or restarting."""


_deno_lock = threading.Lock()


def find_deno() -> Path:
    """The Deno binary the functions service runs on: ``$EDGESYNC_SANDBOX_DENO``, the ``deno``
    package's binary (``pip install deno``, a dev dependency), or ``deno`` on PATH."""
    with _deno_lock:  # rigs start side by side; sysconfig's first read is not thread-safe
        return _find_deno()


def _find_deno() -> Path:
    global _deno
    if _deno is not None:
        return _deno
    candidates: list[str] = []
    if os.environ.get(DENO_ENV):
        candidates.append(os.environ[DENO_ENV])
    with contextlib.suppress(ImportError, FileNotFoundError):
        import deno  # type: ignore[import-untyped]

        candidates.append(deno.find_deno_bin())
    found = shutil.which("deno")
    if found:
        candidates.append(found)
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            _deno = Path(candidate).absolute()
            return _deno
    raise SandboxError(
        "deno not found: the sandbox's functions service runs on Deno "
        f"(`pip install deno`, part of edgesync's dev dependencies, or set ${DENO_ENV})"
    )


@dataclass(frozen=True)
class Reply:
    """The functions service's answer to one HTTP request."""

    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def docker_stub() -> ModuleType:
    """``sandbox/bin/docker`` imported as a module: one implementation of the log format."""
    global _stub
    if _stub is None:
        name = "edgesync_sandbox_docker"
        loader = importlib.machinery.SourceFileLoader(name, str(DOCKER_STUB))
        spec = importlib.util.spec_from_loader(name, loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while executing it
        loader.exec_module(module)
        _stub = module
    return _stub


@dataclass
class Sandbox:
    """A running sandbox server and the paths tests need to inspect it."""

    root: Path
    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key_pub: str
    project_dir: Path
    functions_dir: Path
    state_dir: Path
    docker_calls: Path
    service_log: Path
    kong_port: int
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    # -- lifecycle

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid_file(self) -> Path:
        """sshd's PidFile."""
        return self.root / "sshd.pid"

    @property
    def sshd_log(self) -> Path:
        """sshd's log (its stderr)."""
        return self.root / "sshd.log"

    @property
    def pid(self) -> int | None:
        """The listening sshd's pid while it runs."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_sshd(pid, self.root) else None

    def running(self) -> bool:
        """True while sshd is up."""
        return self.pid is not None

    @property
    def deno_dir(self) -> Path:
        """DENO_DIR of the functions service (kept across resets, like the deno-cache volume)."""
        return self.root / "deno-cache"

    def stop(self) -> None:
        """Kill sshd, its sessions, any stand-in docker process they left behind and the functions
        service with its workers. Idempotent."""
        pid = self.pid
        victims: list[int] = []
        if pid is not None:
            victims = [pid, *_descendants(pid)]
        leftovers = _processes_with_env(STATE_ENV, str(self.state_dir))
        victims += [p for p in leftovers if p not in victims]
        _terminate(victims)
        docker_stub().shutdown(self.state_dir, thorough=True)
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        self.pid_file.unlink(missing_ok=True)

    def reset(self, overlay: Path | None = None) -> None:
        """Give the server a fresh, just-booted tree: the base compose project, an empty state.

        ``overlay`` (a folder) is copied on top of ``functions_dir``. Stand-in ``docker logs -f``
        processes still running from earlier sessions and the functions service are ended first;
        a new functions service boots in the background (``wait_until_serving`` waits for it).
        """
        _terminate(self.followers())
        docker_stub().shutdown(self.state_dir)
        for folder in (self.project_dir, self.state_dir):
            if folder.exists():
                shutil.rmtree(folder)
        shutil.copytree(SERVER_TREE, self.project_dir)
        self._publish_kong_port()
        if overlay is not None:
            shutil.copytree(overlay, self.functions_dir, dirs_exist_ok=True)
        (self.state_dir / "followers").mkdir(parents=True)
        self.docker_calls.touch()
        settings = {
            "deno": str(find_deno()),
            "runtime_dir": str(RUNTIME_DIR),
            "deno_dir": str(self.deno_dir),
        }
        (self.state_dir / "runtime.json").write_text(json.dumps(settings, indent=2) + "\n")
        docker_stub().init_state(self.state_dir, self.project_dir)

    def _publish_kong_port(self) -> None:
        """Set ``KONG_HTTP_PORT`` in the project's ``.env`` to this sandbox's Kong port."""
        env = self.project_dir / ".env"
        text = env.read_text()
        line = f"KONG_HTTP_PORT={self.kong_port}"
        text, count = re.subn(r"(?m)^KONG_HTTP_PORT=.*$", line, text)
        env.write_text(text if count else f"{text.rstrip()}\n{line}\n")

    def seed_example(self, example: Path) -> None:
        """Deploy an example repository's functions the way its ``server-before/`` describes.

        Every entry of ``example/supabase/functions`` is copied (dot files such as ``.env``
        excepted) unless listed in ``server-before/not-deployed.txt``; then
        ``server-before/volumes/functions`` (older versions of some files) is copied on top.
        """
        source = example / "supabase" / "functions"
        before = example / "server-before"
        if not source.is_dir():
            raise SandboxError(f"{example} has no supabase/functions folder")
        skipped: set[str] = set()
        listing = before / "not-deployed.txt"
        if listing.is_file():
            for line in listing.read_text().splitlines():
                name = line.split("#", 1)[0].strip()
                if name:
                    skipped.add(name)
        for entry in sorted(source.iterdir()):
            if entry.name.startswith(".") or entry.name in skipped:
                continue
            target = self.functions_dir / entry.name
            if entry.is_dir():
                shutil.copytree(entry, target, dirs_exist_ok=True)
            else:
                shutil.copy2(entry, target)
        older = before / "volumes" / "functions"
        if older.is_dir():
            shutil.copytree(older, self.functions_dir, dirs_exist_ok=True)

    # -- the functions service

    def request(
        self,
        function: str,
        method: str = "GET",
        *,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """Send a real HTTP request to ``/functions/v1/<function>`` through the Kong port.

        ``function`` may carry a sub-path and a query (``"hello/sub?x=1"``). A functions service
        still booting is waited for; one that is down (or dies before it answers) raises
        ``ServiceDown``.
        """
        self.wait_until_serving()
        connection = http.client.HTTPConnection(self.host, self.kong_port, timeout=timeout)
        try:
            connection.request(
                method, f"/functions/v1/{function.lstrip('/')}", body=body, headers=headers or {}
            )
            response = connection.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException) as error:
            what = (
                "nothing listens on"
                if isinstance(error, ConnectionRefusedError)
                else "no answer (the connection closed) from"
            )
            info = self.container()
            state = f"container {info['status']}, exit code {info['exit_code']}"
            raise ServiceDown(
                f"{what} {self.host}:{self.kong_port}: the functions service is down "
                f"({state}){self._runtime_output()}"
            ) from None
        finally:
            connection.close()
        answer = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, data, answer)

    def _runtime_output(self) -> str:
        """The end of the service's log and of the runtime's own output, for error messages."""
        try:
            text = (self.state_dir / "functions.stderr").read_text(errors="replace").strip()
        except FileNotFoundError:
            text = ""
        lines = "\n".join(self.log_lines()[-5:])
        return f"; its log ends with:\n{lines}" + (f"\nits output:\n{text[-2000:]}" if text else "")

    def wait_until_serving(self, timeout: float = 20.0) -> bool:
        """Wait while the functions service boots: True once it serves, False when it is down."""
        result: bool = docker_stub().await_boot(self.state_dir, timeout)
        return result

    def runtime_processes(self) -> list[int]:
        """Pids of the functions service's processes (the runtime and its workers)."""
        pids: list[int] = docker_stub().runtime_processes(self.state_dir)
        return pids

    def append_log(self, message: str, at: datetime | None = None) -> None:
        """Append one line to the functions service log (``at``: its timestamp, default now)."""
        docker_stub().append_log(self.service_log, message, at)

    def log_lines(self) -> list[str]:
        """The messages of the functions service log, oldest first, without timestamps."""
        return [line.message for line in docker_stub().read_log(self.service_log)]

    def calls(self) -> list[dict[str, Any]]:
        """Every docker/docker-compose invocation so far: ``{"argv", "cwd", "prog"}``."""
        try:
            text = self.docker_calls.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def container(self, name: str = FUNCTIONS_CONTAINER) -> dict[str, Any]:
        """The stand-in daemon's record of a container (status, restart_count, …)."""
        info: dict[str, Any] = docker_stub().load_state(self.state_dir)["containers"][name]
        return info

    def restart_count(self) -> int:
        """How often the functions container was restarted since the last reset."""
        count: int = self.container()["restart_count"]
        return count

    def followers(self) -> list[int]:
        """Pids of stand-in ``logs -f`` processes that are still running."""
        folder = self.state_dir / "followers"
        if not folder.is_dir():
            return []
        pids = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        return [pid for pid in pids if _has_env(pid, STATE_ENV, str(self.state_dir))]

    # -- clients

    def ssh_command(self, command: str | None = None, *options: str) -> list[str]:
        """An argv for the system ``ssh`` client that logs in to this sandbox (no ~/.ssh used)."""
        argv = [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
            "-p",
            str(self.port),
            *options,
            f"{self.user}@{self.host}",
        ]
        return argv if command is None else [*argv, command]

    def to_json(self) -> dict[str, Any]:
        """The public fields, as written to ``root/sandbox.json``."""
        return {
            "root": str(self.root),
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "client_key": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "host_key_pub": self.host_key_pub,
            "project_dir": str(self.project_dir),
            "functions_dir": str(self.functions_dir),
            "state_dir": str(self.state_dir),
            "docker_calls": str(self.docker_calls),
            "service_log": str(self.service_log),
            "kong_port": self.kong_port,
            "pid": self.pid,
        }

    @classmethod
    def load(cls, root: Path) -> Sandbox:
        """The sandbox described by ``root/sandbox.json`` (running or not)."""
        path = root / "sandbox.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise SandboxError(f"no sandbox at {root} (missing {path})") from None
        return cls(
            root=Path(data["root"]),
            host=data["host"],
            port=int(data["port"]),
            user=data["user"],
            client_key=Path(data["client_key"]),
            known_hosts=Path(data["known_hosts"]),
            host_key_pub=data["host_key_pub"],
            project_dir=Path(data["project_dir"]),
            functions_dir=Path(data["functions_dir"]),
            state_dir=Path(data["state_dir"]),
            docker_calls=Path(data["docker_calls"]),
            service_log=Path(data["service_log"]),
            kong_port=int(data.get("kong_port", 8000)),
        )


def sandbox_at(root: Path, port: int, kong_port: int = 8000) -> Sandbox:
    """The Sandbox record for a root folder (paths only; nothing is started)."""
    root = root.resolve()
    project_dir = root / "supabase-project"
    state_dir = root / "docker-state"
    host_key_pub = root / "ssh" / "ssh_host_ed25519_key.pub"
    return Sandbox(
        root=root,
        host="127.0.0.1",
        port=port,
        user=getpass.getuser(),
        client_key=root / "ssh" / "client_ed25519",
        known_hosts=root / "ssh" / "known_hosts",
        host_key_pub=_key_line(host_key_pub) if host_key_pub.exists() else "",
        project_dir=project_dir,
        functions_dir=project_dir / "volumes" / "functions",
        state_dir=state_dir,
        docker_calls=state_dir / "calls.jsonl",
        service_log=state_dir / "functions.log",
        kong_port=kong_port,
    )


def start_sandbox(root: Path, port: int | None = None, kong_port: int | None = None) -> Sandbox:
    """Start sshd on 127.0.0.1 (``port`` None: a free one) with a fresh server tree below ``root``.

    The functions service listens on ``kong_port`` (None: a free one), written to the project's
    ``.env`` as ``KONG_HTTP_PORT``. Returns once sshd answers with its SSH banner; the functions
    service may still be booting. A sandbox already running at ``root`` is stopped first. Keys
    are generated once per root and reused.
    """
    if not SSHD.exists():
        raise SandboxError(
            f"{SSHD} not found: install OpenSSH's server (Debian/Ubuntu: apt-get install "
            "openssh-server) to run the edgesync sandbox"
        )
    find_deno()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    previous = root / "sandbox.json"
    if previous.exists():
        with contextlib.suppress(SandboxError, KeyError, ValueError):
            Sandbox.load(root).stop()
    _generate_keys(root / "ssh")
    _install_bin(root / "bin")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    for wanted in (port, kong_port):
        if wanted is not None and port_in_use(wanted):
            raise SandboxError(f"port {wanted} on 127.0.0.1 is already in use")
    attempts = 1 if port is not None else 5
    for attempt in range(attempts):
        chosen = port if port is not None else _free_port()
        kong = kong_port if kong_port is not None else _listening_port()
        sandbox = sandbox_at(root, chosen, kong)
        sandbox.reset()
        _write_sshd_config(sandbox)
        try:
            sandbox._process = _launch_sshd(sandbox)
        except _PortInUse:
            if attempt + 1 < attempts:
                continue
            raise SandboxError(f"port {chosen} on 127.0.0.1 is already in use") from None
        break
    host_key = _key_line(root / "ssh" / "ssh_host_ed25519_key.pub")
    sandbox.known_hosts.write_text(f"[{sandbox.host}]:{sandbox.port} {host_key}\n")
    (root / "sandbox.json").write_text(json.dumps(sandbox.to_json(), indent=2) + "\n")
    return sandbox


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


# --------------------------------------------------------------------------- helpers


class _PortInUse(Exception):
    pass


def _key_line(pub_file: Path) -> str:
    """``ssh-ed25519 AAAA…`` without the comment."""
    algorithm, blob, *_ = pub_file.read_text().split()
    return f"{algorithm} {blob}"


def _generate_keys(folder: Path) -> None:
    """Host key, client key and authorized_keys (kept when they already exist)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, comment in (
        ("ssh_host_ed25519_key", "edgesync-sandbox-host"),
        ("client_ed25519", "edgesync-sandbox-client"),
    ):
        key = folder / name
        if not key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
    shutil.copyfile(folder / "client_ed25519.pub", folder / "authorized_keys")


def _install_bin(folder: Path) -> None:
    """Copy the stand-in docker (and its docker-compose name) into the sessions' PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    docker = folder / "docker"
    shutil.copyfile(DOCKER_STUB, docker)
    docker.chmod(0o755)
    compose = folder / "docker-compose"
    compose.unlink(missing_ok=True)
    compose.symlink_to("docker")


def _quote(value: str) -> str:
    """One sshd_config argument."""
    if '"' in value or "\n" in value:
        raise SandboxError(f"unsupported character in sandbox path: {value!r}")
    return f'"{value}"' if re.search(r"[\s#]", value) else value


def _sshd_version() -> tuple[int, int]:
    result = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stdout + result.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _write_sshd_config(sandbox: Sandbox) -> None:
    root = sandbox.root
    keys = root / "ssh"
    path = f"{root / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    lines = [
        "# edgesync sandbox sshd, generated by sandbox/server.py",
        f"Port {sandbox.port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {_quote(str(keys / 'ssh_host_ed25519_key'))}",
        f"PidFile {_quote(str(sandbox.pid_file))}",
        f"AuthorizedKeysFile {_quote(str(keys / 'authorized_keys').replace('%', '%%'))}",
        f"AllowUsers {sandbox.user}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "PermitUserEnvironment no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        # SetEnv overrides sshd's default PATH. SHLVL=1 makes bash treat the exec session as
        # a nested shell, so it does not source ~/.bashrc (which may put other dirs first).
        "SetEnv "
        + " ".join(
            _quote(v)
            for v in (
                f"PATH={path}",
                f"{STATE_ENV}={sandbox.state_dir}",
                "SHLVL=1",
            )
        ),
    ]
    if _sshd_version() >= (9, 8):
        lines.append("PerSourcePenalties no")  # tests fail logins on purpose
    (root / "sshd_config").write_text("\n".join(lines) + "\n")


def _launch_sshd(sandbox: Sandbox) -> subprocess.Popen[bytes]:
    """Start sshd in its own session and wait for its banner."""
    sandbox.pid_file.unlink(missing_ok=True)
    with open(sandbox.sshd_log, "ab") as log:
        log.write(f"--- starting sshd on port {sandbox.port}\n".encode())
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(sandbox.root / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = _read_from(sandbox.sshd_log, offset)
            if "Address already in use" in output:
                raise _PortInUse
            raise SandboxError(
                f"sshd exited with status {process.returncode} on port {sandbox.port}; "
                f"its log ({sandbox.sshd_log}):\n{output.strip()}"
            )
        # Only trust the banner once this sshd says it listens: another server could answer.
        listening = f"Server listening on 127.0.0.1 port {sandbox.port}."
        so_far = _read_from(sandbox.sshd_log, offset)
        if listening in so_far and _banner(sandbox.host, sandbox.port):
            return process
        time.sleep(0.05)
    process.kill()
    process.wait()
    output = _read_from(sandbox.sshd_log, offset)
    raise SandboxError(
        f"sshd did not accept connections on 127.0.0.1:{sandbox.port} within "
        f"{START_TIMEOUT:.0f}s; its log ({sandbox.sshd_log}):\n{output.strip()}"
    )


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def _banner(host: str, port: int) -> bool:
    """True when an SSH server answers on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.settimeout(2)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listening_port() -> int:
    """A free port below the ephemeral range, for a service that restarts.

    While the functions service restarts its port is closed; a port from the ephemeral range
    could meanwhile become the local end of some client's connection and block its next bind.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(20000, max(low, 20001)))
    random.shuffle(candidates)
    for port in candidates[:200]:
        if not port_in_use(port):
            return port
    return _free_port()


def _proc_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (sshd's connection and session processes)."""
    children: dict[int, list[int]] = {}
    for candidate in _proc_pids():
        parent = _parent(candidate)
        if parent is not None:
            children.setdefault(parent, []).append(candidate)
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _has_env(pid: int, name: str, value: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{name}={value}".encode() in environ.split(b"\0")


def _processes_with_env(name: str, value: str) -> list[int]:
    """Processes (of this user) whose environment holds ``name=value``: our sessions' leftovers."""
    own = os.getpid()
    return [pid for pid in _proc_pids() if pid != own and _has_env(pid, name, value)]


def _is_our_sshd(pid: int, root: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # sshd rewrites its title to "sshd: /usr/sbin/sshd -D -e -f <config> [listener] …"
    return b"sshd" in cmdline and str(root / "sshd_config").encode() in cmdline


def _terminate(pids: list[int], timeout: float = 3.0) -> None:
    """SIGTERM the given processes, SIGKILL those still alive after ``timeout``."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reaps our own children)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
