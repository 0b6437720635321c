"""`python -m edgesync`."""

from __future__ import annotations

from edgesync.cli import main

main()
