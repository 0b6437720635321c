# shellcheck shell=sh
# Who holds the deploy lock. $1 state folder.
# Prints nothing when unlocked. Else its kind (held: a folder as edgesync makes
# it; file or symlink: something else made it), then for a folder the state of
# the server-side process that took it (running|gone|unknown) and its info.json.
L="$1/lock"
if [ -L "$L" ]; then printf 'symlink\n'; exit 0; fi
[ -e "$L" ] || exit 0
if [ ! -d "$L" ]; then printf 'file\n'; exit 0; fi
printf 'held\n'
# the session shell's pid, and apply.sh's (killed alone, the session leaves apply.sh running:
# the lock's process is gone only when both are)
alive() { # PID: 0 running, 1 gone, 2 not a pid
  case $1 in '' | *[!0-9]*) return 2 ;; esac
  if [ -d /proc/self ]; then
    # a zombie (killed, not yet reaped) is gone too
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
  else
    kill -0 "$1" 2>/dev/null
  fi
}
alive "$(cat "$L/pid" 2>/dev/null)"
case $? in
  0) printf 'running\n' ;;
  2) printf 'unknown\n' ;;
  *)
    a=$(cat "$L/apply.pid" 2>/dev/null)
    # (a pid used again since by something else is not our apply.sh)
    if alive "$a" && { [ ! -d /proc/self ] || grep -q -F apply.sh "/proc/$a/cmdline" 2>/dev/null; }; then
      printf 'running\n'
    else
      printf 'gone\n'
    fi ;;
esac
[ -L "$L/info.json" ] || cat "$L/info.json" 2>/dev/null  # never read through a link
exit 0
