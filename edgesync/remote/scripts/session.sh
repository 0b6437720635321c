# shellcheck shell=sh
# A push or rollback on the server, in one command that holds the deploy lock
# from start to end, so the plan is made from a listing taken under the lock:
#
#   1. take the lock (mkdir; our token inside, so only we remove it)
#   2. finish what an interrupted release left: a journal whose release is in
#      the history is only removed; any other is undone with its undo.sh
#   3. print the snapshot (snapshot.sh's output, then the end marker), after
#      Z\0 when the release may come gzipped (this server has gzip)
#   4. read the release as a tar stream on stdin, gzipped after Z\0 (a watchdog
#      gives up when nothing arrives for $idle seconds); run its apply.sh, or,
#      when the client sent no apply.sh (it cancelled), change nothing; then
#      keep the history's index the release brought (index.json), if any
#
# $1 state folder, $2 functions folder, $3 release id, $4 the lock's info.json,
# $5 lock token, $6 idle seconds, $7 project_dir, $8 the snapshot script, $9 the
# history it lists (index|full).
state=$1 fd=$2 rid=$3 info=$4 token=$5 idle=$6 project=$7 snapshot=$8 history=${9:-full}
stage="$state/staging/$rid"

for p in "$state" "$state/staging" "$state/releases" "$state/journal" \
  "$state/history.jsonl"; do
  if [ -L "$p" ]; then
    echo "edgesync: $p is a symbolic link; refusing to follow it" >&2
    exit "$EXIT_NO_STATE"
  fi
done
[ -d "$fd" ] || { echo "the functions folder $fd does not exist" >&2; exit "$EXIT_NO_FUNCTIONS"; }
if ! mkdir -p "$state/releases" "$state/staging" 2>/dev/null || [ ! -w "$state" ]; then
  echo "edgesync: cannot write in $state (permission denied?)" >&2
  exit "$EXIT_NO_STATE"
fi

# -- 1. the lock (a lock that went away between our mkdir and our look: try again)
tries=0
until mkdir "$state/lock" 2>/dev/null; do
  if [ -e "$state/lock" ] || [ -L "$state/lock" ]; then
    if [ -d "$state/lock" ]; then
      cat "$state/lock/info.json" 2>/dev/null || echo '{"incomplete": true}'
    else
      echo '{"odd": true}'
    fi
    exit "$EXIT_LOCKED"
  fi
  tries=$((tries + 1))
  if [ "$tries" -ge 5 ]; then
    echo "edgesync: cannot create $state/lock" >&2
    exit "$EXIT_NO_STATE"
  fi
done
if ! { printf '%s\n' "$token" > "$state/lock/token" &&
  printf '%s\n' "$info" > "$state/lock/info.json" &&
  echo $$ > "$state/lock/pid"; } 2>/dev/null; then
  rm -rf "$state/lock"  # just made and not ours to keep: a lock without its token stays forever
  echo "edgesync: cannot write in $state (disk full?)" >&2
  exit "$EXIT_NO_STATE"
fi
unlock() {
  rm -rf "$stage"
  # only our own lock: a lock released by hand and taken by another deploy stays
  [ "$(cat "$state/lock/token" 2>/dev/null)" = "$token" ] && rm -rf "$state/lock"
}
trap 'unlock; exit 130' INT TERM HUP PIPE
committed() { [ -f "$state/history.jsonl" ] && grep -q -F "\"id\": \"$1\"" "$state/history.jsonl"; }
# settled CMD...: run CMD (its stdout is ours); its status once every process it started
# is gone. A command killed alone (OOM, kill -9) leaves its running child (a mv, a tar) to
# finish on its own: deciding what to undo before that child is done would race it. Every
# descendant holds fd 3, the write end of the substitution's pipe, which only ends when the
# last of them exits.
settled() {
  { settled_rc=$("$@" 3>&1 1>&5 5>&-; printf '%s' "$?"); } 5>&1
  return "${settled_rc:-1}"
}
undo_release() { # RID: put back what it swapped; once more if the first undo was killed
  r="$state/releases/$1"
  [ -f "$r/undo.sh" ] || return 0
  settled sh "$r/undo.sh" "$fd" "$r" >&2 || settled sh "$r/undo.sh" "$fd" "$r" >&2
}

