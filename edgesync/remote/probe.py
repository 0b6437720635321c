"""Requests to the functions on a server: from the server itself through Kong on
loopback (over SSH, with curl or python3 there), or from here to the target's `url`."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType

from edgesync.config import Target
from edgesync.errors import RemoteError
from edgesync.remote import scripts
from edgesync.remote.shell import RemoteExit, RemoteShell, sh_script

# A CORS preflight: the router never checks a JWT for OPTIONS, and a function's
# handler is expected to answer it without touching business logic.
PREFLIGHT_HEADERS = MappingProxyType(
    {"Origin": "https://edgesync.invalid", "Access-Control-Request-Method": "POST"}
)


@dataclass(frozen=True)
class Probe:
    """One request that tells whether a function boots."""

    function: str
    method: str = "OPTIONS"
    path: str = ""  # after /functions/v1/<function>
    headers: Mapping[str, str] = field(default_factory=lambda: PREFLIGHT_HEADERS)
    expect: int | None = None  # a status that must come back (else any non-boot answer)


@dataclass(frozen=True)
class Answer:
    """What a request got: status 0 means no answer at all."""

    function: str
    status: int
    seconds: float
    body: bytes = b""


def probe_from_server(
    shell: RemoteShell, target: Target, probes: Sequence[Probe], *, timeout: float
) -> list[Answer]:
    """Send the requests from the server (one SSH command for all of them)."""
    args: list[object] = []
    for p in probes:
        headers = "\n".join(f"{k}: {v}" for k, v in p.headers.items())
        args += [p.function, p.method, p.path, headers]
    result = shell.run(
        sh_script(scripts.load("probe"), target.project_dir, f"{timeout:g}", *args),
        check=False,
        timeout=timeout * len(probes) + 30,
        what="requesting the functions",
    )
    if result.exit_status == RemoteExit.NO_CLIENT:
        raise RemoteError(
            f"cannot request the functions from {shell.hostname}: neither curl nor python3 is "
            "installed there",
            hint=f"install curl on the server, or set targets.{target.name}.url in "
            "edgesync.yaml to request them from here (or push --no-verify)",
        )
    if result.exit_status != 0:
        raise RemoteError(
            f"requesting the functions failed (exit {result.exit_status}): "
            f"{result.stderr_text or 'no error output'}"
        )
    return parse_answers(result.stdout)


def parse_answers(data: bytes) -> list[Answer]:
    """probe.sh's output: R\\0name\\0status\\0seconds\\0base64-body\\0 per request."""
    fields = data.split(b"\0")
    out = []
    for i in range(0, len(fields) - 4, 5):
        tag, name, status, seconds, body = fields[i : i + 5]
        if tag != b"R":
            raise RemoteError("unexpected output from the server's request script")
        try:
            code = int(status or b"0")
            secs = float(seconds or b"0")
            raw = base64.b64decode(body, validate=False)
        except ValueError:
            code, secs, raw = 0, 0.0, b""
        out.append(Answer(name.decode("utf-8", "replace"), code, secs, raw))
    return out


def probe_over_http(base_url: str, probes: Sequence[Probe], *, timeout: float) -> list[Answer]:
    """Send the requests from here to `{url}/functions/v1/<name>` (a few at a time)."""
    import urllib.error  # http.client and ssl: only for a target with a url
    import urllib.request

    def one(p: Probe) -> Answer:
        url = f"{base_url.rstrip('/')}/functions/v1/{p.function}{p.path}"
        request = urllib.request.Request(url, method=p.method, headers=dict(p.headers))
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:  # noqa: S310 - http(s) only
                return Answer(p.function, r.status, time.monotonic() - start, r.read(4096))
        except urllib.error.HTTPError as e:
            return Answer(p.function, e.code, time.monotonic() - start, e.read(4096))
        except (OSError, ValueError):
            return Answer(p.function, 0, time.monotonic() - start)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, probes))
