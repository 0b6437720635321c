# shellcheck shell=sh
# apply.sh STATE FD RID: the server-side half of a release, run by bootstrap.sh
# once the tar stream is in staging. edgesync appends one call per operation to
# these functions (every argument quoted), so the generated part stays small.
#
#   1. complete the staged folders: unchanged files, restored backups
#   2. verify every staged file against its expected hash (sha256sum -c)
#   3. swap: move what is replaced into the release's before/, install the new
#      (the journal names the release: a killed swap is undone by the next push);
#      every step checks what it replaces first, so nothing lands inside a folder
#   4. verify every installed file against its expected hash, and that each
#      replaced function folder holds nothing else
#   5. commit: the history with the new line replaces the old one in one rename;
#      then the journal goes and old backups are retired
set -u
state=$1 fd=$2 rid=$3
S="$state/staging/$rid"
R="$state/releases/$rid"
N="$S/new"

fail() { echo "edgesync: $*" >&2; exit "$EXIT_FAILED"; }
stale() { echo "edgesync: $*" >&2; exit "$EXIT_STALE_PLAN"; }
parent() { case $1 in */*) printf '%s' "${1%/*}" ;; *) printf . ;; esac; }

# -- 1. staging
stage_function() { mkdir -p "$N/$1" || fail "cannot stage $1"; }
keep_file() {
  if ! { mkdir -p "$N/$(parent "$1")" && cp -p "$fd/$1" "$N/$1"; }; then
    stale "$1 changed on the server"
  fi
}
preserve_path() { # a server path edgesync ignores (.env, node_modules/): carried over as it is
  if ! { mkdir -p "$N/$(parent "$1")" && cp -Rp "$fd/$1" "$N/$1"; }; then
    stale "$1 changed on the server"
  fi
}
restore_function() { cp -Rp "$state/$1" "$N/$2" || fail "cannot restore $2 from $1"; }
restore_file() {
  if ! { mkdir -p "$N/$(parent "$2")" && cp -p "$state/$1" "$N/$2"; }; then
    fail "cannot restore $2 from $1"
  fi
}

# -- 2. verification (names with a newline or a backslash are checked one by one)
verify_staged() {
  cd "$N" || fail "cannot enter staging"
  [ ! -s ../checksums ] || sha256sum -c ../checksums >/dev/null 2>&1 || stale "staged files do not match"
}
check_hash() { [ "$(sha256sum < "$1")" = "$2  -" ] || stale "$1 does not match"; }

# -- 3. swap
begin_swap() {
  cd / || true
  mkdir -p "$R/before" || fail "cannot create the release folder"
  cp "$S/undo.sh" "$S/release.json" "$R/" || fail "cannot write the release"
  printf '%s\n' "$rid" > "$state/journal" || fail "cannot write the journal"
}
abort() {
  echo "edgesync: $*" >&2
  sh "$R/undo.sh" "$fd" "$R" >&2
  rm -f "$state/journal"
  exit "$EXIT_FAILED"
}
present() { [ -e "$1" ] || [ -L "$1" ]; }
swap_function() { # NAME EXISTED
  if [ "$2" = 1 ]; then
    { [ -d "$fd/$1" ] && [ ! -L "$fd/$1" ]; } || abort "$1 is no longer a folder on the server"
    mv "$fd/$1" "$R/before/$1" || abort "cannot move $1"
  fi
  ! present "$fd/$1" || abort "$fd/$1 appeared on the server meanwhile"
  mv "$N/$1" "$fd/$1" || abort "cannot install $1"
}
put_file() { # PATH EXISTED
  p=$(parent "$1")
  if [ "$2" = 1 ]; then
    { [ -f "$fd/$1" ] && [ ! -L "$fd/$1" ]; } || abort "$1 is no longer a file on the server"
    { mkdir -p "$R/before/$p" && cp -p "$fd/$1" "$R/before/$1"; } || abort "cannot back up $1"
  else
    ! present "$fd/$1" || abort "$fd/$1 appeared on the server meanwhile"
  fi
  mkdir -p "$fd/$p" || abort "cannot create the folder of $1"
  [ ! -L "$fd/$p" ] || abort "the folder of $1 is a symbolic link"
  mv -f "$N/$1" "$fd/$1" || abort "cannot install $1"
}
delete_path() {
  present "$fd/$1" || abort "$1 is already gone from the server"
  if ! { mkdir -p "$R/before/$(parent "$1")" && mv "$fd/$1" "$R/before/$1"; }; then
    abort "cannot remove $1"
  fi
}

# the functions' secrets file (a path in the project): replaced whole, 0600, old one kept
replace_secrets() { # FILE NEW(under $state, "" removes it) EXISTED(as planned; recorded)
  f="${state%/.edgesync}/$1"
  [ ! -L "$f" ] || abort "$1 is a symbolic link"
  if [ -e "$f" ]; then
    cp -p "$f" "$R/before/secrets" || abort "cannot back up $1"
  fi
  if [ -n "$2" ]; then
    if ! { (umask 077 && cp "$state/$2" "$f.edgesync-new") && chmod 600 "$f.edgesync-new"; }; then
      rm -f "$f.edgesync-new"
      abort "cannot write $1"
    fi
    mv -f "$f.edgesync-new" "$f" || abort "cannot install $1"
  else
    rm -f "$f" || abort "cannot remove $1"
  fi
}

# -- 4. verification of what is installed
verify_installed() {
  cd "$fd" || abort "cannot enter $fd"
  if [ -s "$S/checksums" ] && ! sha256sum -c "$S/checksums" >/dev/null 2>&1; then
    abort "the installed files do not match the release"
  fi
  cd / || true
}
check_installed() { # PATH SHA256 (names sha256sum -c cannot read)
  [ "$(sha256sum < "$fd/$1")" = "$2  -" ] || abort "$1 does not match the release"
}
count_files() { # FUNCTION EXPECTED: no stray files in a replaced folder
  n=$(find "$fd/$1" \( -name node_modules -o -name .git \) -prune -o -type f -print | wc -l)
  [ "$n" -eq "$2" ] || abort "$1 holds $n files on the server, $2 expected"
}

# -- 5. commit
commit_release() {
  if [ -f "$state/history.jsonl" ]; then
    cp "$state/history.jsonl" "$S/history.new" || abort "cannot copy the history"
  else
    : > "$S/history.new" || abort "cannot write the history"
  fi
  cat "$S/history.json" >> "$S/history.new" || abort "cannot write the history (disk full?)"
  mv -f "$S/history.new" "$state/history.jsonl" || abort "cannot write the history"
  rm -f "$state/journal"
}
retire() { rm -rf "$state/releases/$1"; }

# -- the release (generated)
