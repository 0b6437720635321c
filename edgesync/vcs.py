"""Git facts via GitPython: which commit is being deployed, and is the tree dirty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git


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
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return GitState(None, False)
    try:
        commit = repo.head.commit.hexsha
    except ValueError:  # a repository without commits yet
        return GitState(None, True)
    try:
        branch: str | None = repo.active_branch.name
    except TypeError:  # detached HEAD (CI checkouts)
        branch = None
    scope = [str(only)] if only is not None else []
    dirty = repo.is_dirty(untracked_files=True, path=scope[0] if scope else None)
    return GitState(commit, dirty, branch)
