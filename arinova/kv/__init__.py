"""Shared key-value state: Redis when ``REDIS_URL`` is set, else a bounded in-memory stand-in.

Both implement ``KV`` (``base.py``) with the same semantics, so every feature works in a
single process without Redis; more than one worker or instance needs Redis.
"""

from __future__ import annotations

from arinova.kv.base import KV


async def create_kv(redis_url: str) -> KV:
    if redis_url:
        from arinova.kv.redis import RedisKV

        return await RedisKV.connect(redis_url)
    from arinova.kv.memory import MemoryKV

    return MemoryKV()


__all__ = ["KV", "create_kv"]
