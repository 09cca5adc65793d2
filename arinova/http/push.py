"""Push subscriptions (contract rest.md §3.10, behaviours.md §12, quirks Q01/Q46).

Invalid bodies answer 400 VALIDATION_ERROR (NUL characters included, which PostgreSQL
cannot store); a missing or empty ``endpoint`` on DELETE keeps the original's own 400
``endpoint is required``, and one with a NUL character matches nothing.
"""

from __future__ import annotations

from typing import Final

from blacksheep import Request, Response

from arinova.db.queries import push as q
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.apidoc import STR, Doc, Raw, obj
from arinova.http.body import read_json
from arinova.http.fields import NO_NUL
from arinova.http.responses import json_response
from arinova.http.router import ArinovaRouter
from arinova.http.validate import Obj, Str, Url
from arinova.state import AppState

SUBSCRIBE: Final = Obj(
    {
        "endpoint": Url(**NO_NUL),
        "keys": Obj({"p256dh": Str(min_len=1, **NO_NUL), "auth": Str(min_len=1, **NO_NUL)}),
        "deviceInfo": Str(max_len=500, optional=True, **NO_NUL),
    }
)
OK: Final = {"ok": True}


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def vapid_key(request: Request) -> Response:
        key = state.settings.vapid_public_key
        if not key:
            raise ApiError.message(503, "Push notifications not configured")
        return json_response(200, {"vapidPublicKey": key})

    async def subscribe(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = SUBSCRIBE.parse(await read_json(request))
        keys = body["keys"]
        async with state.db.acquire() as conn, conn.transaction():
            await conn.execute(q.LOCK_USER_SUBSCRIPTIONS.sql, user.id)
            await conn.execute(
                q.UPSERT_SUBSCRIPTION.sql,
                user.id,
                body["endpoint"],
                keys["p256dh"],
                keys["auth"],
                body.get("deviceInfo"),
            )
        return json_response(201, OK)

    async def unsubscribe(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError.validation("body: must be an object")
        endpoint = body.get("endpoint")
        if not endpoint:
            raise ApiError.message(400, "endpoint is required")
        if not isinstance(endpoint, str):
            raise ApiError.validation("endpoint: must be a string")
        if "\x00" not in endpoint:  # no stored endpoint can contain one
            await state.db.execute(q.DELETE_SUBSCRIPTION.sql, user.id, endpoint)
        return json_response(200, OK)

    router.add_get(
        "/api/push/vapid-key",
        vapid_key,
        doc=Doc(
            "The VAPID public key",
            {200: obj({"vapidPublicKey": STR})},
            errors=(503,),
            access="none",
            tag="push",
        ),
    )
    router.add_post(
        "/api/push/subscribe",
        subscribe,
        doc=Doc("Store a push subscription", {201: s.OK_TRUE}, body=SUBSCRIBE, tag="push"),
    )
    router.add_delete(
        "/api/push/subscribe",
        unsubscribe,
        doc=Doc(
            "Remove a push subscription",
            {200: s.OK_TRUE},
            body=Raw(obj({"endpoint": STR})),
            tag="push",
        ),
    )
