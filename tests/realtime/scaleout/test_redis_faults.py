"""Processes on a private Redis that the test stalls or restarts: live chunks between
processes survive a Redis stall (every chunk once, in order); after Redis restarts empty
every message is answered and no conversation stays marked busy by a process that runs
nothing in it; a conversation's mark goes when its owner does, and a hand-over that no
process takes is answered and lets the queue move on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from arinova.kv import keys
from arinova.realtime.coordinator import QueuedReply
from arinova.realtime.redis_coordinator import MARK_TTL_PROCESS_TTLS
from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.realtime.scaleout.conftest import PrivateRedis
from tests.support.auth import sign_up
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, recv, recv_until, send, silent, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05, process_beat_s=0.2, process_ttl_s=1.0)
CHUNKS = 30
CONVERSATIONS = 6
#: every message sent once Redis is back is answered within this
ANSWERED_WITHIN_S = 10.0
#: how long a conversation's mark lives unless its owner refreshes it (3 s here)
MARK_TTL_S = CONFIG.process_ttl_s * MARK_TTL_PROCESS_TTLS


def settings_of(redis: PrivateRedis) -> dict[str, Any]:
    return {**redis.shared.settings, "ws_message_rate_limit": 1000, "realtime": CONFIG}


async def test_a_redis_stall_mid_stream_loses_no_chunk(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    user_side = await start_server(**settings_of(private_redis))
    agent_side = await start_server(**settings_of(private_redis))
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    async with (
        user_socket(user_side, chat.user) as ws,
        agent_socket(agent_side, chat.token) as bot,
    ):
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        for i in range(CHUNKS):
            if i == 10:
                await private_redis.pause()
            if i == 20:
                await asyncio.sleep(10)  # a stall of ten seconds
                await private_redis.resume()
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": f"{i};"})
            await asyncio.sleep(0.02)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "done"})
        chunks: list[str] = []
        while True:
            event = await asyncio.wait_for(recv(ws), 20)
            if event["type"] == "stream_chunk":
                chunks.append(event["chunk"])
                continue
            assert event["type"] == "stream_end", event
            break
    assert chunks == [f"{i};" for i in range(CHUNKS)]


# -- Redis restarted empty -------------------------------------------------------------


@dataclass
class Talk:
    """One user on one process talking to their agent on the other; the agent answers
    every task with a chunk, then (once ``finish`` is set) completes it."""

    conversation_id: str
    ws: ClientConnection
    bot: ClientConnection
    finish: asyncio.Event
    tasks: list[str] = field(default_factory=list)
    #: the user's events so far
    events: list[dict[str, Any]] = field(default_factory=list)

    async def say(self, content: str) -> None:
        await send(
            self.ws,
            {"type": "send_message", "conversationId": self.conversation_id, "content": content},
        )

    async def answer_tasks(self) -> None:
        while True:
            task = json.loads(await self.bot.recv())
            if task.get("type") != "task":
                continue
            self.tasks.append(task["content"])
            task_id = task["taskId"]
            await send(self.bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "re:"})
            await self.finish.wait()
            await send(self.bot, {"type": "agent_complete", "taskId": task_id, "content": "ok"})

    async def next_event(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(ANSWERED_WITHIN_S):
                event: dict[str, Any] = json.loads(await self.ws.recv())
        except TimeoutError:
            raise AssertionError(f"no event in {ANSWERED_WITHIN_S} s: {self.seen()}") from None
        self.events.append(event)
        return event

    async def replies(self, count: int, within: float) -> None:
        """Until ``count`` more replies ended, each one started before (stream_start)."""
        ended = 0
        try:
            async with asyncio.timeout(within):
                while ended < count:
                    event = await self.next_event()
                    if event["type"] in ("stream_end", "stream_error"):
                        assert event["type"] == "stream_end", self.seen()
                        started = {
                            e["messageId"] for e in self.events if e["type"] == "stream_start"
                        }
                        assert event["messageId"] in started, self.seen()
                        ended += 1
        except TimeoutError:
            raise AssertionError(
                f"{count - ended} replies missing: {self.seen()}; the agent had {self.tasks}"
            ) from None

    def seen(self) -> str:
        return "; ".join(
            f"{e['type']} {e.get('seq', '')} {e.get('error', '')}".strip() for e in self.events
        )


@contextlib.asynccontextmanager
async def talks(one: Server, two: Server, finish: asyncio.Event) -> AsyncIterator[list[Talk]]:
    """``CONVERSATIONS`` users, each with their own agent, half of the users on each
    process and every agent on the other one."""
    async with contextlib.AsyncExitStack() as stack:
        made: list[Talk] = []
        for i in range(CONVERSATIONS):
            user_side, agent_side = (one, two) if i % 2 == 0 else (two, one)
            chat = await Chat.create(user_side, await sign_up(user_side.url))
            ws = await stack.enter_async_context(user_socket(user_side, chat.user))
            bot = await stack.enter_async_context(agent_socket(agent_side, chat.token))
            made.append(Talk(chat.conversation_id, ws, bot, finish))
        answering = [asyncio.create_task(t.answer_tasks()) for t in made]
        try:
            yield made
        finally:
            for task in answering:
                task.cancel()
            await asyncio.gather(*answering, return_exceptions=True)


async def pair(start_server: StartServer, private_redis: PrivateRedis) -> tuple[Server, Server]:
    return (
        await start_server(**settings_of(private_redis)),
        await start_server(**settings_of(private_redis)),
    )


async def replies(chats: list[Talk], count: int) -> None:
    """Every user sees ``count`` more replies end, all within ``ANSWERED_WITHIN_S``."""
    await asyncio.gather(*(talk.replies(count, ANSWERED_WITHIN_S) for talk in chats))


async def marks_without_reply(redis: Any, servers: tuple[Server, ...]) -> list[str]:
    """The ``rt:active:*`` marks naming a process that is not live, or that runs no reply
    of that conversation."""
    now_ms = (await redis.time())[0] * 1000
    live = {m.decode() for m in await redis.zrangebyscore(keys.RT_PROCS, now_ms, "+inf")}
    running = {
        (server.state.realtime.coordinator.pid, task.conversation_id)  # type: ignore[attr-defined]
        for server in servers
        for task in server.state.realtime.hub.tasks.values()
    }
    wrong = []
    async for key in redis.scan_iter(match=keys.rt_active("*")):
        value = await redis.get(key)
        if value is None:
            continue
        owner = value.decode().split("|")[0]
        conversation_id = key.decode().removeprefix(keys.rt_active(""))
        if owner not in live or (owner, conversation_id) not in running:
            wrong.append(f"{key.decode()} = {value.decode()}")
    return wrong


async def no_mark_without_reply(private_redis: PrivateRedis, servers: tuple[Server, ...]) -> None:
    """Every reply has ended: within a few beats no mark is left that nobody releases."""
    async with private_redis.shared.client() as redis:
        for _ in range(50):
            wrong = await marks_without_reply(redis, servers)
            if not wrong:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"conversations marked busy with no reply: {wrong}")


async def test_redis_restarted_mid_stream_every_later_message_is_answered(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    """Replies streaming while Redis restarts end; the messages sent right after (their
    hand-overs race the processes' reconnects) are all answered."""
    servers = await pair(start_server, private_redis)
    finish = asyncio.Event()
    async with talks(*servers, finish) as chats:
        for talk in chats:
            await talk.say("first")
        for talk in chats:
            events = [await talk.next_event(), await talk.next_event()]
            assert [e["type"] for e in events] == ["stream_start", "stream_chunk"]
        await private_redis.restart()
        for talk in chats:
            await talk.say("second")
            await talk.say("third")
        finish.set()
        await replies(chats, 3)  # the one streaming, then the two sent since
        assert sorted(len(t.tasks) for t in chats) == [3] * CONVERSATIONS
        await no_mark_without_reply(private_redis, servers)


async def test_redis_restarted_between_messages_every_later_message_is_answered(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    """Redis restarts with no reply running: the messages sent right after are answered."""
    servers = await pair(start_server, private_redis)
    finish = asyncio.Event()
    finish.set()
    async with talks(*servers, finish) as chats:
        for talk in chats:
            await talk.say("before")
        await replies(chats, 1)
        await private_redis.restart()
        for talk in chats:
            await talk.say("after")
            await talk.say("and after")
        await replies(chats, 2)
        assert sorted(len(t.tasks) for t in chats) == [3] * CONVERSATIONS
        await no_mark_without_reply(private_redis, servers)


# -- marks whose owner is gone or deaf ------------------------------------------------------


async def hold(server: Server, chat: Chat) -> None:
    """``server`` claims the chat's conversation: it is about to run a reply there."""
    item = QueuedReply(chat.user.id, chat.conversation_id, "held")
    assert await server.state.realtime.coordinator.claim(item) == item


async def test_a_mark_whose_owner_stops_beating_expires(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    owner = await start_server(**settings_of(private_redis))
    chat = await Chat.create(owner, await sign_up(owner.url))
    conv = chat.conversation_id
    await hold(owner, chat)
    async with private_redis.shared.client() as redis:
        ttl_ms = await redis.pttl(keys.rt_active(conv))
        assert 0 < ttl_ms <= MARK_TTL_S * 1000
        # the owner's beat keeps it while the owner lives
        await asyncio.sleep(MARK_TTL_S * 1.5)
        assert await redis.exists(keys.rt_active(conv))
        await owner.stop()
        for _ in range(int(MARK_TTL_S * 10) + 20):
            if not await redis.exists(keys.rt_active(conv)):
                break
            await asyncio.sleep(0.1)
        assert not await redis.exists(keys.rt_active(conv))
    # the next message of that conversation, on a process started since, is answered
    server = await start_server(**settings_of(private_redis))
    async with user_socket(server, chat.user) as ws, agent_socket(server, chat.token) as bot:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task = await recv(bot)
        await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
        got = await recv_until(ws, "stream_end")
        assert [e["type"] for e in got] == ["stream_start", "stream_end"]


async def test_a_queue_behind_a_dead_processs_claim_moves_on(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    server = await start_server(**settings_of(private_redis))
    owner = await start_server(**settings_of(private_redis))
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with user_socket(server, chat.user) as ws, agent_socket(server, chat.token) as bot:
        await hold(owner, chat)
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        assert await silent(bot, 0.5)  # waiting behind the claim
        await owner.stop()  # it dies before starting its reply
        task = await recv(bot, ANSWERED_WITHIN_S)
        assert task["content"] == "hi"
        await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
        got = await recv_until(ws, "stream_end")
        assert [e["type"] for e in got] == ["stream_start", "stream_end"]
        await no_mark_without_reply(private_redis, (server,))


async def test_a_hand_over_nobody_takes_is_answered_and_the_queue_moves_on(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    """The agent's process is live but hears nothing of the bus: each message gets the
    agent's "not connected" reply once the hand-over is not taken, in order."""
    server = await start_server(**settings_of(private_redis))
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with private_redis.shared.client() as redis:
        now_ms = (await redis.time())[0] * 1000
        await redis.zadd(keys.RT_PROCS, {"deaf": now_ms + 600_000})
        await redis.hset(keys.RT_AGENTS, chat.agent_id, "deaf")
    async with user_socket(server, chat.user) as ws:
        for content in ("one", "two"):
            await send(ws, {"type": "send_message", "conversationId": conv, "content": content})
        for seq in (3, 4):  # the user's messages are seqs 1 and 2
            got = await recv_until(ws, "stream_error", 2 * MARK_TTL_S + 2)
            assert [(e["type"], e["seq"]) for e in got] == [
                ("stream_start", seq),
                ("stream_error", seq),
            ]
            assert "is not connected" in got[-1]["error"]
    await no_mark_without_reply(private_redis, (server,))


async def test_a_hand_over_whose_mark_is_lost_before_it_is_taken_is_answered(
    start_server: StartServer, private_redis: PrivateRedis
) -> None:
    """The mark of a hand-over is lost (Redis lost its data) before the agent's process
    took it, and the ``run`` was never heard: nothing says the reply was taken, so the
    message is claimed again and answered where the agent is now."""
    user_side = await start_server(**settings_of(private_redis))
    agent_side = await start_server(**settings_of(private_redis))
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    async with private_redis.shared.client() as redis:
        now_ms = (await redis.time())[0] * 1000
        await redis.zadd(keys.RT_PROCS, {"deaf": now_ms + 600_000})
        await redis.hset(keys.RT_AGENTS, chat.agent_id, "deaf")
        async with user_socket(user_side, chat.user) as ws:
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
            for _ in range(50):
                if await redis.get(keys.rt_active(conv)):
                    break
                await asyncio.sleep(0.02)
            assert await silent(ws, 0.3)  # handed to "deaf", which never takes it
            await redis.delete(keys.rt_active(conv))
            async with agent_socket(agent_side, chat.token) as bot:
                task = await recv(bot, ANSWERED_WITHIN_S)
                assert task["content"] == "hi"
                await send(
                    bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"}
                )
                got = await recv_until(ws, "stream_end")
                assert [e["type"] for e in got] == ["stream_start", "stream_end"]
    await no_mark_without_reply(private_redis, (user_side, agent_side))
