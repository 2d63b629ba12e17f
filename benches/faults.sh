#!/usr/bin/env bash
# Faults under load: a load client (4 workers creating and changing sessions, recording every
# acknowledged write) runs while the upstream is killed and restarted, then Redis (AOF,
# appendfsync always), then the proxy gets SIGHUP and SIGTERM (and is restarted). Afterwards every
# acknowledged write is read back. Prints a Markdown summary; exits non-zero on a lost write or a
# fault not recovered within 5 s.
#
#   benches/faults.sh                 # CI size (~35 s): 2 s down per kill, 4 s settle
#   FAULTS_CI=0 benches/faults.sh     # longer windows (5 s down, 10 s settle)
#   BIN=target/release/session-proxy benches/faults.sh
#
# Loopback only, free ports; every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "faults.sh: redis-server is required" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --bin session-proxy
  BIN=target/debug/session-proxy
fi
exec timeout 300 python3 benches/hardening.py faults "$BIN"
