#!/usr/bin/env bash
# Load benchmark: session-proxy against nginx, both in front of the same nginx upstream, on
# loopback, in interleaved rounds. One run prints every row of issue 18's table:
#
#   plain HTTP/1.1 with the cookie, memory and redis stores   wrk, keep-alive
#   HTTPS, HTTP/1.1 keep-alive (ECDSA P-256, TLS 1.3)          wrk over https
#   HTTPS, h2                                                  h2load -c10 -m10 (ALPN h2)
#   a new TLS connection per request                           wrk, `Connection: close`, https
#   N idle keep-alive connections                              benches/idle_connections.py
#
#   benches/load.sh                 # 3 rounds, 10 s per target per round, 64 connections
#   ROUNDS=5 DURATION=20s CONNECTIONS=128 THREADS=1 IDLE=10000 benches/load.sh
#   ROUNDS=1 DURATION=2s IDLE=1000 benches/load.sh      # a smoke run: checks the plumbing only
#   ASSERTION=1 IDLE=0 benches/load.sh   # adds cookie and memory stores with the signed assertion
#                                        # on, and their ratio to the same store with it off
#
# Every session-proxy request carries a valid session cookie. nginx is the same proxy_pass with
# the same number of workers (2) and an upstream keepalive pool; its TLS server uses the same
# certificate (ECDSA P-256, made here with openssl) and offers TLS 1.2/1.3 and h2 like ours.
#
# The new-connection row uses wrk with `Connection: close`: wrk's OpenSSL client keeps the
# session of the previous connection, so both servers are measured with TLS 1.3 resumption
# (rustls' stateful session cache, nginx's session tickets), which is what returning browsers do.
#
# Prints a Markdown table with the median of the rounds and the ratio session-proxy / nginx for
# each workload (of req/s: above 1.00x is better; of p99 and of the idle row's KiB per
# connection: below 1.00x is better), then
# the peak RSS of every process. Ratios, not absolute numbers, are what to compare: the machine
# is shared. The idle row is memory (RSS growth / N on fresh processes, before the load rounds),
# which is not noisy.
#
# Builds the release profile (fat LTO: slow). For a quick local try, the ordinary cargo
# environment overrides apply, e.g. CARGO_PROFILE_RELEASE_LTO=thin
# CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 benches/load.sh; say so next to any figure you quote.
# BIN=path/to/session-proxy measures that binary instead and builds nothing (A/B of variants).
# Installs nginx-light, wrk, nghttp2-client (h2load) and redis-server with apt-get when missing.
# Loopback only; every process it starts is stopped by PID when it exits.
set -euo pipefail
trap 'echo "benches/load.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
IDLE=${IDLE:-10000}
H2_CLIENTS=${H2_CLIENTS:-10}
H2_STREAMS=${H2_STREAMS:-10}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin session-proxy
  BIN=target/release/session-proxy
fi

