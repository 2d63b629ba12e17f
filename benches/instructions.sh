#!/usr/bin/env bash
# Instructions per proxied request of one or more release builds, counted by valgrind's callgrind:
# deterministic, so an A/B of two builds is exact even on a busy machine where wall-clock
# throughput is noise. Each build runs alone (workers: 1, cookie store unless DRIVER=memory or
# DRIVER=redis, the latter against a redis-server of its own on a free port) in front of the nginx
# upstream; after 500 warm-up requests the counters are zeroed, N requests
# (h2load --h1, 10 connections, each with a valid session cookie) are counted, and the total is
# divided by N. With two builds it also prints the functions whose own cost moved most.
#   benches/instructions.sh OLD_BINARY NEW_BINARY
# KEEP=DIR keeps each build's callgrind output there (callgrind_annotate --inclusive=yes reads it).
# An argument `VAR=VALUE,...@BINARY` runs BINARY with those environment variables, which override
# settings (docs/configuration.md): one binary, two configurations, e.g.
#   DRIVER=redis benches/instructions.sh REDIS_ENCRYPT=false@BIN REDIS_ENCRYPT=true@BIN
# Caveat: valgrind hides SHA-NI and other newer instructions from the program, so code that has a
# hardware path (sha2's SHA-256) is counted in its portable form, costlier than on this CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-4000}
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=benches/common.sh
. benches/common.sh
UP=$(free_port)
start_upstream "$UP"
redis_yaml=""
if [ "${DRIVER:-}" = redis ]; then
  RP=$(free_port)
  redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
  pids+=($!)
  wait_port "$RP"
  redis_yaml=$(printf 'redis:\n  url: redis://127.0.0.1:%s/0\n' "$RP")
fi
outs=()
i=0
for spec in "$@"; do
  bin=${spec##*@}
  vars=()
  [ "$spec" = "$bin" ] || IFS=, read -r -a vars <<<"${spec%@*}"
  port=$(free_port)
  secret=$("$bin" keygen)
  printf 'listen: 127.0.0.1:%s\nupstream:\n  url: http://127.0.0.1:%s\nsessions:\n  driver: %s\n  secret: "%s"\n  secure: false\nlimits:\n  workers: 1\n  header_read_timeout: 60s\n%s\n' \
    "$port" "$UP" "${DRIVER:-cookie}" "$secret" "$redis_yaml" > "$work/p$i.yaml"
  env ${vars[@]+"${vars[@]}"} RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/cg$i.%p" \
    "$bin" --config "$work/p$i.yaml" serve 2>"$work/vg$i.log" &
  vg=$!
  WAIT_TRIES=1200 wait_port "$port"
  cookie=$(login_cookie "$port")
  [ -n "$cookie" ] || { echo "no session cookie from $bin" >&2; exit 1; }
  h2load --h1 -n 500 -c 10 -H "Cookie: $cookie" "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -z "$vg" >/dev/null 2>&1
  h2load --h1 -n "$N" -c 10 -H "Cookie: $cookie" "http://127.0.0.1:$port/" | grep -q "$N succeeded"
  callgrind_control -d "$vg" >/dev/null 2>&1
  kill "$vg"; wait "$vg" 2>/dev/null || true
  outs+=("$(ls "$work"/cg"$i".*.1)")
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "${outs[-1]}" "$KEEP/callgrind.$i"; fi
  i=$((i + 1))
done
python3 - "$N" "${outs[@]}" "$@" <<'PY'
import collections, re, sys
n = int(sys.argv[1]); k = (len(sys.argv) - 2) // 2
files, bins = sys.argv[2:2 + k], sys.argv[2 + k:]
def own_costs(path):
    names, cost, fn, call = {}, collections.Counter(), None, False
    for line in open(path, errors="replace"):
        m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = re.sub(r"::h[0-9a-f]{16}$", "", m.group(3).strip())
            if not m.group(1):
                fn = names.get(m.group(2))
            continue
        if line.startswith("calls="):
            call = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if not call and fn and len(parts) > 1:
                cost[fn] += int(parts[1])
            call = False
    return cost
costs = [own_costs(f) for f in files]
for b, c in zip(bins, costs):
    print(f"{b}: {sum(c.values()) / n:,.0f} instructions per request")
if len(costs) == 2:
    a, b = costs
    total_a, total_b = sum(a.values()), sum(b.values())
    print(f"second/first: {total_b / total_a:.3f}x")
    print("functions whose own cost moved most (instructions per request, first → second):")
    for name in sorted(set(a) | set(b), key=lambda f: -abs(b[f] - a[f]))[:15]:
        print(f"  {a[name] / n:8.0f} → {b[name] / n:8.0f}  {name[:110]}")
PY
echo "callgrind, $N requests after 500 warm-up, h2load --h1 -c 10; $(date -u '+%F %H:%M UTC')"
