"""The sandbox's functions service really runs functions: real sshd, real Deno, nothing mocked.

Functions are written straight into the server's functions folder; the service is driven the
way the deploy tool and an operator drive it: `docker compose …` over ssh in the project folder,
`curl` on the server to `KONG_HTTP_PORT` from the project's `.env`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgesync.cli import run as edgesync
from sandbox import Sandbox, start_sandbox
from sandbox.server import ServiceDown
from tests.helpers import REPO_ROOT, Project

EXAMPLE = REPO_ROOT / "examples" / "academyos"
JWT_SECRET = "sandbox-jwt-secret-with-at-least-32-characters-long"  # server_tree/.env


def ssh(sandbox: Sandbox, command: str) -> subprocess.CompletedProcess[str]:
    """``cd <project_dir> && <command>`` on the sandbox through the system ssh client."""
    return subprocess.run(
        sandbox.ssh_command(f"cd {shlex.quote(str(sandbox.project_dir))} && {command}"),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def compose(sandbox: Sandbox, args: str) -> None:
    r = ssh(sandbox, f"docker compose {args}")
    assert r.returncode == 0, r.stderr


def curl(sandbox: Sandbox, path: str, *options: str) -> tuple[int, str]:
    """A request from the server itself to Kong's port, as read from the project's .env."""
    words = " ".join(shlex.quote(o) for o in options)
    r = ssh(
        sandbox,
        "port=$(sed -n 's/^KONG_HTTP_PORT=//p' .env) && "
        f"curl -sS {words} -w '\\n%{{http_code}}' http://127.0.0.1:$port/functions/v1/{path}",
    )
    assert r.returncode == 0, r.stderr
    body, _, status = r.stdout.rpartition("\n")
    return int(status), body


def write(sandbox: Sandbox, rel: str, text: str) -> None:
    path = sandbox.functions_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def logs(sandbox: Sandbox) -> list[str]:
    r = ssh(sandbox, "docker compose logs --no-log-prefix functions")
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def set_env(sandbox: Sandbox, name: str, value: str) -> None:
    """Change one variable of the project's .env (what an operator edits on the server)."""
    env = sandbox.project_dir / ".env"
    lines = [line for line in env.read_text().splitlines() if not line.startswith(f"{name}=")]
    env.write_text("\n".join([*lines, f"{name}={value}"]) + "\n")


def jwt(secret: str, **claims: object) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps({"role": "anon", **claims}).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


ECHO = """
Deno.serve((req) => {
  const url = new URL(req.url)
  return Response.json({ method: req.method, path: url.pathname, query: url.search, v: 1 })
})
"""

CHATTY = """
console.log('booting')
Deno.serve(() => {
  console.log('handled', { school: 42 })
  console.info('info line')
  console.error('evolution timeout after %ds', 10)
  console.warn('slow')
  return new Response('ok')
})
"""


# --------------------------------------------------------------------------- answering


def test_function_answers_from_the_server_on_kong_port(sandbox: Sandbox) -> None:
    write(sandbox, "echo/index.ts", ECHO)
    status, body = curl(sandbox, "echo/sub/path?x=1", "-X", "POST")
    assert status == 200
    assert json.loads(body) == {"method": "POST", "path": "/echo/sub/path", "query": "?x=1", "v": 1}
    env = (sandbox.project_dir / ".env").read_text()
    assert f"KONG_HTTP_PORT={sandbox.kong_port}\n" in env
    r = sandbox.request("hello")
    assert (r.status, r.json()) == (200, "Hello from Edge Functions!")


def test_kong_routes_only_functions_v1(sandbox: Sandbox) -> None:
    sandbox.wait_until_serving()
    connection = http.client.HTTPConnection(sandbox.host, sandbox.kong_port, timeout=10)
    connection.request("GET", "/rest/v1/schools")
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (
        404,
        {"message": "no Route matched with those values"},
    )
    connection.close()
    r = sandbox.request("")
    assert (r.status, r.json()) == (400, {"msg": "missing function name in request"})


