"""edgesync.yaml parsing and validation: every error names file, line and key."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from edgesync.config import find_config, load_config, parse_config
from edgesync.errors import ConfigError

GOOD = """\
functions_dir: supabase/functions
default_target: production
exclude: ["**/*.test.ts"]
targets:
  production:
    host: api.academyos.ru
    user: automation
    port: 2222
    identity_file: keys/id_ed25519
    project_dir: /home/automation/supabase-project
    compose: sudo docker compose
    service: functions
    restart_command: null
    url: https://api.academyos.ru
  staging:
    host: staging
    project_dir: /srv/supabase
"""


def parse(text: str, tmp_path: Path) -> object:
    return parse_config(text, tmp_path / "edgesync.yaml")


def test_good_config(tmp_path: Path) -> None:
    cfg = parse_config(GOOD, tmp_path / "edgesync.yaml")
    prod = cfg.target()
    assert prod.name == "production"
    assert prod.host == "api.academyos.ru"
    assert prod.port == 2222
    assert prod.compose == ("sudo", "docker", "compose")
    assert prod.identity_file == tmp_path.resolve() / "keys/id_ed25519"
    assert prod.remote_functions_dir == PurePosixPath(
        "/home/automation/supabase-project/volumes/functions"
    )
    assert prod.state_dir == PurePosixPath("/home/automation/supabase-project/.edgesync")
    assert cfg.functions_dir == tmp_path.resolve() / "supabase/functions"
    assert cfg.exclude == ("**/*.test.ts",)
    staging = cfg.target("staging")
    assert staging.user is None and staging.port is None
    assert staging.compose == ("docker", "compose") and staging.service == "functions"


def test_env_target_and_only_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(GOOD, tmp_path / "edgesync.yaml")
    monkeypatch.setenv("EDGESYNC_TARGET", "staging")
    assert cfg.target().name == "staging"
    assert cfg.target("production").name == "production"  # the flag wins
    monkeypatch.delenv("EDGESYNC_TARGET")
    single = parse_config("targets:\n  one:\n    host: h\n    project_dir: /p\n", tmp_path / "x")
    assert single.target().name == "one"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("    port: 2222", "    prot: 2222"),
            "edgesync.yaml:8: targets.production.prot: unknown key",
        ),
        (GOOD.replace("exclude:", "excludes:"), "edgesync.yaml:3: excludes: unknown key"),
        (
            GOOD.replace("    port: 2222", "    port: twenty"),
            "edgesync.yaml:8: targets.production.port: expected a whole number",
        ),
        (
            GOOD.replace("    port: 2222", "    port: 70000"),
            "edgesync.yaml:8: targets.production.port: expected a whole number",
        ),
        (
            GOOD.replace("    project_dir: /srv/supabase\n", ""),
            "targets.staging.project_dir: missing (required)",
        ),
        (
            GOOD.replace("/srv/supabase", "srv/supabase"),
            "targets.staging.project_dir: must be an absolute path",
        ),
        (
            GOOD.replace("default_target: production", "default_target: prod"),
            "edgesync.yaml:2: default_target: 'prod' is not one of the targets",
        ),
        ("targets: [a, b]\n", "edgesync.yaml:1: targets: expected a mapping"),
        (
            "targets:\n  p:\n    host: h\n    project_dir: /p\n    host: i\n",
            "edgesync.yaml:5: targets.p.host: duplicate key",
        ),
        ("", "the file is empty"),
        ("functions_dir: x\n", "targets: missing"),
        (
            "targets:\n  p:\n    host: [a]\n    project_dir: /p\n",
            "edgesync.yaml:3: targets.p.host: expected a single value",
        ),
        (
            "targets:\n  p:\n    host: h\n    project_dir: /p\n    functions_dir: ../etc\n",
            "edgesync.yaml:5: targets.p.functions_dir: must be a folder inside project_dir",
        ),
        (
            'targets:\n  p:\n    host: h\n    project_dir: /p\n    compose: "docker \'compose"\n',
            "targets.p.compose: cannot split into words",
        ),
        (
            "targets:\n  p:\n    host: h\n    project_dir: /p\n    service: 'a b'\n",
            "targets.p.service: not a compose service name",
        ),
        (
            "exclude: '*.ts'\ntargets:\n  p:\n    host: h\n    project_dir: /p\n",
            "edgesync.yaml:1: exclude: expected a list",
        ),
        (
            "targets:\n  p:\n    host: h\n    project_dir: /p\n    keep_releases: true\n",
            "targets.p.keep_releases: expected a whole number",
        ),
        *[
            (
                f"targets:\n  p:\n    host: h\n    project_dir: /p\n    functions_dir: '{d}'\n",
                "targets.p.functions_dir: must be a folder inside project_dir (not project_dir",
            )
            for d in (".", "./", ".//", "./.", "a/..", "/p/volumes")
        ],
        (
            "targets:\n  p:\n    host: h\n    project_dir: /p\n    functions_dir: .edgesync/x\n",
            "targets.p.functions_dir: must not be edgesync's state folder",
        ),
        (
            "targets:\n  p:\n    host: h\n    project_dir: /p\n    timeout: 0\n",
            "targets.p.timeout: expected a whole number from 1 to 86400",
        ),
        (
            "deploy_tests: sometimes\ntargets:\n  p:\n    host: h\n    project_dir: /p\n",
            "edgesync.yaml:1: deploy_tests: expected true or false",
        ),
    ],
)
def test_bad_config_names_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path)
    assert expected in info.value.message
    assert info.value.exit_code == 3
    assert "\n" not in info.value.message


def test_unknown_key_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse(GOOD.replace("    port: 2222", "    prot: 2222"), tmp_path)
    assert info.value.hint == "did you mean 'port'?"


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse("targets:\n  p:\n    host: h\n   project_dir: /p\n", tmp_path)
    assert "edgesync.yaml:4: invalid YAML" in info.value.message


def test_unknown_target(tmp_path: Path) -> None:
    cfg = parse_config(GOOD, tmp_path / "edgesync.yaml")
    with pytest.raises(ConfigError) as info:
        cfg.target("prodution")
    assert "unknown target 'prodution'" in info.value.message
    assert "production" in (info.value.hint or "")


def test_find_config_walks_up(tmp_path: Path) -> None:
    (tmp_path / "edgesync.yaml").write_text(GOOD)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) == (tmp_path / "edgesync.yaml").resolve()
    assert load_config(find_config(deep)).target().host == "api.academyos.ru"


def test_find_config_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_config(tmp_path)
    assert "no edgesync.yaml" in info.value.message
    assert "edgesync init" in (info.value.hint or "")
