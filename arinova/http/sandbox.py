"""POST /api/sandbox/execute (contract rest.md §3.12, behaviours.md §6, quirks Q03/Q41/Q46).

The checks and their bodies are the original's, in its order; a missing or non-object body
is a validation error (Q46). Scripts run in worker processes (``arinova.sandbox``), so the
event loop keeps serving while one runs.

A user's runs go one at a time: a second concurrent run waits for the first (a double
click or a second tab gets its answer, in order, rather than an error); only a user with
``max_waiting_per_owner`` runs already waiting is refused, 429. Waiting runs of different
users take turns. A run refused because the whole queue is full, or that found no free
worker within the pool's ``max_wait_s``, is answered 503. Every refusal has the route's
error shape, ``{"error": message}`` (rest.md §3.12).
"""

from __future__ import annotations

from typing import Final

from blacksheep import Request, Response

from arinova import js
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.apidoc import STR, Doc, Raw, obj
from arinova.http.body import read_json
from arinova.http.responses import json_response
from arinova.http.router import ArinovaRouter
from arinova.sandbox.service import OwnerQueueFull, SandboxBusy, WaitedTooLong
from arinova.state import AppState

MAX_CODE_LENGTH: Final = 10_000

CODE_REQUIRED: Final = "Code is required."
CODE_TOO_LONG: Final = f"Code exceeds maximum length of {MAX_CODE_LENGTH} characters."
RATE_LIMITED: Final = "Rate limit exceeded. Max 10 executions per minute."
BUSY: Final = "Sandbox is busy. Try again later."
OWN_RUNS_WAITING: Final = "Your previous runs are still waiting. Wait for them to finish."


def waited_too_long(max_wait_s: float) -> str:
    return f"Sandbox is busy: no worker was free within {max_wait_s:g} seconds. Try again later."


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def execute(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError.validation("body: must be an object")
        language = body.get("language", js.UNDEFINED)
        if language != "javascript" or not isinstance(language, str):
            raise ApiError.message(
                400,
                f'Unsupported language: "{js.to_string(language)}". Only "javascript" is supported.',
            )
        code = body.get("code")
        if not isinstance(code, str) or not code:
            raise ApiError.message(400, CODE_REQUIRED)
        if js.utf16_length(code) > MAX_CODE_LENGTH:
            raise ApiError.message(400, CODE_TOO_LONG)
        if not state.sandbox.allow(user.id):
            raise ApiError.message(429, RATE_LIMITED)
        try:
            result = await state.sandbox.execute(code, user.id)
        except OwnerQueueFull:
            raise ApiError.message(429, OWN_RUNS_WAITING) from None
        except WaitedTooLong:
            raise ApiError.message(503, waited_too_long(state.sandbox.pool.max_wait_s)) from None
        except SandboxBusy:
            raise ApiError.message(503, BUSY) from None
        return json_response(200, result)

    router.add_post(
        "/api/sandbox/execute",
        execute,
        doc=Doc(
            "Run JavaScript in the sandbox",
            {200: s.SANDBOX_RESULT},
            errors=(503,),
            body=Raw(obj({"code": STR, "language": {"const": "javascript"}})),
            tag="sandbox",
        ),
    )