def test_console_output_follows_the_marker(sandbox: Sandbox) -> None:
    write(sandbox, "chatty/index.ts", CHATTY)
    assert sandbox.request("chatty").text == "ok"
    assert logs(sandbox) == [
        "main function started",
        "serving the request with /home/deno/functions/chatty",
        "[Info] booting",
        "[Info] handled { school: 42 }",
        "[Info] info line",
        "[Error] evolution timeout after 10s",
        "[Warning] slow",
    ]


def test_a_function_writing_to_stdout_still_boots(sandbox: Sandbox) -> None:
    write(
        sandbox,
        "raw/index.ts",
        "Deno.stdout.writeSync(new TextEncoder().encode('{\"port\": 1}\\n'))\n"
        "Deno.serve(() => new Response('fine'))\n",
    )
    assert sandbox.request("raw").text == "fine"
    wait_for(lambda: '{"port": 1}' in sandbox.log_lines())  # logged as the container's output


def test_functions_get_the_containers_environment(sandbox: Sandbox) -> None:
    write(sandbox, "env/index.ts", "Deno.serve(() => Response.json(Deno.env.toObject()))\n")
    env = sandbox.request("env").json()
    assert env["SUPABASE_URL"] == "http://kong:8000"
    assert env["JWT_SECRET"] == JWT_SECRET
    assert env["VERIFY_JWT"] == "false"
    assert env["SUPABASE_DB_URL"] == (
        "postgresql://postgres:sandbox-postgres-password-not-a-secret@db:5432/postgres"
    )
    assert env["SUPABASE_ANON_KEY"].startswith("eyJ")
    # the container's environment only: nothing of the host, the runtime or Deno itself
    assert "OPENAI_API_KEY" not in env  # volumes/functions/.env is not loaded by the router
    assert not {"DENO_DIR", "DENO_NODE_SHIM_ACTIVE", "EDGESYNC_SANDBOX_STATE"} & set(env)
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"
    assert re.fullmatch("[0-9a-f]{12}", env["HOSTNAME"])  # the container id, as docker sets it


# --------------------------------------------------------------------------- boot errors


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (
            {"boom/index.ts": "throw new Error('no EVOLUTION_API_URL')\n"},
            "Uncaught Error: no EVOLUTION_API_URL",
        ),
        ({"boom/README.md": "no entry file\n"}, "could not find an appropriate entrypoint"),
        (
            {"boom/index.ts": "import { wpp } from '../_shared/wpp.ts'\nDeno.serve(wpp)\n"},
            'failed to create the graph: Module not found "file:///home/deno/functions/_shared/wpp.ts".',
        ),
        (
            {"boom/index.ts": "Deno.serve((req) => new Response('x')\n"},
            "failed to create the graph: The module's source code could not be parsed",
        ),
        (
            {"boom/index.ts": "console.log('no server here')\n"},
            "the function's module finished loading without calling Deno.serve",
        ),
    ],
    ids=["throws", "no-entry", "missing-import", "syntax-error", "no-deno-serve"],
)
def test_a_function_that_cannot_boot_answers_500(
    sandbox: Sandbox, files: dict[str, str], error: str
) -> None:
    for rel, text in files.items():
        write(sandbox, rel, text)
    r = sandbox.request("boom")
    assert r.status == 500
    assert r.json()["msg"].startswith(f"InvalidWorkerCreation: worker boot error: {error}")
    lines = logs(sandbox)
    assert lines[1] == "serving the request with /home/deno/functions/boom"
    boot_error = [line for line in lines if line.startswith("worker boot error: ")]
    assert len(boot_error) == 1 and boot_error[0].startswith(f"worker boot error: {error}")
    assert lines[-1].startswith("InvalidWorkerCreation: worker boot error: ") or (
        "    at " in lines[-1]  # the location of a graph error continues the message
    )
    assert all(str(sandbox.root) not in line for line in lines)  # container paths only


def test_a_boot_error_is_not_remembered(sandbox: Sandbox) -> None:
    write(
        sandbox,
        "late/index.ts",
        "import '../_shared/late.ts'\nDeno.serve(() => new Response('up'))\n",
    )
    assert sandbox.request("late").status == 500
    write(sandbox, "_shared/late.ts", "export {}\n")  # the missing file arrives
    r = sandbox.request("late")
    assert (r.status, r.text) == (200, "up")


