# shellcheck shell=sh
# apply.sh STATE FD RID: the server-side half of a release, run by session.sh
# once the tar stream is in staging. edgesync appends the calls of one release
# to these functions (every argument quoted). A call takes many names at once
# (one folder's files, every replaced function), so a release runs a few
# processes whatever the number of functions and files.
#
#   1. complete the staged folders: unchanged files, restored backups
#   2. verify every staged file against its expected hash (sha256sum -c)
#   3. swap: move what is replaced into the release's before/, install the new
#      (the journal names the release: a killed swap is undone by the next push);
#      every step checks what it replaces first, so nothing lands inside a folder
#   4. verify every installed file against its expected hash, and that the
#      replaced function folders hold nothing else
#   5. commit: the history with the new line replaces the old one in one rename;
#      then the journal goes and old backups are retired
set -u
state=$1 fd=$2 rid=$3
S="$state/staging/$rid"
# beside the session's pid in the lock: if the session shell is killed alone, this
# apply.sh goes on, and the lock must not look abandoned while it does
echo "$$" > "$state/lock/apply.pid" 2>/dev/null || :
R="$state/releases/$rid"
N="$S/new"

fail() { echo "edgesync: $*" >&2; exit "$EXIT_FAILED"; }
stale() { echo "edgesync: $*" >&2; exit "$EXIT_STALE_PLAN"; }
# the folder part of a path (. for a top-level name), without a subshell
parent_of() { case $1 in */*) p=${1%/*} ;; *) p=. ;; esac; }
# copy_tree FROM TO PATH...: copies of paths under FROM (folders whole, links as links) at
# the same paths under TO, with their modes, times and (as root) owners, as cp -Rp would,
# in two processes whatever their number. TO holds their folders already (umask 0 keeps
# the modes exact). Fails when a path could not be read.
copy_tree() {
  from=$1 to=$2
  shift 2
  rm -f "$S/.copy-failed"
  { (cd "$from" && tar -cf - -- "$@") || : > "$S/.copy-failed"; } |
    (cd "$to" && umask 0 && tar -xf -) && [ ! -e "$S/.copy-failed" ]
}

# -- 1. staging
stage_dirs() { # DIR...: the staged folders (function folders, folders of kept files)
  cd "$N" || fail "cannot enter staging"
  mkdir -p -- "$@" || fail "cannot stage $1"
}
copy_in() { # PATH...: unchanged files, and paths edgesync ignores (.env, node_modules/),
  # carried over from the server as they are
  copy_tree "$fd" "$N" "$@" || stale "files to keep changed on the server"
}
restore_functions() { # FROM NAME...: function folders back from a release's before/
  from=$1
  shift
  if ! { cd "$state/$from" && cp -Rp -- "$@" "$N/"; }; then
    fail "cannot restore $* from $from"
  fi
}
unstage() { # PATH...: paths taken out of a restored folder (an older release added them)
  cd "$N" || fail "cannot enter staging"
  rm -rf -- "$@" || fail "cannot unstage $*"
}
restore_file() { # FROM PATH
  parent_of "$2"
  if ! { mkdir -p "$N/$p" && cp -p "$state/$1" "$N/$2"; }; then
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
  if ! { cp "$S/undo.sh" "$R/" && cp "$S/history.json" "$R/release.json"; }; then
    fail "cannot write the release"
  fi
  printf '%s\n' "$rid" > "$state/journal" || fail "cannot write the journal"
}
abort() {
  echo "edgesync: $*" >&2
  sh "$R/undo.sh" "$fd" "$R" >&2
  rm -f "$state/journal"
  exit "$EXIT_FAILED"
}
present() { [ -e "$1" ] || [ -L "$1" ]; }
swap_out() { # NAME...: replaced function folders into the release's before/
  for n do
    { [ -d "$fd/$n" ] && [ ! -L "$fd/$n" ]; } || abort "$n is no longer a folder on the server"
  done
  cd "$fd" || abort "cannot enter $fd"
  mv -- "$@" "$R/before/" || abort "cannot move $*"
}
swap_in() { # NAME...: staged function folders into place (nothing there: checked first)
  for n do
    ! present "$fd/$n" || abort "$fd/$n appeared on the server meanwhile"
  done
  cd "$N" || abort "cannot enter staging"
  mv -- "$@" "$fd/" || abort "cannot install $*"
}
# Backups are copied into before.part/ and moved into before/ only once all are
# whole (keep_backups): a copy cut short (disk full, a kill) is never put back.
backup_dirs() { # DIR...: the folders of the files backed up
  if ! { mkdir -p "$R/before.part" && cd "$R/before.part" && mkdir -p -- "$@"; }; then
    abort "cannot create the release folder"
  fi
}
backup_files() { # PATH...: files about to be replaced, copied to the release's before.part/
  for f do
    { [ -f "$fd/$f" ] && [ ! -L "$fd/$f" ]; } || abort "$f is no longer a file on the server"
  done
  mkdir -p "$R/before.part" || abort "cannot create the release folder"
  copy_tree "$fd" "$R/before.part" "$@" || abort "cannot back up $*"
}
keep_backups() { # TOP...: the top-level names in before.part/, none of them in before/ yet
  for n do
    ! present "$R/before/$n" || abort "the backup of $n meets $R/before/$n"
  done
  if ! { cd "$R/before.part" && mv -- "$@" "$R/before/"; }; then
    abort "cannot keep the backups of $*"
  fi
  cd / || true
}
install_files() { # DIR EXISTED NAME...: staged files of one folder put in place
  d=$1 existed=$2
  shift 2
  if [ "$existed" = 0 ]; then
    for n do
      ! present "$fd/$d/$n" || abort "$fd/$d/$n appeared on the server meanwhile"
    done
  fi
  mkdir -p "$fd/$d" || abort "cannot create the folder $d"
  [ ! -L "$fd/$d" ] || abort "the folder $d is a symbolic link"
  if ! { cd "$N/$d" && mv -f -- "$@" "$fd/$d/"; }; then
    abort "cannot install $* in $d"
  fi
}
delete_path() {
  present "$fd/$1" || abort "$1 is already gone from the server"
  parent_of "$1"
  if ! { mkdir -p "$R/before/$p" && mv "$fd/$1" "$R/before/$1"; }; then
    abort "cannot remove $1"
  fi
}

# the functions' secrets file (a path in the project): replaced whole, 0600, old one kept
replace_secrets() { # FILE NEW(under $state, "" removes it) EXISTED(as planned; recorded)
  f="${state%/.edgesync}/$1"
  [ ! -L "$f" ] || abort "$1 is a symbolic link"
  if [ -e "$f" ]; then
    if ! { cp -p "$f" "$R/secrets.part" && mv -f "$R/secrets.part" "$R/secrets.before"; }; then
      rm -f "$R/secrets.part"
      abort "cannot back up $1"
    fi
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
count_files() { # NAME EXPECTED...: no stray file in the replaced function folders
  want=0 names=''
  while [ "$#" -ge 2 ]; do
    want=$((want + $2)) names="$names $1"
    shift 2
  done
  cd "$fd" || abort "cannot enter $fd"
  # shellcheck disable=SC2086 # function names: no blanks, no globs
  set -- $names
  # one count per batch of files find hands to sh (names with newlines count once)
  found=$(find "$@" \( -name node_modules -o -name .git \) -prune -o -type f \
    -exec sh -c 'echo "$#"' sh {} + | { t=0; while read -r c; do t=$((t + c)); done; echo "$t"; })
  cd / || true
  [ "$found" -eq "$want" ] || abort "the replaced folders ($*) hold $found files, $want expected"
}

# -- 5. commit
commit_release() {
  if [ -f "$state/history.jsonl" ]; then
    cp "$state/history.jsonl" "$S/history.new" || abort "cannot copy the history"
    # a last line without its newline (edited by hand) stays a line of its own
    if [ -n "$(tail -c 1 "$S/history.new")" ]; then
      echo >> "$S/history.new" || abort "cannot write the history (disk full?)"
    fi
  else
    : > "$S/history.new" || abort "cannot write the history"
  fi
  cat "$S/history.json" >> "$S/history.new" || abort "cannot write the history (disk full?)"
  mv -f "$S/history.new" "$state/history.jsonl" || abort "cannot write the history"
  rm -f "$state/journal"
}
retire() { # RELEASE...: backups retention removes
  if cd "$state/releases"; then rm -rf -- "$@"; fi
  cd / || true
}

# -- the release (generated)
