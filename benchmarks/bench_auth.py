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


def gil_gap(fn: Any, seconds: float = 0.5) -> float:
    """Longest pause (ms) of a pure-Python loop on the main thread while ``fn`` hashes on
    another thread. A hash that held the GIL would pause it for a whole hash (20+ ms);
    one that releases it leaves only scheduler noise."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn)
        longest, last = 0.0, time.perf_counter()
        end = last + seconds
        while last < end:
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
        future.result()
    return longest * 1000


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
    """``arinova serve`` (uvloop, one worker) in its own process, as in production."""
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
        sys.executable, "-m", "arinova", "serve", "--host", "127.0.0.1", "--port", str(port),
        env=env,
    )  # fmt: skip
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
            httpx.AsyncClient(base_url=url, timeout=10) as health,
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
    started = time.perf_counter()
    sum(range(2_000_000))
    held_ms = (time.perf_counter() - started) * 1000
    for label, fn in (
        ("argon2id", lambda: [hasher.hash_sync(PASSWORD) for _ in range(15)]),
        ("scrypt", lambda: [legacy_scrypt_hash(PASSWORD) for _ in range(4)]),
        (
            f"control: sum(range()) holding the GIL for {held_ms:.0f} ms",
            lambda: [sum(range(2_000_000)) for _ in range(10)],
        ),
    ):
        print(
            f"GIL: longest main-thread pause while {label} runs on a thread: {gil_gap(fn):.1f} ms"
        )
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


if __name__ == "__main__":
    main()