# --------------------------------------------------------------------------- workers, restarts


def version(sandbox: Sandbox, name: str = "echo") -> int:
    reply = sandbox.request(name)
    assert reply.status == 200, reply.text
    result: int = reply.json()["v"]
    return result


def test_a_live_worker_keeps_its_code_until_it_retires(sandbox: Sandbox) -> None:
    (sandbox.state_dir / "worker-timeout-ms").write_text("2000\n")
    write(sandbox, "echo/index.ts", ECHO)
    assert version(sandbox) == 1
    write(sandbox, "echo/index.ts", ECHO.replace("v: 1", "v: 2"))
    assert version(sandbox) == 1  # the live worker still runs the code it loaded
    wait_for(lambda: version(sandbox) == 2)  # the next worker reads the files again


def test_a_restart_picks_up_an_edit(sandbox: Sandbox) -> None:
    write(sandbox, "echo/index.ts", ECHO)
    assert version(sandbox) == 1
    write(sandbox, "echo/index.ts", ECHO.replace("v: 1", "v: 2"))
    assert version(sandbox) == 1
    compose(sandbox, "restart functions --no-deps")
    assert version(sandbox) == 2


def test_restart_refuses_requests_during_the_gap_and_kills_the_workers(sandbox: Sandbox) -> None:
    write(sandbox, "echo/index.ts", ECHO)
    assert version(sandbox) == 1
    before = set(sandbox.runtime_processes())
    assert len(before) == 2  # the runtime and the worker of echo
    outcomes: list[str] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            try:
                socket.create_connection((sandbox.host, sandbox.kong_port), timeout=2).close()
                outcomes.append("up")
            except ConnectionRefusedError:
                outcomes.append("refused")
            time.sleep(0.001)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        r = ssh(sandbox, "docker compose restart functions --no-deps")
    finally:
        done.set()
        prober.join()
    assert r.returncode == 0, r.stderr
    assert "refused" in outcomes, "no request was refused during the restart"
    assert outcomes[-1] == "up"  # the restart returns once the service listens again
    assert version(sandbox) == 1  # the ssh session is gone; the service it started serves
    assert not before & set(sandbox.runtime_processes())  # old runtime and worker are dead
    assert logs(sandbox).count("main function started") == 2


def test_docker_restart_and_force_recreate_restart_the_service(sandbox: Sandbox) -> None:
    write(sandbox, "echo/index.ts", ECHO)
    assert version(sandbox) == 1
    (runtime, *_) = sandbox.runtime_processes()
    r = ssh(sandbox, "docker restart supabase-edge-functions")
    assert (r.returncode, r.stdout) == (0, "supabase-edge-functions\n")
    assert runtime not in sandbox.runtime_processes()
    assert version(sandbox) == 1
    (runtime, *_) = sandbox.runtime_processes()
    compose(sandbox, "up -d --force-recreate")
    assert runtime not in sandbox.runtime_processes()
    assert version(sandbox) == 1
    assert logs(sandbox)[0] == "main function started"  # a new container, a new log


def test_stop_start_and_ps_tell_the_truth(sandbox: Sandbox) -> None:
    compose(sandbox, "stop functions")
    with pytest.raises(ServiceDown):
        sandbox.request("hello")
    assert sandbox.runtime_processes() == []
    r = ssh(sandbox, "docker compose ps -a --format '{{.Service}} {{.State}}' functions")
    assert r.stdout == "functions exited\n"
    compose(sandbox, "start functions")
    assert sandbox.request("hello").status == 200
    r = ssh(sandbox, "docker compose ps --format '{{.Service}} {{.State}}' functions")
    assert r.stdout == "functions running\n"


def test_a_broken_router_leaves_the_container_exited(sandbox: Sandbox) -> None:
    write(sandbox, "main/index.ts", "throw new Error('router broken')\n")
    compose(sandbox, "restart functions")
    assert logs(sandbox)[-1] == "main worker boot error: Error: router broken"
    r = ssh(sandbox, "docker ps -a --format '{{.Names}} {{.Status}}'")
    assert "supabase-edge-functions Exited (1)" in r.stdout
    with pytest.raises(ServiceDown):
        sandbox.request("hello")


