#!/usr/bin/env bash
# Syscalls per proxied request under load, counted by `strace -c -f` attached to a release build
# (cookie store unless DRIVER=memory, plain HTTP, WORKERS workers, default 1) in front of the nginx
# upstream: N requests (h2load --h1, 10 keep-alive connections, each with a valid session cookie)
# after 500 warm-up, then strace's table divided by N. strace slows the proxy down many times over:
# read the counts, never the times.
#   BIN=target/release/session-proxy N=20000 benches/syscalls.sh
#   TLS=1 benches/syscalls.sh        # HTTPS (ECDSA P-256 certificate made here), HTTP/1.1 by ALPN
#   TLS=1 H2=1 benches/syscalls.sh   # HTTPS, h2 (h2load -m10)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin session-proxy
  BIN=target/release/session-proxy
fi
command -v strace >/dev/null || { apt-get install -y -qq strace >/dev/null; }
command -v h2load >/dev/null || { apt-get install -y -qq nghttp2-client >/dev/null; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# shellcheck source=benches/common.sh
. benches/common.sh
bench_workdir
UP=$(free_port); PORT=$(free_port)
start_upstream "$UP"
cat > "$work/proxy.yaml" <<EOC
listen: 127.0.0.1:$PORT
upstream:
  url: http://127.0.0.1:$UP
sessions:
  driver: ${DRIVER:-cookie}
  secret: "$("$BIN" keygen)"
  secure: false
limits:
  workers: ${WORKERS:-1}
EOC
scheme=http; h1=(--h1); streams=()
[ -n "${H2:-}" ] && { h1=(); streams=(-m 10); }
if [ -n "${TLS:-}" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  printf 'tls:\n  cert: %s\n  key: %s\n' "$work/cert.pem" "$work/key.pem" >> "$work/proxy.yaml"
  scheme=https
fi
RUST_LOG=warn "$BIN" --config "$work/proxy.yaml" serve 2>"$work/proxy.log" & pids+=($!)
PID=$!
wait_port "$PORT"
cookie=$(login_cookie "$PORT" "$scheme")
[ -n "$cookie" ] || { echo "no session cookie" >&2; exit 1; }
load() { h2load ${h1[@]+"${h1[@]}"} ${streams[@]+"${streams[@]}"} -c 10 -H "cookie: $cookie" "$@" "$scheme://127.0.0.1:$PORT/"; }
load -n 500 >/dev/null
strace -c -f -p "$PID" -o "$work/strace" & tracer=$!
sleep 1
load -n "$N" | grep -E '^requests:'
sleep 0.5
kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
echo "syscalls per request ($N requests; strace -c -f, $(date -u '+%Y-%m-%d %H:%M UTC')):"
awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
  name = $NF; calls = $4; printf "  %-16s %6.2f\n", name, calls / n; total += calls }
  END { printf "  %-16s %6.2f\n", "total", total / n }' "$work/strace"
