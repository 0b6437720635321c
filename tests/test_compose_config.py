"""The stand-in's compose model: `docker compose config`, override files, env files.

The first part runs the stand-in directly on a copy of the server's compose project (no sshd,
no daemon state needed for `config`); the second drives the real sandbox over ssh and checks
that what `config` says is what a recreated functions container really gets.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import Sandbox
from sandbox.server import DOCKER_STUB, SERVER_TREE, docker_stub
from tests.helpers import Result

SECRET = "wpp-secret-value-0451"


@dataclass
class Server:
    """A compose project like the server's, and the stand-in's state folder."""

    project: Path
    state: Path

    def compose(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """``docker compose <args>`` in the project folder (or ``cwd``)."""
        environment = {"PATH": os.environ["PATH"], "EDGESYNC_SANDBOX_STATE": str(self.state)}
        result = subprocess.run(
            [sys.executable, str(DOCKER_STUB), "compose", *args],
            cwd=cwd or self.project,
            env={**environment, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Result(result.returncode, result.stdout, result.stderr)

    def config(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        r = self.compose("config", "--format", "json", *args, env=env)
        assert r.code == 0, r.err
        data: dict[str, Any] = json.loads(r.out)
        return data

    def functions(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        service: dict[str, Any] = self.config(*args, env=env)["services"]["functions"]
        return service

    def write(self, rel: str, text: str) -> Path:
        path = self.project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def env_value(self, line: str, name: str = "V") -> str | None:
        """The value ``name`` gets from an env file holding ``line``."""
        self.write(".env.functions", line)
        value: str | None = self.functions()["environment"].get(name)
        return value


OVERRIDE = """\
services:
  functions:
    env_file:
      - ./.env.functions
"""


@pytest.fixture
def server(tmp_path: Path) -> Server:
    project = tmp_path / "supabase-project"
    shutil.copytree(SERVER_TREE, project)
    (tmp_path / "state").mkdir()
    return Server(project, tmp_path / "state")


# --------------------------------------------------------------------------- config shapes


def test_config_merges_env_file_contents_into_environment(server: Server) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    server.write(".env.functions", f"WPP_SECRET={SECRET}\nVERIFY_JWT=from-the-file\n")
    functions = server.functions()
    assert "env_file" not in functions
    env = functions["environment"]
    assert env["WPP_SECRET"] == SECRET
    assert env["VERIFY_JWT"] == "false"  # environment: wins over env_file for the same name
    assert env["SUPABASE_URL"] == "http://kong:8000"
    assert env["JWT_SECRET"] == "sandbox-jwt-secret-with-at-least-32-characters-long"
    assert list(env) == sorted(env)  # a Go map: sorted keys
    # the model as compose prints it: Go struct order, `command`/`entrypoint` never omitted
    assert list(functions) == [
        "command",
        "container_name",
        "depends_on",
        "entrypoint",
        "environment",
        "image",
        "networks",
        "restart",
        "volumes",
    ]
    assert functions["command"] == ["start", "--main-service", "/home/deno/functions/main"]
    assert functions["entrypoint"] is None
    assert functions["volumes"] == [
        {
            "type": "bind",
            "source": str(server.project / "volumes" / "functions"),
            "target": "/home/deno/functions",
            "bind": {"selinux": "Z"},
        }
    ]


def test_no_env_resolution_lists_env_files_with_absolute_paths(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        OVERRIDE + "      - path: ./optional.env\n        required: false\n",
    )
    server.write(".env.functions", f"WPP_SECRET={SECRET}\n")
    functions = server.functions("--no-env-resolution")
    # compose v5 prints a required env file as {"path"} (required is an opt-out, shown only
    # when false), never the file's variables
    assert functions["env_file"] == [
        {"path": str(server.project / ".env.functions")},
        {"path": str(server.project / "optional.env"), "required": False},
    ]
    env = functions["environment"]
    assert "WPP_SECRET" not in env
    assert env["VERIFY_JWT"] == "false"  # environment: is interpolated all the same
    assert env["SUPABASE_ANON_KEY"].startswith("eyJ")


def test_a_missing_env_file(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        OVERRIDE + "      - path: ./optional.env\n        required: false\n",
    )
    missing = server.project / ".env.functions"
    r = server.compose("config", "--format", "json")
    assert (r.code, r.out) == (1, "")
    assert r.err == f"env file {missing} not found: stat {missing}: no such file or directory\n"
    assert server.compose("config", "-q").code == 1
    assert server.compose("config", "--no-env-resolution", "-q").code == 0
    server.write(".env.functions", "A=1\n")  # the optional one may stay missing
    assert server.functions()["environment"]["A"] == "1"


def test_required_may_come_from_a_variable(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        OVERRIDE.replace(
            "      - ./.env.functions\n",
            "      - path: ./.env.functions\n        required: ${SECRETS_REQUIRED:-false}\n",
        ),
    )
    assert "WPP_SECRET" not in server.functions()["environment"]
    r = server.compose("config", "-q", env={"SECRETS_REQUIRED": "true"})
    assert r.code == 1 and "not found" in r.err
    r = server.compose("config", "-q", env={"SECRETS_REQUIRED": "maybe"})
    assert (r.code, r.err) == (1, "invalid boolean: maybe\n")


def test_env_files_in_order_and_environment_variables_without_a_value(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        """\
services:
  functions:
    env_file: [first.env, second.env]
    environment:
      - FROM_SHELL
      - UNSET_ANYWHERE
      - FROM_FILE
