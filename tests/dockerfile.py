#!/usr/bin/env python3
"""Builds the Dockerfile's image filesystem without a container engine, then runs the result.

No Docker daemon runs on the development machines or in CI, so `docker build` cannot exercise
the Dockerfile. This script performs the same steps into directories instead, so that a broken
COPY path, a .dockerignore that leaves out a needed file, a stub stage that no longer caches the
dependencies, a base image whose tag drifted from the toolchain the tests ran on, or a
HEALTHCHECK that cannot work, fails here:

1. the build context is the repository filtered by .dockerignore (the allow-list subset of its
   grammar: `*`, `!path`, `!dir/`; later lines win);
2. each stage runs its instructions: `FROM rust:<v>-...` is this machine's toolchain (the version
   must be <v>), RUN on the host in the stage's directory; `FROM debian:<v>-slim` is a Debian
   minbase root made by `debootstrap` (cached under target/dockerfile-test/base), RUN in a
   chroot; COPY keeps mtimes as Docker does; ENV, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD
   become the image config (written as config.json);
3. checks: the second cargo build of the build stage compiled only session-proxy (the dependency
   stage caches); in a chroot, as the image's USER with its ENV, ENTRYPOINT + CMD serve a real
   upstream, the HEALTHCHECK command exits 0, and 1 once the upstream is gone; SIGTERM exits 0.

Needs root (chroot), debootstrap (installed when missing), and network to the Debian mirror for
the first base and for the Dockerfile's apt-get. Time on this 2-core machine: about 11 minutes
from scratch (the release profile is fat LTO) plus 1.5 for the first debootstrap; 22 s with
`--keep --reuse` when the build stage's inputs are unchanged (docs/operations.md). Run: `sudo tests/dockerfile.py` from the repository
root; `--keep` leaves target/dockerfile-test/ for inspection, and with it `--reuse` skips the
build stage on the next run when its instructions and copied files are unchanged (Docker's layer
cache, per stage).
"""

import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "target", "dockerfile-test")
BASE_CACHE = os.path.join(WORK, "base")


def log(msg):
    print(f"[dockerfile] {msg}", flush=True)


def fail(msg):
    print(f"[dockerfile] FAIL: {msg}", flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- the build context


def ignore_rules():
    rules = []
    with open(os.path.join(REPO, ".dockerignore")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line.lstrip("!").strip("/")
            rules.append((keep, pattern))
    return rules


def matches(pattern, rel):
    return pattern == "*" or rel == pattern or rel.startswith(pattern + "/")


def excluded(rules, rel):
    out = False
    for keep, pattern in rules:
        if matches(pattern, rel):
            out = not keep
    return out


def make_context(dest):
    rules = ignore_rules()
    reincluded = [p for keep, p in rules if keep]
    for root, dirs, files in os.walk(REPO):
        rel_root = os.path.relpath(root, REPO)
        rel_root = "" if rel_root == "." else rel_root + "/"
        # Skip a directory only when no allow-rule reaches inside it (target/ is gigabytes).
        dirs[:] = [
            d
            for d in dirs
            if not excluded(rules, rel_root + d)
            or any(p.startswith(rel_root + d + "/") for p in reincluded)
        ]
        for name in files:
            rel = rel_root + name
            if excluded(rules, rel):
                continue
            os.makedirs(os.path.join(dest, rel_root), exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), os.path.join(dest, rel))
    files = sorted(
        os.path.relpath(os.path.join(r, f), dest) for r, _, fs in os.walk(dest) for f in fs
    )
    log(f"context: {len(files)} files ({', '.join(sorted({f.split('/')[0] for f in files}))})")
    return files


# ---------------------------------------------------------------- the Dockerfile


def instructions():
    lines, current = [], ""
    with open(os.path.join(REPO, "Dockerfile")) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                current += line[:-1] + " "
                continue
            current += line
            word, _, rest = current.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def substitute(text, args):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), ""), text)


def exec_form(rest):
    rest = rest.strip()
    return json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]


