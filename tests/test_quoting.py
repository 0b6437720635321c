"""Remote quoting, checked against the shells a server's login shell may be."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgesync.remote import scripts
from edgesync.remote.shell import quote, sh_script

WORDS = [
    "plain",
    "",
    "two words",
    "it's",
    "back\\slash",
    "\\'",
    "'\\''",
    "\\\\",
    "$HOME $(id) `id` ${x}",
    "a\nnew line",
    "tab\there",
    "glob * ? [a] {a,b}",
    "~user ~/x",
    "=cmd %self",
    "semi;colon|pipe&amp>out<in",
    'double "quotes"',
    "#comment",
    "-n",
    "ünï©ødé ✓",
    "(x) !bang",
]
SHELLS = ["sh", "bash", "dash", "fish", "zsh"]


def available(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        if shell in ("sh", "bash", "fish"):  # .ci/run installs fish: it must be there
            pytest.fail(f"{shell} is not installed")
        pytest.skip(f"{shell} is not installed here")
    return path


@pytest.mark.parametrize("shell", SHELLS)
def test_every_word_reads_back_exactly(shell: str) -> None:
    path = available(shell)
    out = subprocess.run(
        [path, "-c", "printf '[%s]' " + quote(*WORDS)], capture_output=True, check=True
    ).stdout.decode()
    assert out == "".join(f"[{w}]" for w in WORDS)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_with_arguments_runs_the_same_under_any_login_shell(shell: str) -> None:
    path = available(shell)
    command = sh_script('printf "%s|" "$@"; printf "%s" "$0"', *WORDS)
    out = subprocess.run([path, "-c", command], capture_output=True, check=True).stdout.decode()
    assert out == "".join(f"{w}|" for w in WORDS) + "sh"


@pytest.mark.parametrize("shell", ["fish", "bash"])
def test_every_server_script_parses_under_the_login_shell(shell: str) -> None:
    path = available(shell)
    for name in scripts.names():
        # `sh -n`: the script arrives intact (parsed, not run) whatever shell passed it on
        command = quote("sh", "-n", "-c", scripts.load(name), "sh")
        r = subprocess.run([path, "-c", command], capture_output=True)
        assert r.returncode == 0, (name, r.stderr.decode())
        # and byte for byte what edgesync sent
        echoed = subprocess.run(
            [path, "-c", "printf %s " + quote(scripts.load(name))], capture_output=True
        ).stdout.decode()
        assert echoed == scripts.load(name)
