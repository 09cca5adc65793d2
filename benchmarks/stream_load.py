"""Streaming load: K concurrent agent replies x M chunks through the real pipeline.

Starts ``arinova serve`` in its own process on a fresh database, signs a user up, creates
one agent (``--agents``: several, the conversations spread over them) and K conversations,
connects one ``/ws`` user socket and one ``/ws/agent`` socket per agent, sends K messages,
and lets the agents answer every task with M chunks of B bytes (round-robin over the
tasks, unpaced or paced at ``--rate`` chunks/s), then
``agent_complete``. Each chunk carries its index and send time, so the receiver checks
that nothing is lost, duplicated or reordered and measures end-to-end latency (agent
send -> user receive). Server CPU comes from ``/proc/<pid>/stat`` over the streaming
window; the stored replies are checked at the end.

    .venv/bin/python -m benchmarks.stream_load                      # 50 x 200 x 64 B, unpaced
    .venv/bin/python -m benchmarks.stream_load --rate 2500          # paced
    .venv/bin/python -m benchmarks.stream_load --interval 0.02      # 20 ms between chunks
    .venv/bin/python -m benchmarks.stream_load --interval 0.02 --agents 50  # a socket each
    .venv/bin/python -m benchmarks.stream_load --pure               # the pure-Python twins
    .venv/bin/python -m benchmarks.stream_load -k 10 -m 1000 -b 256
    .venv/bin/python -m benchmarks.stream_load --processes 2   # user on one, agent on another
    .venv/bin/python -m benchmarks.stream_load --processes 2 --cluster --redis redis://127.0.0.1:<port>
    .venv/bin/python -m benchmarks.stream_load --server-cmd /path/to/run-the-original.sh

With ``--processes 2`` two servers share PostgreSQL and Redis: the user's socket is on the
first, the agent's on the second, so every chunk crosses Redis pub/sub; server CPU is the
sum of both processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import websockets

from benchmarks.rest_load import (
    TRUSTED_ORIGIN,
    cpu_of,
    free_port,
    postgres_processes,
    process_tree,
    stop,
    wait_healthy,
)

MAX_REPLIES = 1_000
MAX_CHUNKS = 100_000


@dataclass
class Reply:
    task_id: str = ""
    received: int = 0
    text: list[str] = field(default_factory=list)
    ended: bool = False
    errors: list[str] = field(default_factory=list)


def chunk_text(index: int, size: int) -> str:
    """``<index>:<send ns>:`` padded to ``size`` characters (unique: always a delta)."""
    head = f"{index}:{time.monotonic_ns()}:"
    return head + "x" * max(0, size - len(head))


async def sign_up(
    base: str, name: str, k: int, agents: int
) -> tuple[str, list[str], list[tuple[str, int]]]:
    """A user, ``agents`` agents and ``k`` conversations, the i-th with agent i mod
    ``agents``: the cookie, the agents' bot tokens, each conversation with its agent."""
    async with httpx.AsyncClient(base_url=base, headers={"origin": TRUSTED_ORIGIN}) as c:
        signed = await c.post(
            "/api/auth/sign-up/email",
            json={"name": "Stream", "email": f"{name}@example.com", "password": "x" * 12},
        )
        signed.raise_for_status()
        cookie = next(
            h.split(";", 1)[0]
            for h in signed.headers.get_list("set-cookie")
            if "session_token=" in h
        )
        headers = {"cookie": cookie}
        made = []
        for n in range(agents):
            agent = await c.post("/api/agents", json={"name": f"Streamer {n}"}, headers=headers)
            agent.raise_for_status()
            made.append(agent.json())
        conversations = []
        for i in range(k):
            conv = await c.post(
                "/api/conversations", json={"agentId": made[i % agents]["id"]}, headers=headers
            )
            conv.raise_for_status()
            conversations.append((conv.json()["id"], i % agents))
    return cookie, [a["secretToken"] for a in made], conversations


async def warm_up(user: Any, agent: Any, conversation_id: str) -> None:
    """One whole reply before the measured ones: what the server does once (imports and
    clients made on first use) stays out of the measurement."""
    await user.send(
        json.dumps({"type": "send_message", "conversationId": conversation_id, "content": "hi"})
    )
    task_id = json.loads(await agent.recv())["taskId"]
    for chunk in ("warm", "warm up"):
        await agent.send(json.dumps({"type": "agent_chunk", "taskId": task_id, "chunk": chunk}))
    await agent.send(
        json.dumps({"type": "agent_complete", "taskId": task_id, "content": "warm up"})
    )
    while json.loads(await user.recv())["type"] != "stream_end":
        pass
    await asyncio.sleep(1)  # work after the reply (push, stream text) settles


