"""REST load: requests per second and server CPU time per request for the hot read routes.

Starts ``arinova serve`` in its own process on a fresh database, signs a user up, seeds
data shaped like real use (``seed``: 50 conversations x 50 messages with an attachment on
each, a few group conversations, a reply streaming), then drives each scenario with N keep-alive
connections (raw HTTP/1.1 over asyncio, so the load generator stays light: it shares the
machine's cores with the server) for a bounded time. Server CPU is read from
``/proc/<pid>/stat`` (utime + stime of the server and its worker processes) before and
after each measured window; PostgreSQL's CPU is read the same way over every ``postgres``
process.

    .venv/bin/python -m benchmarks.rest_load                 # 32 connections, 10 s each
    .venv/bin/python -m benchmarks.rest_load -c 32 -d 20 --workers 2
    .venv/bin/python -m benchmarks.rest_load --rounds 3 --other-label original \\
        --other-cmd /path/to/run-the-original.sh      # side by side, alternating

Needs PostgreSQL (``--pg``, a server URL without database; trust auth as in the tests) and
Redis (``--redis``). The database is dropped afterwards unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
import httpx

CONVERSATIONS = 50
MESSAGES_PER_CONVERSATION = 50
#: every GROUP_EVERY-th conversation is a group of AGENTS agents
GROUP_EVERY = 10
AGENTS = 3
TRUSTED_ORIGIN = "http://localhost:3500"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: bounds of the tool itself: connections, seconds per scenario
MAX_CONNECTIONS = 512
MAX_DURATION_S = 300.0


# -- CPU accounting ----------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # the command name may contain spaces: fields start after the closing parenthesis
    return raw[raw.rindex(")") + 2 :].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # after the name: state(0) ppid(1) ... utime(11) stime(12)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _all_pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            parents[pid] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree += children
        frontier += children
    return tree


def postgres_processes() -> list[int]:
    pids = []
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                if f.read().strip() in (b"postgres", b"postmaster"):
                    pids.append(pid)
        except OSError:
            continue
    return pids


def cpu_of(pids: list[int]) -> float:
    return sum(_cpu_seconds(pid) for pid in pids)


# -- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------


class HttpError(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, bytes(body)
            body += await reader.readexactly(size + 2)
            del body[-2:]
    return status, await reader.readexactly(length or 0)


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    body_bytes: int = 0
    client_cpu: float = 0.0

    def row(self) -> str:
        n = max(self.requests, 1)
        lat = sorted(self.latencies) or [0.0]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"| {self.name} | {self.requests / self.seconds:,.0f} | "
            f"{self.server_cpu / n * 1000:.2f} | {self.postgres_cpu / n * 1000:.2f} | "
            f"{statistics.median(lat) * 1000:.1f} | {p99 * 1000:.1f} | "
            f"{self.client_cpu / n * 1000:.2f} | {self.body_bytes // n:,} | {self.errors} |"
        )


#: latencies kept per scenario (a bound: beyond it, samples are dropped)
MAX_SAMPLES = 200_000


async def drive(
    host: str, port: int, request: bytes, connections: int, duration: float, result: Result
) -> None:
    deadline = time.monotonic() + duration

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                writer.write(request)
                status, body = await read_response(reader)
                if len(result.latencies) < MAX_SAMPLES:
                    result.latencies.append(time.perf_counter() - started)
                result.requests += 1
                result.body_bytes += len(body)
                if status != 200:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


def request_bytes(host: str, port: int, path: str, cookie: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
        f"Origin: {TRUSTED_ORIGIN}\r\nAccept: application/json\r\n\r\n"
    ).encode()


# -- setup -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(dsn: str, user_id: str, agent_ids: list[str]) -> str:
    """Shaped like real use: 50 conversations x 50 messages, one attachment on each message;
    every tenth conversation a group of the agents, the others direct with the first one;
    the last message of the returned conversation a reply still streaming."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "INSERT INTO conversations (title, type, user_id, agent_id)"
            " SELECT 'Conversation ' || n,"
            " CASE WHEN n % $4::int = 0 THEN 'group' ELSE 'direct' END::conversation_type,"
            " $1, CASE WHEN n % $4::int = 0 THEN NULL ELSE $2::uuid END"
            " FROM generate_series(1, $3::int) n RETURNING id, type::text",
            user_id,
            agent_ids[0],
            CONVERSATIONS,
            GROUP_EVERY,
        )
        await conn.execute(
            "INSERT INTO conversation_members (conversation_id, agent_id)"
            " SELECT c.id, a FROM conversations c, unnest($2::uuid[]) a"
            " WHERE c.user_id = $1 AND c.type = 'group'",
            user_id,
            agent_ids,
        )
        await conn.execute(
            "INSERT INTO messages (conversation_id, seq, role, content, status, created_at,"
            " updated_at)"
            " SELECT c.id, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'agent' END::message_role,"
            " 'Message ' || s || ' of a conversation, long enough to look like a reply.',"
            " 'completed', (now() AT TIME ZONE 'UTC') + s * interval '1 second',"
            " (now() AT TIME ZONE 'UTC') + s * interval '1 second'"
            " FROM conversations c, generate_series(1, $2::int) s WHERE c.user_id = $1",
            user_id,
            MESSAGES_PER_CONVERSATION,
        )
        await conn.execute(
            "INSERT INTO attachments (message_id, file_name, file_type, file_size, storage_path)"
            " SELECT m.id, 'photo-' || m.seq || '.png', 'image/png', 48213,"
            " 'attachments/' || m.id || '.png'"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.user_id = $1",
            user_id,
        )
        direct = next(str(r["id"]) for r in rows if r["type"] == "direct")
        await conn.execute(
            "UPDATE messages SET status = 'streaming', content = ''"
            " WHERE conversation_id = $1::uuid AND seq = $2::int",
            direct,
            MESSAGES_PER_CONVERSATION,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return direct


async def wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become healthy in 30 s")


@dataclass
class Target:
    """A server under load: its label, process and port."""

    label: str
    process: subprocess.Popen[bytes]
    port: int


async def measure(
    target: Target, name: str, path: str, cookie: str, connections: int, args: argparse.Namespace
) -> Result:
    request = request_bytes("127.0.0.1", target.port, path, cookie)
    await drive("127.0.0.1", target.port, request, connections, args.warmup, Result("warm-up"))
    # after the warm-up: the pool's connections (PostgreSQL backends) exist now
    server_pids, postgres_pids = process_tree(target.process.pid), postgres_processes()
    result = Result(f"{target.label}: {name}")
    server_before, pg_before = cpu_of(server_pids), cpu_of(postgres_pids)
    own_before = time.process_time()
    started = time.monotonic()
    duration = min(args.duration, MAX_DURATION_S)
    await drive("127.0.0.1", target.port, request, connections, duration, result)
    result.seconds = time.monotonic() - started
    result.server_cpu = cpu_of(server_pids) - server_before
    result.postgres_cpu = cpu_of(postgres_pids) - pg_before
    result.client_cpu = time.process_time() - own_before
    return result


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ends the process and, when it leads its own session (a shell command), its group."""
    if process.poll() is not None:
        return
    group = os.getpgid(process.pid) == process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


async def main(args: argparse.Namespace) -> None:
    connections = min(args.connections, MAX_CONNECTIONS)
    database = f"arinova_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    dsn = f"{args.pg.rstrip('/')}/{database}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": args.redis,
        "RATE_LIMIT_MAX": "1000000000",
        "LOG_LEVEL": args.log_level,
        "WORKERS": str(args.workers),
    }
    # request logs, when on, go where production's would: out of the process, unread
    quiet = subprocess.DEVNULL if args.log_level in ("INFO", "DEBUG") else None
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-m", "arinova", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=quiet,
        stderr=quiet,
    )
    targets = [Target("ours", process, port)]
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
            agent_ids = []
            for n in range(AGENTS):
                agent = await c.post(
                    "/api/agents", json={"name": f"Bench {n}"}, headers={"cookie": cookie}
                )
                agent.raise_for_status()
                agent_ids.append(agent.json()["id"])
        user_id = signed.json()["user"]["id"]
        conversation = await seed(dsn, user_id, agent_ids)
        if args.other_cmd:
            # the same database, the same session cookie: the other server signs cookies
            # with the same secret (BETTER_AUTH_SECRET passes through from this environment)
            other_port = free_port()
            other = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
                args.other_cmd,
                shell=True,
                env={
                    **env,
                    "PORT": str(other_port),
                    "REDIS_URL": args.other_redis or args.redis,
                    "NODE_ENV": "production",
                },
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
            targets.append(Target(args.other_label, other, other_port))
            await wait_healthy(f"http://127.0.0.1:{other_port}", other)

        scenarios = [
            (f"GET /api/agents ({AGENTS} agents)", "/api/agents"),
            ("GET /api/conversations (50 x 50, attachments, groups)", "/api/conversations"),
            (
                "GET /api/conversations/:id/messages (50, attachments, one streaming)",
                f"/api/conversations/{conversation}/messages",
            ),
            ("GET /health", "/health"),
        ]
        if args.only:
            scenarios = [(name, path) for name, path in scenarios if args.only in name]
        results = []
        for name, path in scenarios:
            # rounds alternate the servers, so drift on a shared machine falls on both
            for _ in range(max(1, min(args.rounds, 20))):
                for target in targets:
                    results.append(await measure(target, name, path, cookie, connections, args))

        print(
            f"\n{connections} connections, {args.duration:g} s per scenario, "
            f"{args.workers} worker(s), {os.cpu_count()} CPUs\n"
        )
        print(
            "| scenario | req/s | server CPU ms/req | PostgreSQL CPU ms/req | p50 ms | p99 ms "
            "| load tool CPU ms/req | body bytes | non-200 |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for result in results:
            print(result.row())
    finally:
        for target in targets:
            stop(target.process)
        if not args.keep_db:
            conn = await asyncpg.connect(f"{args.pg.rstrip('/')}/postgres")
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            finally:
                await conn.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each scenario")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--pg", default="postgresql://root@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--other-cmd",
        help="a shell command starting another server to measure side by side on the same"
        " database and cookie; it gets PORT, DATABASE_URL, REDIS_URL and RATE_LIMIT_MAX",
    )
    parser.add_argument("--other-label", default="other")
    parser.add_argument("--other-redis", help="REDIS_URL for the other server (default: --redis)")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="our server's LOG_LEVEL (INFO: a line per request, as production's default)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternations per scenario")
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
