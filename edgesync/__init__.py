"""edgesync: deploy Supabase Edge Functions to self-hosted Supabase servers over SSH."""

from __future__ import annotations

__version__ = "0.1.0"
