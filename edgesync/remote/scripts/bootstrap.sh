# shellcheck shell=sh
# The push's one command on the server: take the lock, undo an interrupted
# release, receive the tar stream (new files + the generated apply.sh), run it.
# $1 state folder, $2 functions folder, $3 release id, $4 the lock's info.json.
state=$1 fd=$2 rid=$3 info=$4
[ -d "$fd" ] || { echo "the functions folder $fd does not exist" >&2; exit "$EXIT_NO_FUNCTIONS"; }
mkdir -p "$state/releases" "$state/staging" || exit "$EXIT_NO_STATE"
if ! mkdir "$state/lock" 2>/dev/null; then
  cat "$state/lock/info.json" 2>/dev/null || echo '{}'
  exit "$EXIT_LOCKED"
fi
printf '%s\n' "$info" > "$state/lock/info.json"
echo $$ > "$state/lock/pid"
stage="$state/staging/$rid"
unlock() { rm -rf "$stage"; rm -rf "$state/lock"; }
trap 'unlock; exit 130' INT TERM HUP PIPE
if [ -f "$state/journal" ]; then
  old=$(cat "$state/journal")
  if [ -f "$state/releases/$old/undo.sh" ]; then
    sh "$state/releases/$old/undo.sh" "$fd" "$state/releases/$old" >&2 || { unlock; exit "$EXIT_RECOVERY_FAILED"; }
  fi
  rm -f "$state/journal"
  printf 'recovered %s\n' "$old"
fi
for left in "$state"/staging/*; do [ -e "$left" ] && rm -rf "$left"; done
mkdir -p "$stage/new" || { unlock; exit "$EXIT_NO_STATE"; }
if ! tar -x -o -f - -C "$stage"; then
  echo "the upload was interrupted" >&2; unlock; exit "$EXIT_UPLOAD_INTERRUPTED"
fi
trap '' INT HUP PIPE
sh "$stage/apply.sh" "$state" "$fd" "$rid"
rc=$?
unlock
exit $rc