""",
    )
    server.write("first.env", "A=first\nB=first\nFROM_FILE=file\n")
    server.write("second.env", "B=second\nC=${B}-${A}\n")
    env = server.functions(env={"FROM_SHELL": "shell"})["environment"]
    assert (env["A"], env["B"]) == ("first", "second")  # later files win
    assert env["C"] == "second-first"  # interpolated from what was read before
    assert env["FROM_SHELL"] == "shell"  # a bare name takes the shell's (or .env's) value
    assert env["UNSET_ANYWHERE"] is None  # found nowhere: null, and not set in a container
    assert env["FROM_FILE"] is None  # environment: wins even without a value


def test_where_an_env_file_looks_variables_up(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        "services:\n  functions:\n    env_file: [first.env, second.env]\n"
        "    environment:\n      DECLARED: in-compose\n",
    )
    server.write("first.env", "A=first\n")
    server.write("second.env", "FROM_A=${A}\nFROM_DECLARED=${DECLARED}\n")
    shell = {"A": "shell"}
    env = server.functions(env=shell)["environment"]
    # compose >= 2.35: the project environment first, then environment: and earlier values
    assert (env["FROM_A"], env["FROM_DECLARED"]) == ("shell", "in-compose")
    (server.state / "compose-version").write_text("2.34.0\n")
    env = server.functions(env=shell)["environment"]
    # before: the earlier env files first, then the project environment; never environment:
    assert (env["FROM_A"], env["FROM_DECLARED"]) == ("first", "")


def test_the_override_file_is_merged_unless_f_is_given(server: Server) -> None:
    server.write(
        "docker-compose.yml",
        (server.project / "docker-compose.yml")
        .read_text()
        .replace(
            "      - ./volumes/functions:/home/deno/functions:Z\n",
            "      - ./volumes/functions:/home/deno/functions:Z\n    env_file: base.env\n",
        ),
    )
    server.write("base.env", "BASE=1\n")
    server.write(".env.functions", "OVERRIDE=1\n")
    server.write(
        "docker-compose.override.yml",
        OVERRIDE
        + """\
    image: supabase/edge-runtime:v1.70.0
    environment:
      EXTRA: added
      SUPABASE_URL: http://kong:9000
    command: ["start", "--main-service", "/home/deno/functions/other"]
    volumes:
      - ./elsewhere:/home/deno/functions:ro
