"""Agents: create, list, get, update, delete, skills, token rotation, stats, history
(contract rest.md §3.3). Export and health live in ``agents_export`` and ``agents_health``;
the avatar upload belongs to the uploads area.

Every route checks the session first (401), then the body (400 VALIDATION_ERROR,
decisions.md Q01), then the id: a non-UUID id, an unknown id and another user's agent
all answer 404 ``{"error":"Agent not found"}`` (quirk Q02).
"""

from __future__ import annotations

import secrets
from typing import Any, Final
from uuid import UUID

from blacksheep import Request, Response

from arinova.db.queries import agents as q
from arinova.http import agents_export, agents_health
from arinova.http import schemas as s
from arinova.http.agents_common import Row, agent_id_of, agent_not_found
from arinova.http.apidoc import STR, Doc, arr, obj
from arinova.http.body import read_json
from arinova.http.fields import NO_NUL
from arinova.http.responses import empty_response, json_response
from arinova.http.router import ArinovaRouter
from arinova.http.validate import Arr, Bool, Obj, Str, Url
from arinova.kv import keys
from arinova.outbound import fetch_json
from arinova.state import AppState
from arinova.timefmt import iso, iso_or_none

#: close code and reason sent to an agent socket whose token was rotated (quirk Q20)
CLOSE_TOKEN_REGENERATED: Final = (4409, "Token regenerated")
#: close code and reason sent to the socket of a deleted agent (quirk Q21)
CLOSE_AGENT_DELETED: Final = (4410, "Agent deleted")


def _text(
    *, min_len: int = 0, max_len: int | None = None, optional: bool = False, nullable: bool = False
) -> Str:
    return Str(min_len=min_len, max_len=max_len, optional=optional, nullable=nullable, **NO_NUL)


def _url(*, optional: bool = False, nullable: bool = False) -> Url:
    return Url(optional=optional, nullable=nullable, **NO_NUL)


# the original's zod schemas (packages/shared/src/schemas/index.ts), strings free of NUL
# characters, which PostgreSQL cannot store (quirk Q46)
CREATE_AGENT: Final = Obj(
    {
        "name": _text(min_len=1, max_len=100),
        "description": _text(max_len=500, optional=True),
        "a2aEndpoint": _url(optional=True),
    }
)

UPDATE_AGENT: Final = Obj(
    {
        "name": _text(min_len=1, max_len=100, optional=True),
        "description": _text(max_len=500, optional=True, nullable=True),
        "a2aEndpoint": _url(optional=True, nullable=True),
        "avatarUrl": _text(optional=True, nullable=True),
        "systemPrompt": _text(max_len=4000, optional=True, nullable=True),
        "welcomeMessage": _text(max_len=1000, optional=True, nullable=True),
        "quickReplies": Arr(
            Obj(
                {
                    "label": _text(min_len=1, max_len=50),
                    "message": _text(min_len=1, max_len=500),
                }
            ),
            max_len=10,
            optional=True,
            nullable=True,
        ),
        "notificationsEnabled": Bool(optional=True),
        "isPublic": Bool(optional=True),
        "category": _text(max_len=50, optional=True, nullable=True),
    }
)


def new_secret_token() -> str:
    """``ari_`` + 24 random bytes in lowercase hex (behaviours.md §4)."""
    return "ari_" + secrets.token_hex(24)