# --------------------------------------------------------------------------- environment


ENV = "Deno.serve(() => Response.json(Deno.env.toObject()))\n"


def test_recreate_rereads_the_environment_restart_does_not(sandbox: Sandbox) -> None:
    write(sandbox, "env/index.ts", ENV)
    anon = sandbox.request("env").json()["SUPABASE_ANON_KEY"]
    set_env(sandbox, "ANON_KEY", "eyJrotated")
    compose(sandbox, "restart functions --no-deps")
    assert sandbox.request("env").json()["SUPABASE_ANON_KEY"] == anon
    compose(sandbox, "up -d --force-recreate --no-deps functions")
    assert sandbox.request("env").json()["SUPABASE_ANON_KEY"] == "eyJrotated"


def test_env_file_entries_reach_the_functions(sandbox: Sandbox) -> None:
    write(sandbox, "env/index.ts", ENV)
    compose_file = sandbox.project_dir / "docker-compose.yml"
    text = compose_file.read_text()
    text = text.replace(
        "      - ./volumes/functions:/home/deno/functions:Z\n",
        "      - ./volumes/functions:/home/deno/functions:Z\n"
        "    env_file:\n"
        "      - ./volumes/functions/.env\n"
        "      - path: ./optional.env\n"
        "        required: false\n",
    )
    compose_file.write_text(text)
    compose(sandbox, "up -d --no-deps functions")  # the definition changed: recreated
    env = sandbox.request("env").json()
    assert env["OPENAI_API_KEY"] == "sk-sandbox-secret"
    assert env["SUPABASE_URL"] == "http://kong:8000"  # environment: still applies


def test_verify_jwt(sandbox: Sandbox) -> None:
    write(
        sandbox,
        "private/index.ts",
        "Deno.serve((req) => new Response(req.method === 'OPTIONS' ? 'preflight' : 'secret'))\n",
    )
    assert sandbox.request("private").text == "secret"  # FUNCTIONS_VERIFY_JWT=false
    set_env(sandbox, "FUNCTIONS_VERIFY_JWT", "true")
    compose(sandbox, "up -d --force-recreate --no-deps functions")

    r = sandbox.request("private")
    assert (r.status, r.json()) == (401, {"msg": "Error: Missing authorization header"})
    bearer = {"Authorization": f"Bearer {jwt(JWT_SECRET, exp=int(time.time()) + 600)}"}
    r = sandbox.request("private", headers=bearer)
    assert (r.status, r.text) == (200, "secret")
    for token in (jwt("another-secret-of-at-least-32-characters"), jwt(JWT_SECRET, exp=1)):
        r = sandbox.request("private", headers={"Authorization": f"Bearer {token}"})
        assert (r.status, r.json()) == (401, {"msg": "Invalid JWT"})
    r = sandbox.request("private", "OPTIONS")  # preflight requests reach the function
    assert (r.status, r.text) == (200, "preflight")
    status, body = curl(sandbox, "private", "-H", f"Authorization: {bearer['Authorization']}")
    assert (status, body) == (200, "secret")


# --------------------------------------------------------------------------- imports


def test_import_maps_are_found_walking_up_from_the_function(sandbox: Sandbox) -> None:
    write(sandbox, "_shared/wpp.ts", "export const wpp = (v: string): string => `wpp ${v}`\n")
    write(sandbox, "deno.json", '{ "imports": { "shared/": "./_shared/" } }\n')
    write(
        sandbox,
        "top/index.ts",
        "import { wpp } from 'shared/wpp.ts'\nDeno.serve(() => new Response(wpp('top')))\n",
    )
    write(sandbox, "own/deno.json", '{ "imports": { "@shared/": "../_shared/" } }\n')
    write(
        sandbox,
        "own/index.ts",
        "import { wpp } from '@shared/wpp.ts'\nDeno.serve(() => new Response(wpp('own')))\n",
    )
    write(
        sandbox,
        "jsonc/deno.jsonc",
        '// comments allowed\n{ "imports": { "@w": "../_shared/wpp.ts" } }\n',
    )
    write(
        sandbox,
        "jsonc/index.ts",
        "import { wpp } from '@w'\nDeno.serve(() => new Response(wpp('jsonc')))\n",
    )
    assert sandbox.request("top").text == "wpp top"  # functions/deno.json
    assert sandbox.request("own").text == "wpp own"  # its own deno.json wins
    assert sandbox.request("jsonc").text == "wpp jsonc"
    # nothing is written into the functions folder (no deno.lock, no node_modules)
    names = {p.name for p in sandbox.functions_dir.rglob("*")}
    assert not {"deno.lock", "node_modules"} & names


