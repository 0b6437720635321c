"""The edgesync sandbox: a real sshd on loopback that looks like a self-hosted Supabase server.

Used by the test suite (``tests/conftest.py``) and by ``make demo`` (``python -m sandbox up``).
"""

from __future__ import annotations

from sandbox.server import Sandbox, SandboxError, port_in_use, sandbox_at, start_sandbox

__all__ = ["Sandbox", "SandboxError", "port_in_use", "sandbox_at", "start_sandbox"]
