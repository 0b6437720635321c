# shellcheck shell=sh
# The functions' secrets file, for edgesync's eyes only: $1 its path. Prints "M"
# when it does not exist, else "F" and its content; never follows a link.
if [ -L "$1" ]; then
  echo "edgesync: $1 is a symbolic link; refusing to read it" >&2
  exit "$EXIT_NO_STATE"
fi
if [ ! -e "$1" ]; then printf M; exit 0; fi
printf F
cat "$1"
