#!/usr/bin/env bash
# Headless Chromium drives the demo (examples/demo.rs) through the real proxy.
#
#   bash tests/browser/run.sh
#
# Installs what is missing (Chromium from Debian, playwright-core from npm), builds the demo, then
# twice starts it on a free loopback port, runs specs against it and stops it: on the cookie store
# (demo.spec.mjs), then with DEMO_STORE=memory (demo.spec.mjs again, and sessions.spec.mjs: two
# devices, "Sign out everywhere"). The last line is always `N passed, N failed`, over all runs;
# the exit status is 0 only if every check passed.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DEMO_PID=""

PASSED=0
FAILED=0

# Gives up, still ending with the summary line (what ran so far, plus this failure).
fail() {
  echo "run.sh: $*" >&2
  echo "$PASSED passed, $((FAILED + 1)) failed"
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

# start_demo STORE: the demo with DEMO_STORE=STORE on a free loopback port, ready (at most 30 s).
start_demo() {
  local store="$1"
  PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')" \
    || fail "no free port"
  URL="http://127.0.0.1:$PORT/"
  LOG="$HERE/demo-$store.log"
  DEMO_STORE="$store" DEMO_LISTEN="127.0.0.1:$PORT" "$TARGET_DIR/debug/examples/demo" >"$LOG" 2>&1 &
  DEMO_PID=$!
  # Ready when it prints its banner and the port answers.
  for _ in $(seq 300); do
    kill -0 "$DEMO_PID" 2>/dev/null || { cat "$LOG" >&2; fail "the demo ($store) exited early"; }
    if grep -q "^open $URL" "$LOG" && node -e '
        const s=require("net").connect(+process.argv[1],"127.0.0.1",()=>process.exit(0));
        s.on("error",()=>process.exit(1));' "$PORT"; then
      echo "run.sh: demo ($store store) listening on $URL" >&2
      return
    fi
    sleep 0.1
  done
  cat "$LOG" >&2
  fail "the demo ($store) did not start within 30s"
}

# run_spec STORE SPEC: runs one spec against the running demo and adds its summary to the totals.
# A spec that crashes or times out without a failing summary still counts one failure.
run_spec() {
  local store="$1" spec="$2" out status summary
  out="$(mktemp)"
  (cd "$HERE" && DEMO_URL="$URL" DEMO_STORE="$store" timeout 120 node "$spec") | tee "$out"
  status=${PIPESTATUS[0]}
  summary="$(tail -n 1 "$out")"
  rm -f "$out"
  if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASSED=$((PASSED + BASH_REMATCH[1]))
    FAILED=$((FAILED + BASH_REMATCH[2]))
    [ "$status" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ] && FAILED=$((FAILED + 1))
  else
    FAILED=$((FAILED + 1))
  fi
  if [ "$status" -ne 0 ]; then
    echo "run.sh: $spec failed ($store store); demo log:" >&2
    tail -n 30 "$LOG" >&2
  fi
}

# The default cookie store, then the memory store, where sessions are listed and ended by owner.
start_demo cookie
run_spec cookie demo.spec.mjs
stop_demo
start_demo memory
run_spec memory demo.spec.mjs
run_spec memory sessions.spec.mjs
stop_demo

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
