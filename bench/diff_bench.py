"""Benchmarks for edgesync against a throwaway sandbox server (a real sshd on loopback).

Prints a table; run by hand (`make bench`) and quote the numbers. Nothing here
asserts a time: the machines are shared and noisy.

  * `diff` on the example repository and on a tree of 200 functions (5 files each)
  * `push` of one function of the example
  * SSH channels (round trips) a push of 1 file and of 100 files costs
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgesync.actions.diff import diff  # noqa: E402
from edgesync.actions.push import push  # noqa: E402
from edgesync.context import Options, Workspace, open_server  # noqa: E402
from edgesync.remote.ssh import Connection  # noqa: E402
from edgesync.ui import SilentUI  # noqa: E402
from sandbox import Sandbox, start_sandbox  # noqa: E402


def write_config(repo: Path, sb: Sandbox, functions_dir: Path) -> Path:
    cfg = repo / "edgesync.yaml"
    cfg.write_text(
        f"functions_dir: {functions_dir}\n"
        "targets:\n  bench:\n"
        f"    host: {sb.host}\n    port: {sb.port}\n"
        f"    identity_file: {sb.client_key}\n    known_hosts_file: {sb.known_hosts}\n"
        f"    project_dir: {sb.project_dir}\n"
    )
    return cfg


def timed(fn: Callable[[], object], runs: int = 5) -> tuple[float, object]:
    times: list[float] = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def diff_once(cfg: Path) -> object:
    options = Options(config_path=cfg)
    ws = Workspace.load(options)
    with open_server(ws.target, options) as server:
        return diff(ws, server, SilentUI())


def push_once(cfg: Path, names: list[str]) -> tuple[int, int]:
    """Plan and apply a push (no restart/logs); returns (channels opened, files sent)."""
    options = Options(config_path=cfg)
    ws = Workspace.load(options)
    with open_server(ws.target, options) as server:
        result = push(ws, server, SilentUI(), names, restart=False, require_clean=False)
        assert isinstance(server.shell, Connection)
        return server.shell.channels_opened, len(result.uploaded)


def make_tree(root: Path, functions: int, files: int, size: int = 2000) -> None:
    for i in range(functions):
        d = root / f"fn-{i:03d}"
        d.mkdir(parents=True)
        (d / "index.ts").write_text(f"import '../_shared/util.ts'\n// {i}\n" + "x" * size)
        for j in range(files - 1):
            (d / f"mod{j}.ts").write_text(f"export const v = {i * 100 + j}\n" + "y" * size)
    (root / "_shared").mkdir()
    (root / "_shared/util.ts").write_text("export const util = 1\n")


def main() -> None:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="edgesync-bench-") as tmp:
        tmpd = Path(tmp)
        sb = start_sandbox(tmpd / "sandbox")
        try:
            example = ROOT / "examples/academyos"
            # 1. diff on the example (server seeded like the incident notes)
            sb.reset()
            sb.seed_example(example)
            repo = tmpd / "repo-example"
            repo.mkdir()
            cfg = write_config(repo, sb, example / "supabase/functions")
            t, _ = timed(lambda: diff_once(cfg))
            rows.append(("diff, example (6 entries), in-process", f"{t * 1000:.0f} ms"))
            cmd = [sys.executable, "-m", "edgesync", "-c", str(cfg), "diff"]
            t, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True))
            rows.append(("`edgesync diff`, example, whole process", f"{t * 1000:.0f} ms"))
            # 2. push of one function of the example
            t0 = time.perf_counter()
            channels, sent = push_once(cfg, ["wpp-provision"])
            rows.append(
                (
                    "push wpp-provision (2 files, no restart)",
                    f"{(time.perf_counter() - t0) * 1000:.0f} ms, {channels} channels",
                )
            )
            # 3. diff on 200 functions x 5 files, server holding the same tree
            big = tmpd / "big"
            make_tree(big, 200, 5)
            sb.reset()
            shutil.copytree(big, sb.functions_dir, dirs_exist_ok=True)
            repo = tmpd / "repo-big"
            repo.mkdir()
            cfg = write_config(repo, sb, big)
            t, res = timed(lambda: diff_once(cfg))
            rows.append(("diff, 200 functions x 5 files, in-process", f"{t * 1000:.0f} ms"))
            cmd = [sys.executable, "-m", "edgesync", "-c", str(cfg), "diff"]
            t, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True))
            rows.append(("`edgesync diff`, 200 functions, whole process", f"{t * 1000:.0f} ms"))
            # 4. channels for a push of 1 file and of 100 files
            (big / "fn-000/index.ts").write_text("changed\n")
            channels, sent = push_once(cfg, [])
            rows.append((f"push of {sent} file", f"{channels} SSH channels"))
            for i in range(100):
                (big / f"fn-{i:03d}/mod0.ts").write_text(f"changed {i}\n")
            channels, sent = push_once(cfg, [])
            rows.append((f"push of {sent} files", f"{channels} SSH channels"))
        finally:
            sb.stop()
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  result")
    print(f"{'-' * width}  ------")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
