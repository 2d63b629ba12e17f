#!/usr/bin/env python3
"""Tries the deployment kits in deploy/ as far as this machine can (no container engine, no
systemd as PID 1, no cluster): each kit is judged by its tool, and what can run, runs.

- systemd: `systemd-analyze verify` (must print nothing) and `systemd-analyze security
  --offline` (exposure at most SECURITY_THRESHOLD) on the units installed into a scratch root
  laid out as on a real host (/etc/systemd/system, /usr/local/bin/session-proxy).
- Kubernetes: `kubernetes-validate --strict` against the Kubernetes OpenAPI schemas (1.30 and the
  package's newest), then what a schema cannot see: the probes are /livez and /readyz on the admin
  port, the ConfigMap's proxy.yaml passes `session-proxy check`, the drain fits in
  terminationGracePeriodSeconds, non-root with a read-only root file system, 2 replicas, the
  CronJob runs `cleanup`.
- Compose: `docker-compose config` validates the file; then the stack runs without an engine:
  redis-server, deploy/compose/app.py and the proxy with the proxy service's environment and
  entrypoint (service names read as loopback ports), and a login / visit / logout goes through
  it, the session landing in Redis; the service's healthcheck command exits 0.

Needs: cargo (builds the debug binary), systemd-analyze, redis-server; installs
kubernetes-validate (pip) and docker-compose (apt) when missing. About 30 s once built.
Run from the repository root: `tests/deploy.py`.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:  # a fresh machine: kubernetes-validate (needed below anyway) brings PyYAML
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "kubernetes-validate"], check=True)
    import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(REPO, "deploy")
# `--threshold` counts tenths of the 0-10 exposure scale: 20 means "2.0 or better". The units
# score 1.6 (service) and 1.2 (cleanup) today; see docs/operations.md for what is left open.
SECURITY_THRESHOLD = "20"
SECRET = "deploy-test-secret-0123456789abcdefghijklmnop"
failures = []


def log(msg):
    print(f"[deploy] {msg}", flush=True)


def check(ok, what):
    log(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def binary():
    out = run(["cargo", "build", "--quiet", "--bin", "session-proxy"], cwd=REPO)
    if out.returncode != 0:
        sys.exit(f"cargo build failed:\n{out.stderr}")
    return os.path.join(REPO, "target", "debug", "session-proxy")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, within=10):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------- systemd


def systemd(proxy):
    units = sorted(os.listdir(os.path.join(DEPLOY, "systemd")))
    with tempfile.TemporaryDirectory() as root:
        for d in ("etc/systemd/system", "usr/local/bin", "usr/lib/systemd", "bin"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copytree("/usr/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                        symlinks=True)
        shutil.copy(proxy, os.path.join(root, "usr/local/bin/session-proxy"))
        shutil.copy(shutil.which("kill"), os.path.join(root, "bin/kill"))
        for unit in units:
            shutil.copy(os.path.join(DEPLOY, "systemd", unit), os.path.join(root, "etc/systemd/system"))
        out = run(["systemd-analyze", "verify", f"--root={root}", *units])
        said = (out.stdout + out.stderr).strip()
        check(out.returncode == 0 and not said, f"systemd-analyze verify {' '.join(units)}" + (f": {said}" if said else ""))
        for unit in (u for u in units if u.endswith(".service")):
            out = run(["systemd-analyze", "security", "--offline=true", f"--root={root}",
                       f"--threshold={SECURITY_THRESHOLD}", "--no-pager", unit])
            verdict = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()
            check(out.returncode == 0, f"systemd-analyze security {unit}: {verdict} (threshold {int(SECURITY_THRESHOLD) / 10})")
    service = open(os.path.join(DEPLOY, "systemd", "session-proxy.service")).read()
    for line in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ExecReload=/bin/kill -HUP $MAINPID"):
        check(re.search(rf"^{re.escape(line)}$", service, re.M) is not None, f"session-proxy.service has {line}")


# ---------------------------------------------------------------- Kubernetes


def kubernetes(proxy):
    if shutil.which("kubernetes-validate") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "kubernetes-validate"], check=True)
    files = sorted(os.path.join(DEPLOY, "kubernetes", f) for f in os.listdir(os.path.join(DEPLOY, "kubernetes")))
    for version in ("1.30.0", None):
        cmd = ["kubernetes-validate", "--strict", "--quiet"] + (["-k", version] if version else []) + files
        out = run(cmd)
        check(out.returncode == 0, f"kubernetes-validate --strict{' -k ' + version if version else ''}: "
              + ((out.stdout + out.stderr).strip() or f"{len(files)} files valid"))
    docs = {}
    for f in files:
        for doc in yaml.safe_load_all(open(f)):
            docs[doc["kind"]] = doc
    deployment, configmap = docs["Deployment"], docs["ConfigMap"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    proxy_yaml = yaml.safe_load(configmap["data"]["proxy.yaml"])
    check(deployment["spec"]["replicas"] == 2, "Deployment: 2 replicas")
    check(container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "admin"}, "liveness probe: /livez on the admin port")
    check(container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}, "readiness probe: /readyz on the admin port")
    check(ports["admin"] == int(proxy_yaml["admin_listen"].rsplit(":", 1)[1])
          and ports["http"] == int(proxy_yaml["listen"].rsplit(":", 1)[1]), "container ports match listen and admin_listen")
    check(container["readinessProbe"]["timeoutSeconds"] > 2, "readiness timeout exceeds /readyz's own 2s bound")
    grace = int(proxy_yaml["limits"]["shutdown_grace"].rstrip("s"))
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    check(pod["terminationGracePeriodSeconds"] > sleep + grace,
          f"drain fits: preStop {sleep}s + shutdown_grace {grace}s < terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']}s")
    for name, spec in (("Deployment", pod), ("CronJob", docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"])):
        c = spec["containers"][0]
        check(spec["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
              and not c["securityContext"]["allowPrivilegeEscalation"], f"{name}: non-root, read-only root FS, no privilege escalation")
        env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") for e in c["env"]}
        check(env.get("SESSION_SECRET") == docs["Secret"]["metadata"]["name"], f"{name}: SESSION_SECRET from the Secret")
        check(env.get("SESSION_PROXY_ADMIN_TOKEN") == docs["Secret"]["metadata"]["name"],
              f"{name}: SESSION_PROXY_ADMIN_TOKEN from the Secret (admin_listen is off loopback)")
    check(docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["cleanup"], "CronJob runs cleanup")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(configmap["data"]["proxy.yaml"])
        f.flush()
        env = {**os.environ, "SESSION_SECRET": SECRET, "REDIS_URL": "redis://127.0.0.1:1/0",
               "SESSION_PROXY_ADMIN_TOKEN": SECRET}
        out = run([proxy, "--config", f.name, "check"], env=env)
        check(out.returncode == 0, "the ConfigMap's proxy.yaml passes session-proxy check" + ("" if out.returncode == 0 else f": {out.stderr}"))
        out = run([proxy, "--config", f.name, "check"], env={**env, "SESSION_SECRET": docs["Secret"]["stringData"]["SESSION_SECRET"]})
        check(out.returncode != 0 and "at least 32 bytes" in out.stderr, "the Secret's placeholder is refused (a forgotten secret stops the pod)")


# ---------------------------------------------------------------- Compose


def compose(proxy):
    if shutil.which("docker-compose") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    out = run(["docker-compose", "-f", os.path.join(DEPLOY, "compose.yaml"), "config"])
    check(out.returncode == 0, "docker-compose config" + ("" if out.returncode == 0 else f": {out.stderr}"))
    if out.returncode != 0:
        return
    services = yaml.safe_load(out.stdout)["services"]
    check(set(services) == {"proxy", "redis", "app"}, f"services: {sorted(services)}")
    ports = {"redis": free_port(), "app": free_port()}
    listen, admin = free_port(), free_port()
    def local(value):
        # Service names resolve to their containers under compose; here, to loopback ports.
        for name, port in ports.items():
            value = re.sub(rf"//{name}:\d+", f"//127.0.0.1:{port}", value)
        return value
    procs = []
    try:
        data = tempfile.mkdtemp()
        procs.append(subprocess.Popen(["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", data],
                                      stdout=subprocess.DEVNULL))
        app_cmd = services["app"]["command"]
        app_file = next(v.split(":")[0] for v in services["app"]["volumes"] if v.split(":")[1] == app_cmd[1])
        procs.append(subprocess.Popen([sys.executable, app_file],
                                      env={**os.environ, "PORT": str(ports["app"])}, stderr=subprocess.DEVNULL))
        p = services["proxy"]
        env = {k: local(str(v)) for k, v in p["environment"].items()}
        env.update({
            "PATH": f"{os.path.dirname(proxy)}:{os.environ['PATH']}",
            # The image's ENV and the addresses the host has free (the image listens on 8080/9901).
            "SESSION_PROXY_CONFIG": os.path.join(REPO, "docker", "proxy.yaml"),
            "SESSION_PROXY_LISTEN": f"127.0.0.1:{listen}",
            "SESSION_PROXY_ADMIN_LISTEN": f"127.0.0.1:{admin}",
            "SESSION_SECRET": "",
            "RUST_LOG": "warn",
        })
        entrypoint = [a.replace("$$", "$") for a in p["entrypoint"]]
        procs.append(subprocess.Popen(entrypoint, env=env))
        check(wait_port(ports["redis"]) and wait_port(ports["app"]) and wait_port(listen) and wait_port(admin),
              "redis, app and proxy (entrypoint with no SESSION_SECRET: one is made) are up")
        test = [a.replace("9901", str(admin)) for a in p["healthcheck"]["test"][1:]]
        health = run(test, env=env)
        check(health.returncode == 0, f"the proxy service's healthcheck {' '.join(p['healthcheck']['test'][1:])}: exit {health.returncode} ({health.stdout.strip()}{health.stderr.strip()})")

        def request(method, path, body=None, cookie=None):
            conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            if cookie:
                headers["Cookie"] = cookie
            conn.request(method, path, body=body, headers=headers)
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read().decode()

        status, _, body = request("GET", "/")
        check(status == 200 and "log in" in body, "GET / without a session: the login form")
        status, headers, _ = request("POST", "/login", body="name=Ann")
        cookie = headers.get("set-cookie", "").split(";")[0]
        check(status == 303 and cookie.startswith("session_id="), f"POST /login: 303 with {cookie[:20]}...")
        status, _, body = request("GET", "/", cookie=cookie)
        check(status == 200 and "hello Ann, visit 1" in body, "GET / with the cookie: the app sees user Ann, visit 1")
        keys = run(["redis-cli", "-p", str(ports["redis"]), "--scan", "--pattern", "session:*"]).stdout.split()
        check(len(keys) == 1, f"the session is in Redis ({len(keys)} key)")
        status, headers, _ = request("POST", "/logout", cookie=cookie)
        keys = run(["redis-cli", "-p", str(ports["redis"]), "--scan", "--pattern", "session:*"]).stdout.split()
        check(status == 303 and "Max-Age=0" in headers.get("set-cookie", "") and not keys,
              "POST /logout: cookie expired, session gone from Redis")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    proxy = binary()
    started = time.monotonic()
    systemd(proxy)
    kubernetes(proxy)
    compose(proxy)
    log(f"{'FAILED' if failures else 'passed'} in {time.monotonic() - started:.0f}s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
