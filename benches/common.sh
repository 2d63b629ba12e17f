# Shared by the benchmark scripts (sourced, not run): ports, the nginx upstream every benchmark
# proxies to, and starting a session-proxy in front of it. The caller sets `work` (a temporary
# directory) and `pids` (an array the caller's EXIT trap kills), or calls `bench_workdir`.

# The upstream's answer: the same small JSON body in every benchmark.
BODY='{"ok":true,"message":"hello from the upstream","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
NGINX=${NGINX:-/usr/sbin/nginx}

# bench_workdir: the scripts that keep nothing: `work` (a temporary directory) and `pids`, and an
# EXIT trap that stops every process in `pids` and removes `work`.
bench_workdir() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
  for _ in $(seq 1 "${WAIT_TRIES:-400}"); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}

# start_upstream PORT [WORKER_CONNECTIONS]: one nginx worker answering $BODY (and an
# X-Session-Set on /login), logs off, keep-alive for as long as the benchmark runs.
start_upstream() {
  local port=$1 conns=${2:-4096}
  mkdir -p "$work/up"
  cat > "$work/up/nginx.conf" <<EOC
worker_processes 1;
worker_rlimit_nofile $((conns * 2));
error_log $work/up/error.log warn;
pid $work/up/nginx.pid;
events { worker_connections $conns; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location = /login { add_header X-Session-Set "user=bench"; return 200 '$BODY'; }
    location / { return 200 '$BODY'; }
  }
}
EOC
  "$NGINX" -p "$work/up" -c "$work/up/nginx.conf" -g 'daemon off;' 2>"$work/up/stderr" &
  pids+=($!)
  wait_port "$port"
}

# login_cookie PORT [SCHEME]: the `session_id=...` pair a fresh login on the proxy at PORT sets
# (SCHEME `https`: a TLS listener, its certificate not verified).
login_cookie() {
  curl -sk -o /dev/null -D - "${2:-http}://127.0.0.1:$1/login" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: \(session_id=[^;]*\);.*/\1/p' | head -1
}

# wrk_medians RESULTS TARGET...: $ROUNDS interleaved rounds of `wrk -t1 -c50 -d$DURATION` against
# each target, with the caller's `port[TARGET]` and `cookie[TARGET]`; appends "target rps p99" to
# RESULTS, logs each round on stderr, then fills the caller's `m[TARGET]` with the median req/s.
wrk_medians() {
  local results=$1; shift
  local r t out rps p99
  for r in $(seq 1 "$ROUNDS"); do
    for t in "$@"; do
      out=$(wrk -t1 -c50 -d"$DURATION" --latency -H "Cookie: ${cookie[$t]}" "http://127.0.0.1:${port[$t]}/")
      rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
      p99=$(echo "$out" | awk '$1=="99%" {print $2}')
      echo "$t $rps $p99" >> "$results"
      echo "round $r $t: $rps req/s p99 $p99" >&2
    done
  done
  for t in "$@"; do
    m[$t]=$(awk -v t="$t" '$1==t {print $2}' "$results" | sort -g |
      awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
  done
}
