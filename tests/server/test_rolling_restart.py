"""SIGHUP to ``arinova serve``: a rolling restart under load, as clients see it.

REST requests run on fresh and kept-alive connections, a user socket watches a reply an
agent streams slowly; through the restart no request fails, the sockets close with 1012
(Service Restart), reconnect and sync, every stream the user saw start ends, and every
worker is a new process afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.server.test_cli import Running, start_serve, wait_healthy
from tests.support.auth import TRUSTED_ORIGIN, SignedIn, sign_up
from tests.support.redis_server import RedisServer
from tests.support.ws import Chat, recv, recv_until, send

__all__ = ["start_serve"]  # the fixture, shared with test_cli

RESTART = 1012
CHUNK_EVERY_S = 0.05


@dataclass
class RestLoad:
    """GET /health and an authenticated GET /api/agents in a loop, on fresh and on
    kept-alive connections; every answer and every failure recorded."""

    url: str
    user: SignedIn
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    retried: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _loop(self, kind: str, limits: httpx.Limits) -> None:
        cookie = {"cookie": self.user.cookie}
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=30) as client:
            while not self._stop.is_set():
                for path in ("/health", "/api/agents"):
                    try:
                        response = await self._get(client, kind, path, cookie)
                        self.statuses.append(response.status_code)
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{kind} {path}: {exc!r}")
                await asyncio.sleep(0.02)

    async def _get(
        self, client: httpx.AsyncClient, kind: str, path: str, headers: dict[str, str]
    ) -> httpx.Response:
        """A kept-alive connection the server closes while idle can cross a request sent
        on it: the client then retries the GET once on a new connection, as HTTP/1.1
        clients do (RFC 9112 §9.3.1); a fresh connection never retries."""
        try:
            return await client.get(path, headers=headers)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            if kind == "fresh":
                raise
            self.retried += 1
            return await client.get(path, headers=headers)

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        fresh = httpx.Limits(max_keepalive_connections=0)
        kept = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        loops = [
            asyncio.create_task(self._loop(kind, limits))
            for kind, limits in (("fresh", fresh), ("kept-alive", kept))
        ]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*loops)


async def connect_user(running: Running, user: SignedIn) -> ClientConnection:
    return await websockets.connect(
        f"{running.ws_url}/ws",
        additional_headers={"cookie": user.cookie},
        origin=TRUSTED_ORIGIN,  # type: ignore[arg-type]
        compression=None,
        ping_interval=None,
        max_queue=None,
    )


async def connect_agent(running: Running, token: str) -> ClientConnection:
    ws = await websockets.connect(
        f"{running.ws_url}/ws/agent", compression=None, ping_interval=None, max_queue=None
    )
    await send(ws, {"type": "agent_auth", "botToken": token})
    assert (await recv(ws))["type"] == "auth_ok"
    return ws


def close_code(ws: ClientConnection) -> int | None:
    rcvd = ws.protocol.close_rcvd
    return rcvd.code if rcvd is not None else None


@dataclass
class UserClient:
    """What the web client does: on a close it reconnects and syncs (websocket.md §13)."""

    running: Running
    user: SignedIn
    conversation_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    #: how many events had come when each socket closed
    closed_after: list[int] = field(default_factory=list)
    started: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)
    seq: int = 0

    async def run(self) -> None:
        while True:
            ws = await self._reconnect()
            await send(ws, {"type": "sync", "conversations": {self.conversation_id: self.seq}})
            try:
                async for raw in ws:
                    self._saw(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            self.closes.append(close_code(ws))
            self.closed_after.append(len(self.events))

    async def _reconnect(self) -> ClientConnection:
        async with asyncio.timeout(30):
            while True:
                try:
                    return await connect_user(self.running, self.user)
                except (OSError, websockets.InvalidHandshake):
                    await asyncio.sleep(0.1)

    def _saw(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind = event["type"]
        if kind == "stream_start":
            self.started.add(event["messageId"])
        elif kind in ("stream_end", "stream_error"):
            self.ended.add(event["messageId"])
        if "seq" in event:
            self.seq = max(self.seq, int(event["seq"]))


@dataclass
class SlowAgent:
    """Answers each task with a chunk every 50 ms for ``chunks`` chunks, then completes;
    on a close it reconnects (its tasks failed with the socket: a new socket does not
    continue them). ``connected`` is set while a socket of it is authenticated."""

    running: Running
    token: str
    chunks: int
    closes: list[int | None] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            ws = await connect_agent(self.running, self.token)
            self.connected.set()
            streams: set[asyncio.Task[None]] = set()
            try:
                async for raw in ws:
                    event = json.loads(raw)
                    if event["type"] == "task":
                        self.tasks.append(event["taskId"])
                        stream = asyncio.create_task(self._stream(ws, event["taskId"]))
                        streams.add(stream)
                        stream.add_done_callback(streams.discard)
            except websockets.ConnectionClosed:
                pass
            self.connected.clear()
            for stream in list(streams):
                stream.cancel()
            self.closes.append(close_code(ws))

    async def _stream(self, ws: ClientConnection, task_id: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            for i in range(self.chunks):
                await send(ws, {"type": "agent_chunk", "taskId": task_id, "chunk": f"{i} "})
                await asyncio.sleep(CHUNK_EVERY_S)
            await send(ws, {"type": "agent_complete", "taskId": task_id, "content": "done"})


async def eventually(check: Any, wait: float = 30.0, every: float = 0.05) -> None:
    async with asyncio.timeout(wait):
        while True:
            if check():
                return
            await asyncio.sleep(every)


async def workers_of(running: Running, count: int) -> set[int]:
    await eventually(lambda: len(running.workers()) == count)
    return set(running.workers())


async def rolling_restart_under_load(running: Running, workers: int) -> None:
    before = await workers_of(running, workers)
    user = await sign_up(running.url)
    chat = await Chat.create(running, user)
    conv = chat.conversation_id
    client = UserClient(running, user, conv)
    agent = SlowAgent(running, chat.token, chunks=400)  # 20 s: longer than the restart
    load = RestLoad(running.url, user)
    clients = [asyncio.create_task(client.run()), asyncio.create_task(agent.run())]
    try:
        await _restart_and_check(running, workers, before, conv, client, agent, load)
    finally:
        # a failed check must not leave the clients reconnecting into later tests
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)


async def _restart_and_check(
    running: Running,
    workers: int,
    before: set[int],
    conv: str,
    client: UserClient,
    agent: SlowAgent,
    load: RestLoad,
) -> None:
    async with load.running():
        # a user socket to send from: the client's own reconnects around it
        sender = await connect_user(running, client.user)
        # a message sent before the agent's auth_ok is answered "not connected"
        await eventually(agent.connected.is_set)
        await send(sender, {"type": "send_message", "conversationId": conv, "content": "go"})
        await eventually(lambda: len(client.started) == 1)
        (streaming,) = client.started
        await eventually(lambda: sum(e["type"] == "stream_chunk" for e in client.events) >= 5)
        running.process.send_signal(signal.SIGHUP)
        replaced = re.compile(r"worker \d+ replaced: pid (\d+) -> pid (\d+) \(old one drained\)")
        await eventually(lambda: len(replaced.findall(running.log.read_text())) == workers, wait=90)
        with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
            async with asyncio.timeout(10):
                await sender.recv()
        assert close_code(sender) == RESTART
        # the stream the agent was sending when its socket closed ended for the user
        await eventually(lambda: client.started <= client.ended, wait=15)
        if workers == 1:
            # the agent's socket closed first: the user heard the reply fail before its
            # own socket closed (after a reconnect its sync would go past the reply)
            before_close = client.events[: client.closed_after[0]]
            seen = [(e["type"], e.get("messageId")) for e in before_close]
            assert ("stream_error", streaming) in seen, before_close
        await asyncio.sleep(0.5)  # requests keep going on the new workers
    log = running.log.read_text()
    assert load.failures == [], load.failures
    assert load.statuses and all(200 <= s < 300 for s in load.statuses), load.statuses
    assert len(load.statuses) > 100
    assert load.retried <= workers  # at most one idle connection closed per drained worker
    assert RESTART in client.closes and RESTART in agent.closes, (client.closes, agent.closes)
    assert set(client.closes) <= {RESTART}, client.closes
    assert set(agent.closes) <= {RESTART}, agent.closes
    # a restart is routine: nothing in the log says otherwise
    untoward = [line for line in log.splitlines() if re.search(r'"level":"(warning|error)"', line)]
    assert untoward == [], untoward
    old_pids = {int(old) for old, _ in replaced.findall(log)}
    new_pids = {int(new) for _, new in replaced.findall(log)}
    assert old_pids == before
    assert set(running.workers()) == new_pids and not new_pids & before
    # after the restart a new stream works end to end
    agent.chunks = 3
    await wait_healthy(running.url)
    first = agent.tasks[0]
    await eventually(agent.connected.is_set)
    ws = await connect_user(running, client.user)
    await send(ws, {"type": "send_message", "conversationId": conv, "content": "again"})
    got = await recv_until(ws, "stream_start", wait=10)
    message_id = got[-1]["messageId"]
    assert message_id != first
    ended = await recv_until(ws, "stream_end", wait=30)
    assert all(e["messageId"] == message_id for e in ended if "messageId" in e)
    await ws.close()


@pytest.mark.parametrize("workers", [2, 1])
async def test_sighup_replaces_the_workers_under_load(
    start_serve: Any, redis_server: RedisServer, workers: int
) -> None:
    # a Redis of its own: a server of an earlier test that stopped without cleaning up
    # (killed) would be taken over by these workers, with a warning in their log
    running = await start_serve(
        "--workers",
        str(workers),
        LOG_LEVEL="INFO",
        WS_MESSAGE_RATE_LIMIT="1000",
        REDIS_URL=redis_server.url(),
    )
    await rolling_restart_under_load(running, workers)
    running.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        await running.process.wait()
    assert running.process.returncode == 0
