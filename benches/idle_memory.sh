#!/usr/bin/env bash
# What one idle HTTP/1.1 keep-alive connection costs a freshly started session-proxy: starts an
# nginx upstream and the proxy (cookie store, plain HTTP, 2 workers), holds IDLE connections
# (benches/idle_connections.py: one request each, all held, a second request each), and prints
# the RSS growth per connection plus the proxy's /proc/PID/smaps_rollup with all of them open.
#
#   benches/idle_memory.sh                                  # target/release/session-proxy
#   BIN=/tmp/variant/session-proxy LABEL=glibc IDLE=10000 benches/idle_memory.sh
#   WRAP="heaptrack -o /tmp/ht" BIN=... benches/idle_memory.sh   # run the proxy under a profiler
#   SILENT=1 benches/idle_memory.sh   # connections that send nothing until all are open (preconnects)
#
# Memory is far less noisy than throughput, so A/B figures from this are meaningful on a busy
# machine: run each variant on its own fresh process, same IDLE. Builds nothing unless BIN is
# unset (then the release profile, like benches/load.sh). Extra proxy.yaml lines can be given in
# EXTRA_YAML (e.g. "  workers: 1" under limits is added with LIMITS_EXTRA). Loopback only;
# every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-10000}
LABEL=${LABEL:-$(basename "${BIN:-release}")}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin session-proxy
  BIN=target/release/session-proxy
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
want_fds=$((IDLE + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -Hn "$want_fds" 2>/dev/null || true
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=benches/common.sh
. benches/common.sh
UP=$(free_port); PORT=$(free_port)
start_upstream "$UP"
cat > "$work/proxy.yaml" <<EOF
listen: 127.0.0.1:$PORT
upstream:
  url: http://127.0.0.1:$UP
sessions:
  driver: cookie
  secret: "$("$BIN" keygen)"
  secure: false
limits:
  header_read_timeout: 300s
  max_connections: $((IDLE + 1024))
  workers: ${WORKERS:-2}
${EXTRA_YAML:-}
EOF
# shellcheck disable=SC2086
RUST_LOG=warn ${WRAP:-} "$BIN" --config "$work/proxy.yaml" serve 2>"$work/proxy.log" & pids+=($!)
wrapper=$!
wait_port "$UP"; wait_port "$PORT"
# Under a wrapper (heaptrack, valgrind) the proxy is the wrapper's child.
PID=$wrapper
if [ -n "${WRAP:-}" ]; then
  for _ in $(seq 1 50); do
    c=$(pgrep -f -n "^$BIN --config $work/proxy.yaml" || true)
    [ -n "$c" ] && { PID=$c; break; }; sleep 0.1
  done
  pids+=("$PID")  # stopping the wrapper does not stop its child; the child's exit ends the wrapper
fi
cookie=$(login_cookie "$PORT")
[ -n "$cookie" ] || { echo "no session cookie" >&2; exit 1; }
sleep 0.5
out=$(python3 benches/idle_connections.py --port "$PORT" --pid "$PID" --count "$IDLE" \
  --cookie "$cookie" --settle 2 --deadline 300 \
  --smaps "$work/smaps" ${SILENT:+--silent} 2>&1) || true
echo "$out" | head -1
kib=$(echo "$out" | sed -n 's/.*kib_per_conn=\([0-9.]*\).*/\1/p')
errs=$(echo "$out" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
held=$(echo "$out" | sed -n 's/^held=\([0-9]*\).*/\1/p')
anon=$(awk '/^Anonymous:/ {print $2}' "$work/smaps" 2>/dev/null || echo "?")
echo "RESULT label=$LABEL idle=$IDLE held=${held:-0} errors=${errs:-?} kib_per_conn=${kib:-?} anon_kib_all_open=$anon"
[ -n "${SHOW_SMAPS:-}" ] && cat "$work/smaps"
exit 0
