"""Pure: what an answer from a function says about whether it booted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from edgesync.remote.probe import Answer, Probe

# The router answers a worker that cannot start with 500 {"msg": "InvalidWorkerCreation:
# worker boot error: …"}; newer runtimes say BOOT_ERROR / "failed to boot".
_BOOT_FAILURE = re.compile(
    rb"InvalidWorkerCreation|worker boot error|BOOT_ERROR|failed to boot", re.IGNORECASE
)


class Outcome(str, Enum):
    """A function's state after a request."""

    UP = "up"  # it answered (any answer that is not a boot failure)
    BOOT_ERROR = "boot error"  # the runtime could not start it
    UNEXPECTED = "unexpected status"  # it answered, but not with the status configured
    NO_ANSWER = "no answer"  # nothing answered (the service is down or restarting)


@dataclass(frozen=True)
class Check:
    """One function's verification: outcome, status, latency and what explains a failure."""

    function: str
    outcome: Outcome
    status: int
    seconds: float
    detail: str = ""  # the boot error message, or the body's start

    @property
    def ok(self) -> bool:
        """True when the function booted (and answered as configured)."""
        return self.outcome is Outcome.UP


def judge(answer: Answer, probe: Probe) -> Check:
    """Classify one answer."""
    body = answer.body
    text = body.decode("utf-8", "replace").strip()[:300]
    if answer.status == 0 or (answer.status in (502, 503, 504) and not _BOOT_FAILURE.search(body)):
        return Check(probe.function, Outcome.NO_ANSWER, answer.status, answer.seconds, text)
    if answer.status >= 500 and _BOOT_FAILURE.search(body):
        return Check(probe.function, Outcome.BOOT_ERROR, answer.status, answer.seconds, text)
    if probe.expect is not None and answer.status != probe.expect:
        return Check(probe.function, Outcome.UNEXPECTED, answer.status, answer.seconds, text)
    return Check(probe.function, Outcome.UP, answer.status, answer.seconds)
