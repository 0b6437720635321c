"""``python -m sandbox up|down|request|status``: run the sandbox server for demos.

Example:
    python -m sandbox up --example examples/academyos
    python -m sandbox request wpp-provision
    python -m sandbox request wpp-provision -X POST -d '{"schoolId": "42"}'
    python -m sandbox down
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sandbox.server import SSHD, Sandbox, SandboxError, port_in_use, start_sandbox

DEFAULT_ROOT = Path("/tmp/edgesync-sandbox")
DEFAULT_PORT = 48022  # fixed, so the repository's edgesync.yaml can target the demo server


def ensure_sshd() -> None:
    """Install openssh-server when missing (as root), or say what to install."""
    if SSHD.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SandboxError(
            f"{SSHD} is missing: install OpenSSH's server first "
            "(Debian/Ubuntu: sudo apt-get install -y openssh-server)"
        )
    print("sandbox: installing openssh-server …", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "openssh-server"]):
        if subprocess.run(argv, env=env).returncode != 0:
            raise SandboxError(f"`{' '.join(argv)}` failed; install openssh-server by hand")


def up(args: argparse.Namespace) -> int:
    """Start (or restart) the sandbox in the background."""
    ensure_sshd()
    root: Path = args.root.resolve()
    if (root / "sandbox.json").exists():
        Sandbox.load(root).stop()
    if port_in_use(args.port):
        raise SandboxError(
            f"port {args.port} on 127.0.0.1 is busy (another sandbox? `python -m sandbox down`, "
            "or choose one with --port)"
        )
    sandbox = start_sandbox(root, args.port)
    if args.example is not None:
        sandbox.seed_example(args.example.resolve())
    if args.write_config is not None:
        write_config(sandbox, args.write_config, args.example)
    print(f"sandbox up: {sandbox.user}@{sandbox.host}:{sandbox.port} (sshd pid {sandbox.pid})")
    print(f"  project_dir  {sandbox.project_dir}")
    print(f"  client key   {sandbox.client_key}")
    print(f"  known_hosts  {sandbox.known_hosts}")
    print(f"  docker calls {sandbox.docker_calls}")
    print(f"  service log  {sandbox.service_log}")
    print(f"  functions    http://{sandbox.host}:{sandbox.kong_port}/functions/v1/NAME")
    print(f"  try: {' '.join(sandbox.ssh_command())} 'docker compose ps'")
    return 0


def write_config(sandbox: Sandbox, path: Path, example: Path | None) -> None:
    """An edgesync.yaml that deploys `example` (or ./supabase/functions) to this sandbox."""
    functions = (example.resolve() / "supabase" / "functions") if example else None
    lines = [
        "# Written by `python -m sandbox up`: deploys to this sandbox server.",
        f"functions_dir: {json.dumps(str(functions))}" if functions else "",
        "default_target: sandbox",
        "targets:",
        "  sandbox:",
        f"    host: {sandbox.host}",
        f"    port: {sandbox.port}",
        f"    user: {sandbox.user}",
        f"    identity_file: {json.dumps(str(sandbox.client_key))}",
        f"    known_hosts_file: {json.dumps(str(sandbox.known_hosts))}",
        f"    project_dir: {json.dumps(str(sandbox.project_dir))}",
    ]
    path.write_text("\n".join(line for line in lines if line) + "\n")
    print(f"  edgesync.yaml {path}")


def down(args: argparse.Namespace) -> int:
    """Stop the sandbox."""
    try:
        sandbox = Sandbox.load(args.root.resolve())
    except SandboxError:
        print(f"no sandbox at {args.root}")
        return 0
    was_running = sandbox.running()
    sandbox.stop()
    print(f"sandbox {'stopped' if was_running else 'was not running'} ({sandbox.root})")
    return 0


def request(args: argparse.Namespace) -> int:
    """Send a request to /functions/v1/NAME and print the status and the body."""
    sandbox = Sandbox.load(args.root.resolve())
    headers = {}
    for header in args.header:
        name, colon, value = header.partition(":")
        if not colon:
            raise SandboxError(f"--header wants 'Name: value', got {header!r}")
        headers[name.strip()] = value.strip()
    reply = sandbox.request(args.name, args.method, body=args.data, headers=headers)
    print(f"{args.method} /functions/v1/{args.name.lstrip('/')} -> {reply.status}")
    if reply.body:
        print(reply.text.rstrip("\n"))
    return 0


def status(args: argparse.Namespace) -> int:
    """Say whether the sandbox runs."""
    try:
        sandbox = Sandbox.load(args.root.resolve())
    except SandboxError as error:
        print(error)
        return 1
    if not sandbox.running():
        print(f"sandbox at {sandbox.root} is not running")
        return 1
    print(f"sandbox running: {sandbox.user}@{sandbox.host}:{sandbox.port} (sshd pid {sandbox.pid})")
    print(f"  project_dir {sandbox.project_dir}")
    info = sandbox.container()
    print(f"  functions container: {info['status']}, restarted {info['restart_count']} times")
    print(f"  functions    http://{sandbox.host}:{sandbox.kong_port}/functions/v1/NAME")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--root",
            type=Path,
            default=DEFAULT_ROOT,
            help=f"sandbox folder (default {DEFAULT_ROOT})",
        )
        return sub

    sub = add("up", "start the sandbox server in the background")
    sub.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"sshd port on 127.0.0.1 (default {DEFAULT_PORT})",
    )
    sub.add_argument(
        "--example",
        type=Path,
        default=None,
        help="seed the server with an example repository (e.g. examples/academyos)",
    )
    sub.add_argument(
        "--write-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="write an edgesync.yaml that targets this sandbox (and deploys the example)",
    )
    sub.set_defaults(run=up)
    add("down", "stop the sandbox server").set_defaults(run=down)
    sub = add("request", "send an HTTP request to /functions/v1/NAME, print status and body")
    sub.add_argument("name", help="function name, optionally with a sub-path and query")
    sub.add_argument("-X", "--method", default="GET", help="HTTP method (default GET)")
    sub.add_argument("-d", "--data", default=None, help="request body")
    sub.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value' (repeatable)"
    )
    sub.set_defaults(run=request)
    add("status", "show whether the sandbox runs").set_defaults(run=status)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except SandboxError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(
            f"sandbox: {error.filename}: permission denied (made by another user?): "
            "choose another folder with --root (make demo DEMO_ROOT=/tmp/my-sandbox)",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
