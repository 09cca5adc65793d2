"""Password hashing and sign-in throughput; the event loop's latency during a burst.

Run the whole report (needs PostgreSQL and Redis as for the tests):
    .venv/bin/python -m benchmarks.bench_auth
Or the micro-benchmarks only:
    .venv/bin/python -m pytest -p no:cacheprovider --benchmark-enable benchmarks/bench_auth.py
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from arinova.auth.passwords import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    PasswordHasher,
    legacy_scrypt_hash,
)

PASSWORD = "correct horse battery staple"
BURST = 50
ROUNDS = 4
TRUSTED_ORIGIN = "http://localhost:3500"


# -- micro-benchmarks (pytest-benchmark) ----------------------------------------------------------
@pytest.fixture(scope="module")
def hasher() -> Any:
    h = PasswordHasher()
    yield h
    h.close()


@pytest.mark.benchmark(group="password")
def test_argon2id_hash(benchmark: BenchmarkFixture, hasher: PasswordHasher) -> None:
    benchmark(hasher.hash_sync, PASSWORD)


@pytest.mark.benchmark(group="password")
def test_argon2id_verify(benchmark: BenchmarkFixture, hasher: PasswordHasher) -> None:
    stored = hasher.hash_sync(PASSWORD)
    assert benchmark(hasher.verify_sync, stored, PASSWORD).ok


@pytest.mark.benchmark(group="password")
def test_legacy_scrypt_verify(benchmark: BenchmarkFixture, hasher: PasswordHasher) -> None:
    stored = legacy_scrypt_hash(PASSWORD)
    assert benchmark(hasher.verify_sync, stored, PASSWORD).ok


# -- report ------------------------------------------------------------------------------------
def _per_call(fn: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def _spin(seconds: float) -> int:
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        count += 1
    return count


def gil_progress(fn: Any, seconds: float = 0.4) -> float:
    """How much a pure-Python loop on the main thread gets done while ``fn`` hashes on
    another thread, relative to an idle run: near 100% means the hash releases the GIL,
    near 0% (or 50% on one core) that it holds it."""
    idle = _spin(seconds)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn)
        busy = _spin(seconds)
        future.result()
    return busy / idle


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _health_poller(client: httpx.AsyncClient, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        r = await client.get("/health")
        out.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
        await asyncio.sleep(0.005)


async def _start_server(dsn: str) -> tuple[asyncio.subprocess.Process, str]:
    """The server in its own process (one worker), so the load generator's CPU time is
    not the server's."""
    import socket
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": os.environ.get("ARINOVA_TEST_REDIS_URL", "redis://127.0.0.1:6379/1"),
        "RATE_LIMIT_MAX": "10000000",
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bench_auth", "--serve", str(port), env=env
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(200):
            try:
                if (await client.get("/health")).status_code == 200:
                    return process, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


