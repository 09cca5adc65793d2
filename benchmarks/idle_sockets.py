"""Server memory per idle WebSocket: open N authenticated sockets to /ws and read the
server's RSS.

    .venv/bin/python benchmarks/idle_sockets.py --sockets 1000 10000 \\
        --database-url postgresql://root@127.0.0.1:5432/arinova_bench

For each N the tool starts a fresh ``arinova serve`` (one worker), signs a user up (every
socket carries that user's session cookie, so each is a real authenticated ``/ws`` socket
registered in the realtime hub, watched by the heartbeat sweep), warms it up (a few
hundred sockets opened, pinged and closed), reads VmRSS from /proc/<pid>/status (summed
over the server's process tree: ``arinova serve`` is a supervisor and its worker), opens N
sockets from several client processes (each completes the handshake and one
ping/pong, then stays idle), waits for the server to settle (well within the 45 s
heartbeat: the sockets stay open), and reads VmRSS again.
Reported: the growth divided by N. Kernel socket buffers are not in RSS. Alternatively
``--pid`` and ``--port`` measure a server that is already running. The tool checks that
every socket is still open (a pong to a last ping) before it releases them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path

from benchmarks.rest_load import process_tree

TRUSTED_ORIGIN = "http://localhost:3500"


def upgrade_request(cookie: str) -> bytes:
    return (
        b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef") + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\nOrigin: " + TRUSTED_ORIGIN.encode() + b"\r\n"
        b"Cookie: " + cookie.encode() + b"\r\n\r\n"
    )


def sign_up(port: int) -> str:
    """A new user's session cookie (``name=value``)."""
    body = json.dumps(
        {
            "name": "Idle",
            "email": f"idle{os.getpid()}{time.time_ns()}@example.com",
            "password": "idle-sockets-password",
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/auth/sign-up/email",
        data=body,
        headers={"content-type": "application/json", "origin": TRUSTED_ORIGIN},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        for header in response.headers.get_all("set-cookie") or []:
            if "session_token=" in header:
                return str(header.split(";", 1)[0])
    raise RuntimeError("sign-up gave no session cookie")


MASK = b"\x00\x00\x00\x00"
PING = b"\x81\x8f" + MASK + b'{"type":"ping"}'
PONG = b'\x81\x0f{"type":"pong"}'
CONNECT_CONCURRENCY = 100


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tree_rss_kib(root: int) -> int:
    """The RSS of ``root`` and every process under it (a supervisor and its workers)."""
    return sum(rss_kib(pid) for pid in process_tree(root))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_socket(port: int, request: bytes) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise RuntimeError("closed during the handshake")
        answer += chunk
    if not answer.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(answer[:40].decode())
    rest = answer[answer.index(b"\r\n\r\n") + 4 :]
    await loop.sock_sendall(sock, PING)
    while len(rest) < len(PONG):
        rest += await loop.sock_recv(sock, 4096)
    assert rest == PONG, rest
    return sock


async def open_many(port: int, count: int, cookie: str) -> list[socket.socket]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    request = upgrade_request(cookie)

    async def one() -> socket.socket:
        async with gate:
            return await open_socket(port, request)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def still_open(sockets: list[socket.socket]) -> int:
    """How many sockets answer a last ping (the server kept them all)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(sock: socket.socket) -> bool:
        async with gate:
            try:
                await loop.sock_sendall(sock, PING)
                got = b""
                while len(got) < len(PONG):
                    chunk = await loop.sock_recv(sock, 4096)
                    if not chunk:
                        return False
                    got += chunk
                return got == PONG
            except OSError:
                return False

    return sum(await asyncio.gather(*(one(s) for s in sockets)))


def client_main(port: int, count: int, cookie: str, pipe: Connection) -> None:
    """A client process: open ``count`` sockets, report, hold them until told, then
    report how many were still open."""
    raise_fd_limit()
    sockets = asyncio.run(open_many(port, count, cookie))
    pipe.send(len(sockets))
    pipe.recv()
    pipe.send(asyncio.run(still_open(sockets)))
    for sock in sockets:
        sock.close()


def hold_sockets(
    port: int, total: int, processes: int, cookie: str
) -> list[tuple[multiprocessing.Process, Connection]]:
    context = multiprocessing.get_context("spawn")
    clients = []
    for i in range(processes):
        share = total // processes + (1 if i < total % processes else 0)
        parent_end, child_end = context.Pipe()
        process = context.Process(target=client_main, args=(port, share, cookie, child_end))
        process.start()
        clients.append((process, parent_end))
    for _, pipe in clients:
        pipe.recv()
    return clients


def release(clients: list[tuple[multiprocessing.Process, Connection]]) -> int:
    """Close every socket; how many were still open."""
    for _, pipe in clients:
        pipe.send("close")
    alive = sum(int(pipe.recv()) for _, pipe in clients)
    for process, _ in clients:
        process.join(30)
    return alive


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int, database_url: str, redis_url: str, pure: bool
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING", PORT=str(port))
    env.pop("WORKERS", None)
    if pure:
        env["ARINOVA_PURE"] = "1"
    server = subprocess.Popen(
        [sys.executable, "-m", "arinova", "serve", "--host", "127.0.0.1"], env=env
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not come up")


def measure(pid: int, port: int, count: int, processes: int, settle_s: float) -> dict[str, float]:
    cookie = sign_up(port)
    # warm-up: first-use allocations are not per-socket costs
    release(hold_sockets(port, 500, processes, cookie))
    time.sleep(settle_s)
    before = tree_rss_kib(pid)
    started = time.monotonic()
    clients = hold_sockets(port, count, processes, cookie)
    opened_s = time.monotonic() - started
    time.sleep(settle_s)
    after = tree_rss_kib(pid)
    alive = release(clients)
    return {
        "sockets": count,
        "rss_before_mib": before / 1024,
        "rss_after_mib": after / 1024,
        "kib_per_socket": (after - before) / count,
        "open_s": opened_s,
        "alive": alive,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--pure", action="store_true", help="ARINOVA_PURE=1 (pure-Python codec)")
    parser.add_argument("--pid", type=int, help="measure this running server instead")
    parser.add_argument("--port", type=int, help="its port (with --pid)")
    args = parser.parse_args()
    limit = raise_fd_limit()
    if max(args.sockets) + 100 > limit:
        print(f"RLIMIT_NOFILE is {limit}: too low for {max(args.sockets)} sockets", file=sys.stderr)
        return 1
    print(
        "| sockets | server RSS before (MiB) | after (MiB) | KiB per idle socket "
        "| still open at the end |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for count in args.sockets:
        server = None
        if args.pid:
            pid, port = args.pid, args.port
        else:
            if not args.database_url:
                parser.error("--database-url (or DATABASE_URL) is required to start a server")
            port = free_port()
            server = start_server(port, args.database_url, args.redis_url, args.pure)
            pid = server.pid
        try:
            row = measure(pid, port, count, args.clients, args.settle)
        finally:
            if server is not None:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
        print(
            f"| {row['sockets']:,} | {row['rss_before_mib']:.1f} | {row['rss_after_mib']:.1f} "
            f"| {row['kib_per_socket']:.2f} | {row['alive']:,} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