def agent_json(row: Row) -> dict[str, Any]:
    """The Agent shape (rest.md §2.1), field order included."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "avatarUrl": row["avatar_url"],
        "a2aEndpoint": row["a2a_endpoint"],
        "secretToken": row["secret_token"],
        "ownerId": row["owner_id"],
        "isPublic": row["is_public"],
        "category": row["category"],
        "usageCount": row["usage_count"],
        "systemPrompt": row["system_prompt"],
        "welcomeMessage": row["welcome_message"],
        "quickReplies": row["quick_replies"],
        "notificationsEnabled": row["notifications_enabled"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def skills_from_card(card: Any) -> list[dict[str, Any]]:
    """The skills of an A2A card as the original maps them: ``card.skills ?? []``, each
    item to ``{id, name, description: description ?? ""}`` (a missing id or name is left
    out, as JSON.stringify drops undefined); anything that would throw there gives []."""
    if not isinstance(card, dict):
        return []
    raw = card.get("skills")
    if raw is None:
        return []
    if not isinstance(raw, list):
        return []
    skills: list[dict[str, Any]] = []
    for item in raw:
        if item is None:
            return []
        skill: dict[str, Any] = {}
        if isinstance(item, dict):
            if "id" in item:
                skill["id"] = item["id"]
            if "name" in item:
                skill["name"] = item["name"]
            description = item.get("description")
            skill["description"] = "" if description is None else description
        else:
            skill["description"] = ""
        skills.append(skill)
    return skills


async def disconnect_agent(state: AppState, agent_id: UUID, close: tuple[int, str]) -> None:
    """Close the agent's socket after a committed change; the change stands if this fails."""
    try:
        await state.realtime.disconnect_agent(str(agent_id), *close)
    except Exception:
        state.log.exception("closing the socket of agent %s failed", agent_id)


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def create_agent(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = CREATE_AGENT.parse(await read_json(request))
        row = await state.db.fetchrow(
            q.CREATE.sql,
            body["name"],
            body.get("description"),
            body.get("a2aEndpoint"),
            new_secret_token(),
            user.id,
        )
        assert row is not None
        return json_response(201, agent_json(row))

    async def list_agents(request: Request) -> Response:
        user = await state.auth.require_user(request)
        rows = await state.db.fetch(q.LIST.sql, user.id)
        return json_response(200, [agent_json(row) for row in rows])

    async def get_agent(request: Request) -> Response:
        user = await state.auth.require_user(request)
        row = await state.db.fetchrow(q.GET.sql, agent_id_of(request), user.id)
        if row is None:
            raise agent_not_found()
        return json_response(200, agent_json(row))

    async def update_agent(request: Request) -> Response:
        user = await state.auth.require_user(request)
        patch = UPDATE_AGENT.parse(await read_json(request))
        row = await state.db.fetchrow(q.UPDATE.sql, agent_id_of(request), user.id, patch)
        if row is None:
            raise agent_not_found()
        return json_response(200, agent_json(row))

    async def agent_skills(request: Request) -> Response:
        user = await state.auth.require_user(request)
        row = await state.db.fetchrow(q.ENDPOINT.sql, agent_id_of(request), user.id)
        if row is None:
            raise agent_not_found()
        declared = state.realtime.agent_skills(str(row["id"]))
        if declared:
            return json_response(200, {"skills": declared})
        endpoint = row["a2a_endpoint"]
        skills = skills_from_card(await fetch_json(state.outbound, endpoint)) if endpoint else []
        return json_response(200, {"skills": skills})

    async def regenerate_token(request: Request) -> Response:
        user = await state.auth.require_user(request)
        agent_id = agent_id_of(request)
        token = new_secret_token()
        row = await state.db.fetchrow(q.REGENERATE_TOKEN.sql, agent_id, user.id, token)
        if row is None:
            raise agent_not_found()
        await disconnect_agent(state, agent_id, CLOSE_TOKEN_REGENERATED)
        return json_response(200, {"secretToken": token})

    async def agent_stats(request: Request) -> Response:
        user = await state.auth.require_user(request)
        row = await state.db.fetchrow(q.STATS.sql, agent_id_of(request), user.id)
        if row is None:
            raise agent_not_found()
        body = {
            "totalMessages": row["total_messages"],
            "totalConversations": row["total_conversations"],
            "lastActive": iso_or_none(row["last_active"]),
        }
        return json_response(200, body)

    async def delete_history(request: Request) -> Response:
        user = await state.auth.require_user(request)
        row = await state.db.fetchrow(q.DELETE_HISTORY.sql, agent_id_of(request), user.id)
        if row is None:
            raise agent_not_found()
        return empty_response(204)

    async def delete_agent(request: Request) -> Response:
        user = await state.auth.require_user(request)
        agent_id = agent_id_of(request)
        row = await state.db.fetchrow(q.DELETE.sql, agent_id, user.id)
        if row is None:
            raise agent_not_found()
        await disconnect_agent(state, agent_id, CLOSE_AGENT_DELETED)
        try:
            await state.kv.delete(keys.agent_health(agent_id))
        except Exception:  # the cached entry expires within a minute anyway
            state.log.warning("dropping the health cache of agent %s failed", agent_id)
        return empty_response(204)

    router.add_post(
        "/api/agents",
        create_agent,
        doc=Doc("Create an agent", {201: s.AGENT}, body=CREATE_AGENT, tag="agents"),
    )
    router.add_get(
        "/api/agents",
        list_agents,
        doc=Doc("The caller's agents", {200: arr(s.AGENT)}, tag="agents"),
    )
    router.add_get(
        "/api/agents/:id", get_agent, doc=Doc("One own agent", {200: s.AGENT}, tag="agents")
    )
    router.add_put(
        "/api/agents/:id",
        update_agent,
        doc=Doc("Update an own agent", {200: s.AGENT}, body=UPDATE_AGENT, tag="agents"),
    )
    router.add_delete(
        "/api/agents/:id", delete_agent, doc=Doc("Delete an own agent", {204: None}, tag="agents")
    )
    router.add_get(
        "/api/agents/:id/skills",
        agent_skills,
        doc=Doc(
            "The agent's skills",
            {200: s.SKILLS},
            description="Probes the agent's endpoint, waiting up to 5 s for it (behaviours.md §5).",
            tag="agents",
        ),
    )
    router.add_post(
        "/api/agents/:id/regenerate-token",
        regenerate_token,
        doc=Doc("A new bot token", {200: obj({"secretToken": STR})}, tag="agents"),
    )
    router.add_get(
        "/api/agents/:id/stats",
        agent_stats,
        doc=Doc("Message counts", {200: s.AGENT_STATS}, tag="agents"),
    )
    router.add_delete(
        "/api/agents/:id/history",
        delete_history,
        doc=Doc("Delete the direct conversations with the agent", {204: None}, tag="agents"),
    )
    agents_export.mount(router, state)
    agents_health.mount(router, state)
