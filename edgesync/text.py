"""Small wording helpers shared by actions (messages) and the renderer."""

from __future__ import annotations


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 file`, `2 files`."""
    return f"{n} {word if n == 1 else words or word + 's'}"