# -- 2. an interrupted release
if [ -f "$state/journal" ]; then
  old=$(cat "$state/journal")
  if committed "$old"; then
    printf 'C\0%s\0' "$old"  # committed, only its cleanup was cut short
  elif [ -f "$state/releases/$old/undo.sh" ]; then
    undo_release "$old" || {
      unlock
      exit "$EXIT_RECOVERY_FAILED"
    }
    printf 'U\0%s\0' "$old"
  fi
  rm -f "$state/journal"
fi
for left in "$state"/staging/*; do [ -e "$left" ] && rm -rf "$left"; done

# -- 3. the snapshot, under the lock
gz=''
if command -v gzip >/dev/null 2>&1; then gz=1; printf 'Z\0'; fi
sh -c "$snapshot" sh "$project" "$fd" "$state" "$history" || { rc=$?; unlock; exit "$rc"; }
printf '\0EDGESYNC-SNAPSHOT-END\0'

# -- 4. the release
mkdir -p "$stage/new" || { unlock; exit "$EXIT_NO_STATE"; }
exec 3<&0  # an asynchronous command's stdin is /dev/null unless redirected from a copy
gzpid=''
if [ -n "$gz" ]; then
  # gzip and tar as two jobs joined by a FIFO, so that both can be stopped: a cut stream
  # is a cut archive for tar (gzip's own errors add nothing)
  mkfifo "$stage/.tar" || { unlock; exit "$EXIT_NO_STATE"; }
  gzip -dc <&3 >"$stage/.tar" 2>/dev/null &
  gzpid=$!
  tar -x -o -f "$stage/.tar" -C "$stage" &
else
  tar -x -o -f - -C "$stage" <&3 &
fi
tarpid=$!
(
  # the watchdog: no new bytes in staging for $idle seconds means the client is gone
  last=-1 quiet=0
  while kill -0 "$tarpid" 2>/dev/null; do
    sleep 2
    size=$(du -sk "$stage" 2>/dev/null | cut -f1)
    if [ "$size" = "$last" ]; then quiet=$((quiet + 2)); else quiet=0 last=$size; fi
    if [ "$quiet" -ge "$idle" ]; then kill "$tarpid" $gzpid 2>/dev/null; exit 0; fi
  done
) </dev/null >/dev/null 2>&1 &
watchdog=$!
wait "$tarpid"
tarrc=$?
kill "$watchdog" $gzpid 2>/dev/null
rm -f "$stage/.tar"
if [ "$tarrc" -ne 0 ]; then
  echo "edgesync: the upload was interrupted" >&2
  unlock
  exit "$EXIT_UPLOAD_INTERRUPTED"
fi
if [ ! -f "$stage/apply.sh" ]; then
  unlock
  exit "$EXIT_CANCELLED"
fi
trap '' INT HUP PIPE TERM  # apply.sh runs to its end (or its undo); only a KILL stops it
settled sh "$stage/apply.sh" "$state" "$fd" "$rid"
rc=$?
# apply.sh undoes what it swapped when a step fails; killed, it could not: do it here
if [ "$rc" -ne 0 ] && committed "$rid"; then
  # killed after its commit point: the release stands; only its cleanup is left
  echo "edgesync: release $rid is committed (apply.sh ended with $rc after that)" >&2
  if [ "$(cat "$state/journal" 2>/dev/null)" = "$rid" ]; then rm -f "$state/journal"; fi
  rc=0
elif [ "$rc" -ne 0 ] && [ "$(cat "$state/journal" 2>/dev/null)" = "$rid" ]; then
  if undo_release "$rid"; then
    rm -f "$state/journal"
  else
    rc=$EXIT_RECOVERY_FAILED
  fi
fi
if [ "$rc" -eq 0 ] && [ -f "$stage/index.json" ]; then
  # The index of the history now: N and the sha256 of its first N lines, then the
  # client's JSON. Only a cache: snapshot.sh sends it while the history still starts
  # with those N lines, so a failure here (or a kill) costs nothing but its use.
  h="$state/history.jsonl"
  if n=$(wc -l < "$h") && sum=$(head -n "$n" "$h" | sha256sum); then
    { printf '%s %s\n' "$((n))" "${sum%% *}"; cat "$stage/index.json"; } > "$stage/history.idx" &&
      mv -f "$stage/history.idx" "$state/history.idx"
  fi
fi
unlock
exit $rc
