#!/usr/bin/env python3
"""Hold N keep-alive connections open to a server at once and report what they cost in memory.

    benches/idle_connections.py --port 8080 --pid <pid> [--pid <pid> ...] [--count 10000]
        [--cookie 'session_id=...'] [--sources 4] [--tls]

Every connection sends one request and reads the answer, then all of them stay open together;
once all N are open, each sends a second request on the same connection (proof that it was kept,
not silently dropped). The memory figure is the growth of the summed VmRSS of every --pid (nginx:
its workers; session-proxy: its one process) between "before the first connection" and "all N
open", divided by N: the same measure for both servers.

Prints one line for people and, last, one `key=value` line for scripts (benches/load.sh reads
`kib_per_conn`). Exit status 0 only when all N were held and every request got a 200.

--sources spreads the client ends over 127.0.0.1, 127.0.0.2, ... (the whole 127/8 is loopback on
Linux): one source address has about 28,000 ephemeral ports towards one server port, so 100,000
connections need at least 4. Loopback only; bounded by --deadline seconds per phase.
"""
import argparse
import asyncio
import resource
import ssl
import sys
import time


def rss_kib(pids):
    """Summed (VmRSS, VmHWM) in KiB of the given processes."""
    rss = hwm = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    return rss, hwm


async def one_request(reader, writer, request):
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, action="append", required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--cookie", default="")
    p.add_argument("--sources", type=int, default=0, help="0: enough for --count")
    p.add_argument("--tls", action="store_true", help="HTTPS (certificate not verified)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait before sampling")
    p.add_argument("--deadline", type=float, default=120.0)
    p.add_argument("--silent", action="store_true",
                   help="open without a first request (a browser's preconnect); held, then one request each")
    p.add_argument("--smaps", help="copy the first --pid's /proc/PID/smaps_rollup here, all open")
    a = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        if hard < want:
            print(f"RLIMIT_NOFILE hard limit {hard} < {want}: raise it (ulimit -Hn)", file=sys.stderr)

    sources = a.sources or (a.count // 20000 + 1)
    ctx = None
    if a.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])

    cookie = f"Cookie: {a.cookie}\r\n" if a.cookie else ""
    request = f"GET / HTTP/1.1\r\nHost: bench\r\n{cookie}\r\n".encode()
    before, _ = rss_kib(a.pid)
    conns, errors = [], 0
    sem = asyncio.Semaphore(200)  # open in waves: the kernel backlog is finite

    async def open_one(i):
        nonlocal errors
        async with sem:
            try:
                r, w = await asyncio.open_connection(
                    "127.0.0.1", a.port, ssl=ctx,
                    local_addr=(f"127.0.0.{1 + i % sources}", 0),
                )
                if not a.silent and await one_request(r, w, request) != 200:
                    errors += 1
                conns.append((r, w))
            except Exception:
                errors += 1

    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(open_one(i) for i in range(a.count))), a.deadline)
    opened = time.monotonic() - start
    await asyncio.sleep(a.settle)
    held, hwm = rss_kib(a.pid)
    if a.smaps:
        with open(f"/proc/{a.pid[0]}/smaps_rollup") as src, open(a.smaps, "w") as dst:
            dst.write(src.read())

    async def again(r, w):
        nonlocal errors
        async with sem:  # the point is that each connection is still there, not a 10k burst
            try:
                if await one_request(r, w, request) != 200:
                    errors += 1
            except Exception:
                errors += 1

    await asyncio.wait_for(asyncio.gather(*(again(r, w) for r, w in conns)), a.deadline)
    for _, w in conns:
        w.close()
    per_conn = (held - before) / max(len(conns), 1)
    print(
        f"held {len(conns)} keep-alive connections at once (opened in {opened:.1f}s), "
        f"second request on each: errors {errors}; VmRSS {before // 1024} MiB before, "
        f"{held // 1024} MiB with all open (VmHWM {hwm // 1024} MiB): "
        f"{per_conn:.1f} KiB per connection"
    )
    print(
        f"held={len(conns)} errors={errors} rss_before_kib={before} rss_held_kib={held} "
        f"hwm_kib={hwm} kib_per_conn={per_conn:.1f}"
    )
    return 0 if errors == 0 and len(conns) == a.count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
