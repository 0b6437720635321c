"""Test helpers: a local repository pointed at the sandbox server, and a CLI runner."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesync.cli import run

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """What one edgesync run returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Project:
    """A local repository with supabase/functions and an edgesync.yaml."""

    root: Path

    @property
    def functions(self) -> Path:
        return self.root / "supabase" / "functions"

    @property
    def config(self) -> Path:
        return self.root / "edgesync.yaml"

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.functions / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def run(self, *args: str) -> Result:
        """Run edgesync in-process with this project's config."""
        return cli("-c", str(self.config), *args)

    def run_process(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run the installed console entry point as a separate process."""
        full_env = {**os.environ, **(env or {})}
        p = subprocess.run(
            [sys.executable, "-m", "edgesync", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            env=full_env,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
            timeout=120,
        )
        return Result(p.returncode, p.stdout, p.stderr)


def cli(*args: str) -> Result:
    """Run edgesync in-process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def target_yaml(
    *,
    host: str,
    port: int,
    project_dir: Path,
    identity_file: Path | None = None,
    known_hosts: Path | None = None,
    extra: str = "",
    top: str = "",
) -> str:
    """An edgesync.yaml with one target `sandbox`."""
    lines = [top.rstrip("\n")] if top else []
    lines += [
        "targets:",
        "  sandbox:",
        f"    host: {host}",
        f"    port: {port}",
        f"    project_dir: {json.dumps(str(project_dir))}",
    ]
    if identity_file is not None:
        lines.append(f"    identity_file: {json.dumps(str(identity_file))}")
    if known_hosts is not None:
        lines.append(f"    known_hosts_file: {json.dumps(str(known_hosts))}")
    if extra:
        lines += ["    " + line for line in extra.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def serve(label: str, *imports: str) -> str:
    """A small real function: it imports `imports` and answers `label` (the sandbox runs it)."""
    lines = [f"import '{path}'" for path in imports]
    return "\n".join([*lines, f"Deno.serve(() => new Response({label!r}))", ""])
