"""Response builders: JSON bodies are orjson bytes with the original's content type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from blacksheep import Content, Response

JSON_TYPE = b"application/json; charset=utf-8"


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(status, None, Content(JSON_TYPE, orjson.dumps(body)))
    if headers:
        for name, value in headers.items():
            response.add_header(name.encode(), value.encode())
    return response


def empty_response(status: int = 204) -> Response:
    return Response(status, None, None)