def test_the_official_import_map_key_is_honoured(sandbox: Sandbox) -> None:
    write(sandbox, "_shared/cors.ts", "export const cors = 'cors'\n")
    write(sandbox, "import_map.json", '{ "imports": { "@c": "./_shared/cors.ts" } }\n')
    write(sandbox, "mapped/deno.json", '{ "importMap": "../import_map.json" }\n')
    write(
        sandbox,
        "mapped/index.ts",
        "import { cors } from '@c'\nDeno.serve(() => new Response(cors))\n",
    )
    assert sandbox.request("mapped").text == "cors"


def test_remote_imports_fail_to_boot_without_network(sandbox: Sandbox) -> None:
    write(
        sandbox,
        "remote/index.ts",
        "import 'https://esm.sh/zod@3'\nDeno.serve(() => new Response('x'))\n",
    )
    r = sandbox.request("remote")
    assert r.status == 500
    assert r.json()["msg"].startswith("InvalidWorkerCreation: worker boot error: ")


# --------------------------------------------------------------------------- the example, the CLI


def test_the_example_really_runs_and_wpp_provision_answers_once_pushed(
    sandbox: Sandbox, tmp_path: Path, ssh_home: Path
) -> None:
    sandbox.seed_example(EXAMPLE)
    r = sandbox.request("wpp-provision")
    assert r.status == 500 and "could not find an appropriate entrypoint" in r.json()["msg"]
    r = sandbox.request("wpp-status")
    assert (r.status, r.json()) == (400, {"error": "schoolId is required"})

    repo = Project(tmp_path / "repo")
    shutil.copytree(EXAMPLE / "supabase", repo.root / "supabase")
    repo.config.write_text(
        "targets:\n  sandbox:\n"
        f"    host: {sandbox.host}\n    port: {sandbox.port}\n"
        f"    project_dir: {json.dumps(str(sandbox.project_dir))}\n"
        f"    identity_file: {json.dumps(str(sandbox.client_key))}\n"
        f"    known_hosts_file: {json.dumps(str(sandbox.known_hosts))}\n"
    )
    assert edgesync(["-c", str(repo.config), "push", "wpp-provision", "--no-logs"]) == 0
    r = sandbox.request("wpp-provision", "POST", body="{}")
    assert (r.status, r.json()) == (400, {"error": "schoolId is required"})
    r = sandbox.request("wpp-provision", "OPTIONS")
    assert (r.status, r.text) == (200, "ok")
    assert r.headers["access-control-allow-origin"] == "*"


def test_python_m_sandbox_request(sandbox: Sandbox) -> None:
    write(sandbox, "echo/index.ts", ECHO)
    r = subprocess.run(
        [sys.executable, "-m", "sandbox", "request", "--root", str(sandbox.root), "echo/x?y=1",
         "-X", "PUT", "-d", "{}", "-H", "Content-Type: application/json"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    head, body = r.stdout.splitlines()
    assert head == "PUT /functions/v1/echo/x?y=1 -> 200"
    assert json.loads(body) == {"method": "PUT", "path": "/echo/x", "query": "?y=1", "v": 1}


# --------------------------------------------------------------------------- lifecycle


def test_nothing_is_left_running_after_stop(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "own") as own:
        write(own, "echo/index.ts", ECHO)
        assert version(own) == 1
        r = ssh(own, "docker compose restart functions")
        assert r.returncode == 0, r.stderr
        assert version(own) == 1
        assert len(own.runtime_processes()) == 2
    assert own.runtime_processes() == []
    listing = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True)
    assert str(own.root) not in listing.stdout
