#!/usr/bin/env bash
# Headless Chromium drives the demo (examples/demo.rs) through the real proxy.
#
#   bash tests/browser/run.sh
#
# Installs what is missing (Chromium from Debian, playwright-core from npm), builds the demo, starts
# it on a free loopback port, runs demo.spec.mjs, stops the demo, and exits with the script's status.
# The last line is always `N passed, N failed`.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LOG="$HERE/demo.log"
DEMO_PID=""

fail() {
  echo "run.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

stop_demo() {
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill "$DEMO_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DEMO_PID" 2>/dev/null
    wait "$DEMO_PID" 2>/dev/null
  fi
  DEMO_PID=""
}
trap stop_demo EXIT

if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: installing chromium" >&2
  { apt-get update -qq && apt-get install -y -qq chromium; } >&2 || fail "cannot install chromium"
fi

if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  echo "run.sh: installing node dependencies" >&2
  if [ -f "$HERE/package-lock.json" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund) >&2 || fail "npm ci failed"
  else
    (cd "$HERE" && npm install --no-audit --no-fund) >&2 || fail "npm install failed"
  fi
fi

echo "run.sh: building the demo" >&2
(cd "$ROOT" && cargo build --example demo) >&2 || fail "cargo build --example demo failed"

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')" \
  || fail "no free port"
URL="http://127.0.0.1:$PORT/"

DEMO_LISTEN="127.0.0.1:$PORT" "$TARGET_DIR/debug/examples/demo" >"$LOG" 2>&1 &
DEMO_PID=$!

# Ready when it prints its banner and the port answers (at most 30 s).
ready=""
for _ in $(seq 300); do
  kill -0 "$DEMO_PID" 2>/dev/null || { cat "$LOG" >&2; fail "the demo exited early"; }
  if grep -q "^open $URL" "$LOG" && node -e '
      const s=require("net").connect(+process.argv[1],"127.0.0.1",()=>process.exit(0));
      s.on("error",()=>process.exit(1));' "$PORT"; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$LOG" >&2; fail "the demo did not start within 30s"; }
echo "run.sh: demo listening on $URL" >&2

OUT="$(mktemp)"
(cd "$HERE" && DEMO_URL="$URL" timeout 120 node demo.spec.mjs) | tee "$OUT"
status=${PIPESTATUS[0]}
stop_demo
summary="$(tail -n 1 "$OUT")"
rm -f "$OUT"
if [ "$status" -ne 0 ]; then
  echo "run.sh: demo log:" >&2
  tail -n 30 "$LOG" >&2
  # Keep the summary the last line, even after a crash or a timeout of the script.
  if [[ "$summary" =~ ^[0-9]+\ passed,\ [0-9]+\ failed$ ]] && [[ ! "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]]; then
    echo "$summary"
  else
    echo "0 passed, 1 failed"
  fi
fi
exit "$status"
