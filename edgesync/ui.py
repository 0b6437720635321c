"""What an action may ask of the person (or CI job) running it, as a protocol.

Actions never print: they report progress, warnings, log lines and previews
through a `UI`, and ask questions through it. `output.Output` is the real one;
`SilentUI` answers no and shows nothing (for tests and library use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from edgesync.loglines import LogLine
from edgesync.results import Result


class UI(Protocol):
    """The channel between an action and its user."""

    @property
    def interactive(self) -> bool:
        """True when questions can be asked (a terminal on stdin)."""

    def info(self, message: str) -> None:
        """A progress or context line."""

    def warn(self, message: str) -> None:
        """A warning."""

    def show(self, result: Result) -> None:
        """An intermediate result (a plan before it is applied)."""

    def log_line(self, line: LogLine) -> None:
        """One attributed line of the functions service's log."""

    def confirm(self, question: str) -> bool:
        """Ask yes/no (default no); only called when `interactive`."""

    def ask(self, question: str, default: str | None = None) -> str:
        """Ask for a value; only called when `interactive`."""

    def progress(self, total: int, label: str) -> AbstractContextManager[Callable[[int], None]]:
        """A byte counter for an upload of `total` bytes."""


class SilentUI:
    """A UI that shows nothing and declines every question."""

    interactive = False

    def info(self, message: str) -> None:
        """Ignored."""

    def warn(self, message: str) -> None:
        """Ignored."""

    def show(self, result: Result) -> None:
        """Ignored."""

    def log_line(self, line: LogLine) -> None:
        """Ignored."""

    def confirm(self, question: str) -> bool:  # noqa: ARG002
        """Always no."""
        return False

    def ask(self, question: str, default: str | None = None) -> str:  # noqa: ARG002
        """The default, or nothing."""
        return default or ""

    @contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[[int], None]]:  # noqa: ARG002
        """Counts nothing."""
        yield lambda _n: None
