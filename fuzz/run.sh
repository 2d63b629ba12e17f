#!/usr/bin/env bash
# Short fuzz runs of every target (default 60 s each; FUZZ_SECONDS to change), one after another.
# Installs cargo-fuzz when missing. This machine has only a stable toolchain, so cargo-fuzz's
# nightly flags are enabled with RUSTC_BOOTSTRAP=1. Exits non-zero if any target crashes; the
# crashing input is kept under fuzz/artifacts/<target>/.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-60}
targets=(cookie_open control_headers request_headers config_yaml request_target forwarding_headers)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet || { echo "0 passed, ${#targets[@]} failed"; exit 1; }
fi
cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O || { echo "0 passed, ${#targets[@]} failed"; exit 1; }

passed=0
failed=0
for t in "${targets[@]}"; do
  log=$(mktemp)
  if cargo fuzz run -O "$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    passed=$((passed + 1))
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    echo "fuzz $t: ok, ${secs}s, ${execs:-?} executions, ${cov:-cov: ?}"
  else
    failed=$((failed + 1))
    echo "fuzz $t: CRASH"
    grep -E "panicked|ERROR|Test unit written" "$log" | head -5
  fi
  rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
