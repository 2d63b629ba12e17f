#!/usr/bin/env bash
# Load benchmark: session-proxy (cookie, memory, redis stores) against nginx's plain proxy_pass,
# all in front of the same nginx upstream, measured with wrk on loopback in interleaved rounds.
#
#   benches/load.sh                 # 3 rounds, 10 s per target per round, 64 connections
#   ROUNDS=5 DURATION=20s CONNECTIONS=128 THREADS=1 IDLE=10000 benches/load.sh
#   ASSERTION=1 IDLE=0 benches/load.sh   # adds cookie and memory stores with the signed assertion
#                                        # on, and their ratio to the same store with it off
#
# Prints a Markdown table with the median of the rounds: requests/s, p50, p99, ratio to nginx and
# the proxies' peak RSS. Ratios, not absolute numbers, are what to compare: the machine is shared.
# Installs nginx-light, wrk and redis-server with apt-get when missing. Loopback only; every
# process it starts is stopped by PID when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet --bin session-proxy
BIN=target/release/session-proxy

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
  for _ in $(seq 1 100); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; return 1
}

UP=$(free_port); NGX=$(free_port); CK=$(free_port); MEM=$(free_port); RED=$(free_port); RPORT=$(free_port)
BODY='{"ok":true,"message":"hello from the upstream","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'

mkdir -p "$work/up" "$work/ngx"
cat > "$work/up/nginx.conf" <<EOF
worker_processes 1;
error_log $work/up/error.log warn;
pid $work/up/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP;
    location = /login { add_header X-Session-Set "user=bench"; return 200 '$BODY'; }
    location / { return 200 '$BODY'; }
  }
}
EOF
cat > "$work/ngx/nginx.conf" <<EOF
worker_processes 2;
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
EOF
"$NGINX" -p "$work/up" -c "$work/up/nginx.conf" -g 'daemon off;' & pids+=($!)
"$NGINX" -p "$work/ngx" -c "$work/ngx/nginx.conf" -g 'daemon off;' & pids+=($!)
NGX_MASTER=$!
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null & pids+=($!)
wait_port "$UP"; wait_port "$NGX"; wait_port "$RPORT"

SECRET=$("$BIN" keygen)
start_proxy() { # name port driver [extra yaml]
  cat > "$work/$1.yaml" <<EOF
listen: 127.0.0.1:$2
upstream:
  url: http://127.0.0.1:$UP
sessions:
  driver: $3
  secret: "$SECRET"
  secure: false
redis:
  url: redis://127.0.0.1:$RPORT/0
limits:
  header_read_timeout: 60s
${4:-}
EOF
  RUST_LOG=warn "$BIN" --config "$work/$1.yaml" serve 2>"$work/$1.log" & pids+=($!)
  eval "PID_$1=$!"
  wait_port "$2"
}
start_proxy cookie "$CK" cookie
start_proxy memory "$MEM" memory
start_proxy redis "$RED" redis
if [ -n "${ASSERTION:-}" ]; then
  "$BIN" keygen --assertion --out "$work/assertion.pem"
  CKJ=$(free_port); MEMJ=$(free_port)
  start_proxy cookie_jwt "$CKJ" cookie "assertion:
  key: $work/assertion.pem"
  start_proxy memory_jwt "$MEMJ" memory "assertion:
  key: $work/assertion.pem"
fi

cookie_for() { # port
  curl -s -o /dev/null -D - "http://127.0.0.1:$1/login" | tr -d '\r' \
    | sed -n 's/^[Ss]et-[Cc]ookie: \(session_id=[^;]*\);.*/\1/p' | head -1
}
CK_COOKIE=$(cookie_for "$CK"); MEM_COOKIE=$(cookie_for "$MEM"); RED_COOKIE=$(cookie_for "$RED")
for c in "$CK_COOKIE" "$MEM_COOKIE" "$RED_COOKIE"; do
  [ -n "$c" ] || { echo "could not obtain a session cookie" >&2; exit 1; }
done
# The session really is decoded and forwarded on every request:
curl -sf -H "Cookie: $CK_COOKIE" "http://127.0.0.1:$CK/" >/dev/null

targets=(upstream nginx cookie memory redis)
declare -A url hdr
if [ -n "${ASSERTION:-}" ]; then
  CKJ_COOKIE=$(cookie_for "$CKJ"); MEMJ_COOKIE=$(cookie_for "$MEMJ")
  [ -n "$CKJ_COOKIE" ] && [ -n "$MEMJ_COOKIE" ] || { echo "could not obtain a session cookie" >&2; exit 1; }
  targets+=(cookie_jwt memory_jwt)
  url[cookie_jwt]="http://127.0.0.1:$CKJ/"; hdr[cookie_jwt]="Cookie: $CKJ_COOKIE"
  url[memory_jwt]="http://127.0.0.1:$MEMJ/"; hdr[memory_jwt]="Cookie: $MEMJ_COOKIE"
