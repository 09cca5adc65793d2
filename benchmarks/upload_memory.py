"""Upload memory: the server's resident memory while N large uploads arrive at once.

Starts ``arinova serve`` (one worker) in its own process on a fresh database, signs a
user up, makes a group conversation (no agent reply runs), then sends N concurrent
uploads of one ~9.9 MB PDF, each over its own connection, and samples the server's
``/proc/<pid>/status`` every 10 ms: ``VmRSS`` (everything resident) and ``RssAnon``
(the process's own memory, without the file pages a spool file or a mapping touches).

    .venv/bin/python -m benchmarks.upload_memory              # 64 uploads
    .venv/bin/python -m benchmarks.upload_memory -n 96 --source /path/to/other/checkout

``--source`` serves the ``arinova`` package of another checkout (to compare with an
older commit). The upload bounds are raised to N so that every upload is read; the
upload and spool directories are temporary. Needs PostgreSQL (``--pg``) and Redis
(``--redis``); the database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

from benchmarks.rest_load import TRUSTED_ORIGIN, free_port, process_tree, wait_healthy

FILE_BYTES = 9_900_000
BOUNDARY = "----arinovaBenchmarkBoundary"
#: bounds of the tool itself
MAX_UPLOADS = 256


def memory_kib(pid: int) -> tuple[int, int]:
    """``(VmRSS, RssAnon)`` of a process in KiB (0, 0 once it is gone)."""
    rss = anon = 0
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return rss, anon


def form_body() -> bytes:
    content = b"%PDF-1.7\n" + random.Random(1).randbytes(FILE_BYTES - 9)
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def source_dir(given: str | None) -> Path:
    return Path(given).resolve() if given else Path(__file__).resolve().parents[1]


async def sample(pids: list[int], peaks: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        rss = anon = 0
        for pid in pids:
            one_rss, one_anon = memory_kib(pid)
            rss, anon = rss + one_rss, anon + one_anon
        peaks["rss"] = max(peaks["rss"], rss)
        peaks["anon"] = max(peaks["anon"], anon)
        await asyncio.sleep(0.01)


async def main(args: argparse.Namespace) -> None:
    uploads = min(args.uploads, MAX_UPLOADS)
    database = f"arinova_upload_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    dsn = f"{args.pg.rstrip('/')}/{database}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="arinova-upload-bench-"))
    source = source_dir(args.source)
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "DATABASE_URL": dsn,
        "REDIS_URL": args.redis,
        "RATE_LIMIT_MAX": "1000000000",
        "LOG_LEVEL": "WARNING",
        "WORKERS": "1",
        "UPLOAD_DIR": str(scratch / "uploads"),
        "UPLOAD_SPOOL_DIR": str(scratch / "spool"),
        "MAX_CONCURRENT_UPLOADS": str(uploads),
        "MAX_CONCURRENT_UPLOADS_PER_USER": str(uploads),
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-m", "arinova", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=source,
    )
    try:
        await wait_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, headers={"origin": TRUSTED_ORIGIN}) as c:
            signed = await c.post(
                "/api/auth/sign-up/email",
                json={"name": "Load", "email": f"{database}@example.com", "password": "x" * 12},
            )
            signed.raise_for_status()
        cookie = next(
            h.split(";", 1)[0]
            for h in signed.headers.get_list("set-cookie")
            if "session_token=" in h
        )
        conn = await asyncpg.connect(dsn)
        try:
            conversation = await conn.fetchval(
                "INSERT INTO conversations (type, user_id) VALUES ('group', $1) RETURNING id",
                signed.json()["user"]["id"],
            )
        finally:
            await conn.close()

        body = form_body()
        headers = {
            "origin": TRUSTED_ORIGIN,
            "cookie": cookie,
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        pids = process_tree(process.pid)
        idle_rss = sum(memory_kib(pid)[0] for pid in pids)
        peaks = {"rss": 0, "anon": 0}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(pids, peaks, stop))
        limits = httpx.Limits(max_connections=uploads, max_keepalive_connections=uploads)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=300) as client:
            started = time.monotonic()
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"/api/conversations/{conversation}/upload", content=body, headers=headers
                    )
                    for _ in range(uploads)
                )
            )
            seconds = time.monotonic() - started
        await asyncio.sleep(0.2)
        stop.set()
        await sampler
        settled_rss = sum(memory_kib(pid)[0] for pid in pids)
        statuses = Counter(r.status_code for r in responses)

        print(f"\n{uploads} concurrent uploads of {len(body) / 1e6:.1f} MB, source {source}\n")
        print("| idle RSS MB | peak RSS MB | peak RssAnon MB | RSS after MB | s | statuses |")
        print("| --- | --- | --- | --- | --- | --- |")
        print(
            f"| {idle_rss / 1024:.0f} | {peaks['rss'] / 1024:.0f} | {peaks['anon'] / 1024:.0f} "
            f"| {settled_rss / 1024:.0f} | {seconds:.1f} | {dict(statuses)} |"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(scratch)
        conn = await asyncpg.connect(f"{args.pg.rstrip('/')}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-n", "--uploads", type=int, default=64)
    parser.add_argument("--source", help="checkout whose arinova package is served")
    parser.add_argument("--pg", default="postgresql://root@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
