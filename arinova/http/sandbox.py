"""POST /api/sandbox/execute (contract rest.md §3.12, behaviours.md §6, quirks Q03/Q41/Q46).

The checks and their bodies are the original's, in its order; a missing or non-object body
is a validation error (Q46). Scripts run in worker processes (``arinova.sandbox``), so the
event loop keeps serving while one runs.
"""

from __future__ import annotations

import math
from typing import Any, Final

from blacksheep import Request, Response, Router

from arinova.errors import ApiError
from arinova.http.body import read_json
from arinova.http.responses import json_response
from arinova.http.validate import utf16_len
from arinova.sandbox.service import SandboxBusy
from arinova.state import AppState

MAX_CODE_LENGTH: Final = 10_000
_ABSENT: Final = object()

CODE_REQUIRED: Final = "Code is required."
CODE_TOO_LONG: Final = f"Code exceeds maximum length of {MAX_CODE_LENGTH} characters."
RATE_LIMITED: Final = "Rate limit exceeded. Max 10 executions per minute."
BUSY: Final = "Sandbox is busy. Try again later."


def js_string(value: Any) -> str:
    """``String(value)`` as JavaScript computes it for a JSON value (``_ABSENT``: undefined)."""
    if value is _ABSENT:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return js_number(float(value)) if abs(value) >= 10**21 else str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def js_number(value: float) -> str:
    """Number::toString for the finite doubles JSON can carry."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    text = repr(value)  # shortest round-trip digits, as JavaScript uses
    mantissa, _, exp_text = text.partition("e")
    digits = mantissa.replace("-", "").replace(".", "")
    point = mantissa.replace("-", "").find(".")
    exponent = (point if point >= 0 else len(mantissa.replace("-", ""))) + (
        int(exp_text) if exp_text else 0
    )
    stripped = digits.lstrip("0")
    exponent -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    sign = "-" if value < 0 else ""
    k, n = len(digits), exponent
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    e_text = f"e+{e}" if e >= 0 else f"e-{-e}"
    if k == 1:
        return sign + digits + e_text
    return sign + digits[0] + "." + digits[1:] + e_text


def mount(router: Router, state: AppState) -> None:
    async def execute(request: Request) -> Response:
        user = await state.auth.require_user(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError.validation("body: must be an object")
        language = body.get("language", _ABSENT)
        if language != "javascript" or not isinstance(language, str):
            raise ApiError.message(
                400,
                f'Unsupported language: "{js_string(language)}". Only "javascript" is supported.',
            )
        code = body.get("code")
        if not isinstance(code, str) or not code:
            raise ApiError.message(400, CODE_REQUIRED)
        if utf16_len(code) > MAX_CODE_LENGTH:
            raise ApiError.message(400, CODE_TOO_LONG)
        if not state.sandbox.allow(user.id):
            raise ApiError.message(429, RATE_LIMITED)
        try:
            result = await state.sandbox.execute(code)
        except SandboxBusy:
            raise ApiError.message(503, BUSY) from None
        return json_response(200, result)

    router.add_post("/api/sandbox/execute", execute)
