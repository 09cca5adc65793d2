"""Agent health (rest.md §3.4, behaviours.md §5): socket first, then the 60 s cache, then a
probe through the SSRF-safe client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from arinova.server import Server
from tests.http.agents_fixtures import (
    User,
    agent_server,  # noqa: F401 - fixture
    db_connect,
    guarded_server,  # noqa: F401 - fixture
    new_user,
)
from tests.support.ws import agent_socket
from tests.test_outbound import LocalTarget

ISO_RX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
NOT_FOUND = {"error": "Agent not found"}


@pytest.fixture
async def owner(agent_server: Server) -> User:  # noqa: F811
    return await new_user(agent_server)


@pytest.fixture
async def client(agent_server: Server, owner: User) -> Any:  # noqa: F811
    async with owner.client(agent_server) as c:
        yield c


@pytest.fixture
async def target() -> AsyncIterator[LocalTarget]:
    srv = LocalTarget()
    await srv.start()
    yield srv
    await srv.stop()


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/agents", json={"name": "Probe me", **body})
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


async def cached(server: Server, agent_id: str) -> tuple[Any, int]:
    kv = server.state.kv
    raw = await kv.get(f"agent:health:{agent_id}")
    return (None if raw is None else orjson.loads(raw)), await kv.ttl(f"agent:health:{agent_id}")


async def test_connected_agent_is_online_over_websocket_without_cache(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    agent = await create(client)
    async with agent_socket(agent_server, agent["secretToken"]):
        response = await client.get(f"/api/agents/{agent['id']}/health")
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["status", "mode", "latencyMs", "checkedAt"]
        assert ISO_RX.fullmatch(body["checkedAt"])
        assert body == {
            "status": "online",
            "mode": "websocket",
            "latencyMs": 0,
            "checkedAt": body["checkedAt"],
        }
        assert (await cached(agent_server, agent["id"]))[0] is None


async def test_agent_without_endpoint_is_offline_and_cached(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    agent = await create(client)
    response = await client.get(f"/api/agents/{agent['id']}/health")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["status", "latencyMs", "checkedAt"]
    assert body == {"status": "offline", "latencyMs": None, "checkedAt": body["checkedAt"]}
    stored, ttl = await cached(agent_server, agent["id"])
    assert stored == body
    assert 55 <= ttl <= 60
    again = await client.get(f"/api/agents/{agent['id']}/health")
    assert again.json() == body  # served from the cache: same checkedAt


async def test_probe_results_online_and_error(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    target: LocalTarget,
) -> None:
    up = await create(client, a2aEndpoint=target.route("/up", 200, delay=0.02))
    broken = await create(client, a2aEndpoint=target.route("/broken", 503))
    body = (await client.get(f"/api/agents/{up['id']}/health")).json()
    assert body["status"] == "online"
    assert isinstance(body["latencyMs"], int) and 15 <= body["latencyMs"] < 5000
    body = (await client.get(f"/api/agents/{broken['id']}/health")).json()
    assert body["status"] == "error"
    assert isinstance(body["latencyMs"], int)
    assert [path for path, _ in target.seen] == ["/up", "/broken"]
    # cached: no second probe within the minute
    await client.get(f"/api/agents/{up['id']}/health")
    assert len(target.seen) == 2


async def test_cached_value_is_served_as_stored(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    """A value written by another worker (or by the original server) is returned verbatim."""
    agent = await create(client)
    stored = {"status": "error", "latencyMs": 42, "checkedAt": "2026-02-20T09:15:03.123Z"}
    await agent_server.state.kv.set(f"agent:health:{agent['id']}", orjson.dumps(stored), ex=60)
    assert (await client.get(f"/api/agents/{agent['id']}/health")).json() == stored


async def test_unreachable_endpoint_is_offline(client: httpx.AsyncClient) -> None:
    closed = LocalTarget()
    await closed.start()
    await closed.stop()
    agent = await create(client, a2aEndpoint=closed.url("/gone"))
    body = (await client.get(f"/api/agents/{agent['id']}/health")).json()
    assert body == {"status": "offline", "latencyMs": None, "checkedAt": body["checkedAt"]}


async def test_private_endpoint_is_not_probed(
    guarded_server: Server,  # noqa: F811
    target: LocalTarget,
) -> None:
    """SSRF (quirk Q30): by default a loopback endpoint is refused, reported offline."""
    user = await new_user(guarded_server)
    async with user.client(guarded_server) as c:
        agent = await create(c, a2aEndpoint=target.route("/internal", 200))
        body = (await c.get(f"/api/agents/{agent['id']}/health")).json()
        assert body == {"status": "offline", "latencyMs": None, "checkedAt": body["checkedAt"]}
        batch = (await c.get("/api/agents/health")).json()
        assert [(h["agentId"], h["status"]) for h in batch] == [(agent["id"], "offline")]
    assert target.seen == []


@pytest.mark.parametrize("agent_id", [UNKNOWN_ID, "nope", "%7B%7D"])
async def test_unknown_agent_is_not_found(client: httpx.AsyncClient, agent_id: str) -> None:
    response = await client.get(f"/api/agents/{agent_id}/health")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


async def test_another_users_agent_is_not_found(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    agent = await create(client)
    other = await new_user(agent_server)
    async with other.client(agent_server) as c:
        response = await c.get(f"/api/agents/{agent['id']}/health")
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
        assert (await c.get("/api/agents/health")).json() == []


async def test_batch_health_of_every_own_agent(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    target: LocalTarget,
) -> None:
    assert (await client.get("/api/agents/health")).json() == []
    on_socket = await create(client, name="socket")
    from_cache = await create(client, name="cache")
    probed = await create(client, name="probe", a2aEndpoint=target.route("/ok", 200))
    silent = await create(client, name="silent")
    stored = {"status": "online", "latencyMs": 7, "checkedAt": "2026-02-20T09:15:03.123Z"}
    await agent_server.state.kv.set(f"agent:health:{from_cache['id']}", orjson.dumps(stored), ex=60)
    async with agent_socket(agent_server, on_socket["secretToken"]):
        response = await client.get("/api/agents/health")
    assert response.status_code == 200
    body = response.json()
    assert [list(item) for item in body] == [
        ["agentId", "status", "mode", "latencyMs", "checkedAt"],
        ["agentId", "status", "latencyMs", "checkedAt"],
        ["agentId", "status", "latencyMs", "checkedAt"],
        ["agentId", "status", "latencyMs", "checkedAt"],
    ]
    assert body[0] == {
        "agentId": on_socket["id"],
        "status": "online",
        "mode": "websocket",
        "latencyMs": 0,
        "checkedAt": body[0]["checkedAt"],
    }
    assert body[1] == {"agentId": from_cache["id"], **stored}
    assert body[2]["agentId"] == probed["id"] and body[2]["status"] == "online"
    assert body[3] == {
        "agentId": silent["id"],
        "status": "offline",
        "latencyMs": None,
        "checkedAt": body[3]["checkedAt"],
    }
    # probe results are cached for the single-agent route too
    single = (await client.get(f"/api/agents/{probed['id']}/health")).json()
    assert single == {k: v for k, v in body[2].items() if k != "agentId"}
    assert (await cached(agent_server, on_socket["id"]))[0] is None


async def test_batch_health_runs_a_fixed_number_of_queries(
    agent_server: Server,  # noqa: F811
) -> None:
    counter = agent_server.state.queries

    async def cost(agents: int) -> int:
        user = await new_user(agent_server)
        conn = await db_connect(agent_server)
        try:
            await conn.executemany(
                "INSERT INTO agents (name, owner_id) VALUES ($1, $2)",
                [(f"a{i}", user.id) for i in range(agents)],
            )
        finally:
            await conn.close()
        async with user.client(agent_server) as c:
            await c.get("/api/agents")  # warm the session cache
            before = counter.count
            response = await c.get("/api/agents/health")
            assert len(response.json()) == agents
            return counter.count - before

    assert await cost(1) == await cost(200) <= 2
