"""Notification preferences (contract rest.md §3.11, quirk Q01)."""

from __future__ import annotations

from typing import Any, Final

from blacksheep import Request, Response

from arinova.db.queries import notifications as q
from arinova.http import schemas as s
from arinova.http.apidoc import Doc
from arinova.http.body import read_json
from arinova.http.responses import json_response
from arinova.http.router import ArinovaRouter
from arinova.http.validate import Bool, Obj, Str
from arinova.state import AppState

HH_MM: Final = r"([01]\d|2[0-3]):[0-5]\d"
SWITCHES: Final = (
    "globalEnabled",
    "messageEnabled",
    "playgroundInviteEnabled",
    "playgroundTurnEnabled",
    "playgroundResultEnabled",
)
PREFERENCES: Final = Obj(
    {
        **{name: Bool() for name in SWITCHES},
        "quietHoursStart": Str(pattern=HH_MM, pattern_reason="Must be HH:mm format", nullable=True),
        "quietHoursEnd": Str(pattern=HH_MM, pattern_reason="Must be HH:mm format", nullable=True),
    }
)
DEFAULTS: Final[dict[str, Any]] = {
    **dict.fromkeys(SWITCHES, True),
    "quietHoursStart": None,
    "quietHoursEnd": None,
}


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def get_preferences(request: Request) -> Response:
        user = await state.auth.require_user(request)
        row = await state.db.fetchrow(q.GET_PREFERENCES.sql, user.id)
        if row is None:
            return json_response(200, DEFAULTS)
        return json_response(
            200,
            {
                "globalEnabled": row["global_enabled"],
                "messageEnabled": row["message_enabled"],
                "playgroundInviteEnabled": row["playground_invite_enabled"],
                "playgroundTurnEnabled": row["playground_turn_enabled"],
                "playgroundResultEnabled": row["playground_result_enabled"],
                "quietHoursStart": row["quiet_hours_start"],
                "quietHoursEnd": row["quiet_hours_end"],
            },
        )

    async def put_preferences(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = PREFERENCES.parse(await read_json(request))
        await state.db.execute(
            q.PUT_PREFERENCES.sql,
            user.id,
            *(body[name] for name in SWITCHES),
            body["quietHoursStart"],
            body["quietHoursEnd"],
        )
        return json_response(200, {"ok": True})

    router.add_get(
        "/api/notifications/preferences",
        get_preferences,
        doc=Doc("The caller's notification preferences", {200: s.PREFERENCES}, tag="notifications"),
    )
    router.add_put(
        "/api/notifications/preferences",
        put_preferences,
        doc=Doc(
            "Replace the notification preferences",
            {200: s.OK_TRUE},
            body=PREFERENCES,
            tag="notifications",
        ),
    )
