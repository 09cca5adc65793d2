"""Group conversations: create, members list/add/remove (contract rest.md §3.6).

Session first (401), then the body (400 VALIDATION_ERROR), then the ids; a non-UUID
conversation id answers like an unknown conversation, a non-UUID member id like a
member that is not in the group (quirk Q02).
"""

from __future__ import annotations

from typing import Any, Final

from asyncpg import Record
from blacksheep import Request, Response

from arinova.db.queries import groups as q
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.apidoc import Doc, arr
from arinova.http.body import read_json
from arinova.http.conversations import conversation_id_of, conversation_not_found
from arinova.http.fields import NO_NUL
from arinova.http.responses import empty_response, json_response
from arinova.http.router import ArinovaRouter
from arinova.http.shapes import conversation_json, member_json
from arinova.http.validate import Arr, Obj, Str, Uuid, parse_uuid
from arinova.state import AppState

CREATE_GROUP: Final = Obj(
    {
        "title": Str(min_len=1, max_len=200, **NO_NUL),
        "agentIds": Arr(Uuid(), min_len=1),
    }
)

ADD_MEMBER: Final = Obj({"agentId": Uuid()})


def _created_group(rows: list[Record], agent_ids: list[str]) -> dict[str, Any]:
    """The group conversation with its members, in the order of the request."""
    first = rows[0]
    by_agent = {row["member_agent_id"]: row for row in rows}
    members = [
        {
            "id": by_agent[agent_id]["member_id"],
            "conversationId": first["id"],
            "agentId": agent_id,
            "addedAt": by_agent[agent_id]["member_added_at"],
        }
        for agent_id in agent_ids
    ]
    return {**conversation_json(first), "members": members}


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def create_group(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = CREATE_GROUP.parse(await read_json(request))
        # canonical lower-case text, as PostgreSQL returns ids; duplicates stay duplicates,
        # so they fail the ownership count like in the original
        agent_ids = [str(parse_uuid(agent_id)) for agent_id in body["agentIds"]]
        rows = await state.db.fetch(q.CREATE.sql, user.id, agent_ids, body["title"])
        if not rows:
            raise ApiError.message(400, "One or more agents not found or not owned by you")
        return json_response(201, _created_group(rows, agent_ids))

    async def list_members(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        rows = await state.db.fetch(q.MEMBERS.sql, conversation_id, user.id)
        if not rows:
            raise conversation_not_found()
        members = [
            {
                **member_json(row),
                "agentName": row["agent_name"],
                "agentDescription": row["agent_description"],
                "agentAvatarUrl": row["agent_avatar_url"],
            }
            for row in rows
            if row["id"] is not None
        ]
        return json_response(200, members)

    async def add_member(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = ADD_MEMBER.parse(await read_json(request))
        conversation_id = conversation_id_of(request)
        agent_id = parse_uuid(body["agentId"])
        async with state.db.acquire() as conn, conn.transaction():
            check = await conn.fetchrow(q.ADD_MEMBER_CHECK.sql, conversation_id, user.id, agent_id)
            if check is None:
                raise conversation_not_found()
            if check["type"] != "group":
                raise ApiError.message(400, "Cannot add members to a direct conversation")
            if not check["agent_owned"]:
                raise ApiError.message(404, "Agent not found")
            row = None
            if not check["is_member"]:
                row = await conn.fetchrow(q.ADD_MEMBER.sql, conversation_id, agent_id)
            if row is None:
                raise ApiError.message(409, "Agent is already a member of this group")
        return json_response(201, member_json(row))

    async def remove_member(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        agent_id = parse_uuid(request.route_values.get("agentId"))
        row = await state.db.fetchrow(q.REMOVE_MEMBER.sql, conversation_id, user.id, agent_id)
        if row is None:
            raise conversation_not_found()
        if row["type"] != "group":
            raise ApiError.message(400, "Cannot remove members from a direct conversation")
        if not row["removed"]:
            raise ApiError.message(404, "Member not found in group")
        return empty_response(204)

    router.add_post(
        "/api/conversations/group",
        create_group,
        doc=Doc(
            "Start a group conversation", {201: s.GROUP}, body=CREATE_GROUP, tag="conversations"
        ),
    )
    router.add_get(
        "/api/conversations/:id/members",
        list_members,
        doc=Doc("A conversation's member agents", {200: arr(s.MEMBER_VIEW)}, tag="conversations"),
    )
    router.add_post(
        "/api/conversations/:id/members",
        add_member,
        doc=Doc(
            "Add an agent to a group",
            {201: s.MEMBER},
            errors=(409,),
            body=ADD_MEMBER,
            tag="conversations",
        ),
    )
    router.add_delete(
        "/api/conversations/:id/members/:agentId",
        remove_member,
        doc=Doc("Remove an agent from a group", {204: None}, errors=(400,), tag="conversations"),
    )
