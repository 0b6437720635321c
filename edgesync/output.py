"""The only module that prints: Rich on a terminal, plain stable text otherwise, JSON on request.

Results go to stdout; messages (warnings, errors, progress) go to stderr, so
`--json` output stays parseable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgesync.compare import Patch
from edgesync.deploy import PushResult
from edgesync.logs import LogLine
from edgesync.plan import Comparison, Deployment, EntryDiff, FunctionState, Status

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
    """Where and how results and messages are shown."""

    def __init__(self, *, json_mode: bool = False, verbose: bool = False) -> None:
        self.json_mode = json_mode
        self.verbose = verbose
        self.rich = _is_tty(sys.stdout) and "NO_COLOR" not in os.environ
        self.out = Console(
            file=sys.stdout,
            highlight=False,
            no_color="NO_COLOR" in os.environ,
            force_terminal=self.rich,
            soft_wrap=not self.rich,
        )
        self.err = Console(
            file=sys.stderr,
            highlight=False,
            no_color="NO_COLOR" in os.environ or not _is_tty(sys.stderr),
            soft_wrap=True,
        )

    # -- messages (stderr) ---------------------------------------------------

    def info(self, message: str) -> None:
        """A progress or context line on stderr (kept out of JSON output)."""
        self.err.print(Text(message, style="dim" if self.rich else ""))

    def warn(self, message: str) -> None:
        """A warning on stderr."""
        self.err.print(Text("warning: ", style="yellow bold") + Text(message))

    def error(self, message: str, hint: str | None = None) -> None:
        """An error on stderr: one line, and a hint line when there is one."""
        self.err.print(Text("error: ", style="red bold") + Text(message))
        if hint:
            self.err.print(Text("hint: ", style="cyan") + Text(hint))

    def emit_json(self, data: Any) -> None:
        """Exactly one JSON document on stdout."""
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def line(self, text: str = "") -> None:
        """A plain result line on stdout."""
        self.out.print(Text(text))

    # -- diff -----------------------------------------------------------------

    def comparison(
        self,
        comp: Comparison,
        target: str,
        where: str,
        patches: Sequence[Patch] = (),
        summary: bool = True,
    ) -> None:
        """Render `diff` (and a push's plan): one row per entry with its changed files."""
        if self.json_mode:
            self.emit_json(comparison_json(comp, target))
            return
        self.info(f"target {target}: {where}")
        if self.rich:
            self._comparison_table(comp)
        else:
            width = max((len(e.name) for e in comp.entries), default=0)
            for e in comp.entries:
                note = _ENTRY_NOTE.get(e.status, e.status.value)
                self.line(f"{e.kind.value:<9} {e.name:<{width}}  {note}")
                for f in e.changed:
                    mark = "  (changed on server)" if f.path in comp.changed_on_server else ""
                    self.line(f"  {f.status.value:<9} {f.path}{mark}")
        for p in patches:
            self._patch(p)
        if summary:
            self.line(_summary(comp))
        if comp.changed_on_server:
            self.warn(
                "changed on the server outside edgesync (a push refuses to overwrite them "
                "without --force): " + ", ".join(sorted(comp.changed_on_server))
            )

    def _comparison_table(self, comp: Comparison) -> None:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("name")
        table.add_column("kind")
        table.add_column("status")
        table.add_column("files")
        for e in comp.entries:
            style = _STATUS_STYLE[e.status]
            table.add_row(
                Text(e.name, style="bold" if e.changed else ""),
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
            sys.stdout.write(p.text if p.text.endswith("\n") else p.text + "\n")
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
            self.out.print(Text(raw, style=style))

    # -- push and logs ----------------------------------------------------------

    def push_result(self, result: PushResult, restarted: bool) -> None:
        """The summary after a push (or its JSON)."""
        if self.json_mode:
            files = [{"path": p, "action": "upload"} for p in result.uploaded]
            files += [{"path": p, "action": "delete"} for p in result.deleted]
            self.emit_json(
                {
                    "target": result.target,
                    "release": result.release,
                    "functions": list(result.functions),
                    "files": files,
                    "restarted": restarted,
                }
            )
            return
        if result.release is None:
            self.line(f"in sync: nothing to push to {result.target}")
            return
        fns = ", ".join(result.functions) or "no function folders"
        self.line(
            f"released {result.release} to {result.target}: {fns}; "
            f"{len(result.uploaded)} file(s) uploaded, {len(result.deleted)} deleted, "
            f"{_size(result.bytes_sent)} sent in {result.seconds:.1f}s"
            + ("" if restarted else " (not restarted)")
        )

    def log_line(self, line: LogLine) -> None:
        """One attributed log line: `[function] text`."""
        if self.json_mode:
            sys.stdout.write(json.dumps({"function": line.function, "line": line.text}) + "\n")
            sys.stdout.flush()
            return
        tag = f"[{line.function}] " if line.function else ""
        style = "red" if line.is_boot_error or "[Error]" in line.text else ""
        self.out.print(Text(tag, style="cyan") + Text(line.text, style=style))

    # -- ls -------------------------------------------------------------------

    def function_states(self, states: Sequence[FunctionState], target: str, where: str) -> None:
        """Render `ls`: functions side by side with their deployment state."""
        if self.json_mode:
            self.emit_json(
                {
                    "target": target,
                    "functions": [
                        {
                            "name": s.name,
                            "local": s.local,
                            "remote": s.remote,
                            "state": s.state.value,
                            "changed_files": list(s.changed_files),
                            "changed_shared": list(s.changed_deps),
                            "remote_entry_file": s.remote_has_entry,
                            "changed_on_server": list(s.changed_on_server),
                            "last_release": s.last_release,
                        }
                        for s in states
                    ],
                }
            )
            return
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
                    name, loc, rem, Text(state.value, style=_STATE_STYLE[state]), rel, note
                )
            self.out.print(table)
        else:
            width = max(len(r[0]) for r in rows)
            for name, loc, rem, state, rel, note in rows:
                text = f"{name:<{width}}  local={loc:<3} server={rem:<3} {state.value}"
                text += f"  release={rel}" if rel != "-" else ""
                self.line(text + (f"  ({note})" if note else ""))
        counts = {d: sum(1 for s in states if s.state is d) for d in Deployment}
        self.line(", ".join(f"{n} {d.value}" for d, n in counts.items() if n))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _file_lines(e: EntryDiff, drift: frozenset[str] = frozenset()) -> Text:
    text = Text()
    for i, f in enumerate(e.changed):
        if i:
            text.append("\n")
        mark = {"added": "+", "removed": "-", "modified": "~"}[f.status.value]
        text.append(f"{mark} {f.path}", style=_STATUS_STYLE[f.status])
        if f.path in drift:
            text.append(" (changed on server)", style="bold magenta")
    return text


def _state_note(s: FunctionState) -> str:
    parts = []
    if s.state is Deployment.NOT_DEPLOYED:
        return "run: edgesync push " + s.name
    if s.changed_files:
        parts.append(f"{len(s.changed_files)} file(s) differ")
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
        return f"in sync ({len(comp.entries)} entries)"
    c = comp.counts()
    differ = len(comp.entries) - c[Status.UNCHANGED]
    parts = [f"{differ} differ"]
    parts += [f"{c[s]} {s.value}" for s in (Status.ADDED, Status.MODIFIED, Status.REMOVED) if c[s]]
    if c[Status.UNCHANGED]:
        parts.append(f"{c[Status.UNCHANGED]} unchanged")
    return ", ".join(parts)


def comparison_json(comp: Comparison, target: str) -> dict[str, Any]:
    """The documented `diff --json` shape."""
    return {
        "target": target,
        "in_sync": comp.in_sync,
        "changed_on_server": sorted(comp.changed_on_server),
        "entries": [
            {
                "name": e.name,
                "kind": e.kind.value,
                "status": e.status.value,
                "files": [{"path": f.path, "status": f.status.value} for f in e.files],
            }
            for e in comp.entries
        ],
    }


class Progress:
    """A byte progress bar on a terminal; nothing otherwise."""

    def __init__(self, out: Output, total: int, label: str) -> None:
        self._bar = None
        self._task = None
        if out.rich and not out.json_mode and total > 0:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=out.err,
                transient=True,
            )
            self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, n: int) -> None:
        """Count `n` more bytes sent."""
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)


