"""The only module that prints, and the only one that imports rich.

`Output` renders any result (`results.py`) for a terminal (Rich tables and
colours), as plain stable text (not a TTY, or NO_COLOR), or as JSON; it also
writes the CI step summary, and it is the `UI` actions talk to. Results go to
stdout; messages (warnings, errors, progress) go to stderr, so `--json` output
stays parseable.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgesync.history import failed_ids
from edgesync.local.deps import Blocked
from edgesync.loglines import LogLine
from edgesync.plan import Comparison, Deployment, EntryDiff, FunctionState, Status
from edgesync.results import (
    CheckResult,
    DiffResult,
    HistoryResult,
    InitResult,
    LockResult,
    LsResult,
    Patch,
    PlanPreview,
    PushResult,
    RepairResult,
    RestartResult,
    Result,
    RollbackPreview,
    RollbackResult,
    SecretsDiffResult,
    SecretsListResult,
    SecretsResult,
    StatusResult,
)
from edgesync.secrets import SecretChange
from edgesync.text import plural
from edgesync.verification import Check

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

# Control characters (C0, DEL, C1), zero-width and bidi overrides, and the lone
# surrogates that stand for bytes that were not UTF-8: never sent to a terminal.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_WORKFLOW_COMMAND = re.compile(r"^(\s*)::", re.M)


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the raw byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str, *, lines: bool = True) -> str:
    """Text from the server made harmless to show: control characters escaped
    visibly, and no line that a CI runner would take as a command (`::error::`).
    With `lines=False`, newlines and tabs are escaped too (one-line fields)."""
    out = _UNSAFE.sub(lambda m: _escape(m.group()), text)
    if not lines:
        out = out.replace("\t", "\\t").replace("\n", "\\n")
    return _WORKFLOW_COMMAND.sub(lambda m: m.group(1) + "\\::", out)


def _cell(value: str | Text) -> Text:
    """A table cell: never parsed as Rich markup."""
    return value if isinstance(value, Text) else Text(safe(value, lines=False))


_STATUS_STYLE = {
    Status.ADDED: "green",
    Status.MODIFIED: "yellow",
    Status.REMOVED: "red",
    Status.UNCHANGED: "dim",
}
_STATE_STYLE = {
    Deployment.NOT_DEPLOYED: "bold red",
    Deployment.ONLY_ON_SERVER: "magenta",
    Deployment.DIFFERS: "yellow",
    Deployment.IN_SYNC: "green",
}
_ENTRY_NOTE = {
    Status.ADDED: "added (not on the server)",
    Status.REMOVED: "removed (only on the server)",
}


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Output:
    """Where and how results and messages are shown; the `UI` of every action."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        verbose: bool = False,
        quiet: bool = False,
        out: Console | None = None,
        err: Console | None = None,
    ) -> None:
        """Consoles for stdout and stderr (tests pass recording consoles)."""
        self.json_mode = json_mode
        self.verbose = verbose
        self.quiet = quiet
        no_color = "NO_COLOR" in os.environ
        self.rich = out.is_terminal if out is not None else _is_tty(sys.stdout) and not no_color
        self.out = out or Console(
            file=sys.stdout,
            highlight=False,
            no_color=no_color,
            force_terminal=self.rich,
            soft_wrap=not self.rich,
        )
        self.err = err or Console(
            file=sys.stderr,
            highlight=False,
            no_color=no_color or not _is_tty(sys.stderr),
            soft_wrap=True,
        )

    # -- the UI protocol -----------------------------------------------------

    @property
    def interactive(self) -> bool:
        """Questions can be asked: stdin is a terminal."""
        return _is_tty(sys.stdin)

    def info(self, message: str) -> None:
        """A progress or context line on stderr (kept out of JSON output; not with --quiet)."""
        if self.quiet:
            return
        self.err.print(Text(safe(message), style="dim" if self.rich else ""))

    def warn(self, message: str) -> None:
        """A warning on stderr."""
        self.err.print(Text("warning: ", style="yellow bold") + Text(safe(message)))

    def error(self, message: str, hint: str | None = None) -> None:
        """An error on stderr: one line, and a hint line when there is one."""
        self.err.print(Text("error: ", style="red bold") + Text(safe(message)))
        if hint:
            self.err.print(Text("hint: ", style="cyan") + Text(safe(hint)))

    def show(self, result: Result) -> None:
        """An intermediate result (a plan before it is applied); nothing in JSON mode."""
        if not self.json_mode:
            self.render(result)

    def confirm(self, question: str) -> bool:
        """Ask yes/no on the terminal (default no)."""
        import typer

        return bool(typer.confirm(question, default=False))

    def ask(self, question: str, default: str | None = None) -> str:
        """Ask for a value on the terminal."""
        import typer

        answer: str = typer.prompt(question, default=default or "", show_default=bool(default))
        return answer

    @contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[[int], None]]:
        """A byte progress bar on a terminal; nothing otherwise."""
        if not (self.rich and not self.json_mode and total > 0):
            yield lambda _n: None
            return
        from rich.progress import BarColumn, DownloadColumn, TransferSpeedColumn
        from rich.progress import Progress as RichProgress

        bar = RichProgress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            console=self.err,
            transient=True,
        )
        task = bar.add_task(label, total=total)
        with bar:
            yield lambda n: bar.advance(task, n)

    def log_line(self, line: LogLine) -> None:
        """One attributed log line: `[function] text` (a JSON object per line with --json)."""
        if self.json_mode:
            self.out.file.write(json.dumps({"function": line.function, "line": line.text}) + "\n")
            self.out.file.flush()
            return
        tag = f"[{safe(line.function, lines=False)}] " if line.function else ""
        style = "red" if line.is_boot_error or "[Error]" in line.text else ""
        self.out.print(Text(tag, style="cyan") + Text(safe(line.text, lines=False), style=style))

    # -- results ---------------------------------------------------------------

    def emit_json(self, data: Any) -> None:
        """Exactly one JSON document on stdout."""
        self.out.file.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        self.out.file.flush()

    def line(self, text: str = "") -> None:
        """A plain result line on stdout."""
        self.out.print(Text(safe(text)))

    def lines(self, texts: Sequence[str]) -> None:
        """Plain result lines on stdout, as `line` prints each, in one print: rich spends
        ~0.1 ms on every print, 0.1-0.15 s for the 1,000 rows of a diff."""
        if texts:
            self.out.print(Text("\n".join(safe(text) for text in texts)))

    def render(self, result: Result) -> None:
        """Show a result: JSON in JSON mode (for results that have it), else text."""
        if self.json_mode and not isinstance(result, (PlanPreview, RollbackPreview)):
            self.emit_json(result.to_json())
            return
        renderers: dict[type, Callable[[Any], None]] = {
            DiffResult: self._diff,
            PlanPreview: self._plan,
            LsResult: self._ls,
            PushResult: self._push,
            RollbackPreview: self._rollback_preview,
            RollbackResult: self._rollback,
            HistoryResult: self._history,
            LockResult: self._lock,
            RepairResult: self._repair,
            RestartResult: self._restart,
            CheckResult: self._check,
            SecretsListResult: self._secrets_list,
            SecretsResult: self._secrets,
            SecretsDiffResult: self._secrets_diff,
            StatusResult: self._status,
            InitResult: self._init,
        }
        renderers[type(result)](result)

    def _diff(self, r: DiffResult) -> None:
        self._comparison(r.comparison, r.target, r.where, r.patches)
        self._blocked(r.blocked)

    def _plan(self, r: PlanPreview) -> None:
        self._comparison(r.comparison, r.target, r.where, summary=False)
        for name, files in r.also:
            self.line(f"also changes {name} (it loads {', '.join(files)})")

    def _ls(self, r: LsResult) -> None:
        self._function_states(r.states, r.target, r.where)

    def _secrets_list(self, r: SecretsListResult) -> None:
        self.info(f"target {r.target}: {r.file}")
        if not r.entries:
            self.line("no secrets set")
            return
        rows = [
            (
                e.name,
                e.source + (" (compose environment wins)" if e.overridden else ""),
                e.digest or "-",
            )
            for e in r.entries
        ]
        if self.rich:
            table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
            for col in ("name", "from", "digest"):
                table.add_column(col, overflow="fold")
            for row in rows:
                table.add_row(*(_cell(c) for c in row))
            self.out.print(table)
        else:
            for row in rows:
                self.line("  ".join(safe(c, lines=False) for c in row))

    def _secret_changes(self, changes: Sequence[SecretChange]) -> None:
        mark = {"added": "+", "changed": "~", "removed": "-", "unchanged": " "}
        for c in changes:
            digests = f"{c.before or '-'} -> {c.after or '-'}"
            self.line(f"{mark[c.status]} {safe(c.name, lines=False)}  {c.status}  {digests}")

    def _secrets(self, r: SecretsResult) -> None:
        if r.release is None:
            self.line(f"{r.target}: the secrets already hold these values")
            return
        self._secret_changes(r.changes)
        self.line(
            f"released {r.release} on {r.target}: "
            + ("applied (the service was recreated)" if r.applied else "not applied yet")
        )
        if not r.applied and r.error is None:
            self.info(
                "the functions get the new values once the service is recreated: "
                "`edgesync restart --recreate`"
            )
        self._verified(r.verification)

    def _secrets_diff(self, r: SecretsDiffResult) -> None:
        self._secret_changes(r.changes)
        differ = sum(1 for c in r.changes if c.status != "unchanged")
        self.line("in sync" if r.in_sync else f"{plural(differ, 'name')} differ from {r.source}")

    def _check(self, r: CheckResult) -> None:
        if r.skipped:
            self.warn(f"loading with Deno skipped: {r.skipped}")
        for f in r.functions:
            if not f.problems:
                self.line(f"{f.name}: ok")
                continue
            self.line(f"{f.name}: cannot be deployed")
            for problem in f.problems:
                self.line("  " + problem.split(": ", 1)[-1])

    def _status(self, r: StatusResult) -> None:
        rows = [
            (
                c.function,
                c.outcome.value,
                str(c.status) if c.status else "-",
                f"{c.seconds * 1000:.0f} ms" if c.status else "-",
                c.detail if not c.ok else "",
            )
            for c in r.checks
        ]
        if self.rich:
            table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
            for col in ("function", "state", "HTTP", "latency", "detail"):
                table.add_column(col, overflow="fold")
            for name, state, code, latency, detail in rows:
                style = "green" if state == "up" else "bold red"
                table.add_row(_cell(name), Text(state, style=style), code, latency, _cell(detail))
            self.out.print(table)
        else:
            for row in rows:
                self.line("  ".join(safe(c, lines=False) for c in row if c))
        for name in r.skipped:
            self.line(f"{name}: not requested (verify: false)")

    def _restart(self, r: RestartResult) -> None:
        if r.restarted:
            self.line(f"restarted the functions service on {r.target}")

    def _init(self, r: InitResult) -> None:
        self.line(f"wrote {r.path}")
        if r.connected:
            self.line(r.connected)
        if r.error is None:
            self.info("next: edgesync diff   (an unknown host key is refused: see the README)")

    # -- diff --------------------------------------------------------------------

    def _comparison(
        self,
        comp: Comparison,
        target: str,
        where: str,
        patches: Sequence[Patch] = (),
        *,
        summary: bool = True,
    ) -> None:
        """`diff` (and a push's plan): one row per entry with its changed files."""
        self.info(f"target {target}: {where}")
        if self.rich:
            self._comparison_table(comp)
        else:
            width = max((len(e.name) for e in comp.entries), default=0)
            rows = []
            for e in comp.entries:
                note = _ENTRY_NOTE.get(e.status, e.status.value)
                rows.append(f"{e.kind.value:<9} {safe(e.name, lines=False):<{width}}  {note}")
                for f in e.changed:
                    mark = "  (changed on server)" if f.path in comp.changed_on_server else ""
                    rows.append(f"  {f.status.value:<9} {safe(f.path, lines=False)}{mark}")
            self.lines(rows)
        for p in patches:
            self._patch(p)
        if summary:
            self.line(_summary(comp))
        if comp.changed_on_server:
            self.warn(
                "changed on the server outside edgesync (a push refuses to overwrite them "
                "without --force): " + ", ".join(sorted(comp.changed_on_server))
            )

    def _blocked(self, blocked: Sequence[Blocked]) -> None:
        for b in blocked:
            self.line(f"{b.name}: cannot be deployed as it is")
            for line in b.describe().splitlines():
                self.line("  " + line.split(": ", 1)[-1])

    def _comparison_table(self, comp: Comparison) -> None:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("name")
        table.add_column("kind")
        table.add_column("status")
        table.add_column("files")
        for e in comp.entries:
            style = _STATUS_STYLE[e.status]
            table.add_row(
                Text(safe(e.name, lines=False), style="bold" if e.changed else ""),
                e.kind.value,
                Text(_ENTRY_NOTE.get(e.status, e.status.value), style=style),
                _file_lines(e, comp.changed_on_server),
            )
        self.out.print(table)

    def _patch(self, p: Patch) -> None:
        if p.text is None:
            self.line(f"Binary file {p.path} differs")
            return
        if not self.rich:
            text = safe(p.text)
            self.out.file.write(text if text.endswith("\n") else text + "\n")
            return
        for raw in p.text.splitlines():
            style = ""
            if raw.startswith(("+++", "---")):
                style = "bold"
            elif raw.startswith("+"):
                style = "green"
            elif raw.startswith("-"):
                style = "red"
            elif raw.startswith("@@"):
                style = "cyan"
            self.out.print(Text(safe(raw, lines=False), style=style))

    # -- push and rollback -------------------------------------------------------

    def _push(self, result: PushResult) -> None:
        if result.dry_run:
            self.line("dry run: nothing was changed")
            return
        if result.release is None:
            self.line(result.note or f"in sync: nothing to push to {result.target}")
            return
        fns = ", ".join(result.functions) or "no function folders"
        self.line(
            f"released {result.release} to {result.target}: {fns}; "
            f"{plural(len(result.uploaded), 'file')} uploaded, {len(result.deleted)} deleted, "
            f"{_size(result.bytes_sent)} sent in {result.seconds:.1f}s"
            + ("" if result.restarted else " (not restarted: not verified)")
        )
        self._verified(result.verification)
        if result.rolled_back_by:
            self.line(f"rolled back by release {result.rolled_back_by}: its functions did not boot")

    def _verified(self, checks: Sequence[Check]) -> None:
        if not checks:
            return
        parts = [
            f"{c.function} {c.outcome.value}"
            + (f" ({c.status}, {c.seconds * 1000:.0f} ms)" if c.status else "")
            for c in checks
        ]
        self.line("verified: " + ", ".join(parts))

    def _rollback_preview(self, p: RollbackPreview) -> None:
        self.info(
            f"rolling back {', '.join(p.undone)} on {p.target}: "
            + ("; ".join(p.steps) or "nothing to change")
        )
        if p.changed_on_server:
            self.warn("changed on the server outside edgesync: " + ", ".join(p.changed_on_server))

    def _rollback(self, r: RollbackResult) -> None:
        self.line(
            f"released {r.release} on {r.target}: rolled back "
            f"{', '.join(r.rolled_back)} (state before {r.before_release})"
            + ("" if r.restarted else " (not restarted)")
        )
        self._verified(r.verification)

    # -- ls ----------------------------------------------------------------------

    def _function_states(self, states: Sequence[FunctionState], target: str, where: str) -> None:
        """`ls`: functions side by side with their deployment state."""
        self.info(f"target {target}: {where}")
        if not states:
            self.line("no functions locally or on the server")
            return
        rows = [
            (
                s.name,
                "yes" if s.local else "-",
                "yes" if s.remote else "-",
                s.state,
                s.last_release or "-",
                _state_note(s),
            )
            for s in states
        ]
        if self.rich:
            table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
            for col in ("function", "local", "server", "state", "release", "note"):
                table.add_column(col)
            for name, loc, rem, state, rel, note in rows:
                table.add_row(
                    _cell(name),
                    loc,
                    rem,
                    Text(state.value, style=_STATE_STYLE[state]),
                    _cell(rel),
                    _cell(note),
                )
            self.out.print(table)
        else:
            width = max(len(r[0]) for r in rows)
            texts = []
            for name, loc, rem, state, rel, note in rows:
                text = f"{safe(name, lines=False):<{width}}  local={loc:<3} server={rem:<3} "
                text += state.value
                text += f"  release={rel}" if rel != "-" else ""
                texts.append(text + (f"  ({note})" if note else ""))
            self.lines(texts)
        counts = {d: sum(1 for s in states if s.state is d) for d in Deployment}
        label = {Deployment.DIFFERS: ("differs", "differ")}
        self.line(
            ", ".join(
                f"{n} {label.get(d, (d.value, d.value))[n != 1]}" for d, n in counts.items() if n
            )
        )

    # -- history and lock --------------------------------------------------------

    def _history(self, result: HistoryResult) -> None:
        if not result.releases:
            self.line(f"no releases recorded on {result.target} yet")
            return
        rows = []
        failed = failed_ids(result.releases)
        for r in result.releases:
            commit = (r.commit or "-")[:8] + ("+dirty" if r.dirty else "")
            what = ", ".join(r.functions) or "-"
            if r.kind == "secrets":  # names whose digest changed: never values
                before, after = r.secrets_before, r.secrets_after
                names = sorted(n for n in {*before, *after} if before.get(n) != after.get(n))
                what = "secrets" + (f": {', '.join(names)}" if names else "")
            if r.kind == "rollback":
                what = f"rollback of {', '.join(r.rolled_back)}"
                if r.reason:
                    what += f" (automatic: {r.reason})"
            if r.id in failed:
                what += " (did not boot)"
            rows.append(
                (
                    r.id,
                    r.time.replace("+00:00", "").replace("T", " ")[:16],
                    f"{r.user or '?'}@{r.host or '?'}",
                    commit,
                    what,
                    plural(len(r.files), "file"),
                )
            )
        if self.rich:
            table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
            # ids are what `rollback` takes: never cut, never wrapped
            table.add_column("release", no_wrap=True, min_width=max(len(r[0]) for r in rows))
            table.add_column("time", no_wrap=True, min_width=16)
            for col in ("who", "commit", "functions", "files"):
                table.add_column(col, overflow="fold")
            for row in rows:
                table.add_row(*(_cell(c) for c in row))
            self.out.print(table)
        else:
            for row in rows:
                self.line("  ".join(safe(c, lines=False) for c in row))

    def _lock(self, r: LockResult) -> None:
        st = r.status
        if not st.held:
            self.line(f"{r.target}: not locked")
            return
        if r.released:
            self.line(f"{r.target}: lock released")
            return
        if st.kind != "folder":
            self.line(
                f"{r.target}: locked by a {st.kind} named lock that edgesync did not make "
                "(it blocks every deploy)"
            )
        elif not st.readable:
            self.line(
                f"{r.target}: locked, but the lock records no holder (a deploy killed while "
                "taking it, or written by hand)"
            )
        else:
            i = {k: safe(str(v), lines=False) for k, v in st.info.items()}
            self.line(
                f"{r.target}: locked by {i.get('user', '?')}@{i.get('host', '?')} "
                f"(pid {i.get('pid', '?')}) since {i.get('since', '?')}, "
                f"commit {i.get('commit', '-')}"
            )
        if st.kind == "folder":
            self.line(
                f"its process on the server: {st.server_process}"
                + (
                    f"; on this machine: {st.client_process}"
                    if st.client_process != "unknown"
                    else ""
                )
            )
        if st.stale:
            self.line("this lock is stale: clear it with `edgesync lock release`")
        elif not st.readable:
            self.line("if no deploy is running, clear it with `edgesync lock release`")

    def _repair(self, r: RepairResult) -> None:
        done = []
        if r.recovered:
            done.append(f"undid the interrupted release {r.recovered}")
        if r.completed:
            done.append(f"finished the cleanup of release {r.completed}")
        if r.removed_lines:
            done.append(
                f"removed {plural(len(r.removed_lines), 'unreadable history line')} "
                f"(the old file is {r.backup})"
            )
        self.line(f"{r.target}: " + ("; ".join(done) if done else "nothing to repair"))

    # -- CI ----------------------------------------------------------------------

    def step_summary(self, result: PushResult) -> None:
        """Append the push's Markdown summary to $GITHUB_STEP_SUMMARY when CI sets it."""
        path = os.environ.get(STEP_SUMMARY_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(step_summary_markdown(result))


def step_summary_markdown(result: PushResult) -> str:
    """The Markdown a push appends to the CI step summary."""
    if result.release is None:
        said = f"\n\n{_md(result.note)}" if result.note else ""
        return f"### edgesync: `{result.target}` already in sync\n\nNothing was deployed.{said}\n"
    failed = [c for c in result.verification if not c.ok]
    title = "deploy failed on" if failed or result.error else "deployed to"
    also = [f for f in result.affected if f not in result.functions]
    lines = [
        f"### edgesync: {title} `{result.target}`",
        "",
        f"- release: `{result.release}`",
        f"- commit: `{result.commit}`",
        f"- functions: {', '.join(f'`{f}`' for f in result.functions) or 'none'}",
    ]
    if also:
        lines.append(f"- also changes: {', '.join(f'`{f}`' for f in also)}")
    if result.blocked:
        lines.append(
            f"- left out (cannot be deployed): {', '.join(f'`{f}`' for f in result.blocked)}"
        )
    lines.append(f"- restarted: {'yes' if result.restarted else 'no'}")
    for c in result.verification:
        detail = f": {_md(c.detail)}" if c.detail and not c.ok else ""
        lines.append(f"- `{c.function}`: {c.outcome.value} (HTTP {c.status}){detail}")
    if result.rolled_back_by:
        lines.append(f"- rolled back by release `{result.rolled_back_by}`")
    lines += ["", "| file | action |", "|---|---|"]
    lines += [f"| `{_md(p)}` | upload |" for p in result.uploaded]
    lines += [f"| `{_md(p)}` | delete |" for p in result.deleted]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Server text in Markdown: one line, no markup that could fake a heading or a link."""
    return safe(text, lines=False).replace("|", "\\|").replace("`", "'").replace("[", "\\[")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _file_lines(e: EntryDiff, drift: frozenset[str] = frozenset()) -> Text:
    text = Text()
    for i, f in enumerate(e.changed):
        if i:
            text.append("\n")
        mark = {"added": "+", "removed": "-", "modified": "~"}[f.status.value]
        text.append(f"{mark} {safe(f.path, lines=False)}", style=_STATUS_STYLE[f.status])
        if f.path in drift:
            text.append(" (changed on server)", style="bold magenta")
    return text


def _state_note(s: FunctionState) -> str:
    parts = []
    if s.problems:
        return "cannot be deployed: " + "; ".join(p.split(": ", 1)[-1] for p in s.problems)
    if s.state is Deployment.NOT_DEPLOYED:
        return "run: edgesync push " + s.name
    if s.changed_files:
        n = len(s.changed_files)
        parts.append(f"{plural(n, 'file')} {'differs' if n == 1 else 'differ'}")
    if s.changed_deps:
        parts.append("imports changed " + ", ".join(s.changed_deps))
    if not s.remote_has_entry:
        parts.append("no entry file on the server")
    if s.changed_on_server:
        parts.append("changed on server: " + ", ".join(s.changed_on_server))
    return "; ".join(parts)


def _summary(comp: Comparison) -> str:
    if not comp.entries:
        return "nothing to compare"
    if comp.in_sync:
        return f"in sync ({plural(len(comp.entries), 'entry', 'entries')})"
    c = comp.counts()
    differ = len(comp.entries) - c[Status.UNCHANGED]
    parts = [f"{differ} differ"]
    parts += [f"{c[s]} {s.value}" for s in (Status.ADDED, Status.MODIFIED, Status.REMOVED) if c[s]]
    if c[Status.UNCHANGED]:
        parts.append(f"{c[Status.UNCHANGED]} unchanged")
    return ", ".join(parts)
