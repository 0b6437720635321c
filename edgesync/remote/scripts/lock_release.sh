# shellcheck shell=sh
# Remove the deploy lock. $1 state folder.
rm -rf "$1/lock"
