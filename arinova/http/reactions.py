"""Reactions: add (idempotent), list, remove (contract rest.md §3.8, behaviours.md §7).

A non-UUID message id answers like an unknown message (quirk Q02). Listing shows only the
caller's own messages (quirk Q23): another user's message lists as ``[]``, like an unknown
one. The emoji path parameter is decoded once, by the router (quirk Q24).
"""

from __future__ import annotations

from typing import Final

from blacksheep import Request, Response

from arinova.db.queries import reactions as q
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.apidoc import Doc
from arinova.http.body import read_json
from arinova.http.fields import NO_NUL
from arinova.http.responses import empty_response, json_response
from arinova.http.router import ArinovaRouter
from arinova.http.validate import Obj, Str, parse_uuid
from arinova.state import AppState

ADD_REACTION: Final = Obj({"emoji": Str(min_len=1, max_len=32, **NO_NUL)})


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def add_reaction(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = ADD_REACTION.parse(await read_json(request))
        message_id = parse_uuid(request.route_values.get("messageId"))
        row = None
        if message_id is not None:
            row = await state.db.fetchrow(q.ADD.sql, message_id, user.id, body["emoji"])
        if row is None:
            raise ApiError.message(404, "Message not found")
        if not row["owned"]:
            raise ApiError.message(403, "Forbidden")
        message = str(message_id)
        if row["id"] is None:  # already there: the original answers without id/createdAt
            return json_response(
                201, {"messageId": message, "userId": user.id, "emoji": body["emoji"]}
            )
        return json_response(
            201,
            {
                "id": row["id"],
                "messageId": message,
                "userId": user.id,
                "emoji": body["emoji"],
                "createdAt": row["created_at"],
            },
        )

    async def remove_reaction(request: Request) -> Response:
        user = await state.auth.require_user(request)
        message_id = parse_uuid(request.route_values.get("messageId"))
        emoji: str = request.route_values.get("emoji") or ""
        removed = None
        if message_id is not None and "\x00" not in emoji:
            removed = await state.db.fetchval(q.REMOVE.sql, message_id, user.id, emoji)
        if removed is None:
            raise ApiError.message(404, "Reaction not found")
        return empty_response(204)

    async def list_reactions(request: Request) -> Response:
        user = await state.auth.require_user(request)
        message_id = parse_uuid(request.route_values.get("messageId"))
        if message_id is None:
            return json_response(200, [])
        rows = await state.db.fetch(q.LIST.sql, message_id, user.id)
        return json_response(
            200,
            [
                {"emoji": row["emoji"], "count": row["count"], "userReacted": row["user_reacted"]}
                for row in rows
            ],
        )

    router.add_post(
        "/api/messages/:messageId/reactions",
        add_reaction,
        doc=Doc(
            "React to a message",
            {201: s.REACTION},
            errors=(403, 409),
            body=ADD_REACTION,
            tag="messages",
        ),
    )
    router.add_get(
        "/api/messages/:messageId/reactions",
        list_reactions,
        doc=Doc("Reaction counts of a message", {200: s.REACTION_COUNTS}, tag="messages"),
    )
    router.add_delete(
        "/api/messages/:messageId/reactions/:emoji",
        remove_reaction,
        doc=Doc("Remove the caller's reaction", {204: None}, tag="messages"),
    )
