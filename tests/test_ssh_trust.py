"""Trust boundaries of the SSH layer (issue 12): host names, host keys, ssh config tokens,
credentials in the environment, proxies, algorithms. Every test goes through a real sshd."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from subprocess import DEVNULL

import git
import paramiko
import pytest

from edgesync.config import parse_config
from edgesync.errors import ConfigError
from edgesync.remote import ssh
from sandbox import Sandbox
from sandbox.server import SSHD
from tests.helpers import Project


@pytest.fixture(autouse=True)
def fresh_ssh_session() -> Iterator[None]:
    """Each test starts without a remembered EDGESYNC_SSH_KEY or warnings already given."""
    ssh.forget_session_state()
    yield
    ssh.forget_session_state()


def repo(tmp_path: Path, target: str) -> Project:
    """A project whose edgesync.yaml has one target `sandbox` with the given YAML lines."""
    p = Project(tmp_path / "repo")
    p.functions.mkdir(parents=True, exist_ok=True)
    lines = ["targets:", "  sandbox:"] + ["    " + line for line in target.strip().splitlines()]
    p.config.write_text("\n".join(lines) + "\n")
    return p


def ssh_config(home: Path, text: str) -> Path:
    """Write ~/.ssh/config below an isolated HOME."""
    folder = home / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "config"
    path.write_text(text)
    return path


def alias_config(sandbox: Sandbox, name: str = "edge-sandbox", extra: str = "") -> str:
    """A Host block reaching the sandbox."""
    return (
        f"Host {name}\n  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n{extra}"
    )


# -- row 2: host names are limited to what OpenSSH accepts ---------------------


@pytest.mark.parametrize(
    "host",
    [
        "edge;id",
        "edge$(id)",
        "edge`id`",
        "edge|id",
        "edge(x)",
        "edge>x",
        "edge<x",
        "edge&x",
        "edge'x",
        'edge"x',
        "edge\\x",
        "edge{x}",
        "edge,other",
        "edge x",
        "edge\tx",
        "edge\x1b]0;x\x07",
        "-oProxyCommand=id",
    ],
)
def test_host_with_shell_metacharacters_is_refused(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, host: str
) -> None:
    p = repo(tmp_path, f"host: {json.dumps(host)}\nproject_dir: {sandbox.project_dir}")
    r = p.run("ls")
    assert r.code == 3, r.err
    assert "edgesync.yaml:3: targets.sandbox.host: " in r.err
    assert "\x1b" not in r.err and "\x07" not in r.err


@pytest.mark.parametrize("user", ["a;b", "$(id)", "-oX", "a b"])
def test_user_with_shell_metacharacters_is_refused(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, user: str
) -> None:
    p = repo(
        tmp_path,
        f"host: {sandbox.host}\nuser: {json.dumps(user)}\nproject_dir: {sandbox.project_dir}",
    )
    r = p.run("ls")
    assert r.code == 3
    assert "edgesync.yaml:4: targets.sandbox.user: not a user name" in r.err


@pytest.mark.parametrize(
    "host", ["api.academyos.ru", "edge-sandbox", "10.0.0.7", "::1", "fe80::1%eth0", "my_host"]
)
def test_ordinary_host_names_and_ipv6_literals_are_accepted(tmp_path: Path, host: str) -> None:
    text = f"targets:\n  t:\n    host: {json.dumps(host)}\n    project_dir: /srv/p\n"
    assert parse_config(text, tmp_path / "edgesync.yaml").targets["t"].host == host


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("deploy@api.example.com", "put the user name in `user`"),
        ("api.example.com:2222", "a port goes in `port`"),
        ("[::1]", "an IPv6 address without []"),
    ],
)
def test_user_or_port_inside_host_is_refused(tmp_path: Path, host: str, message: str) -> None:
    text = f"targets:\n  t:\n    host: {json.dumps(host)}\n    project_dir: /srv/p\n"
    with pytest.raises(ConfigError, match=r"edgesync.yaml:3: targets.t.host: ") as caught:
        parse_config(text, tmp_path / "edgesync.yaml")
    assert message in str(caught.value)


def test_match_exec_never_runs_a_command_built_from_a_bad_host(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """paramiko evaluates `Match exec` (through invoke, by a shell) with %n/%h pasted in:
    CVE-2023-51385's class. The name never gets that far."""
    ssh_config(ssh_home, 'Match exec "test %n = nothing"\n  User nobody\n')
    p = repo(tmp_path, f'host: "edge$(touch${{IFS}}pwned)"\nproject_dir: {sandbox.project_dir}')
    r = p.run_process("ls")  # in the repository folder, where `touch pwned` would land
    assert not (p.root / "pwned").exists()
    assert r.code == 3
    assert "targets.sandbox.host: contains '$', which OpenSSH refuses in host names" in r.err