""",
    )
    functions = server.functions()
    assert functions["image"] == "supabase/edge-runtime:v1.70.0"  # scalars override
    env = functions["environment"]
    assert env["EXTRA"] == "added"  # environment maps merge
    assert env["SUPABASE_URL"] == "http://kong:9000"
    assert env["JWT_SECRET"].startswith("sandbox-jwt-secret")
    assert (env["BASE"], env["OVERRIDE"]) == ("1", "1")  # env_file lists append
    assert functions["command"][-1] == "/home/deno/functions/other"  # command is replaced
    assert functions["volumes"] == [  # a mount of the same target is replaced
        {
            "type": "bind",
            "source": str(server.project / "elsewhere"),
            "target": "/home/deno/functions",
            "read_only": True,
        }
    ]
    assert server.functions("--no-env-resolution")["env_file"] == [
        {"path": str(server.project / "base.env")},
        {"path": str(server.project / ".env.functions")},
    ]
    r = server.compose("-f", "docker-compose.yml", "config", "--format", "json")
    alone = r.json()["services"]["functions"]
    assert alone["image"] == "supabase/edge-runtime:v1.69.24"
    assert "OVERRIDE" not in alone["environment"] and "BASE" in alone["environment"]


def test_override_file_names(server: Server) -> None:
    server.write("compose.override.yaml", "services:\n  functions:\n    image: first\n")
    server.write("docker-compose.override.yml", "services:\n  functions:\n    image: second\n")
    assert server.functions()["image"] == "first"
    r = server.compose("config", "--services")
    assert r.err.count("level=warning") == 2
    assert "Found multiple override files with supported names" in r.err
    nested = server.project / "volumes" / "functions"
    r = server.compose("config", "--format", "json", cwd=nested)  # found from a subfolder too
    assert r.json()["services"]["functions"]["image"] == "first"


def test_yaml_output_and_dollar_escaping(server: Server) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    server.write(".env.functions", "PRICE='cost: $5'\nPLAIN=abc\n")
    r = server.compose("config")
    assert r.code == 0, r.err
    assert r.out.startswith("name: supabase\nservices:\n")
    assert r.out.endswith("\n")
    assert '      PRICE: "cost: $$5"\n' in r.out  # every $ of the output is doubled
    assert "      PLAIN: abc\n" in r.out
    assert '      VERIFY_JWT: "false"\n' in r.out
    assert "    command:\n      - start\n      - --main-service\n" in r.out
    r = server.compose("config", "--format", "json")
    assert not r.out.endswith("\n")  # compose prints the JSON without a final newline
    assert r.json()["services"]["functions"]["environment"]["PRICE"] == "cost: $$5"
    r = server.compose("config", "--no-env-resolution")
    assert f"    env_file:\n      - path: {server.project}/.env.functions\n" in r.out
    assert server.compose("config", "--format", "toml").err == 'unsupported format "toml"\n'


def test_config_listings(server: Server) -> None:
    assert server.compose("config", "--services").out.splitlines() == ["db", "functions", "kong"]
    r = server.compose("config", "--images")
    assert "supabase/edge-runtime:v1.69.24" in r.out.splitlines()
    r = server.compose("config", "--format", "json", "functions")  # and what it depends on
    assert sorted(r.json()["services"]) == ["db", "functions"]
    r = server.compose("config", "nothing")
    assert (r.code, r.err) == (1, "no such service: nothing\n")
    r = server.compose("config", "-q")
    assert (r.code, r.out, r.err) == (0, "", "")


# --------------------------------------------------------------------------- compose versions


def test_compose_versions(server: Server) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    server.write(".env.functions", f"WPP_SECRET={SECRET}\n")
    assert server.compose("version").out == "Docker Compose version v5.5.0\n"
    assert server.compose("version", "--short").out == "5.5.0\n"
    assert server.compose("version", "--format", "json").out == '{"version":"v5.5.0"}\n'
    (server.state / "compose-version").write_text("2.40.3\n")
    assert server.compose("version").out == "Docker Compose version v2.40.3\n"
    # 2.35-2.40 accept --no-env-resolution, but their loader has resolved env_file already
    functions = server.functions("--no-env-resolution")
    assert "env_file" not in functions
    assert functions["environment"]["WPP_SECRET"] == SECRET
    r = server.compose("config", "--no-such-flag")
    assert (r.code, r.err) == (1, "unknown flag: --no-such-flag\n")
    assert functions["volumes"][0]["bind"] == {"selinux": "Z", "create_host_path": True}
    (server.state / "compose-version").write_text("2.29.7\n")
    r = server.compose("config", "--no-env-resolution")
    assert (r.code, r.out, r.err) == (16, "", "unknown flag: --no-env-resolution\n")
    # what every version shows: the model, not interpolated, env_file in long syntax
    r = server.compose("config", "--no-interpolate", "--format", "json")
    functions = r.json()["services"]["functions"]
    assert functions["env_file"] == [
        {"path": str(server.project / ".env.functions"), "required": True}
    ]
    assert functions["environment"]["JWT_SECRET"] == "${JWT_SECRET}"
    r = server.compose("config", "--no-interpolate", "--format", "json", "functions")
    assert sorted(r.json()["services"]) == ["db", "functions", "kong"]  # names do not select


# --------------------------------------------------------------------------- env file format


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("V=plain", "plain"),
        ("V=  spaced out  ", "spaced out"),
        ("V=value # a comment", "value"),
        ("V=value#not-a-comment", "value#not-a-comment"),
        ("V=a=b=c", "a=b=c"),
        ("V=", ""),
        ("export V=exported", "exported"),
        ("V: yaml-style", "yaml-style"),
        ("V='single $POSTGRES_DB ${X} \\n # kept'", "single $POSTGRES_DB ${X} \\n # kept"),
        ("V='it\\'s'", "it's"),
        ('V="tab\\tnew\\nline \\"quoted\\" back\\\\slash"', 'tab\tnew\nline "quoted" back\\slash'),
        ('V="db ${POSTGRES_DB} $POSTGRES_DB ${NOPE:-fallback}"', "db postgres postgres fallback"),
        ('V="dollar \\$POSTGRES_DB $$POSTGRES_DB"', "dollar $POSTGRES_DB $POSTGRES_DB"),
        ('V="value" # comment after the quote', "value"),
        ("V=unquoted ${POSTGRES_DB}", "unquoted postgres"),
        ('V="first\nsecond"', "first\nsecond"),
        ("V='first\nsecond'", "first\nsecond"),
        ('V="{\\"key\\": \\"json\\"}"', '{"key": "json"}'),
        ("\ufeffV=after a BOM", "after a BOM"),
        ("V=crlf\r\nW=x", "crlf"),
        ("A=1\nV=${A}2", "12"),
        ("POSTGRES_DB=mine\nV=${POSTGRES_DB}", "postgres"),  # the project's environment first
        ("V=octal \\0101", "octal \\0101"),
        ('V="octal \\0101"', "octal A"),
    ],
)
def test_env_file_values(server: Server, line: str, value: str) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    got = server.env_value(line)
    assert got is not None
    assert got.replace("$$", "$") == value  # config doubles every $


# Any value survives double quotes with \\ \" \$ and line breaks escaped; single quotes cannot
# hold every value (a final backslash escapes the closing quote).
NASTY = "it's \"q\" $HOME ${POSTGRES_DB} \\n \\0101 #x # y\n\tline 2 \\' end\\"


def dotenv_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def test_any_value_survives_double_quotes(server: Server) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    got = server.env_value(f"V={dotenv_quote(NASTY)}")
    assert got is not None and got.replace("$$", "$") == NASTY
    server.write(".env.functions", "V='ends with a backslash\\'\n")
    r = server.compose("config", "-q")
    assert r.code == 1 and "unterminated quoted value" in r.err


def test_env_file_inherited_names_and_comments(server: Server) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    server.write(
        ".env.functions",
        "# a comment\n\n   # an indented comment\nFROM_SHELL\nNOT_SET_ANYWHERE\nPOSTGRES_DB\n",
    )
    env = server.functions(env={"FROM_SHELL": "shell value"})["environment"]
    assert env["FROM_SHELL"] == "shell value"
    assert env["POSTGRES_DB"] == "postgres"  # from the project's .env
    assert "NOT_SET_ANYWHERE" not in env


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # compose counts the line break inside the quotes before it gives up: line 3
        ('A=1\nV="never closed\n', 'line 3: unterminated quoted value "never closed'),
        ("MY KEY=1\n", "line 1: key cannot contain a space"),
        ("BAD!=1\n", 'line 1: unexpected character "!" in variable name "BAD!=1"'),
        ("V=${REQUIRED:?set it}\n", "required variable REQUIRED is missing a value: set it"),
        ("V=${\n", 'Invalid template: "${"'),
    ],
)
def test_env_file_errors(server: Server, text: str, error: str) -> None:
    server.write("docker-compose.override.yml", OVERRIDE)
    path = server.write(".env.functions", text)
    r = server.compose("config")
    assert (r.code, r.out) == (1, "")
    assert r.err == f"failed to read {path}: {error}\n"


# --------------------------------------------------------------------------- compose files


def test_interpolation_of_the_compose_files(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        """\
services:
  functions:
    environment:
      DEFAULTED: ${MISSING:-fallback}
      ALTERNATE: ${POSTGRES_DB:+set}
      NESTED: ${MISSING:-${POSTGRES_DB}}
      ESCAPED: $$HOME
      EMPTY: ${MISSING}
