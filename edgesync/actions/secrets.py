"""`secrets list/set/unset/diff`: the functions' secrets on the server, names and digests only.

The values live in one file edgesync owns (`secrets_file`, default
`<project_dir>/.env.functions`, mode 0600), which the functions service reads
through compose `env_file`. A change is a release like a push (locked,
recorded with names and digests, undoable with `rollback`); applying it
recreates the service (a restart keeps the old environment) and verifies the
functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from types import MappingProxyType

from edgesync.actions.common import locked_session, restart_and_watch
from edgesync.context import Server, Workspace
from edgesync.errors import Declined, EdgesyncError, RemoteError, UsageError, VerifyError
from edgesync.history import SecretsChange, build_bundle
from edgesync.manifest import ROUTER, Kind
from edgesync.plan import Comparison, PushPlan
from edgesync.remote.release import ReleaseSession
from edgesync.remote.secrets import (
    ServiceEnvironment,
    read_secrets,
    service_environment,
    write_override,
)
from edgesync.remote.snapshot import ServerSnapshot
from edgesync.results import SecretEntry, SecretsDiffResult, SecretsListResult, SecretsResult
from edgesync.secrets import (
    SecretChange,
    SecretsFile,
    SecretsFileError,
    check_name,
    compare,
    new_salt,
    parse,
    render,
)
from edgesync.ui import UI

EMPTY_PLAN = PushPlan((), (), (), Comparison(()))


def _secrets_path(server: Server) -> PurePosixPath:
    return server.target.project_dir / server.target.secrets_file


def _current(server: Server) -> tuple[SecretsFile, str | None]:
    """The server's secrets (empty with a new salt when there is no file) and its text."""
    text = read_secrets(server.shell, server.target)
    if text is None:
        return SecretsFile(MappingProxyType({}), new_salt()), None
    try:
        found = parse(text)
    except SecretsFileError as e:
        raise RemoteError(
            f"{_secrets_path(server)}: {e}", hint="fix that line on the server"
        ) from None
    return (found if found.salt else replace(found, salt=new_salt())), text


def list_secrets(server: Server, ui: UI) -> SecretsListResult:
    """Every variable the functions get: from the secrets file or compose `environment:`."""
    env = service_environment(server.shell, server.target)
    current, _ = _current(server)
    wired = env.reads(str(_secrets_path(server)))
    entries = [
        SecretEntry(
            name,
            "secrets file",
            current.digest(name),
            overridden=name in env.environment,
        )
        for name in sorted(current.values)
    ]
    entries += [
        SecretEntry(name, "compose environment", current_digest(current, env, name))
        for name in sorted(env.environment)
    ]
    if env.resolve_error:
        ui.warn(f"no digests for compose environment: {env.resolve_error}")
    if not wired:
        ui.warn(
            f"{server.target.secrets_file} is not an env_file of the {server.target.service} "
            "service yet: `edgesync secrets set` wires it in"
        )
    return SecretsListResult(server.target.name, str(_secrets_path(server)), tuple(entries), wired)


def current_digest(current: SecretsFile, env: ServiceEnvironment, name: str) -> str | None:
    """The digest of the value compose gives `name` (under the secrets file's salt)."""
    value = None if env.resolved is None else env.resolved.get(name)
    return None if value is None else replace(current, values={name: value}).digest(name)


def parse_values(text: str, source: str) -> dict[str, str]:
    """The values of a local env file (`--from-file`): a bad line is exit 2, named."""
    try:
        return dict(parse(text).values)
    except SecretsFileError as e:
        raise UsageError(f"{source}: {e}") from None


def diff_secrets(server: Server, text: str, source: str) -> SecretsDiffResult:
    """How a local env file's values compare with the server's, by digest."""
    wanted = parse_values(text, source)
    current, _ = _current(server)
    changes = compare(current, wanted)
    return SecretsDiffResult(server.target.name, source, changes)


