"""Fault injection against the sandbox server: does a push survive any crash and any race?

    python -m faults --kill-points 200 [--seed N] [--concurrency] [--disk-full] [--jobs 2]
    python -m faults --replay KIND:SCOPE:POINT      # one case, exactly as reported
    python -m faults.repro [NAME]                   # the deterministic reproductions

edgesync is driven only through its CLI, as a subprocess, against a real sshd on loopback
(`sandbox/`). Modules:

    workload  the OLD and NEW functions folder (6 functions, MB-sized files, ~160 shared files)
    rig       the sandbox, the local repository, server images, slow mv/cp/cat on the server
    inject    one run with one fault: client SIGKILL, a cut through tools/netproxy.py, SIGKILL
              of a server process (session shell, tar, apply.sh, undo.sh, the process group)
    model     scopes (what is pushed, the states before and after), cases, outcomes
    judge     the invariants, checked on the server's files at rest
    suite     images, calibration, placing the kill points, the checks after every case
              (lock visible and clearable, the next push converges), the concurrency matrix
    diskfull  a tmpfs project folder filled at points of the push
    run       jobs, the whole run; report: the table and the details; repro: minimal cases

Outcomes: ok (nothing to repair), recovered (a stale lock or an interrupted release that a
user's `lock release` / the next push repaired), false failure (a failure exit although the
release was installed and recorded), violation, false success (exit 0 but the server is not
the pushed version).
"""
