# shellcheck shell=sh
# Run a long-lived command so that it dies when the SSH channel closes: the
# command runs in the background and a reader of our stdin kills it at EOF.
# (A background job's stdin is /dev/null unless redirected: hence fd 3.)
# $1 the folder to run in; the rest is the command.
cd "$1" || exit "$EXIT_NO_PROJECT"
shift
exec 3<&0
"$@" </dev/null &
pid=$!
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) >/dev/null 2>&1 &
guard=$!
wait "$pid"
rc=$?
kill "$guard" 2>/dev/null
exit $rc
