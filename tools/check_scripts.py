"""Run shellcheck over every server-side script as edgesync sends it.

Each script in `edgesync/remote/scripts/` is checked with the exit-code
prelude that `scripts.load()` prepends; `apply.sh` and `undo.sh` are checked as
generated for a plan that uses every operation. `make lint` runs this.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgesync.history import SecretsChange  # noqa: E402
from edgesync.plan import (  # noqa: E402
    Comparison,
    DeletePath,
    PushPlan,
    PutFile,
    ReplaceFunction,
)
from edgesync.remote import scripts  # noqa: E402
from edgesync.remote.release import apply_script, undo_script  # noqa: E402

SAMPLE = PushPlan(
    functions=(
        ReplaceFunction(
            "fn-a", existed=True, upload=("fn-a/index.ts",), keep=("fn-a/x.ts",), delete=()
        ),
        ReplaceFunction("fn-b", existed=False, upload=("fn-b/index.ts",), keep=(), delete=()),
        ReplaceFunction(
            "old", existed=True, upload=(), keep=(), delete=(), source="releases/r/before/old"
        ),
    ),
    puts=(
        PutFile("_shared/x.ts", existed=True),
        PutFile("_shared/y.ts", existed=False, source="releases/r/before/_shared/y.ts"),
    ),
    deletes=(DeletePath("legacy", is_function=True),),
    comparison=Comparison(()),
)


def texts() -> dict[str, str]:
    """Every script as sent: the plain ones, and apply/undo generated for SAMPLE."""
    out = {name: scripts.load(name) for name in scripts.names() if name not in ("apply", "undo")}
    expected = {"fn-a/index.ts": "0" * 64, "odd\nname.ts": "1" * 64}
    secrets = SecretsChange(".env.functions", "staging/r/secrets.new", existed=True)
    out["apply"] = apply_script(SAMPLE, expected, retire=("r0",), secrets=secrets)
    out["undo"] = undo_script(SAMPLE, secrets)
    return out


def main() -> int:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        print("shellcheck is not installed (Debian: apt-get install shellcheck)", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="edgesync-shellcheck-") as tmp:
        for name, text in texts().items():
            path = Path(tmp) / f"{name}.sh"
            path.write_text(text, encoding="utf-8")
            rc = subprocess.run([shellcheck, "-s", "sh", "-x", str(path)]).returncode
            failed += rc != 0
    print(f"shellcheck: {len(texts()) - failed} of {len(texts())} scripts clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