fi
url[upstream]="http://127.0.0.1:$UP/"; hdr[upstream]="X-Bench: 1"
url[nginx]="http://127.0.0.1:$NGX/";   hdr[nginx]="X-Bench: 1"
url[cookie]="http://127.0.0.1:$CK/";   hdr[cookie]="Cookie: $CK_COOKIE"
url[memory]="http://127.0.0.1:$MEM/";  hdr[memory]="Cookie: $MEM_COOKIE"
url[redis]="http://127.0.0.1:$RED/";   hdr[redis]="Cookie: $RED_COOKIE"

to_ms() { # wrk latency like 1.23ms / 850.00us / 1.2s
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'
}

echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per target, $ROUNDS interleaved rounds; upstream: nginx, 1 worker, ${#BODY}-byte body" >&2
for r in $(seq 1 "$ROUNDS"); do
  for t in "${targets[@]}"; do
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "${hdr[$t]}" "${url[$t]}")
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
    p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    echo "$t $rps $p50 $p99" >> "$work/results"
    echo "round $r $t: $rps req/s, p50 ${p50}ms, p99 ${p99}ms ${errs}" >&2
  done
done

rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ngx_rss=0
for p in $(pgrep -P "$NGX_MASTER") "$NGX_MASTER"; do ngx_rss=$((ngx_rss + $(rss_kib "$p"))); done
declare -A rss
rss[upstream]="-"; rss[nginx]="$((ngx_rss / 1024)) MiB (master+2 workers)"
rss[cookie]="$(( $(rss_kib "$PID_cookie") / 1024 )) MiB"
rss[memory]="$(( $(rss_kib "$PID_memory") / 1024 )) MiB"
rss[redis]="$(( $(rss_kib "$PID_redis") / 1024 )) MiB"
if [ -n "${ASSERTION:-}" ]; then
  rss[cookie_jwt]="$(( $(rss_kib "$PID_cookie_jwt") / 1024 )) MiB"
  rss[memory_jwt]="$(( $(rss_kib "$PID_memory_jwt") / 1024 )) MiB"
fi

IDLE=${IDLE:-10000}
if [ "$IDLE" -gt 0 ]; then
  echo "idle keep-alive connections (cookie store):" >&2
  python3 benches/idle_connections.py --port "$CK" --pid "$PID_cookie" --count "$IDLE" --cookie "$CK_COOKIE" | tee "$work/idle" >&2 || true
fi


median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A mrps mp50 mp99
for t in "${targets[@]}"; do
  mrps[$t]=$(awk -v t="$t" '$1==t {print $2}' "$work/results" | median)
  mp50[$t]=$(awk -v t="$t" '$1==t {print $3}' "$work/results" | median)
  mp99[$t]=$(awk -v t="$t" '$1==t {print $4}' "$work/results" | median)
done

echo
echo "| target | requests/s | p50 ms | p99 ms | req/s vs nginx | p99 vs nginx | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---|"
declare -A names=([upstream]="upstream direct (ceiling)" [nginx]="nginx proxy_pass" [cookie]="session-proxy, cookie store" [memory]="session-proxy, memory store" [redis]="session-proxy, redis store" [cookie_jwt]="session-proxy, cookie store + assertion" [memory_jwt]="session-proxy, memory store + assertion")
for t in "${targets[@]}"; do
  ratio=$(awk -v a="${mrps[$t]}" -v b="${mrps[nginx]}" 'BEGIN{printf "%.2fx", a/b}')
  pr=$(awk -v a="${mp99[$t]}" -v b="${mp99[nginx]}" 'BEGIN{printf "%.2fx", a/b}')
  echo "| ${names[$t]} | ${mrps[$t]} | ${mp50[$t]} | ${mp99[$t]} | $ratio | $pr | ${rss[$t]} |"
done
if [ -n "${ASSERTION:-}" ]; then
  echo
  for s in cookie memory; do
    awk -v a="${mrps[${s}_jwt]}" -v b="${mrps[$s]}" -v s="$s" \
      'BEGIN{printf "assertion on vs off, %s store: %.2fx requests/s (target >= 0.90x)\n", s, a/b}'
  done
fi
echo
echo "median of $ROUNDS rounds; wrk -t$THREADS -c$CONNECTIONS -d$DURATION on loopback; $(nproc) cores"
[ -s "$work/idle" ] && echo "idle: $(cat "$work/idle")"
