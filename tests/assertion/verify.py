#!/usr/bin/env python3
"""The proxy's signed session assertion, verified by independent implementations.

Starts a small app (in this process) and the real session-proxy binary in front of it with an
`assertion` block, then checks every token the app receives with Python's PyJWT (JWKS fetched from
the proxy's public path) and Node's jose (verify.mjs). Run through run.sh, which installs both.

    python3 verify.py --bin target/debug/session-proxy

Prints one line per check and `N passed, N failed` last; exits non-zero on any failure. Stops the
proxy it started (by its PID) whatever happens.
"""

import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "assertion-test-secret-0123456789abcdefghijklmnop"
JWKS_PATH = "/.well-known/session-proxy/jwks.json"
# Long enough that the first token outlives the checks up to the rotation on a slow machine; the
# expiry check reloads with SHORT_TTL.
TTL = 30
SHORT_TTL = 5


class App(http.server.BaseHTTPRequestHandler):
    """`/login` starts a session (with a non-ASCII value), `/set/<k>/<v>` sets one key; anything
    else answers with what the app was handed, as JSON."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        headers = []
        if parts == ["login"]:
            headers = [("X-Session-Set", "user=Ann"), ("X-Session-Set", "role=admin"),
                       ("X-Session-Set", 'name="Jos\\u00e9"')]
        elif len(parts) == 3 and parts[0] == "set":
            headers = [("X-Session-Set", f"{parts[1]}={parts[2]}")]
        seen = {
            "assertions": self.headers.get_all("X-Session-Assertion") or [],
            "data": self.headers.get("X-Session-Data"),
            "id": self.headers.get("X-Session-Id"),
        }
        body = json.dumps(seen).encode()
        self.send_response(200)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Proxy:
    """The real binary with a config file we can rewrite and SIGHUP."""

    def __init__(self, binary, workdir, upstream, assertion):
        self.binary, self.workdir, self.upstream = binary, workdir, upstream
        self.config = os.path.join(workdir, "proxy.yaml")
        self.write(assertion)
        self.lines = []
        self.proc = subprocess.Popen(
            [binary, "--config", self.config, "--log-format", "json", "serve"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": "info"}, text=True)
        self.addr = None
        threading.Thread(target=self._read_logs, daemon=True).start()
        deadline = time.time() + 20
        while self.addr is None:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("proxy did not start:\n" + "\n".join(self.lines))
            time.sleep(0.02)

    def _read_logs(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            fields = entry.get("fields", entry)
            if fields.get("message") == "listening" and self.addr is None:
                host, port = fields["addr"].rsplit(":", 1)
                self.addr = (host, int(port))

    def write(self, assertion):
        block = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in assertion.items())
        with open(self.config, "w") as f:
            f.write("listen: 127.0.0.1:0\n"
                    f"upstream:\n  url: {self.upstream}\n"
                    f"sessions:\n  driver: memory\n  secret: \"{SECRET}\"\n  secure: false\n"
                    f"limits:\n  workers: 1\n  shutdown_grace: 2s\n"
                    f"assertion:\n{block}")

    def reload(self, assertion):
        before = sum("configuration reloaded" in l for l in self.lines)
        self.write(assertion)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while sum("configuration reloaded" in l for l in self.lines) == before:
            if time.time() > deadline:
                raise RuntimeError("no reload:\n" + "\n".join(self.lines[-5:]))
            time.sleep(0.02)

    def get(self, path, headers=None):
        conn = http.client.HTTPConnection(*self.addr, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            res = conn.getresponse()
            return res.status, res.headers, res.read()
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def origin(self):
        return f"http://{self.addr[0]}:{self.addr[1]}"


def cookie_of(headers):
    for line in headers.get_all("Set-Cookie") or []:
        name, _, rest = line.partition("=")
        if name == "session_id":
            return rest.split(";", 1)[0]
    return None


def verify_py(token, jwks_url, audience, data=None):
    """PyJWT: the five lines of docs/assertion.md, plus the data comparison."""
    client = jwt.PyJWKClient(jwks_url, cache_jwk_set=False, cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], audience=audience,
                        issuer="session-proxy", leeway=0,
                        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sid", "session"]})
    if data is not None and claims["session"] != data:
        raise AssertionError(f"session claim {claims['session']} != X-Session-Data {data}")
    return claims


def verify_node(token, jwks_url, audience, data=None):
    payload = {"token": token, "jwks_url": jwks_url, "issuer": "session-proxy",
               "audience": audience}
    if data is not None:
        payload["data"] = data
    out = subprocess.run(["node", os.path.join(HERE, "verify.mjs")], input=json.dumps(payload),
                         capture_output=True, text=True, timeout=30, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"node failed: {out.stderr}")
    result = json.loads(out.stdout)
    if not result["ok"]:
        raise AssertionError(result["error"])
    return result["claims"]


def fails(fn, *args, expect=""):
    """The verifier refuses the token; returns its error text."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - any refusal is what we want; its text is checked
        text = f"{type(e).__name__}: {e}"
        if expect.lower() not in text.lower():
            raise AssertionError(f"refused, but not for {expect!r}: {text}")
        return text
    raise AssertionError("the token was accepted")


