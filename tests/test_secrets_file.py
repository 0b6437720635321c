"""The secrets file: compose's env_file syntax both ways, digests, name rules. Pure."""

from __future__ import annotations

import pytest

from edgesync.remote.compose import stderr_summary
from edgesync.secrets import (
    SecretsFileError,
    check_name,
    compare,
    digest,
    parse,
    quote,
    render,
)

TRICKY = [
    "plain",
    "",
    "with spaces and # hash",
    "it's",
    'double "quotes"',
    "back\\slash\\",
    "dollar $HOME ${X} $$",
    "multi\nline\nPEM",
    "tab\tand\rreturn",
    "ünï©ødé ✓",
    "=equals=",
]


@pytest.mark.parametrize("value", TRICKY)
def test_every_value_reads_back_exactly(value: str) -> None:
    text = render({"NAME": value}, "salt")
    assert parse(text).values == {"NAME": value}


def test_values_are_double_quoted_with_every_dollar_escaped() -> None:
    # compose interpolates double-quoted values: `\$` is a literal `$` on every release
    assert quote("a $b") == '"a \\$b"'
    assert quote("it's") == '"it\'s"'
    assert quote('$x\n"\\\r') == '"\\$x\\n\\"\\\\\\r"'


def test_users_env_files() -> None:
    text = "# comment\n\nexport A=1\nB = two # note\nC='lit $X'\nD=\"esc\\nline\"\nE=\n"
    assert dict(parse(text).values) == {
        "A": "1",
        "B": "two",
        "C": "lit $X",
        "D": "esc\nline",
        "E": "",
    }


@pytest.mark.parametrize("text", ["NOT A LINE\n", "A='unclosed\n", "1BAD=x\n"])
def test_bad_lines_name_the_line_not_the_value(text: str) -> None:
    with pytest.raises(SecretsFileError) as info:
        parse("OK=1\n" + text)
    assert "line 2" in str(info.value)
    assert "unclosed" not in str(info.value)


def test_digests_depend_on_the_salt_and_hide_the_value() -> None:
    assert digest("a", "secret") == digest("a", "secret")
    assert digest("a", "secret") != digest("b", "secret")
    assert "secret" not in digest("a", "secret") and len(digest("a", "x")) == 12


def test_names() -> None:
    assert check_name("WPP_TOKEN") is None
    assert "not a variable name" in (check_name("9X") or "")
    assert "SUPABASE_" in (check_name("SUPABASE_URL") or "")
    assert "docker-compose.yml" in (
        check_name("JWT_SECRET", compose_names=frozenset({"JWT_SECRET"})) or ""
    )


def test_compare_by_digest() -> None:
    old = parse(render({"A": "1", "B": "2", "C": "3"}, "s"))
    changes = {c.name: c.status for c in compare(old, {"A": "1", "B": "x", "D": "4"})}
    assert changes == {"A": "unchanged", "B": "changed", "C": "removed", "D": "added"}


@pytest.mark.parametrize(
    ("stderr", "shown"),
    [
        (
            'failed to read /p/.env.functions: line 3: unterminated quoted value "s3cret\n',
            "failed to read /p/.env.functions: line 3 (details not shown",
        ),
        (
            "invalid interpolation format for services.functions.environment.X.\n"
            "You may need to escape any $ with another $.\n${s3cret\n",
            "invalid interpolation format for services.functions.environment.X (see",
        ),
        (
            "error while interpolating services.functions.image: "
            "required variable TAG is missing a value: s3cret\n",
            "error while interpolating services.functions.image: required variable TAG is "
            "missing a value (details not shown",
        ),
        (
            'time="x" level=warning msg="The \\"A\\" variable is not set."\n'
            "no such service: functions\n",
            "no such service: functions",
        ),
        ("", "no error output"),
    ],
)
def test_compose_errors_never_quote_values(stderr: str, shown: str) -> None:
    summary = stderr_summary(stderr)
    assert summary.startswith(shown)
    assert "s3cret" not in summary
