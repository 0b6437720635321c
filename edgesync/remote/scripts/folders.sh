# shellcheck shell=sh
# The names of the top-level folders of the functions folder, NUL-separated. $1 the folder.
cd "$1" || exit "$EXIT_NO_FUNCTIONS"
for d in */; do
  [ -d "$d" ] && printf '%s\0' "${d%/}"
done
exit 0
