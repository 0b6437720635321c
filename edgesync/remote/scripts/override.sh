# shellcheck shell=sh
# Wire the secrets file into the functions service through a compose override:
# $1 project_dir, $2 service, $3 the secrets file (relative to the project).
# Never touches an existing override (exit FAILED: the user edits it).
cd "$1" || exit "$EXIT_NO_PROJECT"
for f in docker-compose.override.yml docker-compose.override.yaml compose.override.yml \
  compose.override.yaml; do
  if [ -e "$f" ]; then
    echo "edgesync: $1/$f exists: add the env_file lines to it yourself" >&2
    exit "$EXIT_FAILED"
  fi
done
set -C  # never overwrite: the file is created here or not at all
{
  printf '%s\n' "# Written by edgesync: the $2 service reads its secrets from $3" \
    "# (edgesync secrets set/unset). Compose merges this file with docker-compose.yml." \
    "services:" "  $2:" "    env_file:" "      - ./$3"
} > docker-compose.override.yml || exit "$EXIT_FAILED"
