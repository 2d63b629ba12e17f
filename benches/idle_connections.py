#!/usr/bin/env python3
"""Hold N keep-alive connections open to a proxy at once, each with a session cookie.

    benches/idle_connections.py --port 8080 --pid <proxy pid> [--count 10000] [--cookie 'session_id=...']

Every connection sends one request and reads the answer, then all of them stay open together;
once all N are open, each sends a second request on the same connection (proof that it was kept,
not silently dropped). Prints the number of connections held, errors, and the proxy's RSS (VmRSS
and VmHWM from /proc/<pid>/status). Loopback only; bounded by --deadline seconds.
"""
import argparse
import asyncio
import resource
import sys
import time


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


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
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--cookie", default="")
    p.add_argument("--deadline", type=float, default=60.0)
    a = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    cookie = f"Cookie: {a.cookie}\r\n" if a.cookie else ""
    request = f"GET / HTTP/1.1\r\nHost: bench\r\n{cookie}\r\n".encode()
    before = rss(a.pid)
    conns, errors = [], 0
    sem = asyncio.Semaphore(200)  # open in waves: the kernel backlog is finite

    async def open_one():
        nonlocal errors
        async with sem:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", a.port)
                if await one_request(r, w, request) != 200:
                    errors += 1
                conns.append((r, w))
            except Exception:
                errors += 1

    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(open_one() for _ in range(a.count))), a.deadline)
    opened = time.monotonic() - start
    held = rss(a.pid)

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
    print(
        f"held {len(conns)} keep-alive connections at once (opened in {opened:.1f}s), "
        f"second request on each: errors {errors}; proxy VmRSS {before['VmRSS'] // 1024} MiB before, "
        f"{held['VmRSS'] // 1024} MiB with all open (VmHWM {held['VmHWM'] // 1024} MiB)"
    )
    return 0 if errors == 0 and len(conns) == a.count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
