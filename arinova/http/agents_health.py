"""Agent health (contract rest.md §3.4, behaviours.md §5).

A connected ``/ws/agent`` socket answers ``online``/``websocket`` at once. Otherwise the
result of probing ``a2aEndpoint`` (through the SSRF-safe client) is cached in the key-value
store under ``agent:health:<id>`` for 60 s and served from there while it lives.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final
from uuid import UUID

import orjson
from blacksheep import Request, Response

from arinova.db.queries import agents as q
from arinova.http import schemas as s
from arinova.http.agents_common import agent_id_of, agent_not_found
from arinova.http.apidoc import Doc
from arinova.http.responses import json_response
from arinova.http.router import ArinovaRouter
from arinova.kv import keys
from arinova.outbound import probe
from arinova.state import AppState
from arinova.timefmt import iso_now

HEALTH_TTL_S: Final = 60


def websocket_health() -> dict[str, Any]:
    return {"status": "online", "mode": "websocket", "latencyMs": 0, "checkedAt": iso_now()}


async def probed_health(state: AppState, agent_id: UUID, endpoint: str | None) -> dict[str, Any]:
    """Probe now and cache the result (``{"status","latencyMs","checkedAt"}``)."""
    result = await probe(state.outbound, endpoint)
    health = {"status": result.status, "latencyMs": result.latency_ms, "checkedAt": iso_now()}
    await state.kv.set(keys.agent_health(agent_id), orjson.dumps(health), ex=HEALTH_TTL_S)
    return health


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def agent_health(request: Request) -> Response:
        user = await state.auth.require_user(request)
        row = await state.db.fetchrow(q.ENDPOINT.sql, agent_id_of(request), user.id)
        if row is None:
            raise agent_not_found()
        agent_id: UUID = row["id"]
        if state.realtime.agent_connected(str(agent_id)):
            return json_response(200, websocket_health())
        cached = await state.kv.get(keys.agent_health(agent_id))
        if cached:
            return json_response(200, orjson.loads(cached))
        return json_response(200, await probed_health(state, agent_id, row["a2a_endpoint"]))

    async def all_agents_health(request: Request) -> Response:
        user = await state.auth.require_user(request)
        rows = await state.db.fetch(q.ENDPOINTS.sql, user.id)
        results: list[dict[str, Any] | None] = [None] * len(rows)
        unknown: list[int] = []
        for index, row in enumerate(rows):
            if state.realtime.agent_connected(str(row["id"])):
                results[index] = {"agentId": str(row["id"]), **websocket_health()}
            else:
                unknown.append(index)
        if unknown:
            cached = await state.kv.mget([keys.agent_health(rows[i]["id"]) for i in unknown])
            to_probe: list[int] = []
            for index, value in zip(unknown, cached, strict=True):
                if value:
                    results[index] = {"agentId": str(rows[index]["id"]), **orjson.loads(value)}
                else:
                    to_probe.append(index)
            probed = await asyncio.gather(
                *(probed_health(state, rows[i]["id"], rows[i]["a2a_endpoint"]) for i in to_probe)
            )
            for index, health in zip(to_probe, probed, strict=True):
                results[index] = {"agentId": str(rows[index]["id"]), **health}
        return json_response(200, results)

    router.add_get(
        "/api/agents/health",
        all_agents_health,
        doc=Doc(
            "Health of every own agent",
            {200: s.AGENTS_HEALTH},
            description="Probes the agent's endpoint, waiting up to 5 s for it (behaviours.md §5).",
            tag="agents",
        ),
    )
    router.add_get(
        "/api/agents/:id/health",
        agent_health,
        doc=Doc(
            "Health of an own agent",
            {200: s.AGENT_HEALTH},
            description="Probes the agent's endpoint, waiting up to 5 s for it (behaviours.md §5).",
            tag="agents",
        ),
    )