class Stage:
    def __init__(self, index, image, name, key):
        self.index, self.image, self.name = index, image, name
        self.root = os.path.join(WORK, "stages", str(index))
        self.workdir = "/"
        self.env = {}
        self.config = {"User": "", "ExposedPorts": [], "Volumes": [], "Env": {}}
        self.runs = []
        self.key_file = os.path.join(WORK, "stages", f"{index}.key")
        self.key, self.cached = key, False
        repo, _, tag = image.partition(":")
        if repo == "rust":
            version = tag.split("-")[0]
            have = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout
            if have.split()[1] != version:
                fail(f"FROM {image}: the Dockerfile pins Rust {version}, this machine (where the tests ran) has {have.strip()}")
            self.chroot = False
            # --reuse: like Docker's layer cache, a host-toolchain stage whose instructions and
            # copied files are unchanged is not built again (it is the 10-minute part).
            if "--reuse" in sys.argv and os.path.isdir(self.root):
                try:
                    with open(self.key_file) as f:
                        saved = json.load(f)
                    if saved["key"] == key:
                        self.runs, self.cached = [tuple(r) for r in saved["runs"]], True
                except (OSError, ValueError, KeyError):
                    pass
            if self.cached:
                log(f"stage {index} {name or ''}: FROM {image} (cached by --reuse: unchanged inputs)")
                return
            self.clear()
            os.makedirs(self.root)
        elif repo == "debian" and tag.endswith("-slim"):
            base = debian_base()
            with open(os.path.join(base, "etc", "debian_version")) as f:
                have = f.read().strip()
            if have.split(".")[0] != tag.split(".")[0]:
                fail(f"FROM {image}: the debootstrapped base is Debian {have}")
            if have != tag[: -len("-slim")]:
                log(f"FROM {image}: base is Debian {have} (same release, other point version)")
            self.clear()
            subprocess.run(["cp", "-a", base, self.root], check=True)
            self.chroot = True
        else:
            fail(f"FROM {image}: this script knows rust:<version>-* and debian:<version>-slim only")
        log(f"stage {index} {name or ''}: FROM {image} ({'chroot' if self.chroot else 'host toolchain'})")

    def clear(self):
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            os.remove(self.key_file)
        except OSError:
            pass

    def path(self, p):
        p = p if p.startswith("/") else os.path.join(self.workdir, p)
        return os.path.join(self.root, p.lstrip("/"))

    def save_key(self):
        if not self.chroot and not self.cached:
            with open(self.key_file, "w") as f:
                json.dump({"key": self.key, "runs": self.runs}, f)

    def run(self, command):
        if self.cached:
            return
        logfile = os.path.join(WORK, "logs", f"stage{self.index}-run{len(self.runs)}.log")
        started = time.monotonic()
        with open(logfile, "w") as out:
            if self.chroot:
                shutil.copy("/etc/resolv.conf", os.path.join(self.root, "etc", "resolv.conf"))
                env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "DEBIAN_FRONTEND": "noninteractive", **self.env}
                cmd = ["chroot", self.root, "/bin/sh", "-c", f"cd {shlex.quote(self.workdir)} && {command}"]
                code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
            else:
                os.makedirs(self.path("."), exist_ok=True)
                # The build must not see this checkout's own target directory or settings.
                env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_TARGET")}
                env.update(self.env)
                code = subprocess.run(["/bin/sh", "-c", command], cwd=self.path("."), env=env,
                                      stdout=out, stderr=subprocess.STDOUT).returncode
        took = time.monotonic() - started
        self.runs.append((command, logfile, took))
        log(f"  RUN ({took:.0f}s) {command[:90]}")
        if code != 0:
            with open(logfile) as f:
                print(f.read()[-4000:])
            fail(f"RUN exited {code}: {command}")

    def copy(self, sources, dest, source_root):
        if self.cached:
            return
        target = self.path(dest)
        into_dir = dest.endswith("/") or len(sources) > 1
        for src in sources:
            src_path = os.path.join(source_root, src.lstrip("/"))
            if not os.path.exists(src_path):
                fail(f"COPY {src}: not in the {'stage' if source_root != CONTEXT else 'build context'} (check .dockerignore)")
            if os.path.isdir(src_path):
                shutil.copytree(src_path, target, dirs_exist_ok=True, symlinks=True)
            else:
                dst = os.path.join(target, os.path.basename(src)) if into_dir else target
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src_path, dst)


