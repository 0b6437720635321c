# shellcheck shell=sh
# Who holds the deploy lock. $1 state folder.
# Prints nothing when unlocked; else "held", then running|gone|unknown for the
# server-side process that took it, then the lock's info.json.
L="$1/lock"
[ -d "$L" ] || exit 0
printf 'held\n'
pid=$(cat "$L/pid" 2>/dev/null)
if [ -z "$pid" ]; then printf 'unknown\n'
elif [ -d /proc/self ]; then
  # a zombie (killed, not yet reaped) is gone too
  st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  if [ -n "$st" ] && [ "$st" != Z ]; then printf 'running\n'; else printf 'gone\n'; fi
elif kill -0 "$pid" 2>/dev/null; then printf 'running\n'
else printf 'gone\n'
fi
cat "$L/info.json" 2>/dev/null
exit 0
