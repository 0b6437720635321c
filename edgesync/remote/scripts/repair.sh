# shellcheck shell=sh
# repair (run as apply.sh by session.sh) STATE FD RID: replace history.jsonl by
# the readable lines the client sent, keeping the old file beside it.
state=$1 rid=$3
S="$state/staging/$rid"
if [ -f "$state/history.jsonl" ]; then
  cp -p "$state/history.jsonl" "$state/history.jsonl.bak-$rid" || exit "$EXIT_FAILED"
fi
mv -f "$S/history.repaired" "$state/history.jsonl" || exit "$EXIT_FAILED"
printf 'repaired %s\n' "$state/history.jsonl"