CONTEXT = os.path.join(WORK, "context")


def debian_base():
    """A Debian minbase root, made once: what `debian:<v>-slim` is (plus a few docs and locales)."""
    base = os.path.join(BASE_CACHE, "debian-12-slim")
    if not os.path.isdir(base):
        partial = base + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        if shutil.which("debootstrap") is None:
            subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        log("debootstrap --variant=minbase bookworm (once; cached in target/dockerfile-test/base)")
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", partial,
                        "http://deb.debian.org/debian"], check=True, stdout=subprocess.DEVNULL)
        os.rename(partial, base)
    return base


def stage_keys(steps):
    """Per stage: a hash of its instructions and of the context files they copy."""
    keys, digest = [], None
    for word, rest in steps:
        if word == "FROM":
            digest = hashlib.sha256()
            keys.append(digest)
        if digest is None:
            continue
        digest.update(f"{word} {rest}\n".encode())
        if word == "COPY" and not rest.startswith("--from="):
            for src in shlex.split(rest)[:-1]:
                path = os.path.join(CONTEXT, src)
                files = [path] if os.path.isfile(path) else sorted(
                    os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs)
                for f in files:
                    with open(f, "rb") as fh:
                        digest.update(f.encode() + hashlib.sha256(fh.read()).digest())
    return [k.hexdigest() for k in keys]


def build():
    shutil.rmtree(CONTEXT, ignore_errors=True)
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    os.makedirs(os.path.join(WORK, "stages"), exist_ok=True)
    make_context(CONTEXT)
    steps = instructions()
    keys = stage_keys(steps)
    args, stages, stage = {}, {}, None
    for word, rest in steps:
        if word == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name, default)
        elif word == "FROM":
            parts = substitute(rest, args).split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            if stage is not None:
                stage.save_key()
            stage = Stage(len(stages), parts[0], name, keys[len(stages)])
            stages[name or str(stage.index)] = stage
        elif word == "WORKDIR":
            stage.workdir = substitute(rest, stage.env)
            if not stage.cached:
                os.makedirs(stage.path("."), exist_ok=True)
        elif word == "COPY":
            parts = shlex.split(rest)
            source_root = CONTEXT
            if parts[0].startswith("--from="):
                source_root = stages[parts.pop(0).split("=", 1)[1]].root
            stage.copy(parts[:-1], parts[-1], source_root)
        elif word == "RUN":
            stage.run(rest)
        elif word == "ENV":
            key, _, value = rest.partition("=")
            stage.env[key] = value
            stage.config["Env"][key] = value
        elif word == "USER":
            stage.config["User"] = rest
        elif word == "EXPOSE":
            stage.config["ExposedPorts"] += rest.split()
        elif word == "VOLUME":
            stage.config["Volumes"] += exec_form(rest) if rest.startswith("[") else rest.split()
        elif word == "HEALTHCHECK":
            options, _, cmd = rest.partition("CMD ")
            stage.config["Healthcheck"] = {"Options": options.split(), "Test": exec_form(cmd)}
        elif word in ("ENTRYPOINT", "CMD"):
            stage.config[word.title()] = exec_form(rest)
        else:
            fail(f"{word}: an instruction this script does not perform; teach it or avoid it")
    stage.save_key()
    return list(stages.values())


# ---------------------------------------------------------------- checks


def check_dependency_caching(build_stage):
    cargo_runs = [r for r in build_stage.runs if "cargo build" in r[0]]
    if len(cargo_runs) != 2:
        fail(f"the build stage should build twice (stub, then the real crate), built {len(cargo_runs)} times")
    with open(cargo_runs[1][1]) as f:
        compiled = set(re.findall(r"Compiling (\S+) v", f.read()))
    if compiled != {"session-proxy"}:
        fail(f"the second cargo build recompiled dependencies: {sorted(compiled)}")
    log(f"ok: dependencies built in the stub layer ({cargo_runs[0][2]:.0f}s), "
        f"the source layer compiled only session-proxy ({cargo_runs[1][2]:.0f}s)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello from upstream"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def in_image(image, config, argv, env, **kw):
    """argv run as the image would run it: chroot, the image's USER, ENV and nothing else."""
    uid = config["User"]
    gid = "0"
    with open(os.path.join(image, "etc", "passwd")) as f:
        for line in f:
            fields = line.split(":")
            if fields[2] == uid or fields[0] == uid:
                uid, gid = fields[2], fields[3]
    full_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                **config["Env"], **env}
    return ["chroot", f"--userspec={uid}:{gid}", image, *argv], full_env