""",
    )
    r = server.compose("config", "--format", "json")
    env = r.json()["services"]["functions"]["environment"]
    assert (env["DEFAULTED"], env["ALTERNATE"], env["NESTED"]) == ("fallback", "set", "postgres")
    assert (env["ESCAPED"], env["EMPTY"]) == ("$$HOME", "")
    assert 'msg="The \\"MISSING\\" variable is not set. Defaulting to a blank string."' in r.err
    env = server.functions(env={"POSTGRES_DB": "from-the-shell"})["environment"]
    assert env["NESTED"] == "from-the-shell"  # the shell wins over .env

    server.write(
        "docker-compose.override.yml", "services:\n  functions:\n    image: ${TAG:?no tag}\n"
    )
    r = server.compose("config")
    assert r.err == (
        "error while interpolating services.functions.image: "
        "required variable TAG is missing a value: no tag\n"
    )
    server.write("docker-compose.override.yml", "services:\n  functions:\n    image: ${TAG\n")
    r = server.compose("config")
    assert r.err == (
        "invalid interpolation format for services.functions.image.\n"
        "You may need to escape any $ with another $.\n${TAG\n"
    )


def test_a_bad_compose_file_fails_every_command(server: Server) -> None:
    path = server.write(
        "docker-compose.override.yml", "services:\n  functions:\n    env_file: a: b\n"
    )
    for command in (["config"], ["config", "--services"], ["restart", "functions"], ["ps"]):
        r = server.compose(*command)
        assert (r.code, r.err) == (
            1,
            f"failed to parse {path}: yaml: line 3: mapping values are not allowed in this context\n",
        )
    server.write("docker-compose.override.yml", "services:\n  functions:\n    envfile: x.env\n")
    r = server.compose("config")
    assert (r.code, r.err) == (
        1,
        f"validating {path}: services.functions additional properties 'envfile' not allowed\n",
    )
    server.write(
        "docker-compose.override.yml",
        "services:\n  functions:\n    env_file:\n      - path: x.env\n        require: false\n",
    )
    r = server.compose("config")
    assert r.err == (
        f"validating {path}: services.functions.env_file.0 additional properties "
        "'require' not allowed\n"
    )
    server.write("docker-compose.override.yml", "services:\n  function:\n    env_file: x.env\n")
    r = server.compose("config")
    assert r.err == (
        'service "function" has neither an image nor a build context specified: '
        "invalid compose project\n"
    )
    server.write("docker-compose.override.yml", "services:\n  functions:\n    depends_on: [nope]\n")
    r = server.compose("config")
    assert (
        r.err
        == 'service "functions" depends on undefined service "nope": invalid compose project\n'
    )


def test_yaml_features_of_compose_files(server: Server) -> None:
    server.write(
        "docker-compose.override.yml",
        """\
