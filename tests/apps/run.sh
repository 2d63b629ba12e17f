#!/usr/bin/env bash
# The demo app of examples/apps/ in Python (Flask), Node (Express) and Go (net/http), each behind
# the real proxy, driven with curl the way a browser would use it.
#
#   bash tests/apps/run.sh              # all three
#   bash tests/apps/run.sh go node      # some of them
#
# For each language it installs what is missing (a venv from requirements.txt; `npm ci` from the
# committed lock; Debian's golang-go, standard library only, no module downloads), starts the app on
# a free loopback port and target/debug/session-proxy in front of it (cookie store, secure: false, a
# fresh secret from `session-proxy keygen`), then signs in, reloads, tries spoofed X-Session-*
# headers and signs out with one cookie jar. Then again with the proxy signing X-Session-Assertion
# (a fresh `keygen --assertion` key) and the app started with SESSION_PROXY_JWKS (the proxy's public
# JWKS path) and SESSION_PROXY_AUDIENCE: the page must say "assertion: verified", and requests sent
# straight to the app with forged or tampered headers must be anonymous. One `ok`/`FAIL` line per
# check; the last line is always
# `N passed, N failed`, and the exit status is non-zero on any failure. Every process it starts is
# stopped by its PID on exit.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
APPS="$ROOT/examples/apps"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROXY="$TARGET_DIR/debug/session-proxy"
WORK="$(mktemp -d)"
PIDS=()
PASSED=0
FAILED=0

# TERM first, KILL after 5 s: a stuck child must not outlive the run.
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
# Interrupted: still end with the summary line, the interruption counted as a failure.
trap 'echo "run.sh: interrupted" >&2; echo "$PASSED passed, $((FAILED + 1)) failed"; exit 130' INT TERM

log() { echo "run.sh: $*" >&2; }