def check_image(stage):
    image, config = stage.root, stage.config
    with open(os.path.join(WORK, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for port in ("8080", "9901"):
        if port not in config["ExposedPorts"]:
            fail(f"EXPOSE lacks {port}: {config['ExposedPorts']}")
    if config["User"] in ("", "0", "root"):
        fail("the image runs as root")
    size = subprocess.run(["du", "-sm", image], capture_output=True, text=True).stdout.split()[0]
    binary = os.path.getsize(os.path.join(image, "usr/local/bin/session-proxy")) // (1024 * 1024)
    log(f"image filesystem: {size} MiB (binary {binary} MiB; the minbase root is larger than the real -slim image)")

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen, admin = free_port(), free_port()
    secret = subprocess.run([os.path.join(image, "usr/local/bin/session-proxy"), "keygen"],
                            capture_output=True, text=True, check=True).stdout.strip()
    # As `docker run -e ...` would set them; the wildcard admin address is what the image's
    # proxy.yaml uses, so the HEALTHCHECK's loopback rewrite is exercised.
    env = {"SESSION_SECRET": secret,
           "SESSION_PROXY_UPSTREAM": f"http://127.0.0.1:{upstream.server_address[1]}",
           "SESSION_PROXY_LISTEN": f"0.0.0.0:{listen}",
           "SESSION_PROXY_ADMIN_LISTEN": f"0.0.0.0:{admin}",
           # Off loopback the admin listener needs a token; the HEALTHCHECK's /readyz does not.
           "SESSION_PROXY_ADMIN_TOKEN": secret}
    argv, full_env = in_image(image, config, config["Entrypoint"] + config["Cmd"], env)
    proxy = subprocess.Popen(argv, env=full_env, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(WORK, "logs", "serve.log"), "w"))
    try:
        health, health_env = in_image(image, config, config["Healthcheck"]["Test"], env)

        def healthcheck():
            r = subprocess.run(health, env=health_env, capture_output=True, text=True, timeout=10)
            return r.returncode, (r.stdout + r.stderr).strip()

        deadline = time.monotonic() + 20
        while (result := healthcheck())[0] != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        if result[0] != 0:
            fail(f"HEALTHCHECK never passed: {result}")
        log(f"ok: HEALTHCHECK {' '.join(config['Healthcheck']['Test'])} -> exit 0 ({result[1]})")
        with socket.create_connection(("127.0.0.1", listen)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        if not answer.startswith(b"HTTP/1.1 200") or not answer.endswith(b"hello from upstream"):
            fail(f"the proxy in the image did not forward: {answer[:200]!r}")
        log("ok: ENTRYPOINT + CMD serve the upstream through the proxy (200)")
        upstream.shutdown()
        upstream.server_close()
        code, out = healthcheck()
        if code != 1 or "upstream" not in out:
            fail(f"HEALTHCHECK with the upstream gone: exit {code}: {out}")
        log(f"ok: upstream gone -> HEALTHCHECK exit 1 ({out})")
        proxy.send_signal(signal.SIGTERM)
        if proxy.wait(timeout=40) != 0:
            fail(f"SIGTERM: exit {proxy.returncode}")
        log("ok: SIGTERM -> exit 0")
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()


def main():
    if os.geteuid() != 0:
        fail("needs root (chroot)")
    started = time.monotonic()
    stages = build()
    check_dependency_caching(stages[0])
    check_image(stages[-1])
    log(f"passed in {time.monotonic() - started:.0f}s")
    if "--keep" not in sys.argv:
        shutil.rmtree(os.path.join(WORK, "stages"), ignore_errors=True)


if __name__ == "__main__":
    main()