async def server_report() -> dict[str, Any]:
    from tests.support import db as testdb

    name = await testdb.create_template()
    process, url = await _start_server(testdb.dsn(name))
    try:
        limits = httpx.Limits(max_connections=BURST + 5, max_keepalive_connections=BURST + 5)
        async with (
            httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client,
            # a fresh connection per probe: measures the event loop, not keep-alive effects
            httpx.AsyncClient(
                base_url=url,
                timeout=10,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as health,
        ):
            emails = [f"bench.{i}@example.com" for i in range(BURST)]
            for email in emails:
                r = await client.post(
                    "/api/auth/sign-up/email",
                    json={"name": "Bench", "email": email, "password": PASSWORD},
                    headers={"origin": TRUSTED_ORIGIN},
                )
                assert r.status_code == 200, r.text

            idle: list[float] = []
            for _ in range(200):
                started = time.perf_counter()
                await health.get("/health")
                idle.append(time.perf_counter() - started)

            async def sign_in(email: str) -> float:
                started = time.perf_counter()
                r = await client.post(
                    "/api/auth/sign-in/email",
                    json={"email": email, "password": PASSWORD},
                    headers={"origin": TRUSTED_ORIGIN},
                )
                assert r.status_code == 200, r.text
                return time.perf_counter() - started

            busy: list[float] = []
            stop = asyncio.Event()
            poller = asyncio.create_task(_health_poller(health, stop, busy))
            await asyncio.sleep(0.05)
            latencies: list[float] = []
            started = time.perf_counter()
            for _ in range(ROUNDS):
                latencies += await asyncio.gather(*(sign_in(e) for e in emails))
            elapsed = time.perf_counter() - started
            stop.set()
            await poller
    finally:
        process.terminate()
        await process.wait()
        await testdb.drop_database(name)
    return {
        "sign_ins": len(latencies),
        "sign_ins_per_s": len(latencies) / elapsed,
        "sign_in_p50_ms": percentile(latencies, 50) * 1000,
        "sign_in_p99_ms": percentile(latencies, 99) * 1000,
        "health_idle_p50_ms": percentile(idle, 50) * 1000,
        "health_idle_p99_ms": percentile(idle, 99) * 1000,
        "health_burst_n": len(busy),
        "health_burst_p50_ms": percentile(busy, 50) * 1000,
        "health_burst_p99_ms": percentile(busy, 99) * 1000,
        "health_burst_max_ms": max(busy) * 1000,
    }


def main() -> None:
    hasher = PasswordHasher()
    stored_argon = hasher.hash_sync(PASSWORD)
    stored_scrypt = legacy_scrypt_hash(PASSWORD)
    print(
        f"argon2id m={ARGON2_MEMORY_KIB} KiB t={ARGON2_TIME_COST} p={ARGON2_PARALLELISM}; "
        f"{os.cpu_count()} CPUs; hashing threads {hasher.threads}"
    )
    print(f"argon2id hash     {_per_call(lambda: hasher.hash_sync(PASSWORD), 20) * 1000:7.1f} ms")
    print(
        f"argon2id verify   {_per_call(lambda: hasher.verify_sync(stored_argon, PASSWORD), 20) * 1000:7.1f} ms"
    )
    print(
        f"scrypt verify     {_per_call(lambda: hasher.verify_sync(stored_scrypt, PASSWORD), 20) * 1000:7.1f} ms (legacy)"
    )
    print(
        f"unknown email     {_per_call(lambda: hasher.verify_sync(None, PASSWORD), 20) * 1000:7.1f} ms (dummy verify)"
    )
    for label, fn in (
        ("argon2id", lambda: [hasher.hash_sync(PASSWORD) for _ in range(15)]),
        ("scrypt", lambda: [legacy_scrypt_hash(PASSWORD) for _ in range(4)]),
    ):
        print(f"GIL: main thread progress while {label} hashes on a thread: {gil_progress(fn):.0%}")
    hasher.close()
    report = asyncio.run(server_report())
    print(
        f"sign-in burst: {ROUNDS} x {BURST} concurrent sign-ins -> "
        f"{report['sign_ins_per_s']:.1f} sign-ins/s "
        f"(latency p50 {report['sign_in_p50_ms']:.0f} ms, p99 {report['sign_in_p99_ms']:.0f} ms)"
    )
    print(
        f"/health idle: p50 {report['health_idle_p50_ms']:.2f} ms, p99 {report['health_idle_p99_ms']:.2f} ms; "
        f"during the burst ({report['health_burst_n']} probes): p50 {report['health_burst_p50_ms']:.2f} ms, "
        f"p99 {report['health_burst_p99_ms']:.2f} ms, max {report['health_burst_max_ms']:.2f} ms"
    )


def serve(port: int) -> None:
    """``--serve PORT``: run one server process from the environment's settings."""
    from arinova.server import Server
    from arinova.settings import Settings

    settings = Settings.from_env().replace(host="127.0.0.1", port=port)
    asyncio.run(Server(settings).serve())


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        main()
