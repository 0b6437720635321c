"""The shell scripts edgesync runs on the server, loaded as package data.

Every script runs with `sh -c` and gets its values as positional arguments,
never pasted into its text. `load()` prepends the `EXIT_<NAME>=<code>`
assignments of `RemoteExit`, so both sides use one list of exit codes.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from edgesync.remote.shell import exit_codes_prelude


@cache
def load(name: str) -> str:
    """The text of `scripts/<name>.sh`, with the exit codes prepended."""
    body = resources.files(__package__).joinpath(f"{name}.sh").read_text(encoding="utf-8")
    return exit_codes_prelude() + body


def names() -> tuple[str, ...]:
    """Every script in the package (for shellcheck and tests)."""
    return tuple(
        sorted(
            entry.name.removesuffix(".sh")
            for entry in resources.files(__package__).iterdir()
            if entry.name.endswith(".sh")
        )
    )
