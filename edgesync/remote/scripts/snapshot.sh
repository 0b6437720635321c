# shellcheck shell=sh
# The server's side of a snapshot, in one command: every file of the functions
# folder with its sha256, its folders, the kept release backups, the history.
# $1 project_dir, $2 functions folder, $3 state folder.
# Output, NUL-separated: d\0PATH\0 and f\0PATH\0 records, then h\0 and sha256sum's
# lines for the files named since the last h\0 (batched by find -exec … {} +),
# then m\0 and one octal mode per line for the same files (when stat exists);
# i\0PATH\0 for env-like files (listed, never read), p\0PATH\0 for node_modules
# and .git (not entered), l\0PATH\0 for symbolic links (never followed);
# r\0ID\0 per kept release, L\0 when locked, J\0ID\0 for a journal, then the history:
# with $4 = index, when history.idx is still the index of history.jsonl's first N lines,
# X\0N\0, the index (one JSON line), \0, then H\0 and the lines after the first N; else
# (and with $4 = full) H\0 and history.jsonl as it is.
[ -d "$1" ] || exit "$EXIT_NO_PROJECT"
[ -d "$2" ] || exit "$EXIT_NO_FUNCTIONS"
command -v sha256sum >/dev/null 2>&1 || exit "$EXIT_NO_SHA256"
cd "$2" || exit "$EXIT_NO_FUNCTIONS"
find . \( -name node_modules -o -name .git \) -prune \
     -exec sh -c 'for p do printf "p\0%s\0" "$p"; done' sh {} + \
  -o -type l -exec sh -c 'for p do printf "l\0%s\0" "$p"; done' sh {} + \
  -o -type d ! -name . -exec sh -c 'for p do printf "d\0%s\0" "$p"; done' sh {} + \
  -o -type f \( -iname '.env*' -o -iname '*.env' \) \
     -exec sh -c 'for p do printf "i\0%s\0" "$p"; done' sh {} + \
  -o -type f -exec sh -c \
     'for p do printf "f\0%s\0" "$p"; done; printf "h\0"; sha256sum -- "$@"
      printf "m\0"; stat -c %a -- "$@" 2>/dev/null' sh {} +
[ -d "$3/releases" ] && for r in "$3"/releases/*; do
  [ -d "$r" ] && printf "r\0%s\0" "${r##*/}"
done
[ -e "$3/lock" ] && printf "L\0"
[ -f "$3/journal" ] && [ ! -L "$3/journal" ] && printf "J\0%s\0" "$(cat "$3/journal")"
h="$3/history.jsonl" idx="$3/history.idx"
if [ ! -f "$h" ] || [ -L "$h" ]; then printf "H\0"; exit 0; fi
if [ "${4:-full}" = index ] && [ -f "$idx" ] && [ ! -L "$idx" ] && read -r n sum < "$idx"; then
  case $n in '' | *[!0-9]*) n='' ;; esac
  if [ -n "$n" ]; then
    have=$(head -n "$n" "$h" | sha256sum)
    if [ "${have%% *}" = "$sum" ]; then
      printf "X\0%s\0" "$n"
      sed 1d "$idx"
      printf "\0H\0"
      tail -n "+$((n + 1))" "$h"
      exit 0
    fi
  fi
fi
printf "H\0"
cat "$h"
exit 0