x-common: &common
  COMMON: "yes"
  SHARED: base
services:
  functions:
    environment:
      <<: *common
      SHARED: own
      FOLDED: >
        one
        two
      LITERAL: |
        line 1
        line 2
      SINGLE: 'it''s'
      NUMBER: 0755
      FLOAT: 1.50
      BOOL: true
      NULL_VALUE:
""",
    )
    env = server.functions()["environment"]
    assert (env["COMMON"], env["SHARED"]) == ("yes", "own")
    assert (env["FOLDED"], env["LITERAL"]) == ("one two\n", "line 1\nline 2\n")
    assert env["SINGLE"] == "it's"
    assert (env["NUMBER"], env["FLOAT"], env["BOOL"]) == ("493", "1.5", "true")  # as Go prints
    assert env["NULL_VALUE"] is None


YAML_DOCUMENTS = [
    SERVER_TREE.joinpath("docker-compose.yml").read_text(),
    """\
x-env: &env
  A: 1
  B: two
services:
  a:
    environment:
      <<: *env
      B: override
    command: >
      folded
      text

      para
    script: |
      # not a comment
      line1
        indented

      line3
    keep: |+
      k

    strip: |-
      s
    k2: |2
        two extra
      base
  b:
    - x
    - - nested
      - seq
    - key: v
      # a comment inside
      other: w
    -
      late: 1
  c: {a: 1, b: [x, y], "q": 'z', n: [a, [b, c], {d: e}], e: [], f: {}}
  d:
  - same
  - indent
