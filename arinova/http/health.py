"""GET /health: database and Redis liveness (contract rest.md §3.1)."""

from __future__ import annotations

from blacksheep import Request, Response

from arinova.db.queries.health import PING
from arinova.http import schemas as s
from arinova.http.apidoc import Doc
from arinova.http.responses import json_response
from arinova.http.router import ArinovaRouter
from arinova.state import AppState
from arinova.timefmt import iso_now

#: each check's bound; they run one after the other (one task fewer per request than
#: running them together). Redis is bounded by its client (``COMMAND_TIMEOUT_S``, the
#: same, and the stall's detection), PostgreSQL by asyncpg's statement timeout (and the
#: pool's wait, when every connection is in use): no ``asyncio.timeout`` on a probe's path
#: (a timer, a task lookup and two loop lookups per check, a tenth of its CPU).
CHECK_TIMEOUT_S = 2.0


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def db_ok() -> bool:
        try:
            async with state.db.acquire(timeout=CHECK_TIMEOUT_S) as conn:
                await conn.fetchval(PING.sql, timeout=CHECK_TIMEOUT_S)
            return True
        except Exception as exc:
            state.log.warning("health: database check failed: %r", exc)
            return False

    async def kv_ok() -> bool:
        try:
            return await state.kv.ping()
        except Exception as exc:
            state.log.warning("health: redis check failed: %r", exc)
            return False

    async def get_health(request: Request) -> Response:
        db = await db_ok()
        kv = await kv_ok()
        body = {
            "status": "ok" if db and kv else "degraded",
            "db": "ok" if db else "error",
            "redis": "ok" if kv else "error",
            "timestamp": iso_now(),
        }
        return json_response(200 if db and kv else 503, body)

    router.add_get(
        "/health",
        get_health,
        doc=Doc(
            "Database and Redis liveness",
            {200: s.SERVICE_HEALTH, 503: s.SERVICE_HEALTH},
            access="none",
            tag="health",
        ),
    )
