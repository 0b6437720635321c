"""Git facts via GitPython: which commit is being deployed, and is the tree dirty.

GitPython is imported on first use: most commands never need it, and it costs
a noticeable part of start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitState:
    """The commit a deploy comes from; `commit` is None outside a git repository."""

    commit: str | None
    dirty: bool
    branch: str | None = None

    @property
    def short(self) -> str:
        """e.g. `1a2b3c4d+dirty`, or `-` outside git."""
        if self.commit is None:
            return "-"
        return self.commit[:8] + ("+dirty" if self.dirty else "")


def git_state(path: Path, only: Path | None = None) -> GitState:
    """The HEAD commit of the repository holding `path`; dirty counts changes under `only`."""
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return GitState(None, dirty=False)
    try:
        commit = repo.head.commit.hexsha
    except ValueError:  # a repository without commits yet
        return GitState(None, dirty=True)
    try:
        branch: str | None = repo.active_branch.name
    except TypeError:  # detached HEAD (CI checkouts)
        branch = None
    scope = [str(only)] if only is not None else []
    dirty = repo.is_dirty(untracked_files=True, path=scope[0] if scope else None)
    return GitState(commit, dirty, branch)


@dataclass(frozen=True)
class ChangedSince:
    """Files under the functions folder changed between a commit and HEAD.

    `paths` is None when that commit cannot be used (not in the local history,
    e.g. a shallow clone, a rebase or a force-push); `reason` says why.
    """

    paths: frozenset[str] | None
    reason: str = ""


def changed_since(functions_dir: Path, commit: str) -> ChangedSince:
    """Paths (relative to `functions_dir`) that differ between `commit` and HEAD."""
    import git

    try:
        repo = git.Repo(functions_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return ChangedSince(None, "not a git repository")
    try:
        base = repo.commit(commit)
        head = repo.head.commit
        if not repo.is_ancestor(base, head):
            return ChangedSince(None, f"{commit[:8]} is not an ancestor of HEAD (rebase?)")
    except (git.BadName, ValueError, git.GitCommandError):
        return ChangedSince(None, f"{commit[:8]} is not in the local history (shallow clone?)")
    top = Path(repo.working_tree_dir or ".").resolve()
    rel = functions_dir.resolve().relative_to(top).as_posix()
    prefix = "" if rel == "." else rel + "/"
    out: set[str] = set()
    for d in base.diff(head, paths=[rel] if prefix else None):
        for p in (d.a_path, d.b_path):
            if p and p.startswith(prefix):
                out.add(p[len(prefix) :])
    return ChangedSince(frozenset(out))


def dirty_paths(functions_dir: Path) -> tuple[str, ...]:
    """Uncommitted (staged, unstaged or untracked) files under `functions_dir`."""
    import git

    try:
        repo = git.Repo(functions_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return ()
    top = Path(repo.working_tree_dir or ".").resolve()
    rel = functions_dir.resolve().relative_to(top).as_posix()
    prefix = "" if rel == "." else rel + "/"
    paths: set[str] = set(repo.untracked_files)
    try:
        paths |= {d.a_path or d.b_path or "" for d in repo.index.diff(None)}
        paths |= {d.a_path or d.b_path or "" for d in repo.index.diff("HEAD")}
    except (git.BadName, ValueError):  # no commit yet: everything is uncommitted
        paths |= {str(k[0]) for k in repo.index.entries}
    return tuple(sorted(p[len(prefix) :] for p in paths if p.startswith(prefix)))
