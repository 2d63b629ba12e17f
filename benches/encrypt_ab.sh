#!/usr/bin/env bash
# Cost of Redis encryption at rest (issue 15): one release binary, one redis-server, two proxies
# that differ only in `redis.encrypt` (true: sealed sessions, false: readable), against the same
# nginx upstream; every request carries a valid session cookie, so each one loads (and opens) the
# session, as in benches/load.sh's redis row. wrk -t1 -c50, interleaved rounds, medians.
#   BIN=target/release/session-proxy ROUNDS=5 DURATION=8s benches/encrypt_ab.sh
set -euo pipefail
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8s}
BIN=${BIN:-target/release/session-proxy}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$(dirname "$0")/.."
# shellcheck source=benches/common.sh
. benches/common.sh
UP=$(free_port)
start_upstream "$UP"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null & pids+=($!)
wait_port "$RPORT"
SECRET=$("$BIN" keygen)
declare -A port cookie
start() { # name encrypt
  local p; p=$(free_port); port[$1]=$p
  printf 'listen: 127.0.0.1:%s\nupstream:\n  url: http://127.0.0.1:%s\nsessions:\n  driver: redis\n  secret: "%s"\n  secure: false\nredis:\n  url: redis://127.0.0.1:%s/0\n  key_prefix: "%s:"\n  encrypt: %s\nlimits:\n  header_read_timeout: 60s\n' \
    "$p" "$UP" "$SECRET" "$RPORT" "$1" "$2" > "$work/$1.yaml"
  RUST_LOG=warn "$BIN" --config "$work/$1.yaml" serve 2>"$work/$1.log" & pids+=($!)
  wait_port "$p"
  cookie[$1]=$(login_cookie "$p")
  [ -n "${cookie[$1]}" ] || { echo "no cookie from $1" >&2; exit 1; }
}
start readable false
start sealed true
targets=(readable sealed)
declare -A m
wrk_medians "$work/results" "${targets[@]}"
echo
echo "| redis.encrypt | median req/s |"
echo "|---|---:|"
echo "| false (readable) | ${m[readable]} |"
echo "| true (sealed) | ${m[sealed]} |"
awk -v a="${m[sealed]}" -v b="${m[readable]}" 'BEGIN{printf "sealed/readable: %.3fx\n", a/b}'
echo "wrk -t1 -c50 -d$DURATION, $ROUNDS interleaved rounds, medians; $(date -u '+%F %H:%M UTC')"
