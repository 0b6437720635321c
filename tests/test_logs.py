"""Log attribution (pure) and `edgesync logs` end to end through the real sshd."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from edgesync.loglines import attribute, select
from sandbox import Sandbox
from tests.helpers import Project

LOG = [
    "supabase-edge-functions  | main function started",
    "supabase-edge-functions  | serving the request with /home/deno/functions/wpp-provision",
    "supabase-edge-functions  | [Info] provisioning school 42",
    "supabase-edge-functions  | [Error] evolution timeout",
    "supabase-edge-functions  | serving the request with /home/deno/functions/wpp-provision-v2",
    "supabase-edge-functions  | [Info] v2 here",
    "supabase-edge-functions  | serving the request with /home/deno/functions/hello",
    "supabase-edge-functions  | worker boot error: could not find an appropriate entrypoint",
    "supabase-edge-functions  | main function started",
    "supabase-edge-functions  | [Info] after restart, nobody's",
]


def test_attribution_follows_markers_exactly() -> None:
    lines = list(attribute(LOG))
    assert [ln.function for ln in lines] == [
        None,
        "wpp-provision",
        "wpp-provision",
        "wpp-provision",
        "wpp-provision-v2",
        "wpp-provision-v2",
        "hello",
        "hello",
        None,
        None,
    ]
    assert lines[1].text == "serving the request with /home/deno/functions/wpp-provision"
    assert lines[7].is_boot_error


def test_select_by_function_and_grep() -> None:
    only = [ln.text for ln in select(attribute(LOG), ["wpp-provision"])]
    assert only == [
        "serving the request with /home/deno/functions/wpp-provision",
        "[Info] provisioning school 42",
        "[Error] evolution timeout",
    ]
    grep = [ln.text for ln in select(attribute(LOG), (), re.compile("TIMEOUT", re.I))]
    assert grep == ["[Error] evolution timeout"]
    boot = [ln.text for ln in select(attribute(LOG), ["wpp-provision"], boot_errors=True)]
    assert boot[-1].startswith("worker boot error")


def fill(sandbox: Sandbox) -> None:
    sandbox.request("hello")
    sandbox.append_log("serving the request with /home/deno/functions/wpp-provision")
    sandbox.append_log("[Info] provisioning school 42")
    sandbox.append_log("[Error] Evolution timeout after 10s")
    sandbox.request("missing")


def test_logs_by_function(project: Project, sandbox: Sandbox) -> None:
    fill(sandbox)
    r = project.run("logs", "wpp-provision")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "[wpp-provision] serving the request with /home/deno/functions/wpp-provision",
        "[wpp-provision] [Info] provisioning school 42",
        "[wpp-provision] [Error] Evolution timeout after 10s",
    ]
    (call,) = [c for c in sandbox.calls() if "logs" in c["argv"]]
    assert call["cwd"] == str(sandbox.project_dir)
    assert call["argv"][:4] == ["compose", "logs", "--no-color", "--tail"]


def test_logs_grep_and_tail(project: Project, sandbox: Sandbox) -> None:
    fill(sandbox)
    r = project.run("logs", "--grep", "PROVISION")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "[wpp-provision] serving the request with /home/deno/functions/wpp-provision",
        "[wpp-provision] [Info] provisioning school 42",
    ]
    # --tail counts raw lines: the marker is outside the window, so nothing is attributed
    r = project.run("logs", "--tail", "2")
    assert r.out.splitlines() == [
        "worker boot error: could not find an appropriate entrypoint",
        "InvalidWorkerCreation: worker boot error: could not find an appropriate entrypoint",
    ]
    r = project.run("logs", "--tail", "3")
    assert (
        r.out.splitlines()[0] == "[missing] serving the request with /home/deno/functions/missing"
    )


def test_logs_bad_input(project: Project, sandbox: Sandbox) -> None:
    r = project.run("logs", "--grep", "(")
    assert r.code == 2 and "not a valid regular expression" in r.err
    r = project.run("logs", "--since", "yesterday")
    assert r.code == 2 and "--since" in r.err


def test_logs_compose_failure(project: Project, sandbox: Sandbox) -> None:
    project.config.write_text(project.config.read_text() + "    service: edge\n")
    r = project.run("logs")
    assert r.code == 5
    assert "no such service: edge" in r.err
    assert "targets.sandbox.service" in r.err


def test_follow_stops_cleanly_and_leaves_no_remote_process(
    project: Project, sandbox: Sandbox
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgesync", "-c", str(project.config), "logs", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ},
    )
    deadline = time.monotonic() + 20
    while not sandbox.followers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.followers(), "logs -f never started on the server"
    sandbox.append_log("serving the request with /home/deno/functions/hello")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "[hello] serving the request" in out
    deadline = time.monotonic() + 10
    while sandbox.followers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.followers() == []