# N idle connections need N descriptors in the client and in each server (nginx: in each worker,
# as the kernel may hand them all to one).
want_fds=$((IDLE + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
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

UP=$(free_port); NGX=$(free_port); NGXS=$(free_port); RPORT=$(free_port)
CK=$(free_port); MEM=$(free_port); RED=$(free_port); TLS=$(free_port)

# The certificate both TLS servers present: ECDSA P-256, as in the issue.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

worker_conns=$((IDLE + 4096))
mkdir -p "$work/ngx"
cat > "$work/ngx/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile $((worker_conns * 2));
error_log $work/ngx/error.log warn;
pid $work/ngx/nginx.pid;
events { worker_connections $worker_conns; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream app { server 127.0.0.1:$UP; keepalive 128; }
  ssl_certificate $work/cert.pem;
  ssl_certificate_key $work/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:$NGX;
    listen 127.0.0.1:$NGXS ssl http2;
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
start_upstream "$UP" "$worker_conns"
"$NGINX" -p "$work/ngx" -c "$work/ngx/nginx.conf" -g 'daemon off;' 2>"$work/ngx/stderr" & pids+=($!)
NGX_MASTER=$!
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null & pids+=($!)
wait_port "$UP"; wait_port "$NGX"; wait_port "$NGXS"; wait_port "$RPORT"

SECRET=$("$BIN" keygen)
declare -A PID
start_proxy() { # name port driver [tls] [extra yaml]
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
  header_read_timeout: 120s
  max_connections: $((IDLE + 1024))
EOF
  if [ -n "${4:-}" ]; then
    printf 'tls:\n  cert: %s\n  key: %s\n' "$work/cert.pem" "$work/key.pem" >> "$work/$1.yaml"
  fi
  [ -z "${5:-}" ] || printf '%s\n' "$5" >> "$work/$1.yaml"
  RUST_LOG=warn "$BIN" --config "$work/$1.yaml" serve 2>"$work/$1.log" & pids+=($!)
  PID[$1]=$!
  wait_port "$2"
}
start_proxy cookie "$CK" cookie
start_proxy memory "$MEM" memory
start_proxy redis "$RED" redis
start_proxy tls "$TLS" cookie tls
if [ -n "${ASSERTION:-}" ]; then
  "$BIN" keygen --assertion --out "$work/assertion.pem"
  CKJ=$(free_port); MEMJ=$(free_port)
  start_proxy cookie_jwt "$CKJ" cookie "" "assertion:
  key: $work/assertion.pem"
  start_proxy memory_jwt "$MEMJ" memory "" "assertion:
  key: $work/assertion.pem"
fi

cookie_for() { # base-url
  curl -sk -o /dev/null -D - "$1/login" | tr -d '\r' \
    | sed -n 's/^[Ss]et-[Cc]ookie: \(session_id=[^;]*\);.*/\1/p' | head -1
}
CK_COOKIE=$(cookie_for "http://127.0.0.1:$CK"); MEM_COOKIE=$(cookie_for "http://127.0.0.1:$MEM")
RED_COOKIE=$(cookie_for "http://127.0.0.1:$RED"); TLS_COOKIE=$(cookie_for "https://127.0.0.1:$TLS")
for c in "$CK_COOKIE" "$MEM_COOKIE" "$RED_COOKIE" "$TLS_COOKIE"; do
  [ -n "$c" ] || { echo "could not obtain a session cookie" >&2; exit 1; }
done
# The session really is decoded and forwarded on every request, and both TLS servers speak h2:
curl -sf -H "Cookie: $CK_COOKIE" "http://127.0.0.1:$CK/" >/dev/null
for u in "https://127.0.0.1:$TLS/" "https://127.0.0.1:$NGXS/"; do
  v=$(curl -sk --http2 -o /dev/null -w '%{http_version} %{http_code}' "$u")
  [ "$v" = "2 200" ] || { echo "$u: expected h2 and 200, got '$v'" >&2; exit 1; }
done

# Does a second connection resume the first one's TLS session? (It decides what the
# new-connection row measures: wrk offers the previous session on every reconnect.)
resumes() { # port
  local req='GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' s="$work/session.$1"
  printf "$req" | timeout 5 openssl s_client -connect "127.0.0.1:$1" -alpn http/1.1 -sess_out "$s" -ign_eof >/dev/null 2>&1 || true
  if printf "$req" | timeout 5 openssl s_client -connect "127.0.0.1:$1" -alpn http/1.1 -sess_in "$s" -ign_eof 2>/dev/null | grep -q '^Reused, TLSv1.3'; then
    echo yes
  else
    echo no
  fi
}
RESUME="TLS 1.3 session resumption on a new connection: nginx $(resumes "$NGXS"), session-proxy $(resumes "$TLS")"

# target -> tool, url, header. Each workload pairs an nginx target with a session-proxy one.
targets=(upstream nginx cookie memory redis nginx_tls tls nginx_h2 h2 nginx_new new)
declare -A tool url hdr
set_target() { tool[$1]=$2; url[$1]=$3; hdr[$1]=$4; }
set_target upstream  wrk    "http://127.0.0.1:$UP/"   "X-Bench: 1"
set_target nginx     wrk    "http://127.0.0.1:$NGX/"  "X-Bench: 1"
set_target cookie    wrk    "http://127.0.0.1:$CK/"   "Cookie: $CK_COOKIE"
set_target memory    wrk    "http://127.0.0.1:$MEM/"  "Cookie: $MEM_COOKIE"
set_target redis     wrk    "http://127.0.0.1:$RED/"  "Cookie: $RED_COOKIE"
set_target nginx_tls wrk    "https://127.0.0.1:$NGXS/" "X-Bench: 1"
set_target tls       wrk    "https://127.0.0.1:$TLS/" "Cookie: $TLS_COOKIE"
set_target nginx_h2  h2load "https://127.0.0.1:$NGXS/" "X-Bench: 1"
set_target h2        h2load "https://127.0.0.1:$TLS/" "Cookie: $TLS_COOKIE"
set_target nginx_new close  "https://127.0.0.1:$NGXS/" "X-Bench: 1"
set_target new       close  "https://127.0.0.1:$TLS/" "Cookie: $TLS_COOKIE"
if [ -n "${ASSERTION:-}" ]; then
  CKJ_COOKIE=$(cookie_for "http://127.0.0.1:$CKJ"); MEMJ_COOKIE=$(cookie_for "http://127.0.0.1:$MEMJ")
  [ -n "$CKJ_COOKIE" ] && [ -n "$MEMJ_COOKIE" ] || { echo "could not obtain a session cookie" >&2; exit 1; }
  targets+=(cookie_jwt memory_jwt)
  set_target cookie_jwt wrk "http://127.0.0.1:$CKJ/"  "Cookie: $CKJ_COOKIE"
  set_target memory_jwt wrk "http://127.0.0.1:$MEMJ/" "Cookie: $MEMJ_COOKIE"
fi

to_ms() { # wrk latency like 1.23ms / 850.00us / 1.2s
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'
}
secs=$(awk -v d="$DURATION" 'BEGIN{ if (d ~ /ms$/) {sub(/ms$/,"",d); print d/1000} else if (d ~ /m$/) {sub(/m$/,"",d); print d*60} else {sub(/s$/,"",d); print d+0} }')

# One measurement: prints "rps p50_ms p99_ms errors" (p50/p99 "-" where the tool has none).
measure() { # target
  local t=$1 out rps p50 p99 errs
  case ${tool[$t]} in
    wrk|close)
      local extra=()
      [ "${tool[$t]}" = close ] && extra=(-H "Connection: close")
      out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "${hdr[$t]}" "${extra[@]}" "${url[$t]}")
      rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
      p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
      p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
      errs=$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}')
      ;;
    h2load)
      # h2load reports no percentiles: mean latency goes in the p50 column, marked as such.
      out=$(h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$secs" --warm-up-time=1 -H "${hdr[$t]}" "${url[$t]}")
      echo "$out" | grep -q 'Application protocol: h2' || { echo "h2load did not negotiate h2:" >&2; echo "$out" >&2; }
      rps=$(echo "$out" | awk '/^finished in/ {print $4}')
      p50=$(echo "$out" | awk '/^time for request:/ {print $6}')
      p50="$(to_ms "$p50")"
      p99=-
      errs=$(echo "$out" | awk '/^requests:/ {f=$10} /^status codes:/ {bad=$5+$7+$9} END {print f+bad}')
      ;;
  esac
  echo "${rps:-0} ${p50:--} ${p99:--} ${errs:-0}"
}

