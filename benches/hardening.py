#!/usr/bin/env python3
"""Faults-under-load and soak runs for session-proxy (driven by benches/faults.sh, benches/soak.sh).

  hardening.py faults  BIN   # load + kill/restart upstream, redis; SIGHUP, SIGTERM the proxy
  hardening.py soak    BIN   # steady rate, sessions created/changed/destroyed, RSS/fd samples
  hardening.py upstream PORT # the app behind the proxy (used by the two above)

Loopback only, free ports, every process started is stopped by PID. Prints a Markdown summary and
exits non-zero when a bound is broken (an acknowledged session write lost, a fault not recovered,
RSS/fd growth after warm-up).
"""
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "hardening-secret-0123456789abcdefghijklmnopqrstuvwxyz"
COOKIE = "session_id"


# ---------------------------------------------------------------------------------------- upstream
class App(http.server.BaseHTTPRequestHandler):
    """/set/<k>/<v> sets a key, /clear logs out, anything else answers with X-Session-Data."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        body = b"ok"
        headers = []
        if len(parts) == 3 and parts[0] == "set":
            headers.append(("X-Session-Set", f"{parts[1]}={parts[2]}"))
        elif parts == ["clear"]:
            headers.append(("X-Session-Clear", "1"))
        else:
            body = (self.headers.get("X-Session-Data") or "-").encode()
        self.send_response(200)
        for n, v in headers:
            self.send_header(n, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_upstream(port):
    http.server.ThreadingHTTPServer.daemon_threads = True
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), App)
    srv.serve_forever()


# --------------------------------------------------------------------------------------- processes
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, within=10.0):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Procs:
    """Every child process, stopped by PID at exit."""

    def __init__(self):
        self.children = {}
        self.work = tempfile.mkdtemp(prefix="sp-hardening-")

    def start(self, name, argv, port, env=None, log=None):
        out = open(os.path.join(self.work, f"{name}.log"), "ab") if log is None else log
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                             stdin=subprocess.DEVNULL)
        self.children[name] = p
        if port and not wait_port(port):
            raise SystemExit(f"{name} did not open port {port}")
        return p

    def signal(self, name, sig):
        p = self.children.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)

    def kill(self, name):
        p = self.children.pop(name, None)
        if p and p.poll() is None:
            p.kill()
            p.wait()

    def stop_all(self):
        for name in list(self.children):
            self.kill(name)
        if not os.environ.get("KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)


def proxy_config(work, listen_port, up_port, driver, redis_port=None):
    path = os.path.join(work, "proxy.yaml")
    lines = [
        f"listen: 127.0.0.1:{listen_port}",
        "upstream:",
        f"  url: http://127.0.0.1:{up_port}",
        "  connect_timeout: 1s",
        "  timeout: 5s",
        "sessions:",
        f"  driver: {driver}",
        f'  secret: "{SECRET}"',
        "  secure: false",
        "  max_age: 1h",
        "limits:",
        "  shutdown_grace: 5s",
        "  header_read_timeout: 10s",
    ]
    if redis_port:
        lines += ["redis:", f"  url: redis://127.0.0.1:{redis_port}/0", "  timeout: 500ms"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def proxy_env():
    env = dict(os.environ)
    env["RUST_LOG"] = "info,access=off"
    env.pop("SESSION_PROXY_CONFIG", None)
    return env


# ------------------------------------------------------------------------------------------- load
class Load:
    """Worker threads, each owning one session at a time: reads and writes (and, for the soak,
    logouts). Every request is recorded as (start, end, status); every acknowledged write (2xx
    with a Set-Cookie carrying a value, after an X-Session-Set) as (cookie, key, n)."""

    def __init__(self, port, workers, rate=None, destroy_every=0):
        self.port = port
        self.workers = workers
        self.rate = rate  # total requests/s, None = as fast as possible
        self.destroy_every = destroy_every
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.acked = {}  # (cookie, key) -> highest acknowledged n
        self.acked_count = 0
        self.lost_sessions = 0
        self.threads = []

    def run(self):
        for w in range(self.workers):
            t = threading.Thread(target=self.worker, args=(w,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def worker(self, w):
        conn = None
        cookie = None
        n = 0
        interval = self.workers / self.rate if self.rate else 0
        next_at = time.time()
        while not self.stop.is_set():
            if interval:
                next_at += interval
                delay = next_at - time.time()
                if delay > 0:
                    time.sleep(delay)
            n += 1
            if self.destroy_every and cookie and n % self.destroy_every == 0:
                path, kind = "/clear", "clear"
            elif n % 2 == 0 or cookie is None:
                path, kind = f"/set/k{n % 20}/{n}", "write"
            else:
                path, kind = "/who", "read"
            headers = {"Host": "app.test"}
            if cookie:
                headers["Cookie"] = f"{COOKIE}={cookie}"
            start = time.time()
            status = "conn-error"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
                conn.request("GET", path, headers=headers)
                res = conn.getresponse()
                body = res.read()
                status = res.status
                set_cookie = None
                for name, value in res.getheaders():
                    if name.lower() == "set-cookie" and value.startswith(COOKIE + "="):
                        set_cookie = value.split(";", 1)[0].split("=", 1)[1]
                if res.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                if 200 <= status < 300:
                    if kind == "write" and set_cookie:
                        cookie = set_cookie
                        key = (cookie, f"k{n % 20}")
                        with self.lock:
                            self.acked_count += 1
                            self.acked[key] = max(self.acked.get(key, 0), n)
                    elif kind == "clear":
                        cookie = None
                    elif kind == "read" and cookie and body == b"-":
                        with self.lock:
                            self.lost_sessions += 1
                        cookie = None
                    if set_cookie == "":
                        cookie = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            with self.lock:
                self.records.append((start, time.time(), status))

    def verify(self):
        """Reads every session back; returns (checked, lost)."""
        by_cookie = {}
        for (cookie, key), n in self.acked.items():
            by_cookie.setdefault(cookie, {})[key] = n
        checked = lost = 0
        for cookie, keys in by_cookie.items():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/who", headers={"Host": "app.test",
                                                 "Cookie": f"{COOKIE}={cookie}"})
            res = conn.getresponse()
            body = res.read()
            conn.close()
            data = json.loads(body) if res.status == 200 and body != b"-" else {}
            for key, n in keys.items():
                checked += 1
                # A later, unacknowledged write may have landed too: >= is correct, < is a loss.
                if not isinstance(data.get(key), int) or data[key] < n:
                    lost += 1
        return checked, lost


def summarize(records, since, until):
    rows = [r for r in records if since <= r[0] < until]
    ok = sum(1 for r in rows if isinstance(r[2], int) and 200 <= r[2] < 300)
    errors = {}
    for r in rows:
        if not (isinstance(r[2], int) and 200 <= r[2] < 300):
            errors[str(r[2])] = errors.get(str(r[2]), 0) + 1
    return ok, errors


def recovery(records, since):
    """Seconds from `since` to the end of the first 2xx of a request started after it."""
    ends = [r[1] for r in records if r[0] >= since and isinstance(r[2], int) and 200 <= r[2] < 300]
    return (min(ends) - since) if ends else None


# ------------------------------------------------------------------------------------------ faults
def faults(binary):
    ci = os.environ.get("FAULTS_CI", "1") == "1"
    settle = 4.0 if ci else 10.0
    down = 2.0 if ci else 5.0
    workers = int(os.environ.get("FAULTS_WORKERS", "4"))
    procs = Procs()
    failed = []
    try:
        up_port, redis_port, proxy_port = free_port(), free_port(), free_port()
        redis_dir = os.path.join(procs.work, "redis")
        os.makedirs(redis_dir)
        redis_argv = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                      "--dir", redis_dir]
        up_argv = [sys.executable, os.path.abspath(__file__), "upstream", str(up_port)]
        config = proxy_config(procs.work, proxy_port, up_port, "redis", redis_port)
        proxy_argv = [binary, "--config", config, "--log-format", "json", "serve"]
        procs.start("redis", redis_argv, redis_port)
        procs.start("upstream", up_argv, up_port)
        procs.start("proxy", proxy_argv, proxy_port, env=proxy_env())

        load = Load(proxy_port, workers)
        t0 = time.time()
        load.run()
        time.sleep(settle)
        timeline = []

        def window(name, inject, restore):
            t_fault = time.time()
            inject()
            t_restore = time.time()
            if restore:
                time.sleep(down)
                t_restore = time.time()
                restore()
            time.sleep(settle)
            timeline.append((name, t_fault, t_restore, time.time()))

        window("upstream killed (SIGKILL), restarted",
               lambda: procs.kill("upstream"),
               lambda: procs.start("upstream", up_argv, up_port))
        window("redis killed (SIGKILL), restarted (AOF, fsync always)",
               lambda: procs.kill("redis"),
               lambda: procs.start("redis", redis_argv, redis_port))
        window("proxy SIGHUP (reload)",
               lambda: procs.signal("proxy", signal.SIGHUP), None)

        def term():
            procs.signal("proxy", signal.SIGTERM)
            p = procs.children["proxy"]
            try:
                code = p.wait(15)
            except subprocess.TimeoutExpired:
                code = "timeout"
            if code != 0:
                failed.append(f"proxy exited {code} after SIGTERM")
            procs.children.pop("proxy", None)

        window("proxy SIGTERM, restarted", term,
               lambda: procs.start("proxy", proxy_argv, proxy_port, env=proxy_env()))
        load.finish()
        t_end = time.time()
        checked, lost = load.verify()

        ok, errors = summarize(load.records, t0, t_end)
        print("\n## Faults under load\n")
        print(f"{workers} load workers on loopback, redis store (appendonly yes, appendfsync always); "
              f"{down:.0f} s down per kill, {settle:.0f} s settle after each fault.\n")
        print(f"- requests: {len(load.records)}, answered 2xx: {ok}, "
              f"errors by status: {json.dumps(errors, sort_keys=True) or '{}'}")
        print(f"- acknowledged session writes: {load.acked_count}; latest value per session key "
              f"read back: {checked}; **lost: {lost}**")
        print(f"- sessions that vanished during the run (a read answered with no session): "
              f"{load.lost_sessions}\n")
        print("| fault | errors in window | 2xx in window | recovery (restore → first 2xx) |")
        print("|---|---|---|---|")
        for name, t_fault, t_restore, t_next in timeline:
            ok_w, err_w = summarize(load.records, t_fault, t_next)
            rec = recovery(load.records, t_restore)
            rec_s = f"{rec * 1000:.0f} ms" if rec is not None else "never"
            print(f"| {name} | {json.dumps(err_w, sort_keys=True)} | {ok_w} | {rec_s} |")
            if rec is None or rec > 5.0:
                failed.append(f"{name}: recovery {rec_s}")
        print()
        if lost:
            failed.append(f"{lost} acknowledged writes lost")
        if load.lost_sessions:
            failed.append(f"{load.lost_sessions} sessions vanished")
        if load.acked_count == 0:
            failed.append("no write was acknowledged")
    finally:
        procs.stop_all()
    for f in failed:
        print(f"FAIL: {f}")
    print("faults: " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


# -------------------------------------------------------------------------------------------- soak
def proc_sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def soak(binary):
    seconds = int(os.environ.get("SOAK_SECONDS", "1800"))
    rate = float(os.environ.get("SOAK_RATE", "200"))
    driver = os.environ.get("SOAK_STORE", "memory")
    rss_bound_kib = int(os.environ.get("SOAK_RSS_GROWTH_KIB", "10240"))
    fd_bound = int(os.environ.get("SOAK_FD_GROWTH", "16"))
    every = 60 if seconds >= 300 else 10
    warmup = max(every, seconds // 5)
    procs = Procs()
    failed = []
    try:
        up_port, proxy_port = free_port(), free_port()
        redis_port = None
        if driver == "redis":
            redis_port = free_port()
            procs.start("redis", ["redis-server", "--port", str(redis_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no",
                                  "--dir", procs.work], redis_port)
        procs.start("upstream", [sys.executable, os.path.abspath(__file__), "upstream",
                                 str(up_port)], up_port)
        config = proxy_config(procs.work, proxy_port, up_port, driver, redis_port)
        proxy = procs.start("proxy", [binary, "--config", config, "--log-format", "json",
                                      "serve"], proxy_port, env=proxy_env())
        load = Load(proxy_port, int(os.environ.get("SOAK_WORKERS", "8")), rate=rate,
                    destroy_every=25)
        t0 = time.time()
        load.run()
        samples = []
        while True:
            elapsed = time.time() - t0
            rss, fds = proc_sample(proxy.pid)
            with load.lock:
                done = len(load.records)
            samples.append((round(elapsed), rss, fds, done))
            if elapsed >= seconds:
                break
            time.sleep(min(every, max(0.0, seconds - elapsed)))
        load.finish()
        ok, errors = summarize(load.records, t0, time.time())

        print("\n## Soak\n")
        print(f"{seconds} s at {rate:.0f} req/s target, {driver} store, sessions created, changed "
              f"and destroyed (a logout every 25 requests per worker); a sample every {every} s; "
              f"warm-up {warmup} s.\n")
        print("| t (s) | VmRSS (KiB) | open fds | requests so far |")
        print("|---|---|---|---|")
        for t, rss, fds, done in samples:
            print(f"| {t} | {rss} | {fds} | {done} |")
        base = [s for s in samples if s[0] >= warmup]
        if base:
            rss0, fd0 = base[0][1], base[0][2]
            rss_max = max(s[1] for s in base)
            fd_max = max(s[2] for s in base)
            print(f"\nafter warm-up: RSS {rss0} → max {rss_max} KiB (bound +{rss_bound_kib} KiB), "
                  f"fds {fd0} → max {fd_max} (bound +{fd_bound})")
            if rss_max > rss0 + rss_bound_kib:
                failed.append(f"RSS grew {rss_max - rss0} KiB after warm-up")
            if fd_max > fd0 + fd_bound:
                failed.append(f"fds grew by {fd_max - fd0} after warm-up")
        print(f"requests: {len(load.records)}, 2xx: {ok}, errors: {json.dumps(errors)}; "
              f"achieved {len(load.records) / seconds:.0f} req/s\n")
        if errors:
            failed.append(f"errors during the soak: {errors}")
        if load.lost_sessions:
            failed.append(f"{load.lost_sessions} sessions vanished")
    finally:
        procs.stop_all()
    for f in failed:
        print(f"FAIL: {f}")
    print("soak: " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "upstream":
        serve_upstream(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] in ("faults", "soak"):
        sys.exit({"faults": faults, "soak": soak}[sys.argv[1]](sys.argv[2]))
    else:
        sys.exit(__doc__)
