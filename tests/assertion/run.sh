#!/usr/bin/env bash
# The proxy's signed session assertion (X-Session-Assertion), verified by independent
# implementations: Python's PyJWT and Node's jose, each fetching the JWKS from the proxy's public
# path (/.well-known/session-proxy/jwks.json).
#
#   bash tests/assertion/run.sh
#
# Installs what is missing (PyJWT[crypto] into tests/assertion/.venv with pip, jose with npm),
# builds the proxy, runs verify.py (which starts the app and the proxy and stops both), and exits
# with its status. The last line is always `N passed, N failed`.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$HERE/.venv"

fail() {
  echo "run.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

command -v node >/dev/null 2>&1 || fail "node is needed (apt-get install nodejs npm)"

if ! "$VENV/bin/python" -c 'import jwt, cryptography' >/dev/null 2>&1; then
  echo "run.sh: installing PyJWT[crypto] into $VENV" >&2
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"; } >&2 \
    || fail "cannot install PyJWT[crypto] (python3 -m venv, pip)"
fi

if [ ! -d "$HERE/node_modules/jose" ]; then
  echo "run.sh: installing node dependencies" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund) >&2 || fail "npm ci failed"
fi

echo "run.sh: building the proxy" >&2
(cd "$ROOT" && cargo build --bin session-proxy) >&2 || fail "cargo build --bin session-proxy failed"

OUT="$(mktemp)"
timeout 180 "$VENV/bin/python" "$HERE/verify.py" --bin "$TARGET_DIR/debug/session-proxy" | tee "$OUT"
status=${PIPESTATUS[0]}
summary="$(tail -n 1 "$OUT")"
rm -f "$OUT"
if [ "$status" -ne 0 ]; then
  # Keep the summary the last line, even after a crash or a timeout of the script.
  if [[ "$summary" =~ ^[0-9]+\ passed,\ [0-9]+\ failed$ ]] && [[ ! "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]]; then
    echo "$summary"
  else
    echo "0 passed, 1 failed"
  fi
fi
exit "$status"