# The idle row first, on fresh processes: after the load rounds both allocators would serve
# the idle connections from memory kept from the load, flattering both (nginx to ~0).
idle_kib() { # name port cookie pid...
  local name=$1 port=$2 cookie=$3; shift 3
  local pidargs=()
  for p in "$@"; do pidargs+=(--pid "$p"); done
  python3 benches/idle_connections.py --port "$port" "${pidargs[@]}" --count "$IDLE" \
    ${cookie:+--cookie "$cookie"} > "$work/idle_$name" 2>&1 || true
  head -1 "$work/idle_$name" >&2
  sed -n 's/.*errors=\([0-9]*\).*kib_per_conn=\([0-9.]*\).*/\2 \1/p' "$work/idle_$name"
}
ngx_workers=$(pgrep -P "$NGX_MASTER" | tr '\n' ' ')
idle_ngx="- -"; idle_sp="- -"
if [ "$IDLE" -gt 0 ]; then
  echo "$IDLE idle keep-alive connections, nginx (its 2 workers):" >&2
  idle_ngx=$(idle_kib nginx "$NGX" "" $ngx_workers); idle_ngx=${idle_ngx:-"- -"}
  echo "$IDLE idle keep-alive connections, session-proxy (cookie store):" >&2
  idle_sp=$(idle_kib cookie "$CK" "$CK_COOKIE" "${PID[cookie]}"); idle_sp=${idle_sp:-"- -"}
