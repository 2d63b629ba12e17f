#!/usr/bin/env bash
# Soak: a steady-rate load (SOAK_RATE req/s, default 200) that creates, changes and destroys
# sessions for SOAK_SECONDS (default 1800), sampling the proxy's VmRSS and open fds every minute
# (every 10 s for runs under 5 minutes). Fails if, after the warm-up (the first fifth of the run),
# RSS grows by more than SOAK_RSS_GROWTH_KIB (default 10240 KiB) or fds by more than
# SOAK_FD_GROWTH (default 16), or if any request fails.
#
#   SOAK_SECONDS=60 benches/soak.sh           # the CI version
#   SOAK_STORE=redis benches/soak.sh          # memory (default) or redis
#   BIN=target/release/session-proxy benches/soak.sh
#
# SOAK_WORKERS (default 8) sets the number of load threads.
# Loopback only, free ports; every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --bin session-proxy
  BIN=target/debug/session-proxy
fi
secs=${SOAK_SECONDS:-1800}
exec timeout $((secs + 120)) python3 benches/hardening.py soak "$BIN"
