# shellcheck shell=sh
# Remove the deploy lock, whatever it is (a folder, or a file or link left by
# something else: the link itself goes, never what it points to). $1 state folder.
if [ -L "$1" ]; then
  echo "edgesync: $1 is a symbolic link; refusing to follow it" >&2
  exit "$EXIT_NO_STATE"
fi
rm -rf "$1/lock"