def change_secrets(
    ws: Workspace,
    server: Server,
    ui: UI,
    *,
    set_values: Mapping[str, str] | None = None,
    typed: Sequence[str] = (),
    read_value: Callable[[str], str] | None = None,
    unset: Sequence[str] = (),
    apply: bool = True,
    yes: bool = False,
    watch_logs: bool = True,
    logs_seconds: float = 10.0,
    verify: bool = True,
) -> SecretsResult:
    """Set and/or unset variables: write the file (locked, recorded), then apply it.

    The values of `typed` names are asked for (`read_value(name)`) only once the
    names passed the checks and the file is wired: nobody types a secret for a
    change that is then refused.
    """
    values = dict(set_values or {})
    env = service_environment(server.shell, server.target, resolve=False)
    for name in [*values, *typed, *unset]:
        problem = check_name(name, compose_names=env.environment)
        if problem:
            raise UsageError(problem)
    _wire(server, ui, env, yes=yes)
    if typed:
        if read_value is None:
            raise UsageError(f"no way to read the value of {', '.join(typed)}")
        values |= {name: read_value(name) for name in typed}
    deployed: list[str] = []  # every function gets the new environment: verify them all

    def work(session: ReleaseSession, snapshot: ServerSnapshot) -> SecretsResult:
        manifest = snapshot.manifest
        deployed.extend(
            top
            for top in sorted(manifest.folders)
            if top != ROUTER and manifest.kind_of(top) is Kind.FUNCTION
        )
        current, text = _current(server)
        missing = [n for n in unset if n not in current.values]
        if missing:
            session.cancel()
            raise UsageError(f"not set on the server: {', '.join(missing)}")
        after = {n: v for n, v in current.values.items() if n not in unset} | values
        changes = tuple(c for c in compare(current, after) if c.status != "unchanged")
        if not changes:
            session.cancel()
            return SecretsResult(server.target.name, None, ())
        new_text = render(after, current.salt)
        bundle = build_bundle(
            EMPTY_PLAN,
            kind="secrets",
            remote=snapshot.manifest,
            expected={},
            history=snapshot.history,
            kept=snapshot.kept_releases,
            keep=server.target.keep_releases,
            actor=ws.actor(),
            target=server.target.name,
            rid=session.rid,
            secrets=SecretsChange(server.target.secrets_file, None, existed=text is not None),
            secrets_text=new_text,
            secrets_digests=(
                {n: current.digest(n) for n in current.values},
                {c.name: c.after for c in compare(current, after) if c.after},
            ),
        )
        session.apply(bundle, ws.config.functions_dir)
        return SecretsResult(server.target.name, bundle.rid, changes)

    result = locked_session(ws, server, ui, lock_wait=0.0, work=work)
    if result.release is None or not apply:
        return replace(result, applied=False)
    return _apply(
        ws,
        server,
        ui,
        result,
        functions=deployed if verify else [],
        watch_logs=watch_logs,
        logs_seconds=logs_seconds,
    )


def _wire(server: Server, ui: UI, env: ServiceEnvironment, *, yes: bool) -> None:
    """Make sure compose gives the functions service the secrets file (env_file)."""
    if env.reads(str(_secrets_path(server))):
        return
    t = server.target
    lines = f"services:\n  {t.service}:\n    env_file:\n      - ./{t.secrets_file}"
    if not yes:
        if not ui.interactive:
            raise UsageError(
                f"the {t.service} service does not read {t.secrets_file}: add to "
                f"docker-compose.override.yml in {t.project_dir}:\n{lines}",
                hint="or pass --yes and edgesync writes that file (it never edits "
                "docker-compose.yml)",
            )
        if not ui.confirm(
            f"Wire {t.secrets_file} into the {t.service} service with a new "
            "docker-compose.override.yml?"
        ):
            raise Declined(f"nothing was changed; add these lines yourself:\n{lines}")
    write_override(server.shell, t)
    ui.info(f"wrote {t.project_dir}/docker-compose.override.yml (env_file: ./{t.secrets_file})")


def _apply(
    ws: Workspace,
    server: Server,
    ui: UI,
    result: SecretsResult,
    *,
    functions: Sequence[str],
    watch_logs: bool,
    logs_seconds: float,
) -> SecretsResult:
    """Recreate the service (a restart keeps the old environment), then request the
    functions deployed on the server: they all get the new environment."""
    done = restart_and_watch(
        server,
        ui,
        release=result.release,
        functions=functions,
        watch_logs=watch_logs,
        logs_seconds=logs_seconds,
        verify_with=ws.config if functions else None,
        recreate=True,
    )
    error: EdgesyncError | None = done.error
    checked = done.verification
    if checked is not None and not checked.ok:
        bad = ", ".join(c.function for c in checked.failed)
        error = VerifyError(
            f"after the secrets changed, not booting: {bad}",
            hint=f"`edgesync rollback {result.release}` brings the previous values back",
        )
    return replace(
        result,
        applied=done.restarted,
        verification=checked.checks if checked else (),
        error=error,
    )


def read_assignments(words: Sequence[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """`NAME=VALUE` words (their values), and the names of `NAME -` (typed later)."""
    values: dict[str, str] = {}
    typed: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word:
            name, _, value = word.partition("=")
            values[name] = value
        elif i + 1 < len(words) and words[i + 1] == "-":
            typed.append(word)
            i += 1
        else:
            raise UsageError(
                f"'{word}': expected NAME=VALUE, or NAME - to type the value",
                hint="secrets set WPP_TOKEN -   (the value is read without echo)",
            )
        i += 1
    return values, tuple(typed)


def changes_summary(changes: Sequence[SecretChange]) -> str:
    """`added A; changed B` (names only)."""
    parts = []
    for status in ("added", "changed", "removed"):
        names = [c.name for c in changes if c.status == status]
        if names:
            parts.append(f"{status} {', '.join(names)}")
    return "; ".join(parts)
