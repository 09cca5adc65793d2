"""The processes of a deployment meet in the Redis they are given: on a cluster, the
coordinator's keys (one hash tag) and a user's channel live on the cluster's nodes."""

from __future__ import annotations

import asyncio
from typing import Any

from arinova.kv import keys
from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.realtime.scaleout.conftest import SharedRedis
from tests.support.auth import sign_up
from tests.support.servers import StartServer
from tests.support.ws import Chat, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05, process_beat_s=0.2, process_ttl_s=1.0)


def pid_of(server: Server) -> str:
    coordinator: Any = server.state.realtime.coordinator  # type: ignore[attr-defined]
    return str(coordinator.pid)


async def test_processes_are_live_and_subscribed_where_they_were_told(
    start_module_server: StartServer, shared_redis: SharedRedis
) -> None:
    servers = [await start_module_server(realtime=CONFIG) for _ in range(2)]
    chat = await Chat.create(servers[0], await sign_up(servers[0].url))
    async with shared_redis.client() as redis, user_socket(servers[1], chat.user):
        live = {member.decode() for member in await redis.zrange(keys.RT_PROCS, 0, -1)}
        assert {pid_of(server) for server in servers} <= live
        channel = keys.rt_user_channel(chat.user.id)
        for _ in range(100):
            if shared_redis.cluster:
                node = redis.get_node_from_key(channel)  # type: ignore[union-attr]
                counts = await redis.pubsub_shardnumsub(channel, target_nodes=node)  # type: ignore[union-attr]
            else:
                counts = await redis.pubsub_numsub(channel)
            if dict(counts).get(channel.encode()) == 1:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"{channel} has no subscriber: {counts}")