def test_match_exec_still_works_for_a_valid_alias(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """The same `Match exec` evaluation, for a name that passed the check, reaches the server."""
    ssh_config(
        ssh_home,
        'Match exec "test %n = edge-sandbox"\n'
        f"  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {sandbox.user}\n"
        f"  IdentityFile {sandbox.client_key}\n",
    )
    p = repo(
        tmp_path,
        f"host: edge-sandbox\nknown_hosts_file: {sandbox.known_hosts}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    r = p.run_process("ls")  # invoke reads stdin while `Match exec` runs: give it /dev/null
    assert r.code == 0, r.err
    assert "hello" in r.out


def test_proxy_jump_hop_from_ssh_config_is_checked_before_lookup(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """A hop name comes from ~/.ssh/config, not edgesync.yaml: it is checked all the same
    before paramiko looks it up (and would run `Match exec` with it)."""
    ssh_config(
        ssh_home,
        alias_config(sandbox, extra="  ProxyJump jump$(touch${IFS}pwned)\n")
        + 'Match exec "test %n = nothing"\n  User nobody\n',
    )
    p = repo(
        tmp_path,
        f"host: edge-sandbox\nknown_hosts_file: {sandbox.known_hosts}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    r = p.run_process("ls")
    assert not (p.root / "pwned").exists()
    assert r.code == 3
    assert "ProxyJump hop 'jump$(touch${IFS}pwned)' contains '$'" in r.err


def test_host_name_from_ssh_config_is_checked_too(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """A valid alias cannot smuggle a bad name in through HostName: it would reach %h in a
    ProxyCommand."""
    ssh_config(ssh_home, "Host edge-sandbox\n  HostName edge;id\n")
    p = repo(tmp_path, f"host: edge-sandbox\nproject_dir: {sandbox.project_dir}")
    r = p.run("ls")
    assert r.code == 3
    assert "~/.ssh/config: HostName 'edge;id' for edge-sandbox contains ';'" in r.err


# -- row 6: @revoked and @cert-authority lines in known_hosts -------------------


def other_key(tmp_path: Path, name: str = "other", kind: str = "ed25519") -> str:
    """`type base64` of a fresh public key that is not the sandbox's."""
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, stdin=DEVNULL
    )
    kind_name, blob = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind_name} {blob}"


def known_hosts_project(tmp_path: Path, sandbox: Sandbox, known: str) -> Project:
    path = tmp_path / "known_hosts"
    path.write_text(known)
    return repo(
        tmp_path,
        f"host: {sandbox.host}\nport: {sandbox.port}\nidentity_file: {sandbox.client_key}\n"
        f"known_hosts_file: {path}\nproject_dir: {sandbox.project_dir}",
    )


def test_revoked_host_key_is_refused(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    name = f"[{sandbox.host}]:{sandbox.port}"
    p = known_hosts_project(
        tmp_path,
        sandbox,
        f"{name} {sandbox.host_key_pub}\n@revoked * {sandbox.host_key_pub}\n",
    )
    r = p.run("ls")
    assert r.code == 4, r.err
    assert f"REVOKED HOST KEY for {name}" in r.err
    assert "known_hosts:2" in r.err  # the line that revokes it
    assert "unexpected error" not in r.err


def test_revoked_key_is_never_accepted_as_new(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    known = f"@revoked [{sandbox.host}]:* {sandbox.host_key_pub}\n"
    p = known_hosts_project(tmp_path, sandbox, known)
    r = p.run("--accept-new-host-key", "ls")
    assert r.code == 4
    assert "REVOKED HOST KEY" in r.err
    assert (tmp_path / "known_hosts").read_text() == known  # not remembered


def test_revoked_in_env_known_hosts(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        ssh.KNOWN_HOSTS_ENV,
        f"[{sandbox.host}]:{sandbox.port} {sandbox.host_key_pub}\n"
        f"@revoked * {sandbox.host_key_pub}\n",
    )
    p = repo(
        tmp_path,
        f"host: {sandbox.host}\nport: {sandbox.port}\nidentity_file: {sandbox.client_key}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    r = p.run("ls")
    assert r.code == 4
    assert "REVOKED HOST KEY" in r.err and "EDGESYNC_KNOWN_HOSTS:2" in r.err


def test_revoked_other_key_and_cert_authority_lines_do_not_crash(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    """Used to crash every command (InvalidHostKey). The host's own line still counts; the
    @cert-authority lines for it are ignored with one warning."""
    ca, stolen = other_key(tmp_path, "ca"), other_key(tmp_path, "stolen")
    p = known_hosts_project(
        tmp_path,
        sandbox,
        f"@cert-authority [{sandbox.host}]:* {ca}\n"
        f"@revoked * {stolen}\n"
        f"[{sandbox.host}]:{sandbox.port} {sandbox.host_key_pub}\n"
        f"@cert-authority *,[{sandbox.host}]:{sandbox.port} {ca}\n",
    )
    r = p.run("ls")
    assert r.code == 0, r.err
    assert "hello" in r.out
    assert r.err.count("@cert-authority line ignored") == 1
    assert "known_hosts:1: @cert-authority line ignored" in r.err


def test_cert_authority_alone_means_unknown_host(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    p = known_hosts_project(tmp_path, sandbox, f"@cert-authority * {other_key(tmp_path)}\n")
    r = p.run("ls")
    assert r.code == 4
    assert "unknown host key" in r.err and "@cert-authority line ignored" in r.err


@pytest.mark.parametrize(
    "form",
    ["plain", "hashed", "wildcard", "list", "negated"],
)
def test_known_hosts_name_forms(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, form: str
) -> None:
    """The known_hosts reader that replaced paramiko's: names as OpenSSH matches them."""
    name = f"[{sandbox.host}]:{sandbox.port}"
    names = {
        "plain": name,
        "hashed": paramiko.HostKeys.hash_host(name),
        "wildcard": f"[{sandbox.host}]:*",
        "list": f"elsewhere.example,{name}",
        "negated": f"*,!{name}",
    }[form]
    p = known_hosts_project(tmp_path, sandbox, f"# comment\n\n{names} {sandbox.host_key_pub}\n")
    r = p.run("ls")
    if form == "negated":
        assert r.code == 4 and "unknown host key" in r.err
    else:
        assert r.code == 0, r.err


# -- row 8: EDGESYNC_SSH_KEY is not inherited by child processes ---------------


def git_repo(p: Project) -> None:
    repository = git.Repo.init(p.root, initial_branch="main")
    repository.config_writer().set_value("user", "name", "CI").release()
    repository.config_writer().set_value("user", "email", "ci@example.com").release()
    repository.git.add("-A")
    repository.index.commit("initial")


def test_env_key_never_reaches_git(tmp_path: Path, sandbox: Sandbox) -> None:
    """A `git` first on PATH records whether it saw the key; edgesync runs git during push."""
    p = repo(
        tmp_path,
        f"host: {sandbox.host}\nport: {sandbox.port}\nknown_hosts_file: {sandbox.known_hosts}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    p.write("fn/index.ts", "Deno.serve(() => new Response('fn'))\n")
    git_repo(p)
    bin_dir, seen = tmp_path / "bin", tmp_path / "git-env.log"
    bin_dir.mkdir()
    real_git = shutil.which("git")
    assert real_git is not None
    wrapper = bin_dir / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ -n "${{EDGESYNC_SSH_KEY+set}}" ]; then echo LEAKED >> {seen}; '
        f"else echo clean >> {seen}; fi\n"
        f'exec {real_git} "$@"\n'
    )
    wrapper.chmod(0o755)
    home = tmp_path / "ci-home"
    home.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "EDGESYNC_SSH_KEY": sandbox.client_key.read_text(),
    }
    r = subprocess.run(
        [sys.executable, "-m", "edgesync", "-c", str(p.config), "push", "--yes", "--no-logs"],
        capture_output=True,
        text=True,
        env=env,
        stdin=DEVNULL,
        cwd=p.root,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    calls = seen.read_text().split()
    assert calls, "git was not run"
    assert set(calls) == {"clean"}, f"{calls.count('LEAKED')} of {len(calls)} git runs saw it"


def test_env_key_read_once_still_serves_a_reconnect(
    sandbox: Sandbox, ssh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ssh.KEY_ENV, sandbox.client_key.read_text())
    endpoint = ssh.resolve_endpoint(
        sandbox.host, port=sandbox.port, known_hosts_file=sandbox.known_hosts
    )
    assert ssh.KEY_ENV not in os.environ
    child = subprocess.run(
        ["sh", "-c", 'echo "${EDGESYNC_SSH_KEY:-unset}"'], capture_output=True, text=True
    )
    assert child.stdout.strip() == "unset"
    with ssh.Connection(endpoint) as first:
        assert first.run("echo one").stdout == b"one\n"
        with first.reconnect() as second:  # reads the key a second time
            assert second.run("echo two").stdout == b"two\n"


# -- row 10: ssh_config tokens in UserKnownHostsFile and IdentityFile -----------


def test_tokens_in_known_hosts_and_identity_files(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ssh_home / "keys"
    keys.mkdir()
    shutil.copy(sandbox.client_key, keys / f"id_{sandbox.user}_{sandbox.port}")
    ssh_config(
        ssh_home,
        f"Host edge-sandbox\n  HostName {sandbox.host}\n  Port {sandbox.port}\n"
        f"  User {sandbox.user}\n  IdentityFile %d/keys/id_%r_%p\n"
        "  UserKnownHostsFile %d/.ssh/known%%hosts_%h_%p ~/.ssh/second_%u\n",
    )
    p = repo(tmp_path, f"host: edge-sandbox\nproject_dir: {sandbox.project_dir}")
    monkeypatch.chdir(p.root)  # where the unexpanded "%d/.ssh" used to be created
    first = ssh_home / ".ssh" / f"known%hosts_{sandbox.host}_{sandbox.port}"
    second = ssh_home / ".ssh" / f"second_{getpass.getuser()}"

    r = p.run("ls")
    assert r.code == 4 and "unknown host key" in r.err
    r = p.run("--accept-new-host-key", "ls")
    assert r.code == 0, r.err
    assert sandbox.host_key_pub in first.read_text()  # remembered in the first file
    assert not second.exists()
    assert not list(tmp_path.rglob("%*")), "a folder named after a token was created"

    second.write_text(first.read_text())  # several files on one line: the second counts too
    first.unlink()
    r = p.run("ls")
    assert r.code == 0, r.err


def test_user_known_hosts_file_none(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    glob = ssh_home / "global_known_hosts"
    ssh_config(
        ssh_home,
        alias_config(sandbox, extra=f"  UserKnownHostsFile none\n  GlobalKnownHostsFile {glob}\n"),
    )
    (ssh_home / ".ssh" / "known_hosts").write_text(sandbox.known_hosts.read_text())  # unused
    p = repo(tmp_path, f"host: edge-sandbox\nproject_dir: {sandbox.project_dir}")
    r = p.run("--accept-new-host-key", "ls")
    assert r.code == 4
    assert "UserKnownHostsFile is none" in r.err
    assert not glob.exists() and not (p.root / "none").exists()
    glob.write_text(sandbox.known_hosts.read_text())
    r = p.run("ls")
    assert r.code == 0, r.err


def test_unknown_token_is_a_config_error(tmp_path: Path, sandbox: Sandbox, ssh_home: Path) -> None:
    ssh_config(ssh_home, alias_config(sandbox, extra="  UserKnownHostsFile ~/.ssh/kh_%z\n"))
    p = repo(tmp_path, f"host: edge-sandbox\nproject_dir: {sandbox.project_dir}")
    r = p.run("ls")
    assert r.code == 3
    assert "~/.ssh/config: UserKnownHostsFile ~/.ssh/kh_%z: unknown token %z" in r.err


# -- row 11: EDGESYNC_KNOWN_HOSTS set but empty --------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "EDGESYNC_KNOWN_HOSTS is set but empty"),
        (" \n\t\n", "EDGESYNC_KNOWN_HOSTS is set but empty"),
        ("# only a comment\n", "EDGESYNC_KNOWN_HOSTS holds no host key line"),
    ],
)
def test_empty_env_known_hosts_is_an_error(
    tmp_path: Path,
    sandbox: Sandbox,
    ssh_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    message: str,
) -> None:
    """A missing CI secret must not fall back to ~/.ssh/known_hosts (which here trusts the
    server, so a fallback would connect)."""
    ssh_config(ssh_home, alias_config(sandbox))
    (ssh_home / ".ssh" / "known_hosts").write_text(sandbox.known_hosts.read_text())
    monkeypatch.setenv(ssh.KNOWN_HOSTS_ENV, value)
    p = repo(tmp_path, f"host: edge-sandbox\nproject_dir: {sandbox.project_dir}")
    for args in (("ls",), ("--accept-new-host-key", "ls")):
        r = p.run(*args)
        assert r.code == 3, r.err
        assert message in r.err


# -- a second sshd: the sandbox's tree and users, other keys and algorithms -----


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def odd_sshd(base: Sandbox, folder: Path, *lines: str) -> Iterator[int]:
    """Another sshd on loopback serving `base`'s tree to the same user, with `lines`
    replacing the sshd_config keywords they name (host key, algorithms, authorized keys).
    Yields its port; its log is `folder/sshd.log`."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    replaced = {line.split()[0].lower() for line in lines} | {"port", "pidfile"}
    kept = [
        line
        for line in (base.root / "sshd_config").read_text().splitlines()
        if line.split() and line.split()[0].lower() not in replaced
    ]
    config = folder / "sshd_config"
    config.write_text(
        "\n".join([f"Port {port}", f"PidFile {folder / 'sshd.pid'}", *lines, *kept]) + "\n"
    )
    log = folder / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 10
        while f"Server listening on 127.0.0.1 port {port}." not in log.read_text(
            "utf-8", "replace"
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the second sshd did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the listener and its sessions
        process.wait(timeout=10)


def host_key(folder: Path, kind: str = "ed25519") -> tuple[Path, str]:
    """A new host key file and its `type base64` line."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"host_{kind}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, stdin=DEVNULL
    )
    return path, " ".join(path.with_suffix(".pub").read_text().split()[:2])


# -- row 14: ProxyCommand, and ProxyJump chains hop by hop ----------------------

RELAY = """\
import os, select, socket, sys
log, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(log, "a") as f:
    f.write(f"{os.getpid()} " + " ".join(sys.argv[2:]) + "\\n")
conn = socket.create_connection((host, port))
sources = [0, conn.fileno()]
while True:
    ready = select.select(sources, [], [])[0]
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            break
        conn.sendall(data)
    if conn.fileno() in ready:
        data = conn.recv(65536)
        if not data:
            break
        while data:
            data = data[os.write(1, data):]
"""


def test_proxy_command_runs_with_tokens_expanded(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    relay, log = tmp_path / "relay.py", tmp_path / "relay.log"
    relay.write_text(RELAY)
    command = f"{shlex.quote(sys.executable)} {relay} {log} %h %p %r %n 100%%"
    ssh_config(ssh_home, alias_config(sandbox, extra=f"  ProxyCommand {command}\n"))
    p = repo(
        tmp_path,
        f"host: edge-sandbox\nknown_hosts_file: {sandbox.known_hosts}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    r = p.run("ls")
    assert r.code == 0, r.err
    assert "hello" in r.out
    pid, *args = log.read_text().split()
    assert args == [sandbox.host, str(sandbox.port), sandbox.user, "edge-sandbox", "100%"]
    assert not Path(f"/proc/{pid}").exists()  # the proxy ended with the connection


def test_failing_proxy_command_is_reported(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    ssh_config(
        ssh_home,
        alias_config(sandbox, extra="  ProxyCommand echo bastion says no >&2; exit 1\n"),
    )
    p = repo(
        tmp_path,
        f"host: edge-sandbox\nknown_hosts_file: {sandbox.known_hosts}\n"
        f"project_dir: {sandbox.project_dir}",
    )
    r = p.run("ls")
    assert r.code == 4
    assert "ProxyCommand for edge-sandbox failed" in r.err
    assert "bastion says no" in r.err


@pytest.fixture
def second_hop(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    """A second sshd with a host key of its own: (port, key line, log)."""
    key_file, key_line = host_key(tmp_path / "hop-b")
    with odd_sshd(sandbox, tmp_path / "hop-b", f"HostKey {key_file}") as port:
        yield port, key_line, tmp_path / "hop-b" / "sshd.log"


def chain_config(sandbox: Sandbox, hop_b_port: int) -> str:
    """target is reached through hop-a (the sandbox) and then hop-b (the second sshd)."""
    user, key = sandbox.user, sandbox.client_key
    return (
        f"Host hop-a\n  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {user}\n"
        f"  IdentityFile {key}\n"
        f"Host hop-b\n  HostName localhost\n  Port {hop_b_port}\n  User {user}\n"
        f"  IdentityFile {key}\n"
        f"Host target\n  HostName {sandbox.host}\n  Port {sandbox.port}\n  User {user}\n"
        f"  IdentityFile {key}\n  ProxyJump hop-a,hop-b\n"
    )


def test_proxy_jump_chain_goes_through_every_hop(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, second_hop: tuple[int, str, Path]
) -> None:
    port_b, key_b, log_b = second_hop
    ssh_config(ssh_home, chain_config(sandbox, port_b))
    known = ssh_home / ".ssh" / "known_hosts"
    known.write_text(
        f"[{sandbox.host}]:{sandbox.port} {sandbox.host_key_pub}\n[localhost]:{port_b} {key_b}\n"
    )
    p = repo(tmp_path, f"host: target\nproject_dir: {sandbox.project_dir}")
    r = p.run("ls")
    assert r.code == 0, r.err
    assert "hello" in r.out
    assert "Accepted publickey" in log_b.read_text()  # hop-b was really used


def test_proxy_jump_checks_each_hops_host_key(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, second_hop: tuple[int, str, Path]
) -> None:
    port_b, key_b, _ = second_hop
    ssh_config(ssh_home, chain_config(sandbox, port_b))
    known = ssh_home / ".ssh" / "known_hosts"
    a_and_target = f"[{sandbox.host}]:{sandbox.port} {sandbox.host_key_pub}\n"
    p = repo(tmp_path, f"host: target\nproject_dir: {sandbox.project_dir}")

    known.write_text(a_and_target + f"[localhost]:{port_b} {sandbox.host_key_pub}\n")
    r = p.run("ls")
    assert r.code == 4
    assert f"HOST KEY CHANGED for [localhost]:{port_b}" in r.err  # hop-b's own key is checked

    known.write_text(a_and_target)
    r = p.run("ls")
    assert r.code == 4
    assert f"unknown host key for [localhost]:{port_b}" in r.err

    known.write_text("")
    r = p.run("--accept-new-host-key", "ls")
    assert r.code == 0, r.err
    remembered = known.read_text()
    assert f"[localhost]:{port_b} {key_b}" in remembered
    assert f"[{sandbox.host}]:{sandbox.port} {sandbox.host_key_pub}" in remembered
    assert p.run("ls").code == 0


def test_proxy_jump_loop_is_a_config_error(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    ssh_config(ssh_home, "Host loop\n  HostName 127.0.0.1\n  ProxyJump loop\n")
    p = repo(tmp_path, f"host: loop\nproject_dir: {sandbox.project_dir}")
    r = p.run("ls")
    assert r.code == 3
    assert "ProxyJump for loop goes through more than 8 hosts; does it loop?" in r.err


# -- row 16: weak algorithms refused, RSA with SHA-2 works, hashed known_hosts ---


@pytest.mark.parametrize(
    "lines",
    [
        ("Ciphers aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc",),
        ("Ciphers aes128-ctr,aes256-ctr", "MACs hmac-sha1,hmac-sha1-96,hmac-md5,hmac-md5-96"),
        (
            "KexAlgorithms diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,"
            "diffie-hellman-group-exchange-sha1",
        ),
    ],
    ids=["cbc", "sha1-md5-macs", "sha1-kex"],
)
def test_server_offering_only_weak_algorithms_is_refused(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, lines: tuple[str, ...]
) -> None:
    with odd_sshd(sandbox, tmp_path / "weak", *lines) as port:
        p = known_hosts_project(
            tmp_path, sandbox, f"[{sandbox.host}]:{port} {sandbox.host_key_pub}\n"
        )
        p.config.write_text(p.config.read_text().replace(f"port: {sandbox.port}", f"port: {port}"))
        r = p.run("ls")
    assert r.code == 4, r.err
    assert "offers no algorithm edgesync accepts" in r.err


def test_sha1_rsa_host_key_signature_is_refused_sha2_accepted(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    key_file, key_line = host_key(tmp_path / "rsa-host", "rsa")
    known = f"[{sandbox.host}]:{{port}} {key_line}\n"
    for algorithms, code in (("ssh-rsa", 4), ("rsa-sha2-512,rsa-sha2-256", 0)):
        folder = tmp_path / algorithms.replace(",", "_")
        with odd_sshd(
            sandbox, folder, f"HostKey {key_file}", f"HostKeyAlgorithms {algorithms}"
        ) as port:
            p = known_hosts_project(folder, sandbox, known.format(port=port))
            p.config.write_text(
                p.config.read_text().replace(f"port: {sandbox.port}", f"port: {port}")
            )
            r = p.run("ls")
        assert r.code == code, (algorithms, r.err)


def test_rsa_client_key_signs_with_sha2_only(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path
) -> None:
    rsa_key = tmp_path / "id_rsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(rsa_key)],
        check=True,
        stdin=DEVNULL,
    )
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(rsa_key.with_suffix(".pub").read_text())
    for algorithms, code in (("rsa-sha2-512,rsa-sha2-256", 0), ("ssh-rsa", 4)):
        folder = tmp_path / algorithms.replace(",", "_")
        with odd_sshd(
            sandbox,
            folder,
            f"AuthorizedKeysFile {authorized}",
            f"PubkeyAcceptedAlgorithms {algorithms}",
        ) as port:
            p = known_hosts_project(
                folder, sandbox, f"[{sandbox.host}]:{port} {sandbox.host_key_pub}\n"
            )
            p.config.write_text(
                p.config.read_text()
                .replace(f"port: {sandbox.port}", f"port: {port}")
                .replace(str(sandbox.client_key), str(rsa_key))
            )
            r = p.run("ls")
        assert r.code == code, (algorithms, r.err)
        if code == 4:
            assert "authentication failed" in r.err


@pytest.mark.parametrize("why", ["file", "ssh-config"])
def test_new_host_key_is_hashed_like_the_file(
    tmp_path: Path, sandbox: Sandbox, ssh_home: Path, why: str
) -> None:
    """Hashed when the known_hosts file already hashes its names, or with HashKnownHosts yes;
    OpenSSH's own ssh-keygen -F finds the line."""
    known = ssh_home / ".ssh" / "known_hosts"
    config = alias_config(sandbox) + ("  HashKnownHosts yes\n" if why == "ssh-config" else "")
    ssh_config(ssh_home, config)
    before = ""
    if why == "file":
        before = f"{paramiko.HostKeys.hash_host('elsewhere.example')} {other_key(tmp_path)}\n"
    known.write_text(before)
    p = repo(tmp_path, f"host: edge-sandbox\nproject_dir: {sandbox.project_dir}")
    r = p.run("--accept-new-host-key", "ls")
    assert r.code == 0, r.err
    added = known.read_text()[len(before) :]
    assert added.startswith("|1|") and sandbox.host_key_pub in added
    assert f"{sandbox.host}" not in added
    name = f"[{sandbox.host}]:{sandbox.port}"
    found = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(known)], capture_output=True, text=True
    )
    assert sandbox.host_key_pub in found.stdout
    assert p.run("ls").code == 0