async def run(args: argparse.Namespace, bases: list[str], dsn: str, pids: list[int]) -> None:
    base, ws_base, agent_ws_base = bases[0], _ws(bases[0]), _ws(bases[-1])
    k, m, size = min(args.replies, MAX_REPLIES), min(args.chunks, MAX_CHUNKS), args.bytes
    n_agents = max(1, min(args.agents, k))
    name = f"stream{uuid.uuid4().hex[:8]}"
    cookie, tokens, conversations = await sign_up(base, name, k + 1, n_agents)
    warm_up_conversation, warm_up_agent = conversations.pop()
    user = await websockets.connect(
        f"{ws_base}/ws",
        additional_headers={"cookie": cookie},
        compression=None,
        ping_interval=None,
        max_queue=None,
    )
    agents = []
    for token in tokens:
        agent = await websockets.connect(
            f"{agent_ws_base}/ws/agent", compression=None, ping_interval=None
        )
        await agent.send(json.dumps({"type": "agent_auth", "botToken": token}))
        assert json.loads(await agent.recv())["type"] == "auth_ok"
        agents.append(agent)

    await warm_up(user, agents[warm_up_agent], warm_up_conversation)

    replies: dict[str, Reply] = {}
    latencies: list[int] = []
    done = asyncio.Event()

    async def receive() -> None:
        finished = 0
        async for raw in user:
            now = time.monotonic_ns()
            event = json.loads(raw)
            kind = event["type"]
            reply = replies.setdefault(event.get("messageId", ""), Reply())
            if kind == "stream_chunk":
                index, sent, _ = event["chunk"].split(":", 2)
                if int(index) != reply.received:
                    reply.errors.append(f"chunk {index} arrived as #{reply.received}")
                reply.received += 1
                reply.text.append(event["chunk"])
                latencies.append(now - int(sent))
            elif kind in ("stream_end", "stream_error"):
                reply.ended = True
                if kind == "stream_error":
                    reply.errors.append(event["error"])
                finished += 1
                if finished == k:
                    done.set()
                    return

    receiver = asyncio.create_task(receive())
    tasks: list[str] = []
    #: task id -> the socket of the agent that answers it
    answering: dict[str, Any] = {}
    # at most 32 messages in flight: a socket may have only 64 frames waiting
    for start in range(0, k, 32):
        group = conversations[start : start + 32]
        for conv, _ in group:
            await user.send(
                json.dumps({"type": "send_message", "conversationId": conv, "content": "go"})
            )
        for _, n in group:
            task_id = json.loads(await agents[n].recv())["taskId"]
            tasks.append(task_id)
            answering[task_id] = agents[n]
    sent_text: dict[str, list[str]] = {t: [] for t in tasks}

    server_pids = [p for pid in pids for p in process_tree(pid)]
    postgres_pids = postgres_processes()
    server_before, pg_before = cpu_of(server_pids), cpu_of(postgres_pids)
    own_before = time.process_time()
    started = time.monotonic()
    interval = 1.0 / args.rate if args.rate else 0.0
    total = k * m
    sent = 0
    for index in range(m):
        for task_id in tasks:
            text = chunk_text(index, size)
            sent_text[task_id].append(text)
            chunk = json.dumps({"type": "agent_chunk", "taskId": task_id, "chunk": text})
            await answering[task_id].send(chunk)
            sent += 1
            if interval:
                lag = started + sent * interval - time.monotonic()
                if lag > 0:
                    await asyncio.sleep(lag)
        if not interval:
            # unpaced: let the receiver (same process) drain once per round, or the server
            # rightly drops the user socket as a reader that stopped reading
            await asyncio.sleep(0)
    for task_id in tasks:
        await answering[task_id].send(
            json.dumps(
                {
                    "type": "agent_complete",
                    "taskId": task_id,
                    "content": "".join(sent_text[task_id]),
                }
            )
        )
    async with asyncio.timeout(120):
        await done.wait()
    elapsed = time.monotonic() - started
    server_cpu = cpu_of(server_pids) - server_before
    pg_cpu = cpu_of(postgres_pids) - pg_before
    client_cpu = time.process_time() - own_before
    await receiver
    await user.close()
    for agent in agents:
        await agent.close()

    problems = [f"{t}: {e}" for t, r in replies.items() for e in r.errors]
    for task_id in tasks:
        reply = replies.get(task_id)
        if reply is None or reply.received != m or not reply.ended:
            problems.append(f"{task_id}: {reply.received if reply else 0}/{m} chunks")
        elif reply.text != sent_text[task_id]:
            problems.append(f"{task_id}: text differs")
    await asyncio.sleep(0.5)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text, content, status::text FROM messages WHERE id = ANY($1::uuid[])", tasks
        )
    finally:
        await conn.close()
    stored = {r["id"]: r for r in rows}
    for task_id in tasks:
        row = stored.get(task_id)
        if (
            row is None
            or row["status"] != "completed"
            or row["content"] != "".join(sent_text[task_id])
        ):
            problems.append(f"{task_id}: stored reply wrong")

    latencies.sort()
    p50 = latencies[len(latencies) // 2] / 1e6 if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99)] / 1e6 if latencies else 0.0
    offered = f"{args.rate:g}/s" if args.rate else "unpaced"
    print(
        f"\n{k} replies x {m} chunks x {size} B, {offered}, {n_agents} agent socket(s),"
        f" {len(pids)} server process(es), {os.cpu_count()} CPUs\n"
    )
    print(
        "| chunks | seconds | chunks/s | server CPU µs/chunk | PostgreSQL CPU s | p50 ms "
        "| p99 ms | mean ms | load tool CPU µs/chunk | lost/reordered/wrong |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    mean = statistics.fmean(latencies) / 1e6 if latencies else 0.0
    print(
        f"| {total} | {elapsed:.2f} | {total / elapsed:,.0f} | {server_cpu / total * 1e6:.1f} "
        f"| {pg_cpu:.2f} | {p50:.2f} | {p99:.2f} | {mean:.2f} "
        f"| {client_cpu / total * 1e6:.1f} | {len(problems)} |"
    )
    for problem in problems[:20]:
        print("  problem:", problem)
    if problems:
        raise SystemExit(1)


async def main(args: argparse.Namespace) -> None:
    database = f"arinova_stream_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    dsn = f"{args.pg.rstrip('/')}/{database}"
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": args.redis,
        "RATE_LIMIT_MAX": "1000000000",
        "WS_MESSAGE_RATE_LIMIT": "1000000",
        "LOG_LEVEL": "WARNING",
        "WORKERS": "1",
    }
    if args.pure:
        env["ARINOVA_PURE"] = "1"
    if args.cluster:
        env["REDIS_CLUSTER"] = "true"
    if args.interval:
        # every stream paced as models produce text: one chunk per stream per interval
        args.rate = args.replies / args.interval
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        if args.server_cmd:
            # another server on this schema: ours creates and migrates the database first
            subprocess.run(  # noqa: ASYNC221 - once, before any load
                [sys.executable, "-m", "arinova", "migrate"], env=env, check=True
            )
        for _ in range(max(1, args.processes)):
            port = free_port()
            bases.append(f"http://127.0.0.1:{port}")
            ours = [sys.executable, "-m", "arinova", "serve", "--host", "127.0.0.1"]
            processes.append(
                subprocess.Popen(  # noqa: ASYNC220 - started before any load
                    args.server_cmd,
                    shell=True,
                    env={**env, "PORT": str(port), "NODE_ENV": "production"},
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
                if args.server_cmd
                else subprocess.Popen(  # noqa: ASYNC220 - started before any load
                    [*ours, "--port", str(port)], env=env
                )
            )
            await wait_healthy(bases[-1], processes[-1])
        await run(args, bases, dsn, [p.pid for p in processes])
    finally:
        for process in processes:
            stop(process)
        conn = await asyncpg.connect(f"{args.pg.rstrip('/')}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


def _ws(base: str) -> str:
    return "ws" + base.removeprefix("http")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-k", "--replies", type=int, default=50, help="concurrent replies")
    parser.add_argument("-m", "--chunks", type=int, default=200, help="chunks per reply")
    parser.add_argument("-b", "--bytes", type=int, default=64, help="characters per chunk")
    parser.add_argument("--rate", type=float, default=0.0, help="offered chunks/s (0: unpaced)")
    parser.add_argument("--pg", default="postgresql://root@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds between two chunks of one stream (sets --rate to replies/interval)",
    )
    parser.add_argument(
        "--agents",
        type=int,
        default=1,
        help="agents, each on its own socket, the conversations spread over them (1: one"
        " agent answers every reply on one socket)",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="server processes (2: user and agent apart)"
    )
    parser.add_argument(
        "--pure", action="store_true", help="servers on the pure-Python twins of arinova/_fast"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="--redis names a node of a Redis Cluster (benchmarks/redis_cluster.py starts one)",
    )
    parser.add_argument(
        "--server-cmd",
        help="a shell command starting another server in place of ours, for a side-by-side"
        " run (it gets PORT, DATABASE_URL and REDIS_URL; ours migrates the database first)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main(parse_args()))
