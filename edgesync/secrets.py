"""Pure: the functions' secrets file (compose `env_file` syntax), names, digests, changes.

The file edgesync owns on the server (default `<project_dir>/.env.functions`)
holds one `NAME=VALUE` per line in the syntax docker compose reads for
`env_file`: single-quoted values are literal, double-quoted ones understand
`\\n`, `\\"`, `\\\\`, `\\$` and `$$` (edgesync writes every value double-quoted).
Its first line carries a random salt, so that digests of values can be shown
and compared without revealing short values.
Values never leave this module except to be written into that file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER = "# edgesync: functions' secrets (names and digests are shown; values never)"
SALT_PREFIX = "# edgesync-salt: "
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_DOUBLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}


class SecretsFileError(ValueError):
    """A line that is not `NAME=VALUE` (the message names the line number, not its value)."""


@dataclass(frozen=True)
class SecretsFile:
    """The values, in order, and the salt their digests use."""

    values: Mapping[str, str]
    salt: str

    def digest(self, name: str) -> str:
        """A short digest of one value: equal values, equal digests (for this file's salt)."""
        return digest(self.salt, self.values[name])


def digest(salt: str, value: str) -> str:
    """12 hex characters of HMAC-SHA256(salt, value)."""
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()[:12]


def new_salt() -> str:
    """A salt for a new file."""
    return random.token_hex(16)


def check_name(name: str, *, compose_names: frozenset[str] = frozenset()) -> str | None:
    """Why `name` cannot be a secret, or None."""
    if not NAME_RE.match(name):
        return f"'{name}' is not a variable name (letters, digits and _, not starting with a digit)"
    if name.upper().startswith("SUPABASE_"):
        return f"{name}: names starting with SUPABASE_ belong to the Supabase setup"
    if name in compose_names:
        return (
            f"{name} is set in docker-compose.yml `environment:`, which wins over the secrets "
            "file: change it there"
        )
    return None


def parse(text: str) -> SecretsFile:
    """Read an env file (edgesync's own, or a user's `--from-file`)."""
    values: dict[str, str] = {}
    salt = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if raw.startswith(SALT_PREFIX):
            salt = raw[len(SALT_PREFIX) :].strip()
            continue
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if m is None:
            raise SecretsFileError(f"line {i}: expected NAME=VALUE")
        name, rest = m.group(1), m.group(2).strip()
        if rest.startswith('"') and not _closed(rest, '"'):  # a value over several lines
            while i < len(lines) and not _closed(rest, '"'):
                rest += "\n" + lines[i]
                i += 1
        values[name] = _value(rest, i)
    return SecretsFile(values, salt)


def _closed(rest: str, quote: str) -> bool:
    """True when `rest` (starting with `quote`) has its closing quote."""
    j = 1
    while j < len(rest):
        if rest[j] == "\\" and quote == '"':
            j += 2
            continue
        if rest[j] == quote:
            return True
        j += 1
    return False


def _value(rest: str, line: int) -> str:
    if rest.startswith("'"):
        end = rest.find("'", 1)
        while end > 0 and rest[end - 1] == "\\":
            end = rest.find("'", end + 1)
        if end < 0:
            raise SecretsFileError(f"line {line}: a single quote is not closed")
        return rest[1:end].replace("\\'", "'")
    if rest.startswith('"'):
        out: list[str] = []
        j = 1
        while j < len(rest) and rest[j] != '"':
            if rest[j] == "\\" and j + 1 < len(rest):
                out.append(_DOUBLE_ESCAPES.get(rest[j + 1], "\\" + rest[j + 1]))
                j += 2
            elif rest.startswith("$$", j):
                out.append("$")
                j += 2
            else:
                out.append(rest[j])
                j += 1
        if j >= len(rest):
            raise SecretsFileError(f"line {line}: a double quote is not closed")
        return "".join(out)
    return re.sub(r"\s+#.*$", "", rest).strip()  # unquoted: an inline comment after a space


def quote(value: str) -> str:
    """A value as compose's env_file syntax reads it back exactly (never interpolated).

    Always double-quoted: compose interpolates `${VAR}` in double-quoted and
    unquoted values, so every `$` is written `\\$` (which compose-go reads as a
    literal `$`, like `$$`), and `\\`, `"`, line feed and carriage return are
    escaped. Single quotes would be literal but cannot hold a `'`.
    """
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def render(values: Mapping[str, str], salt: str) -> str:
    """The file's text: header, salt, one line per name (sorted)."""
    lines = [HEADER, SALT_PREFIX + salt]
    lines += [f"{name}={quote(values[name])}" for name in sorted(values)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SecretChange:
    """How one name compares between two sets of values."""

    name: str
    status: str  # added | changed | removed | unchanged
    before: str | None  # digests, never values
    after: str | None


def compare(old: SecretsFile, new: Mapping[str, str]) -> tuple[SecretChange, ...]:
    """Name by name, with digests under `old`'s salt."""
    out = []
    for name in sorted(set(old.values) | set(new)):
        before = old.digest(name) if name in old.values else None
        after = digest(old.salt, new[name]) if name in new else None
        if before is None:
            status = "added"
        elif after is None:
            status = "removed"
        else:
            status = "unchanged" if before == after else "changed"
        out.append(SecretChange(name, status, before, after))
    return tuple(out)