plain: multi
  line
quoted: "multi
  line \\x41\\u00e9 \\
  joined"
single: 'a

  b ''quoted'''
numbers: [0x1F, -5, 1.5, .5, 12, ~, null, true, FALSE]
strings: [-c, "true", 'null', 1.2.3, a:b, http://x:8000/y]
"my key": 1
seq: &s
  - 1
again: *s
""",
]


@pytest.mark.parametrize("text", YAML_DOCUMENTS)
def test_yaml_reader_agrees_with_pyyaml(text: str) -> None:
    assert docker_stub().yaml_documents(text) == list(yaml.safe_load_all(text))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a: b: c\n", "yaml: line 1: mapping values are not allowed in this context"),
        ("a:\n  - x\n  y: 1\n", "yaml: line 3: did not find expected '-' indicator"),
        ("a: [1, 2\n", "yaml: line 2: did not find expected ',' or ']'"),
        ("a:\n\tb: 1\n", "yaml: line 2: found character that cannot start any token"),
        (
            'a: "\\q"\n',
            "yaml: line 1: found unknown escape character while parsing a quoted scalar",
        ),
        (
            "a: 1\nb: 2\na: 3\n",
            'yaml: unmarshal errors:\n  line 3: mapping key "a" already defined at line 1',
        ),
    ],
)
def test_yaml_reader_errors(text: str, error: str) -> None:
    stub = docker_stub()
    with pytest.raises(stub.YamlError) as raised:
        stub.yaml_documents(text)
    assert str(raised.value) == error


# --------------------------------------------------------------------------- the real sandbox


def ssh(sandbox: Sandbox, command: str) -> subprocess.CompletedProcess[str]:
    """``cd <project_dir> && <command>`` on the sandbox, as edgesync runs it."""
    return subprocess.run(
        sandbox.ssh_command(f"cd {shlex.quote(str(sandbox.project_dir))} && {command}"),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def compose_ok(sandbox: Sandbox, args: str) -> subprocess.CompletedProcess[str]:
    r = ssh(sandbox, f"docker compose {args}")
    assert r.returncode == 0, r.stderr
    return r


SECRETS_FUNCTION = """\
Deno.serve(() => Response.json({
  secret: Deno.env.get("WPP_SECRET") ?? null,
  multi: Deno.env.get("MULTI_LINE") ?? null,
  literal: Deno.env.get("LITERAL") ?? null,
  verify: Deno.env.get("VERIFY_JWT") ?? null,
  nasty: Deno.env.get("NASTY") ?? null,
}))
"""


def wire_secrets(sandbox: Sandbox, env_file: str) -> Path:
    """Write the env file and the override that hands it to the functions service."""
    (sandbox.functions_dir / "secrets").mkdir(exist_ok=True)
    (sandbox.functions_dir / "secrets" / "index.ts").write_text(SECRETS_FUNCTION)
    path = sandbox.project_dir / ".env.functions"
    path.write_text(env_file)
    path.chmod(0o600)
    (sandbox.project_dir / "docker-compose.override.yml").write_text(
        "services:\n  functions:\n    env_file:\n      - path: ./.env.functions\n"
    )
    return path


def secrets_answer(sandbox: Sandbox) -> dict[str, Any]:
    reply = sandbox.request("secrets")
    assert reply.status == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def test_secret_round_trip_through_a_request(sandbox: Sandbox) -> None:
    env_file = wire_secrets(sandbox, f"WPP_SECRET={SECRET}\nVERIFY_JWT=true\n")
    assert secrets_answer(sandbox)["secret"] is None  # the container predates the env file
    r = ssh(sandbox, "docker compose config --format json")
    assert json.loads(r.stdout)["services"]["functions"]["environment"]["WPP_SECRET"] == SECRET

    compose_ok(sandbox, "up -d --force-recreate --no-deps functions")
    answer = secrets_answer(sandbox)
    assert answer["secret"] == SECRET
    assert answer["verify"] == "false"  # environment: wins over the env file

    env_file.write_text("WPP_SECRET=rotated-value-1234\n")
    compose_ok(sandbox, "restart functions --no-deps")
    assert secrets_answer(sandbox)["secret"] == SECRET  # restart keeps the environment
    compose_ok(sandbox, "up -d --force-recreate --no-deps functions")
    assert secrets_answer(sandbox)["secret"] == "rotated-value-1234"

    env_file.write_text("WPP_SECRET=third-value-5678\n")
    r = compose_ok(sandbox, "up -d --no-deps functions")  # the resolved config changed
    assert " Container supabase-edge-functions  Recreated" in r.stderr
    assert secrets_answer(sandbox)["secret"] == "third-value-5678"
    r = compose_ok(sandbox, "up -d --no-deps functions")
    assert r.stderr == " Container supabase-edge-functions  Running\n"

    env_file.write_text("")  # unset: the next container no longer has it
    compose_ok(sandbox, "up -d --force-recreate --no-deps functions")
    assert secrets_answer(sandbox)["secret"] is None

    # no value ever reaches the stand-in's call log, the service log or the runtime's output
    for path in (sandbox.docker_calls, sandbox.service_log, sandbox.state_dir / "functions.stderr"):
        if path.exists():
            text = path.read_text()
            for value in (SECRET, "rotated-value-1234", "third-value-5678"):
                assert value not in text, path


def test_quoting_reaches_the_function(sandbox: Sandbox) -> None:
    wire_secrets(
        sandbox,
        'WPP_SECRET="s3cr3t with \\"quotes\\" and ${POSTGRES_DB}"  # trailing comment\n'
        'MULTI_LINE="line one\\nline two"\n'
        "LITERAL='$HOME ${POSTGRES_DB} \\n stays'\n"
        f"NASTY={dotenv_quote(NASTY)}\n",
    )
    compose_ok(sandbox, "up -d --force-recreate --no-deps functions")
    answer = secrets_answer(sandbox)
    assert answer["secret"] == 's3cr3t with "quotes" and postgres'
    assert answer["multi"] == "line one\nline two"
    assert answer["literal"] == "$HOME ${POSTGRES_DB} \\n stays"
    assert answer["nasty"] == NASTY


def test_up_fails_without_the_required_env_file(sandbox: Sandbox) -> None:
    wire_secrets(sandbox, f"WPP_SECRET={SECRET}\n")
    compose_ok(sandbox, "up -d --force-recreate --no-deps functions")
    (sandbox.project_dir / ".env.functions").unlink()
    missing = sandbox.project_dir / ".env.functions"
    r = ssh(sandbox, "docker compose up -d --force-recreate --no-deps functions")
    assert r.returncode == 1
    assert r.stderr == f"env file {missing} not found: stat {missing}: no such file or directory\n"
    assert secrets_answer(sandbox)["secret"] == SECRET  # the container was left alone
    compose_ok(sandbox, "restart functions --no-deps")  # restart reads no env file
    assert secrets_answer(sandbox)["secret"] == SECRET
    assert sandbox.container()["recreate_count"] == 1


def test_the_override_applies_to_up_and_f_leaves_it_out(sandbox: Sandbox) -> None:
    wire_secrets(sandbox, f"WPP_SECRET={SECRET}\n")
    compose_ok(sandbox, "up -d --no-deps functions")  # the definition changed: recreated
    assert secrets_answer(sandbox)["secret"] == SECRET
    compose_ok(sandbox, "-f docker-compose.yml up -d --no-deps functions")
    assert secrets_answer(sandbox)["secret"] is None  # without the override: recreated again
    assert sandbox.container()["recreate_count"] == 2
    r = compose_ok(sandbox, "logs --no-log-prefix functions")
    assert r.stdout.splitlines()[0] == "main function started"


def test_every_command_reads_the_override(sandbox: Sandbox) -> None:
    (sandbox.project_dir / "docker-compose.override.yml").write_text(
        "services:\n  extra:\n    image: busybox:1.37\n"
    )
    r = compose_ok(sandbox, "up -d extra")
    assert r.stderr.startswith(" Container supabase-extra-1  Recreate")
    assert compose_ok(sandbox, "ps --services").stdout.split() == [
        "kong",
        "functions",
        "db",
        "extra",
    ]
    r = compose_ok(sandbox, "restart extra")
    assert " Container supabase-extra-1  Restarting" in r.stderr
    r = ssh(sandbox, "docker compose -f docker-compose.yml restart extra")
    assert (r.returncode, r.stderr) == (1, "no such service: extra\n")