# result STATUS DESCRIPTION: one ok/FAIL line; on failure the last response goes to stderr.
result() {
  if [ "$1" -eq 0 ]; then
    echo "ok   $2"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $2"
    FAILED=$((FAILED + 1))
    if [ -f "$WORK/headers" ]; then
      {
        echo "  last response (status $STATUS):"
        sed 's/^/    /' "$WORK/headers" "$WORK/body" | head -n 30
      } >&2
    fi
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PID PORT LOG: until the port accepts (at most 30 s), or the process exits.
wait_port() {
  for _ in $(seq 300); do
    if ! kill -0 "$1" 2>/dev/null; then
      tail -n 20 "$3" >&2
      return 1
    fi
    (: <"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 20 "$3" >&2
  return 1
}

# fetch [curl args]: one request with the cookie jar $JAR (none when JAR is empty). Leaves the
# status in $STATUS and the head (CR removed) and body in $WORK/headers and $WORK/body.
fetch() {
  local jar=()
  [ -n "$JAR" ] && jar=(-b "$JAR" -c "$JAR")
  : >"$WORK/headers.raw"
  : >"$WORK/body"
  STATUS="$(curl -sS --max-time 10 "${jar[@]}" -D "$WORK/headers.raw" -o "$WORK/body" \
    -w '%{http_code}' "$@")" || STATUS=000
  tr -d '\r' <"$WORK/headers.raw" >"$WORK/headers"
}
header_has() { grep -qiE -- "$1" "$WORK/headers"; }
body_has() { grep -qF -- "$1" "$WORK/body"; }
signed_in_as() {
  [ "$STATUS" = 200 ] && body_has "<strong id=\"user\">$1</strong>" &&
    body_has "<span id=\"visits\">$2</span>"
}
sign_in_form() {
  [ "$STATUS" = 200 ] && body_has 'You are not signed in.' && ! body_has 'id="user"'
}

# Installs: each returns non-zero when its language cannot run here.
install_python() {
  local dir="$APPS/python"
  # The stamp is the requirements.txt the venv was made from: a changed pin reinstalls.
  if ! cmp -s "$dir/requirements.txt" "$dir/.venv/requirements.installed"; then
    log "python: creating .venv and installing requirements.txt"
    rm -rf "$dir/.venv"
    python3 -m venv "$dir/.venv" >&2 &&
      "$dir/.venv/bin/pip" install -q --disable-pip-version-check -r "$dir/requirements.txt" >&2 &&
      cp "$dir/requirements.txt" "$dir/.venv/requirements.installed" || return 1
  fi
}
install_node() {
  local dir="$APPS/node"
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.lock.installed"; then
    log "node: npm ci"
    (cd "$dir" && npm ci --no-audit --no-fund) >&2 &&
      cp "$dir/package-lock.json" "$dir/node_modules/.lock.installed" || return 1
  fi
}
install_go() {
  if ! command -v go >/dev/null 2>&1; then
    log "go: installing golang-go from Debian"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; } >&2 ||
      return 1
  fi
  # GOPROXY=off: the app uses the standard library only, and a download must fail loudly rather
  # than happen. The build cache lives under target/ so a warm run relinks in about a second.
  (cd "$APPS/go" && GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local GOCACHE="$TARGET_DIR/go-cache" \
    GOPATH="$TARGET_DIR/go-path" go build -o "$WORK/go-app" .) >&2
}

# start_LANG PORT LOG: start the app in the background; its PID in $!.
start_python() { PORT="$1" "$APPS/python/.venv/bin/python" "$APPS/python/app.py" >"$2" 2>&1 & }
start_node() { PORT="$1" node "$APPS/node/app.js" >"$2" 2>&1 & }
start_go() { PORT="$1" "$WORK/go-app" >"$2" 2>&1 & }

# start_proxy APP_PORT DIR [assertion]: the real binary in front of the app, on a port it picks
# itself; its address in $PROXY_ADDR. A clean environment, so no SESSION_* variable of the
# caller's applies. With `assertion`, it signs X-Session-Assertion with a new Ed25519 key.
start_proxy() {
  local secret assertion=""
  secret="$("$PROXY" keygen)" || return 1
  if [ "${3-}" = assertion ]; then
    "$PROXY" keygen --assertion --out "$2/assertion.pem" >&2 || return 1
    assertion="assertion: { key: \"$2/assertion.pem\" }"
  fi
  cat >"$2/proxy.yaml" <<EOF
$assertion
listen: 127.0.0.1:0
upstream:
  url: http://127.0.0.1:$1
sessions:
  driver: cookie
  secure: false
  secret: "$secret"
  max_age: 1h
limits:
  workers: 1
  shutdown_grace: 1s
EOF
  env -i PATH="$PATH" RUST_LOG=info "$PROXY" --config "$2/proxy.yaml" --log-format json serve \
    >"$2/proxy.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  PROXY_ADDR=""
  for _ in $(seq 300); do
    PROXY_ADDR="$(grep '"message":"listening"' "$2/proxy.log" | grep -o '"addr":"[^"]*"' |
      cut -d'"' -f4)"
    [ -n "$PROXY_ADDR" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$2/proxy.log" >&2
  return 1
}

# page_session_id: the X-Session-Id the app got, from the headers table of the last page.
page_session_id() {
  sed -n 's|.*<th>x-session-id</th><td>\([^<]*\)</td>.*|\1|p' "$WORK/body"
}

# drive LANG: the checks, through the proxy at $PROXY_ADDR.
drive() {
  local l="$1" base="http://$PROXY_ADDR"
  # What a client might send to pass for someone: the apps read X-Session-Data, and show every
  # X-Session-* header they got; the proxy must strip all of these before the app sees them.
  local spoof=(-H 'X-Session-User: admin' -H 'X-Session-Visits: 41'
    -H 'X-Session-Data: {"user":"admin","visits":41}' -H 'X-Session-Id: admin')
  JAR=""

  fetch "$base/"
  sign_in_form && ! header_has '^set-cookie:'
  result $? "$l: without a session, GET / shows the sign-in form and sets no cookie"

  fetch "$base/" "${spoof[@]}"
  sign_in_form && ! body_has admin && ! header_has '^set-cookie:'
  result $? "$l: a client's own X-Session-User / X-Session-Data naming admin signs nobody in"

  JAR="$WORK/$l/jar"
  fetch "$base/login" --data-urlencode 'name=  '
  [ "$STATUS" = 303 ] && ! header_has '^set-cookie:'
  result $? "$l: a blank name is redirected without a session"

  fetch "$base/login" --data-urlencode 'name=Ann'
  [ "$STATUS" = 303 ] && header_has '^location: /$' && header_has '^set-cookie: session_id=[^;]+;' &&
    header_has '^set-cookie: .*; *httponly' && ! header_has '^set-cookie: .*; *secure' &&
    ! header_has '^x-session-'
  result $? "$l: POST /login is a 303 to / with an HttpOnly session cookie and no X-Session-* header"

  fetch "$base/"
  signed_in_as Ann 1 && ! header_has '^x-session-'
  result $? "$l: after sign-in, GET / shows user Ann, visit 1"

  fetch "$base/"
  signed_in_as Ann 2
  result $? "$l: a reload counts visit 2"

  fetch "$base/" "${spoof[@]}"
  signed_in_as Ann 3 && body_has '<tr><th>x-session-user</th><td>Ann</td></tr>' &&
    body_has '<tr><th>x-session-visits</th><td>2</td></tr>' && ! body_has admin &&
    ! body_has '>41<' && ! body_has ':41'
  result $? "$l: a client's own X-Session-User: admin etc. never reach the app (it got Ann, visit 3)"

  # X-Session-Regenerate at sign-in (against session fixation): signing in over an existing
  # session must give it a new ID, as the X-Session-Id the app gets shows.
  local before after
  before="$(page_session_id)"
  fetch "$base/login" --data-urlencode 'name=Bob'
  fetch "$base/"
  after="$(page_session_id)"
  signed_in_as Bob 1 && [ -n "$before" ] && [ -n "$after" ] && [ "$before" != "$after" ]
  result $? "$l: signing in over a session (Ann, then Bob) gets a new session ID"

  fetch -X POST "$base/logout" --data ''
  [ "$STATUS" = 303 ] && header_has '^location: /$' && header_has '^set-cookie: session_id=;.*max-age=0' &&
    ! header_has '^x-session-' && ! grep -q $'\tsession_id\t' "$JAR"
  result $? "$l: POST /logout is a 303 that expires the session cookie"

  fetch "$base/"
  sign_in_form
  result $? "$l: after sign-out, GET / shows the sign-in form again"

  # Non-ASCII travels as ASCII JSON both ways (X-Session-Set: user="Jos\u00e9 \ud83d\ude00 <3",
  # X-Session-User: "Jos\u00e9 \ud83d\ude00 <3"); the page must escape what it shows.
  fetch "$base/login" --data-urlencode 'name=José 😀 <3'
  fetch "$base/"
  signed_in_as 'José 😀 &lt;3' 1
  result $? "$l: a non-ASCII, HTML-special name round-trips and is escaped in the page"
  fetch -X POST "$base/logout" --data ''

  # A printable-ASCII string reaches X-Session-User as it is, so `"Q"` there reads like the JSON
  # for Q; the apps read X-Session-Data, where it is exact.
  fetch "$base/login" --data-urlencode 'name="Q"'
  fetch "$base/"
  [ "$STATUS" = 200 ] && grep -qE 'id="user">(&quot;|&#34;)Q(&quot;|&#34;)</strong>' "$WORK/body"
  result $? "$l: a name in double quotes is shown as typed"
  fetch -X POST "$base/logout" --data ''

  # DEL is printable to JSON but not a legal header byte: sent raw, the response would be refused.
  fetch "$base/login" --data-urlencode $'name=Del\x7f'
  fetch "$base/"
  signed_in_as $'Del\x7f' 1
  result $? "$l: a name with a DEL character signs in (escaped as \\u007f in the header)"
  fetch -X POST "$base/logout" --data ''
}

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# sign_jwt KEY KID ISS AUD NBF EXP: an assertion for user Eve signed with the proxy's own key (as
# the proxy would, but with the claims given), to show the app checks iss, aud and exp too.
sign_jwt() {
  local head body
  head="$(printf '{"alg":"EdDSA","kid":"%s","typ":"JWT"}' "$2" | b64url)"
  body="$(printf '{"iss":"%s","aud":"%s","iat":%d,"nbf":%d,"exp":%d,"sid":"x","session":{"user":"Eve","visits":0}}' \
    "$3" "$4" "$5" "$5" "$6" | b64url)"
  printf '%s.%s' "$head" "$body" >"$WORK/signing-input" # pkeyutl signs Ed25519 from a file only
  printf '%s.%s.%s' "$head" "$body" \
    "$(openssl pkeyutl -sign -inkey "$1" -rawin -in "$WORK/signing-input" | b64url)"
}

# drive_assertion LANG APP_PORT: the checks with the assertion on, through the proxy at $PROXY_ADDR
# and straight to the app, as whatever else could reach it would.
drive_assertion() {
  local l="$1" base="http://$PROXY_ADDR" app="http://127.0.0.1:$2" token forged
  local spoof=(-H 'X-Session-User: admin' -H 'X-Session-Visits: 41'
    -H 'X-Session-Data: {"user":"admin","visits":41}' -H 'X-Session-Id: admin')
  JAR="$WORK/$l-jwt/jar"

  fetch "$base/login" --data-urlencode 'name=Ann'
  fetch "$base/"
  signed_in_as Ann 1 && body_has '<p id="assertion">assertion: verified</p>'
  result $? "$l (JWKS): after sign-in, GET / shows user Ann and \"assertion: verified\""

  fetch "$base/"
  signed_in_as Ann 2 && body_has 'assertion: verified'
  result $? "$l (JWKS): a reload counts visit 2 (the session claim follows X-Session-Set)"
  token="$(sed -n 's|.*<th>x-session-assertion</th><td>\([^<]*\)</td>.*|\1|p' "$WORK/body")"

  JAR=""
  fetch "$app/" "${spoof[@]}" -H 'X-Session-Assertion: garbage.not.ajwt'
  sign_in_form && ! body_has admin
  result $? "$l (JWKS): straight to the app, forged X-Session-Data/-User and a garbage assertion are anonymous"

  fetch "$app/" "${spoof[@]}"
  sign_in_form && ! body_has admin
  result $? "$l (JWKS): straight to the app, forged X-Session-Data/-User and no assertion are anonymous"

  # The real token's header and signature around claims that name admin: the signature must fail.
  forged="$(printf '{"iss":"session-proxy","aud":"%s","exp":%d,"nbf":0,"session":{"user":"admin","visits":41}}' \
    "$app" $(($(date +%s) + 60)) | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  fetch "$app/" "${spoof[@]}" -H "X-Session-Assertion: ${token%%.*}.$forged.${token##*.}"
  [ -n "$token" ] && sign_in_form && ! body_has admin
  result $? "$l (JWKS): straight to the app, a real signature over claims naming admin is anonymous"

  # The real token with forged plain headers: the app believes the token, not X-Session-Data.
  fetch "$app/" "${spoof[@]}" -H "X-Session-Assertion: $token"
  [ -n "$token" ] && signed_in_as Ann 2 && ! body_has 'id="user">admin'
  result $? "$l (JWKS): with a genuine assertion, the app takes the session from it, not X-Session-Data"

  # Tokens signed with the proxy's key: the control is accepted, so the other three are refused
  # for their claims alone (another app's aud, expired, another issuer).
  local key="$WORK/$l-jwt/assertion.pem" kid now bad=0
  now="$(date +%s)"
  kid="$(curl -sS --max-time 10 "$base/.well-known/session-proxy/jwks.json" |
    grep -o '"kid":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
  fetch "$app/" -H "X-Session-Assertion: $(sign_jwt "$key" "$kid" session-proxy "$app" "$now" $((now + 60)))"
  [ -n "$kid" ] && signed_in_as Eve 1 && body_has 'assertion: verified'
  result $? "$l (JWKS): straight to the app, a token signed with the proxy's key is accepted (control)"

  fetch "$app/" -H "X-Session-Assertion: $(sign_jwt "$key" "$kid" session-proxy http://127.0.0.1:1 "$now" $((now + 60)))"
  sign_in_form || bad=1
  fetch "$app/" -H "X-Session-Assertion: $(sign_jwt "$key" "$kid" session-proxy "$app" $((now - 70)) $((now - 10)))"
  sign_in_form || bad=1
  fetch "$app/" -H "X-Session-Assertion: $(sign_jwt "$key" "$kid" someone-else "$app" "$now" $((now + 60)))"
  sign_in_form || bad=1
  result $bad "$l (JWKS): the proxy's signature with another aud, an expired exp or another iss is anonymous"
}

run_lang() {
  local l="$1" dir="$WORK/$1" port start=$SECONDS
  mkdir -p "$dir"
  rm -f "$WORK/headers"
  if ! "install_$l"; then
    result 1 "$l: install (and build) the app"
    return
  fi
  port="$(free_port)" || { result 1 "$l: find a free port"; return; }
  "start_$l" "$port" "$dir/app.log"
  PIDS+=("$!")
  if ! wait_port "$!" "$port" "$dir/app.log"; then
    result 1 "$l: the app starts on port $port"
    stop_all
    return
  fi
  if ! start_proxy "$port" "$dir"; then
    result 1 "$l: the proxy starts in front of the app"
    stop_all
    return
  fi
  log "$l: app on 127.0.0.1:$port, proxy on $PROXY_ADDR"
  drive "$l"
  stop_all

  # Again with the assertion on. The proxy starts first (its port is the JWKS URL the app needs);
  # the app fetches the JWKS on its first verification.
  mkdir -p "$WORK/$l-jwt"
  rm -f "$WORK/headers"
  port="$(free_port)" || { result 1 "$l: find a free port"; return; }
  if ! start_proxy "$port" "$WORK/$l-jwt" assertion; then
    result 1 "$l (JWKS): the proxy starts with an assertion key"
    stop_all
    return
  fi
  SESSION_PROXY_JWKS="http://$PROXY_ADDR/.well-known/session-proxy/jwks.json" \
    SESSION_PROXY_AUDIENCE="http://127.0.0.1:$port" "start_$l" "$port" "$WORK/$l-jwt/app.log"
  PIDS+=("$!")
  if ! wait_port "$!" "$port" "$WORK/$l-jwt/app.log"; then
    result 1 "$l (JWKS): the app starts on port $port with SESSION_PROXY_JWKS"
    stop_all
    return
  fi
  log "$l (JWKS): app on 127.0.0.1:$port, proxy on $PROXY_ADDR"
  drive_assertion "$l" "$port"
  stop_all
  log "$l: $((SECONDS - start)) s"
}

# `--example demo` only to share builds: with an example (or a test) in the build, cargo unifies
# the dev-dependencies' features, as `cargo test` and tests/browser do, so this reuses their
# artifacts. `--bin session-proxy` alone resolves features without them and, after `cargo test`,
# recompiles some twenty crates (hyper, serde, ...) into a second binary that behaves the same.
log "building the proxy"
if ! (cd "$ROOT" && cargo build --bin session-proxy --example demo) >&2; then
  echo "run.sh: cargo build --bin session-proxy --example demo failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

LANGS=("$@")
[ "${#LANGS[@]}" -gt 0 ] || LANGS=(python node go)
for l in "${LANGS[@]}"; do
  case "$l" in
    python | node | go) run_lang "$l" ;;
    *) result 1 "unknown language $l (python, node, go)" ;;
  esac
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
