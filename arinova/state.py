"""The one state object of a server process, handed to every area at construction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from arinova.db.pool import QueryCounter
from arinova.hooks import NoRealtime, Realtime

if TYPE_CHECKING:
    import asyncpg

    from arinova.auth import Authenticator
    from arinova.kv import KV
    from arinova.outbound import Outbound
    from arinova.push.service import PushService
    from arinova.sandbox.service import Sandbox
    from arinova.settings import Settings
    from arinova.storage import Storage


@dataclass(eq=False)
class AppState:
    settings: Settings
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("arinova"))
    #: statements sent to PostgreSQL, counted only with ``settings.count_queries``
    queries: QueryCounter = field(default_factory=QueryCounter)
    #: the socket layer, as the REST layer sees it (replaced when the realtime layer starts)
    realtime: Realtime = field(default_factory=NoRealtime)
    _db: asyncpg.Pool | None = None
    _kv: KV | None = None
    _auth: Authenticator | None = None
    _push: PushService | None = None
    _sandbox: Sandbox | None = None
    _storage: Storage | None = None
    _outbound: Outbound | None = None

    @property
    def db(self) -> asyncpg.Pool:
        if self._db is None:
            raise RuntimeError("the database pool is not open (server not started)")
        return self._db

    @property
    def kv(self) -> KV:
        if self._kv is None:
            raise RuntimeError("the key-value store is not open (server not started)")
        return self._kv

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            raise RuntimeError("authentication is not ready (server not started)")
        return self._auth

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("file storage is not open (server not started)")
        return self._storage

    @property
    def outbound(self) -> Outbound:
        """The process's guarded HTTP client for agent probes (SSRF-safe)."""
        if self._outbound is None:
            from arinova.outbound import Outbound

            self._outbound = Outbound(self.settings.allow_private_outbound)
        return self._outbound

    @property
    def push(self) -> PushService:
        if self._push is None:
            raise RuntimeError("push is not ready (server not started)")
        return self._push

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the sandbox is not ready (server not started)")
        return self._sandbox

    async def open(self) -> None:
        from arinova.auth import Authenticator
        from arinova.db.migrate import prepare_database
        from arinova.db.pool import create_pool
        from arinova.kv import create_kv
        from arinova.storage import open_storage

        await prepare_database(self.settings.database_url)
        self._db = await create_pool(
            self.settings.database_url,
            on_query=self.queries if self.settings.count_queries else None,
        )
        self._kv = await create_kv(self.settings.redis_url)
        self._auth = Authenticator(self.settings, self._db, self._kv, self.log)
        from arinova.push.service import PushService
        from arinova.sandbox.service import Sandbox

        self._push = PushService(self.settings, self._db, self._kv, self.log)
        self._sandbox = Sandbox()
        self._storage = await open_storage(self.settings)

    async def close(self) -> None:
        if self._sandbox is not None:
            await self._sandbox.close()
            self._sandbox = None
        if self._push is not None:
            await self._push.close()
            self._push = None
        if self._outbound is not None:
            await self._outbound.aclose()
            self._outbound = None
        if self._storage is not None:
            await self._storage.close()
            self._storage = None
        if self._auth is not None:
            await self._auth.close()
            self._auth = None
        if self._kv is not None:
            await self._kv.close()
            self._kv = None
        if self._db is not None:
            await self._db.close()
            self._db = None
