#!/usr/bin/env bash
# A/B throughput of two session-proxy builds (OLD, NEW: paths to release binaries), cookie and memory stores, assertion on/off,
# against the same nginx upstream; wrk -t1 -c50, interleaved rounds, medians.
set -euo pipefail
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8s}
OLD=${OLD:?OLD=path to the baseline release binary}
NEW=${NEW:-target/release/session-proxy}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$(dirname "$0")/.."
# shellcheck source=benches/common.sh
. benches/common.sh
UP=$(free_port)
start_upstream "$UP"
SECRET=$("$NEW" keygen)
"$NEW" keygen --assertion --out "$work/assertion.pem"
declare -A port cookie
start() { # name bin driver [extra]
  local p; p=$(free_port); port[$1]=$p
  printf 'listen: 127.0.0.1:%s\nupstream:\n  url: http://127.0.0.1:%s\nsessions:\n  driver: %s\n  secret: "%s"\n  secure: false\nlimits:\n  header_read_timeout: 60s\n%s\n' \
    "$p" "$UP" "$3" "$SECRET" "${4:-}" > "$work/$1.yaml"
  RUST_LOG=warn "$2" --config "$work/$1.yaml" serve 2>"$work/$1.log" & pids+=($!)
  wait_port "$p"
  cookie[$1]=$(login_cookie "$p")
  [ -n "${cookie[$1]}" ] || { echo "no cookie from $1" >&2; exit 1; }
}
start old_cookie "$OLD" cookie
start new_cookie "$NEW" cookie
start old_memory "$OLD" memory
start new_memory "$NEW" memory
start new_cookie_jwt "$NEW" cookie "assertion:
  key: $work/assertion.pem"
start new_memory_jwt "$NEW" memory "assertion:
  key: $work/assertion.pem"
targets=(old_cookie new_cookie old_memory new_memory new_cookie_jwt new_memory_jwt)
declare -A m
wrk_medians "$work/results" "${targets[@]}"
echo
echo "| target | median req/s |"
echo "|---|---:|"
for t in "${targets[@]}"; do echo "| $t | ${m[$t]} |"; done
awk -v a="${m[new_cookie]}" -v b="${m[old_cookie]}" 'BEGIN{printf "new/old cookie store: %.3fx\n", a/b}'
awk -v a="${m[new_memory]}" -v b="${m[old_memory]}" 'BEGIN{printf "new/old memory store: %.3fx\n", a/b}'
awk -v a="${m[new_cookie_jwt]}" -v b="${m[new_cookie]}" 'BEGIN{printf "assertion on/off, cookie store: %.3fx\n", a/b}'
awk -v a="${m[new_memory_jwt]}" -v b="${m[new_memory]}" 'BEGIN{printf "assertion on/off, memory store: %.3fx\n", a/b}'
echo "wrk -t1 -c50 -d$DURATION, $ROUNDS interleaved rounds, medians; $(date -u '+%F %H:%M UTC')"
