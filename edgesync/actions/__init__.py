"""One core per command: the orchestration, taking explicit values, returning a result.

An action takes a `Workspace` (the local side), a `Server` (a target and its
shell) and, when it needs to report progress or ask, a `UI`; it returns a
frozen result from `results.py`. Commands in `commands/` only parse options,
call one action and render its result.
"""
