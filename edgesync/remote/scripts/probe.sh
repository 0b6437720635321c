# shellcheck shell=sh
# Request functions from the server itself, through Kong on loopback, the way a
# client would: $1 project_dir (KONG_HTTP_PORT is read from its .env, 8000 by
# default), $2 seconds per request, then four arguments per request: function
# name, method, path after /functions/v1/<name>, and headers ("K: V" lines).
# Eight requests run at a time. Prints per request "R\0name\0status\0seconds\0",
# then the first 4 KiB of the body in base64 and "\0". Status 000: no answer.
project=$1 timeout=$2
shift 2
port=$(sed -n 's/^KONG_HTTP_PORT=\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$project/.env" 2>/dev/null |
  tail -n 1)
port=${port:-8000}
if command -v curl >/dev/null 2>&1; then client=curl
elif command -v python3 >/dev/null 2>&1; then client=python3
else
  echo "edgesync: neither curl nor python3 is installed on the server" >&2
  exit "$EXIT_NO_CLIENT"
fi
work=$(mktemp -d) || exit "$EXIT_FAILED"
trap 'rm -rf "$work"' EXIT

one() { # N NAME METHOD PATH HEADERS: writes $work/N.{name,result,body}
  printf '%s' "$2" > "$work/$1.name"
  printf '%s\n' "$5" > "$work/$1.hdrs"
  : > "$work/$1.body"
  url="http://127.0.0.1:$port/functions/v1/$2$4"
  if [ "$client" = curl ]; then
    curl -s -o "$work/$1.body" -w '%{http_code} %{time_total}' -X "$3" -H "@$work/$1.hdrs" \
      --max-time "$timeout" "$url" > "$work/$1.result" 2>/dev/null
  else
    python3 - "$3" "$url" "$timeout" "$work/$1.hdrs" "$work/$1.body" > "$work/$1.result" <<'PY'
import sys, time, urllib.request, urllib.error
method, url, timeout, hdrs, out = sys.argv[1:6]
headers = dict(l.split(": ", 1) for l in open(hdrs).read().splitlines() if ": " in l)
start = time.monotonic()
try:
    r = urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers),
                               timeout=float(timeout))
    status, data = r.status, r.read(4096)
except urllib.error.HTTPError as e:
    status, data = e.code, e.read(4096)
except Exception:
    status, data = 0, b""
open(out, "wb").write(data)
print(status, round(time.monotonic() - start, 3), end="")
PY
  fi
}

n=0
while [ "$#" -ge 4 ]; do
  n=$((n + 1))
  one "$n" "$1" "$2" "$3" "$4" &
  shift 4
  [ $((n % 8)) -eq 0 ] && wait
done
wait
i=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  result=$(cat "$work/$i.result" 2>/dev/null)
  status=${result%% *} seconds=${result#* }
  printf 'R\0%s\0%s\0%s\0' "$(cat "$work/$i.name")" "${status:-000}" "${seconds:-0}"
  head -c 4096 "$work/$i.body" | base64 | tr -d '\n'
  printf '\0'
done
exit 0
