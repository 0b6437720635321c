"""Per-function settings in supabase/config.toml that the self-hosted server ignores."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]


def verify_jwt_settings(functions_dir: Path) -> dict[str, bool]:
    """`[functions.NAME] verify_jwt` of supabase/config.toml, for the functions that set it."""
    path = functions_dir.parent / "config.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # the resolver reports a config.toml it cannot read
    table = data.get("functions")
    if not isinstance(table, dict):
        return {}
    return {
        name: value["verify_jwt"]
        for name, value in table.items()
        if isinstance(value, dict) and isinstance(value.get("verify_jwt"), bool)
    }


def jwt_mismatches(settings: dict[str, bool], *, server_verifies: bool) -> list[str]:
    """One warning per function whose verify_jwt disagrees with the server's VERIFY_JWT."""
    out = []
    for name, wanted in sorted(settings.items()):
        if wanted == server_verifies:
            continue
        if server_verifies:
            out.append(
                f"{name} sets verify_jwt = false in config.toml, but the self-hosted router "
                "verifies a JWT for every function (VERIFY_JWT=true): calls without one get 401"
            )
        else:
            out.append(
                f"{name} sets verify_jwt = true in config.toml, but the self-hosted router "
                "verifies no JWT for any function (VERIFY_JWT=false): check it in the function"
            )
    return out
