# shellcheck shell=sh
# undo.sh FD R: put back what a release replaced; safe at any point of its swap
# (each step checks what is there first). edgesync appends one call per
# operation, in reverse order.
set -u
fd=$1 R=$2
rc=0
parent() { case $1 in */*) printf '%s' "${1%/*}" ;; *) printf . ;; esac; }

# Folders are moved into their parent (`mv NAME PARENT/`), never onto their own path: if
# something put a folder there meanwhile, mv fails (rc=1: the undo runs again) and nothing nests.
undo_delete() {
  if [ -e "$R/before/$1" ] && [ ! -e "$fd/$1" ]; then
    p=$(parent "$1")
    mkdir -p "$fd/$p"
    (cd "$R/before/$p" && mv -- "${1##*/}" "$fd/$p/") || rc=1
  fi
}
undo_put() { # PATH EXISTED
  if [ "$2" = 1 ]; then
    if [ -e "$R/before/$1" ]; then mv -f "$R/before/$1" "$fd/$1" || rc=1; fi
  else
    rm -f "$fd/$1" || rc=1
  fi
}
undo_function() { # NAME EXISTED
  if [ "$2" = 1 ]; then
    if [ -e "$R/before/$1" ]; then
      rm -rf "${fd:?}/$1"
      (cd "$R/before" && mv -- "$1" "$fd/") || rc=1
    fi
  else
    rm -rf "${fd:?}/$1" || rc=1
  fi
}

undo_secrets() { # FILE (the project is the folder above the state folder): the backup, or none
  f="${R%/.edgesync/releases/*}/$1"
  if [ -e "$R/secrets.before" ]; then
    # copied beside, then renamed: a copy cut short never becomes the secrets file
    if ! { cp -p "$R/secrets.before" "$f.edgesync-undo" && mv -f "$f.edgesync-undo" "$f"; }; then
      rm -f "$f.edgesync-undo"
      rc=1
    fi
  else
    rm -f "$f" || rc=1
  fi
}

# -- the release (generated)
