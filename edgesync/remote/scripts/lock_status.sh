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
pid=$(cat "$L/pid" 2>/dev/null)
case $pid in
  '' | *[!0-9]*) printf 'unknown\n' ;;
  *)
    if [ -d /proc/self ]; then
      # a zombie (killed, not yet reaped) is gone too
      st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
      if [ -n "$st" ] && [ "$st" != Z ]; then printf 'running\n'; else printf 'gone\n'; fi
    elif kill -0 "$pid" 2>/dev/null; then printf 'running\n'
    else printf 'gone\n'
    fi ;;
esac
[ -L "$L/info.json" ] || cat "$L/info.json" 2>/dev/null  # never read through a link
exit 0
