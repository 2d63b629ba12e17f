#!/usr/bin/env bash
# CPU time per proxied request, user and kernel, of session-proxy and of nginx as a reverse proxy,
# each with one worker, in front of the same nginx upstream: N requests (h2load --h1, 10 keep-alive
# connections; session-proxy's carry a valid cookie-store session), ROUNDS interleaved rounds,
# medians. Read from /proc/PID/stat (utime, stime) before and after each round, so only the proxy's
# own CPU counts, not the client's or the upstream's. Throughput on this 2-core VM follows the sum;
# the split shows which part a user-space change can move.
#   BIN=target/release/session-proxy N=100000 ROUNDS=3 benches/cpu.sh
#   DRIVER=redis benches/cpu.sh   # Redis store, plus redis-server's own CPU per request
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin session-proxy
  BIN=target/release/session-proxy
fi
command -v h2load >/dev/null || { apt-get install -y -qq nghttp2-client >/dev/null; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# shellcheck source=benches/common.sh
. benches/common.sh
bench_workdir
UP=$(free_port); NGX=$(free_port); SP=$(free_port)
start_upstream "$UP"
mkdir -p "$work/ngx"
cat > "$work/ngx/nginx.conf" <<EOC
worker_processes 1;
error_log $work/ngx/error.log warn;
pid $work/ngx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 128; }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOC
"$NGINX" -p "$work/ngx" -c "$work/ngx/nginx.conf" -g 'daemon off;' 2>"$work/ngx/stderr" & pids+=($!)
redis_yaml=""
if [ "${DRIVER:-}" = redis ]; then
  RP=$(free_port)
  redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" & pids+=($!)
  REDIS_PID=$!
  wait_port "$RP"
  redis_yaml="redis: { url: \"redis://127.0.0.1:$RP/0\" }"
fi
cat > "$work/proxy.yaml" <<EOC
listen: 127.0.0.1:$SP
upstream:
  url: http://127.0.0.1:$UP
sessions:
  driver: ${DRIVER:-cookie}
  secret: "$("$BIN" keygen)"
  secure: false
limits:
  workers: 1
$redis_yaml
EOC
RUST_LOG=warn "$BIN" --config "$work/proxy.yaml" serve 2>"$work/proxy.log" & pids+=($!)
SP_PID=$!
wait_port "$NGX"; wait_port "$SP"
NGX_WORKER=$(pgrep -P "$(cat "$work/ngx/nginx.pid")" | head -1)
cookie=$(login_cookie "$SP")
[ -n "$cookie" ] || { echo "no session cookie" >&2; exit 1; }
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A user sys
run() { # name pid port header
  local b a rb ra
  b=($(ticks "$2"))
  [ -z "${REDIS_PID:-}" ] || rb=($(ticks "$REDIS_PID"))
  h2load --h1 -n "$N" -c 10 -H "$4" "http://127.0.0.1:$3/" | grep -q "$N succeeded" ||
    { echo "$1: not all requests succeeded" >&2; exit 1; }
  a=($(ticks "$2"))
  if [ -n "${REDIS_PID:-}" ] && [ "$1" = session-proxy ]; then
    ra=($(ticks "$REDIS_PID"))
    user[redis-server]+="$(( (ra[0] - rb[0]) * 1000000 / hz )) "
    sys[redis-server]+="$(( (ra[1] - rb[1]) * 1000000 / hz )) "
  fi
  user[$1]+="$(( (a[0] - b[0]) * 1000000 / hz )) "
  sys[$1]+="$(( (a[1] - b[1]) * 1000000 / hz )) "
}
h2load --h1 -n 2000 -c 10 "http://127.0.0.1:$NGX/" >/dev/null
h2load --h1 -n 2000 -c 10 -H "Cookie: $cookie" "http://127.0.0.1:$SP/" >/dev/null
for _ in $(seq 1 "$ROUNDS"); do
  run nginx "$NGX_WORKER" "$NGX" "X-Bench: 1"
  run session-proxy "$SP_PID" "$SP" "Cookie: $cookie"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "| proxy | user µs/request | kernel µs/request | total |"
echo "|---|---:|---:|---:|"
for t in nginx session-proxy ${REDIS_PID:+redis-server}; do
  u=$(echo "${user[$t]}" | median); s=$(echo "${sys[$t]}" | median)
  awk -v t="$t" -v u="$u" -v s="$s" -v n="$N" \
    'BEGIN { printf "| %s | %.1f | %.1f | %.1f |\n", t, u / n, s / n, (u + s) / n }'
done
echo "one worker each, h2load --h1 -n $N -c 10, median of $ROUNDS rounds; $(date -u '+%F %H:%M UTC')"
