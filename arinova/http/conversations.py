"""Conversations: create, list, get, update, delete, clear, read, mute, status
(contract rest.md §3.5, behaviours.md §8, §9, §11).

Every route checks the session first (401), then the body (400 VALIDATION_ERROR,
decisions.md Q01), then the id: a non-UUID id, an unknown id and another user's
conversation all answer 404 ``{"error":"Conversation not found"}`` (quirk Q02).
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from asyncpg import Record
from blacksheep import Request, Response

from arinova.db.queries import conversations as q
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.apidoc import BOOL, INT, STR, Doc, arr, obj
from arinova.http.body import read_json
from arinova.http.fields import NO_NUL
from arinova.http.responses import empty_response, json_response
from arinova.http.router import ArinovaRouter
from arinova.http.shapes import conversation_json
from arinova.http.validate import Bool, Obj, Str, Truthy, Uuid, parse_uuid, query_param
from arinova.outbound import probe
from arinova.state import AppState

CREATE_CONVERSATION: Final = Obj(
    {
        "agentId": Uuid(),
        "title": Str(max_len=200, optional=True, **NO_NUL),
    }
)

# The web client sends {title} to rename and {pinned} to pin; null clears the title.
# ``pinned`` pins when truthy, unpins when falsy, as the original's ``if (pinned)``
# (rest.md, PUT /api/conversations/:id).
UPDATE_CONVERSATION: Final = Obj(
    {
        "title": Str(max_len=200, optional=True, nullable=True, **NO_NUL),
        "pinned": Truthy(optional=True),
    }
)

# Only a JSON boolean (quirk Q55).
MUTE_CONVERSATION: Final = Obj({"muted": Bool()})


def conversation_not_found() -> ApiError:
    return ApiError.message(404, "Conversation not found")


def conversation_id_of(request: Request, name: str = "id") -> UUID:
    """A path id; a non-UUID answers like an unknown conversation (Q02/Q56)."""
    conversation_id = parse_uuid(request.route_values.get(name))
    if conversation_id is None:
        raise conversation_not_found()
    return conversation_id


def _list_item(row: Record) -> dict[str, Any]:
    item = conversation_json(row)
    if row["type"] == "group":
        names: list[str] = row["member_names"] or []
        item["agentName"] = ", ".join(names) or "Empty group"
        item["agentDescription"] = f"{len(names)} agent" + ("" if len(names) == 1 else "s")
    else:
        name = row["agent_name"]
        item["agentName"] = "Unknown" if name is None else name
        item["agentDescription"] = row["agent_description"]
    item["agentAvatarUrl"] = row["agent_avatar_url"]
    last_id = row["last_id"]
    item["lastMessage"] = (
        None
        if last_id is None
        else {
            "id": last_id,
            "conversationId": row["id"],
            "seq": row["last_seq"],
            "role": row["last_role"],
            "content": row["last_content"],
            "status": row["last_status"],
            "createdAt": row["last_created_at"],
            "updatedAt": row["last_updated_at"],
        }
    )
    return item


def mount(router: ArinovaRouter, state: AppState) -> None:

    async def create_conversation(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = CREATE_CONVERSATION.parse(await read_json(request))
        row = await state.db.fetchrow(q.CREATE.sql, body["agentId"], user.id, body.get("title"))
        if row is None:
            raise ApiError.message(404, "Agent not found")
        return json_response(201, conversation_json(row))

    async def list_conversations(request: Request) -> Response:
        user = await state.auth.require_user(request)
        search = query_param(request, "q")
        if search and "\x00" in search:
            return json_response(200, [])  # no title or name can contain NUL
        pattern = f"%{search}%" if search else None
        rows = await state.db.fetch(q.LIST.sql, user.id, pattern)
        return json_response(200, [_list_item(row) for row in rows])

    async def get_conversation(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        row = await state.db.fetchrow(q.GET.sql, conversation_id, user.id)
        if row is None:
            raise conversation_not_found()
        return json_response(200, conversation_json(row))

    async def update_conversation(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = UPDATE_CONVERSATION.parse(await read_json(request))
        conversation_id = conversation_id_of(request)
        row = await state.db.fetchrow(
            q.UPDATE.sql,
            conversation_id,
            user.id,
            "title" in body,
            body.get("title"),
            body.get("pinned"),
        )
        if row is None:
            raise conversation_not_found()
        return json_response(200, conversation_json(row))

    async def delete_conversation(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        if await state.db.fetchval(q.DELETE.sql, conversation_id, user.id) is None:
            raise conversation_not_found()
        return empty_response(204)

    async def clear_messages(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        row = await state.db.fetchrow(q.CLEAR_MESSAGES.sql, conversation_id, user.id)
        if row is None or not row["found"]:
            raise conversation_not_found()
        return json_response(200, {"success": True, "deleted": row["deleted"]})

    async def mark_read(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        max_seq = await state.db.fetchval(q.MARK_READ.sql, conversation_id, user.id)
        if max_seq is None:
            raise conversation_not_found()
        return json_response(200, {"lastReadSeq": max_seq})

    async def mute(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = MUTE_CONVERSATION.parse(await read_json(request))
        conversation_id = conversation_id_of(request)
        muted = await state.db.fetchval(q.MUTE.sql, conversation_id, user.id, body["muted"])
        if muted is None:
            raise conversation_not_found()
        return json_response(200, {"muted": muted})

    async def status(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        row = await state.db.fetchrow(q.STATUS.sql, conversation_id, user.id)
        if row is None:
            raise conversation_not_found()
        agent: dict[str, Any] | None = None
        agent_id = row["agent_id"]
        if agent_id is not None:
            endpoint = row["agent_a2a_endpoint"]
            # decision Q22: a socket-connected agent is online whatever its endpoint
            latency_ms: int | None = 0
            if state.realtime.agent_connected(agent_id):
                agent_status = "online"
            else:
                result = await probe(state.outbound, endpoint)
                agent_status, latency_ms = result.status, result.latency_ms
            agent = {
                "id": agent_id,
                "name": row["agent_name"],
                "a2aEndpoint": endpoint,
                "status": agent_status,
                "latencyMs": latency_ms,
            }
        body = {
            "conversation": {
                "id": row["id"],
                "title": row["title"],
                "type": row["type"],
                "createdAt": row["created_at"],
                "messageCount": row["message_count"],
            },
            "agent": agent,
        }
        return json_response(200, body)

    router.add_post(
        "/api/conversations",
        create_conversation,
        doc=Doc(
            "Start a direct conversation",
            {201: s.CONVERSATION},
            errors=(404,),
            body=CREATE_CONVERSATION,
            tag="conversations",
        ),
    )
    router.add_get(
        "/api/conversations",
        list_conversations,
        doc=Doc(
            "The caller's conversations",
            {200: arr(s.CONVERSATION_ITEM)},
            query={"q": STR},
            tag="conversations",
        ),
    )
    router.add_get(
        "/api/conversations/:id",
        get_conversation,
        doc=Doc("One own conversation", {200: s.CONVERSATION}, tag="conversations"),
    )
    router.add_put(
        "/api/conversations/:id",
        update_conversation,
        doc=Doc(
            "Rename or pin a conversation",
            {200: s.CONVERSATION},
            body=UPDATE_CONVERSATION,
            tag="conversations",
        ),
    )
    router.add_delete(
        "/api/conversations/:id",
        delete_conversation,
        doc=Doc("Delete a conversation", {204: None}, tag="conversations"),
    )
    router.add_delete(
        "/api/conversations/:id/messages",
        clear_messages,
        doc=Doc(
            "Delete every message of a conversation",
            {200: obj({"success": BOOL, "deleted": INT})},
            tag="conversations",
        ),
    )
    router.add_put(
        "/api/conversations/:id/read",
        mark_read,
        doc=Doc("Mark a conversation read", {200: obj({"lastReadSeq": INT})}, tag="conversations"),
    )
    router.add_put(
        "/api/conversations/:id/mute",
        mute,
        doc=Doc(
            "Mute or unmute a conversation",
            {200: obj({"muted": BOOL})},
            body=MUTE_CONVERSATION,
            tag="conversations",
        ),
    )
    router.add_get(
        "/api/conversations/:id/status",
        status,
        doc=Doc(
            "A conversation and its agent's reachability",
            {200: s.CONVERSATION_STATUS},
            description="Probes the agent's endpoint, waiting up to 5 s for it (behaviours.md §5).",
            tag="conversations",
        ),
    )