def handle(session_id):
    return base64.urlsafe_b64encode(hashlib.sha256(session_id.encode()).digest()).rstrip(b"=").decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    args = parser.parse_args()

    results = []

    def check(name, fn):
        try:
            fn()
            results.append(True)
            print(f"ok - {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on with the next check
            results.append(False)
            print(f"FAIL - {name}: {type(e).__name__}: {e}", flush=True)

    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{app.server_address[1]}"
    work = tempfile.mkdtemp(prefix="assertion-")
    k1 = os.path.join(work, "k1.pem")
    subprocess.run([args.bin, "keygen", "--assertion", "--out", k1], check=True)
    # The old key's public half, as an operator gets it after a rotation (any tool works).
    k1_pub = os.path.join(work, "k1.pub.pem")
    with open(k1, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    with open(k1_pub, "wb") as f:
        f.write(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    # The next key: ECDSA P-256, so both algorithms meet both verifiers.
    k2 = os.path.join(work, "k2.pem")
    with open(k2, "wb") as f:
        f.write(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    proxy = Proxy(args.bin, work, upstream, {"key": k1, "ttl": f"{TTL}s"})
    try:
        jwks_url = proxy.origin + JWKS_PATH
        state = {}

        def login():
            _, headers, _ = proxy.get("/login")
            state["cookie"] = cookie_of(headers)
            assert state["cookie"], "no session cookie"
            status, _, body = proxy.get("/", {"Cookie": f"session_id={state['cookie']}"})
            seen = json.loads(body)
            assert status == 200 and len(seen["assertions"]) == 1, seen
            state["token"] = seen["assertions"][0]
            state["data"] = json.loads(seen["data"])
            assert state["data"] == {"user": "Ann", "role": "admin", "name": "Jos\u00e9"}, seen

        check("a request with a session carries one assertion", login)

        def no_session():
            _, _, body = proxy.get("/")
            assert json.loads(body)["assertions"] == []

        check("a request without a session carries none", no_session)

        def python_verifies():
            claims = verify_py(state["token"], jwks_url, upstream, state["data"])
            assert claims["sid"] == handle(state["cookie"]), claims
            assert claims["exp"] == claims["iat"] + TTL and claims["nbf"] == claims["iat"], claims
            assert jwt.get_unverified_header(state["token"])["alg"] == "EdDSA"

        check("PyJWT verifies signature, iss, aud, exp; session equals X-Session-Data",
              python_verifies)

        def node_verifies():
            claims = verify_node(state["token"], jwks_url, upstream, state["data"])
            assert claims["sid"] == handle(state["cookie"]), claims

        check("jose verifies signature, iss, aud, exp; session equals X-Session-Data",
              node_verifies)

        def jwks_headers():
            status, headers, _ = proxy.get(JWKS_PATH)
            assert status == 200 and headers["Cache-Control"] == "max-age=300", headers

        check("the JWKS is served on the public path with Cache-Control: max-age=300",
              jwks_headers)

        def spoofed():
            forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
            for name in ["X-Session-Assertion", "x_session_assertion", "X-SESSION-ASSERTION"]:
                _, _, body = proxy.get("/", {name: forged})
                assert json.loads(body)["assertions"] == [], name
                _, _, body = proxy.get("/", {name: forged,
                                             "Cookie": f"session_id={state['cookie']}"})
                got = json.loads(body)["assertions"]
                assert len(got) == 1 and got[0] != forged, (name, got)
                verify_py(got[0], jwks_url, upstream)

        check("a client-sent X-Session-Assertion never reaches the app", spoofed)

        def tampered():
            head, payload, sig = state["token"].split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            claims["session"]["role"] = "root"
            forged_payload = base64.urlsafe_b64encode(
                json.dumps(claims).encode()).rstrip(b"=").decode()
            forged = f"{head}.{forged_payload}.{sig}"
            fails(verify_py, forged, jwks_url, upstream, expect="signature")
            fails(verify_node, forged, jwks_url, upstream, expect="signature")
            fails(verify_py, state["token"], jwks_url, "http://other.example", expect="audience")
            fails(verify_node, state["token"], jwks_url, "http://other.example", expect="aud")

        check("a tampered token or a wrong audience fails in both", tampered)

        def rotation():
            proxy.reload({"key": k2, "ttl": f"{TTL}s", "previous_keys": [k1_pub]})
            status, _, body = proxy.get("/", {"Cookie": f"session_id={state['cookie']}"})
            new = json.loads(body)["assertions"][0]
            assert jwt.get_unverified_header(new)["alg"] == "ES256"
            verify_py(new, jwks_url, upstream, state["data"])
            verify_node(new, jwks_url, upstream, state["data"])
            # Within the rotation window the old key's token still verifies...
            verify_py(state["token"], jwks_url, upstream)
            verify_node(state["token"], jwks_url, upstream)
            # ...and once the old key is dropped, it does not.
            proxy.reload({"key": k2, "ttl": f"{TTL}s"})
            fails(verify_py, state["token"], jwks_url, upstream, expect="unable to find")
            fails(verify_node, state["token"], jwks_url, upstream, expect="NO_MATCHING_KEY")
            verify_py(new, jwks_url, upstream)

        check("SIGHUP rotation: the previous key verifies until it is removed, then fails",
              rotation)

        def expiry():
            # A reload builds a new signer with an empty cache: the next token is fresh.
            proxy.reload({"key": k2, "ttl": f"{SHORT_TTL}s"})
            _, _, body = proxy.get("/", {"Cookie": f"session_id={state['cookie']}"})
            token = json.loads(body)["assertions"][0]
            claims = verify_py(token, jwks_url, upstream)
            assert claims["exp"] == claims["iat"] + SHORT_TTL, claims
            verify_node(token, jwks_url, upstream)
            wait = claims["exp"] + 1.2 - time.time()
            if wait > 0:
                time.sleep(wait)
            fails(verify_py, token, jwks_url, upstream, expect="expired")
            fails(verify_node, token, jwks_url, upstream, expect="EXPIRED")

        check("exp is honoured by both", expiry)
    finally:
        proxy.stop()
        app.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