def release_json(rec: dict[str, Any]) -> dict[str, Any]:
    """A release as `history --json` shows it (without the internal hash maps)."""
    keys = (
        "id",
        "kind",
        "time",
        "user",
        "host",
        "commit",
        "dirty",
        "functions",
        "deleted_functions",
        "rolled_back",
        "files",
    )
    out = {k: rec.get(k) for k in keys if k in rec}
    out.setdefault("kind", "push")
    out["files"] = [
        {"path": f.get("path"), "action": f.get("action")} for f in rec.get("files", [])
    ]
    return out


def render_history(out: Output, target: str, releases: Sequence[dict[str, Any]]) -> None:
    """`history`: newest first."""
    if out.json_mode:
        out.emit_json({"target": target, "releases": [release_json(r) for r in releases]})
        return
    if not releases:
        out.line(f"no releases recorded on {target} yet")
        return
    rows = []
    for r in releases:
        commit = (str(r.get("commit") or "-"))[:8] + ("+dirty" if r.get("dirty") else "")
        what = ", ".join(r.get("functions") or []) or "-"
        if r.get("kind") == "rollback":
            what = f"rollback of {', '.join(r.get('rolled_back') or [])}"
        rows.append(
            (
                str(r.get("id")),
                str(r.get("time", "")).replace("+00:00", "Z"),
                f"{r.get('user', '?')}@{r.get('host', '?')}",
                commit,
                what,
                f"{len(r.get('files') or [])} file(s)",
            )
        )
    if out.rich:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for col in ("release", "time", "who", "commit", "functions", "files"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        out.out.print(table)
    else:
        for row in rows:
            out.line("  ".join(row))


def render_lock(out: Output, target: str, status: Any) -> None:
    """`lock status`."""
    if out.json_mode:
        out.emit_json(
            {
                "target": target,
                "held": status.held,
                "holder": status.info,
                "server_process": status.server_process,
                "client_process": status.client_process,
                "stale": status.stale,
            }
        )
        return
    if not status.held:
        out.line(f"{target}: not locked")
        return
    i = status.info
    out.line(
        f"{target}: locked by {i.get('user', '?')}@{i.get('host', '?')} "
        f"(pid {i.get('pid', '?')}) since {i.get('since', '?')}, commit {i.get('commit', '-')}"
    )
    out.line(
        f"its process on the server: {status.server_process}"
        + (
            f"; on this machine: {status.client_process}"
            if status.client_process != "unknown"
            else ""
        )
    )
    if status.stale:
        out.line("this lock is stale: clear it with `edgesync lock release`")