fi

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS; $ROUNDS interleaved rounds; upstream: nginx, 1 worker, ${#BODY}-byte body" >&2
for r in $(seq 1 "$ROUNDS"); do
  for t in "${targets[@]}"; do
    read -r rps p50 p99 errs < <(measure "$t")
    echo "$t $rps $p50 $p99 $errs" >> "$work/results"
    echo "round $r $t: $rps req/s, p50 ${p50}ms, p99 ${p99}ms, errors $errs" >&2
  done
done

rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ngx_workers=$(pgrep -P "$NGX_MASTER" | tr '\n' ' ')
ngx_peak=0
for p in $ngx_workers "$NGX_MASTER"; do ngx_peak=$((ngx_peak + $(rss_kib "$p"))); done
peaks="nginx $((ngx_peak / 1024)) MiB (master+2 workers, incl. the idle test); session-proxy cookie (incl. the idle test) $(( $(rss_kib "${PID[cookie]}") / 1024 )) MiB, memory $(( $(rss_kib "${PID[memory]}") / 1024 )) MiB, redis $(( $(rss_kib "${PID[redis]}") / 1024 )) MiB, https $(( $(rss_kib "${PID[tls]}") / 1024 )) MiB"

median() { { grep -v '^-$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A mrps mp50 mp99 merr
for t in "${targets[@]}"; do
  mrps[$t]=$(awk -v t="$t" '$1==t {print $2}' "$work/results" | median)
  mp50[$t]=$(awk -v t="$t" '$1==t {print $3}' "$work/results" | median)
  mp99[$t]=$(awk -v t="$t" '$1==t {print $4}' "$work/results" | median)
  merr[$t]=$(awk -v t="$t" '$1==t {n+=$5} END {print n+0}' "$work/results")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="-" || b=="-" || b+0==0) print "-"; else printf "%.2fx", a/b }'; }
fmt_rps() { awk -v v="$1" 'BEGIN{ if (v=="-") print "-"; else printf "%.0f", v }'; }
cell() { # target: "rps req/s, p50 / p99 ms"
  local t=$1 lat
  if [ "${mp99[$t]}" = "-" ]; then lat="mean ${mp50[$t]} ms"; else lat="p50 ${mp50[$t]} / p99 ${mp99[$t]} ms"; fi
  echo "$(fmt_rps "${mrps[$t]}") req/s, $lat"
}
row() { # label nginx-target proxy-target
  local errs=$(( ${merr[$2]} + ${merr[$3]} ))
  echo "| $1 | $(cell "$2") | $(cell "$3") | $(ratio "${mrps[$3]}" "${mrps[$2]}") | $(ratio "${mp99[$3]}" "${mp99[$2]}") | $errs |"
}

echo
echo "| workload | nginx | session-proxy | ratio | p99 ratio | errors |"
echo "|---|---|---|---:|---:|---:|"
echo "| upstream direct (the ceiling) | $(cell upstream) | | | | ${merr[upstream]} |"
row "plain HTTP/1.1, cookie store" nginx cookie
row "plain HTTP/1.1, memory store" nginx memory
row "plain HTTP/1.1, redis store" nginx redis
row "HTTPS, HTTP/1.1 keep-alive (ECDSA P-256, TLS 1.3), cookie store" nginx_tls tls
row "HTTPS, h2 (h2load -c$H2_CLIENTS -m$H2_STREAMS), cookie store" nginx_h2 h2
row "a new TLS connection per request (wrk, Connection: close), cookie store" nginx_new new
if [ "$IDLE" -gt 0 ]; then
  read -r ngx_kib ngx_err <<< "$idle_ngx"; read -r sp_kib sp_err <<< "$idle_sp"
  mib() { awk -v k="$1" -v n="$IDLE" 'BEGIN{ if (k=="-") print "-"; else printf "%.0f MiB", k*n/1024 }'; }
  echo "| $IDLE idle keep-alive connections (RSS growth) | $ngx_kib KiB each ($(mib "$ngx_kib")) | $sp_kib KiB each ($(mib "$sp_kib")) | $(ratio "$sp_kib" "$ngx_kib") | | $(( ${ngx_err/-/0} + ${sp_err/-/0} )) |"
fi
if [ -n "${ASSERTION:-}" ]; then
  row "plain HTTP/1.1, cookie store + signed assertion" nginx cookie_jwt
  row "plain HTTP/1.1, memory store + signed assertion" nginx memory_jwt
  echo
  for s in cookie memory; do
    echo "assertion on vs off, $s store: $(ratio "${mrps[${s}_jwt]}" "${mrps[$s]}") requests/s (target >= 0.90x)"
  done
fi
echo
echo "median of $ROUNDS rounds; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $secs on loopback; $(nproc) cores; $(date -u '+%F %H:%M UTC')"
echo "$RESUME; idle row: growth of the summed VmRSS (nginx: its workers) / N, fresh processes"
echo "peak RSS (VmHWM): $peaks"
