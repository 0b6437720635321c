"""Reading and attributing functions-service log lines. Pure: no I/O.

The edge runtime's log is unstructured. The router prints
`serving the request with /home/deno/functions/<name>` for every request; the
function's own output (`[Info] …`, `[Error] …`) follows without its name. So a
line belongs to the function named by the nearest marker before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MARKER_RE = re.compile(r"serving the request with /home/deno/functions/([^/\s]+)")
BOOT_RE = re.compile(r"main function started")
BOOT_ERROR_RE = re.compile(r"worker boot error", re.IGNORECASE)
# `docker compose logs` prefixes lines with "<container>  | " unless --no-log-prefix.
PREFIX_RE = re.compile(r"^[\w.-]+\s+\| ")


@dataclass(frozen=True)
class LogLine:
    """One line of the service log and the function it is attributed to (None: none)."""

    text: str
    function: str | None
    is_marker: bool = False
    is_boot_error: bool = False


def strip_prefix(line: str) -> str:
    """Drop compose's `container  | ` prefix if present."""
    return PREFIX_RE.sub("", line, count=1)


class Attributor:
    """Stateful: feed lines in order, get them back attributed."""

    def __init__(self) -> None:
        self.current: str | None = None

    def feed(self, raw: str) -> LogLine:
        """Attribute one line."""
        text = strip_prefix(raw.rstrip("\r\n"))
        m = MARKER_RE.search(text)
        if m:
            self.current = m.group(1)
            return LogLine(text, self.current, is_marker=True)
        if BOOT_RE.search(text):
            self.current = None
            return LogLine(text, None)
        return LogLine(text, self.current, is_boot_error=bool(BOOT_ERROR_RE.search(text)))


def attribute(lines: Iterable[str]) -> Iterator[LogLine]:
    """Attribute every line of a log, in order."""
    a = Attributor()
    for line in lines:
        yield a.feed(line)


def select(
    lines: Iterable[LogLine],
    functions: Iterable[str] = (),
    grep: re.Pattern[str] | None = None,
    *,
    boot_errors: bool = False,
) -> Iterator[LogLine]:
    """Keep lines of the named functions (all when none), matching `grep`.

    With `boot_errors`, `worker boot error` lines are kept whatever they are
    attributed to (after a push they are the thing to see).
    """
    wanted = set(functions)
    for line in lines:
        keep = not wanted or line.function in wanted
        if boot_errors and line.is_boot_error:
            keep = True
        if keep and (grep is None or grep.search(line.text)):
            yield line
