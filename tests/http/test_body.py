"""Request bodies (rest.md §1.2) over real HTTP, and the validation toolkit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from blacksheep import Request, Response, Router

from arinova import js
from arinova.errors import ApiError
from arinova.http.body import BODY_LIMIT, read_json
from arinova.http.responses import json_response
from arinova.http.validate import (
    Any_,
    Arr,
    Bool,
    Email,
    Enum,
    Int,
    Num,
    Obj,
    Record,
    Str,
    Url,
    Uuid,
    parse_uuid,
    query_int,
)
from arinova.server import Server
from arinova.state import AppState
from tests.support.servers import StartServer

EMPTY = {
    "error": "Body cannot be empty when content-type is set to 'application/json'",
    "code": "INTERNAL_ERROR",
}
INVALID = {
    "error": "Body is not valid JSON but content-type is set to 'application/json'",
    "code": "INTERNAL_ERROR",
}
TOO_LARGE = {"error": "Request body is too large", "code": "INTERNAL_ERROR"}

AGENT = Obj(
    {
        "name": Str(min_len=1, max_len=100),
        "description": Str(max_len=500, optional=True, nullable=True),
        "a2aEndpoint": Url(optional=True),
        "quickReplies": Arr(
            Obj({"label": Str(min_len=1, max_len=50), "message": Str(min_len=1)}),
            max_len=10,
            optional=True,
        ),
        "isPublic": Bool(optional=True, default=False),
    }
)


class BodyArea:
    def mount(self, router: Router, state: AppState) -> None:
        async def echo(request: Request) -> Response:
            return json_response(200, {"body": await read_json(request)})

        async def ignore(request: Request) -> Response:
            return json_response(200, {"ignored": True})

        async def raw(request: Request) -> Response:
            parsed = await read_json(request)
            data = await request.read()
            if parsed is not None:  # a parsed body can still be streamed
                streamed = b"".join([chunk async for chunk in request.stream()])
                assert streamed == data
            return json_response(200, {"parsed": parsed, "raw": len(data or b"")})

        async def agent(request: Request) -> Response:
            return json_response(201, AGENT.parse(await read_json(request)))

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            router.add(method, "/t/echo", echo)
        router.add_post("/t/ignore", ignore)
        router.add_post("/t/raw", raw)
        router.add_post("/t/agent", agent)


@pytest.fixture(scope="module")
async def srv(start_module_server: StartServer) -> Server:
    return await start_module_server(redis_url="", extra_areas=(BodyArea(),))


@pytest.fixture
async def client(srv: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=srv.url) as c:
        yield c


def post_json(client: httpx.AsyncClient, body: bytes, path: str = "/t/echo") -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


# -- JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, None, True]}, [1, "two"], "text", 42, None, {"nested": {"x": {"y": []}}}],
)
async def test_json_bodies_are_parsed(client: httpx.AsyncClient, value: Any) -> None:
    r = await client.post("/t/echo", json=value)
    assert r.status_code == 200
    assert r.json() == {"body": value}


async def test_json_with_parameters_and_any_case(client: httpx.AsyncClient) -> None:
    for content_type in (
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json;x=1",
    ):
        r = await client.put(
            "/t/echo", content=b'{"k":"v"}', headers={"content-type": content_type}
        )
        assert r.json() == {"body": {"k": "v"}}, content_type


async def test_large_integers_and_invalid_utf8_parse_as_javascript_does(
    client: httpx.AsyncClient,
) -> None:
    r = await post_json(client, b'{"n": 123456789012345678901234567890}')
    assert r.json() == {"body": {"n": 1.2345678901234568e29}}
    r = await post_json(client, b'{"s": "a\xffb"}')
    assert r.json() == {"body": {"s": "a\ufffdb"}}


async def test_lone_surrogate_escapes_become_replacement_characters(
    client: httpx.AsyncClient,
) -> None:
    r = await post_json(client, b'{"s": "a\\ud800b", "\\udc00": ["\\ud83d\\ude00"]}')
    assert r.status_code == 200
    assert r.json() == {"body": {"s": "a\ufffdb", "\ufffd": ["\U0001f600"]}}


async def test_a_deep_body_with_a_lone_surrogate_is_parsed(client: httpx.AsyncClient) -> None:
    """orjson refuses the lone surrogate; the standard library parses the body (as deep
    as it goes) and every string of it is made well formed, at any depth."""
    depth = 900
    body = '{"name":"Bot\\ud800","extra":' + "[" * depth + '"\\udc00"' + "]" * depth + "}"
    r = await post_json(client, body.encode(), "/t/agent")
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "Bot\ufffd", "isPublic": False}


async def test_empty_json_body(client: httpx.AsyncClient) -> None:
    r = await post_json(client, b"")
    assert r.status_code == 400
    assert r.json() == EMPTY
    assert r.headers["connection"] == "close"
    assert r.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    "raw", [b"{", b"   ", b"{'a': 1}", b'{"a": NaN}', b"[1,]", b"undefined", b'{"a":1}x']
)
async def test_malformed_json(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await post_json(client, raw)
    assert r.status_code == 400
    assert r.json() == INVALID
    assert r.headers["connection"] == "close"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"__proto__": {"admin": true}}',
        b'{"a": [{"b": {"__proto__": 1}}]}',
        b'{"\\u005f_proto__": {}}',
        b'{"constructor": {"prototype": {"admin": true}}}',
        b'[{"constructor": {"prototype": null}}]',
    ],
)
async def test_prototype_poisoning_is_refused(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await post_json(client, raw)
    assert r.status_code == 400
    assert r.json() == INVALID


@pytest.mark.parametrize(
    "raw",
    [b'{"constructor": "x"}', b'{"constructor": {"name": 1}}', b'{"k": "__proto__"}'],
)
async def test_harmless_lookalikes_are_accepted(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await post_json(client, raw)
    assert r.status_code == 200


async def test_bodies_are_checked_before_the_handler_even_if_it_ignores_them(
    client: httpx.AsyncClient,
) -> None:
    r = await post_json(client, b"{bad", "/t/ignore")
    assert r.status_code == 400
    assert r.json() == INVALID
    # the real routes too: a body error comes before the session check (401)
    r = await post_json(client, b"{bad", "/api/agents")
    assert r.status_code == 400
    assert r.json() == INVALID
    r = await client.post("/t/ignore")
    assert r.json() == {"ignored": True}


# -- size -----------------------------------------------------------------------------


async def test_a_body_of_exactly_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    body = b'"' + b"x" * (BODY_LIMIT - 2) + b'"'
    assert len(body) == BODY_LIMIT
    r = await post_json(client, body)
    assert r.status_code == 200
    assert len(r.json()["body"]) == BODY_LIMIT - 2


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    r = await post_json(client, b" " * (BODY_LIMIT + 1))
    assert r.status_code == 413
    assert r.json() == TOO_LARGE
    assert r.headers["connection"] == "close"
    r = await client.post(
        "/t/echo", content=b"x" * (BODY_LIMIT + 1), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 413


async def test_a_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b" " * 65_536  # just over 1 MiB, no content-length

    r = await client.post("/t/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == TOO_LARGE


# -- other content types --------------------------------------------------------------


async def test_text_plain_is_a_string(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/t/echo", content="héllo {not json}".encode(), headers={"content-type": "text/plain"}
    )
    assert r.json() == {"body": "héllo {not json}"}
    r = await client.post("/t/echo", content=b"", headers={"content-type": "text/plain"})
    assert r.json() == {"body": ""}


async def test_unsupported_media_types_are_415(client: httpx.AsyncClient) -> None:
    # the type is echoed as Fastify normalises it: lower-case, parameters re-quoted
    cases = {
        "application/x-www-form-urlencoded": "application/x-www-form-urlencoded",
        "application/xml; charset=utf-8": 'application/xml; charset="utf-8"',
        'Text/XML;Charset=UTF-8 ; b="q"; c="x': (
            'text/xml; Charset="UTF-8 "; b="q"; c="invalid quoted string"'
        ),
        "application/jsonx": "application/jsonx",
    }
    for content_type, shown in cases.items():
        r = await client.post("/t/echo", content=b"a=1", headers={"content-type": content_type})
        assert r.status_code == 415
        assert r.json() == {"error": f"Unsupported Media Type: {shown}", "code": "INTERNAL_ERROR"}
    r = await client.post("/t/ignore", content=b"", headers={"content-type": "image/png"})
    assert r.status_code == 415


async def test_a_malformed_content_type_is_415_with_fastifys_raw_template(
    client: httpx.AsyncClient,
) -> None:
    for content_type in ("foo", "", "application /json"):
        r = await client.put("/t/echo", content=b"x", headers={"content-type": content_type})
        assert r.status_code == 415
        assert r.json() == {"error": "Unsupported Media Type: %s", "code": "INTERNAL_ERROR"}


async def test_no_content_type_and_no_body_means_no_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/t/echo")
    assert r.json() == {"body": None}
    r = await client.post("/t/echo", headers={"content-length": "0"})
    assert r.json() == {"body": None}


async def test_a_body_without_content_type_is_415_undefined(client: httpx.AsyncClient) -> None:
    undefined = {"error": "Unsupported Media Type: undefined", "code": "INTERNAL_ERROR"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = await client.request(method, "/t/echo", content=b"{not json")
        assert r.status_code == 415, method
        assert r.json() == undefined

    async def chunks() -> AsyncIterator[bytes]:
        yield b""

    r = await client.post("/t/echo", content=chunks())  # chunked, even if empty
    assert r.status_code == 415
    assert r.json() == undefined


async def test_get_bodies_are_never_parsed(client: httpx.AsyncClient) -> None:
    r = await client.request(
        "GET", "/t/echo", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json() == {"body": None}


async def test_delete_bodies_are_parsed_as_post_bodies(client: httpx.AsyncClient) -> None:
    r = await client.request(
        "DELETE", "/t/echo", content=b'{"a":1}', headers={"content-type": "application/json"}
    )
    assert r.json() == {"body": {"a": 1}}
    r = await client.request("DELETE", "/t/echo", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == EMPTY
    r = await client.request("DELETE", "/t/echo")
    assert r.json() == {"body": None}


async def test_unknown_routes_still_run_the_known_parsers(client: httpx.AsyncClient) -> None:
    json_type = {"content-type": "application/json"}
    r = await client.post("/t/nope", content=b"{bad", headers=json_type)
    assert (r.status_code, r.json()) == (400, INVALID)
    assert r.headers["connection"] == "close"
    r = await client.request("DELETE", "/t/nope", headers=json_type)
    assert (r.status_code, r.json()) == (400, EMPTY)
    big = b"a" * (BODY_LIMIT + 1)
    r = await client.post("/t/nope", content=big, headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()) == (413, TOO_LARGE)
    r = await client.post("/t/nope", content=b"x", headers={"content-type": "foo"})
    assert r.status_code == 415
    assert r.json() == {"error": "Unsupported Media Type: %s", "code": "INTERNAL_ERROR"}
    not_found = {"message": "Route POST:/t/nope not found", "error": "Not Found", "statusCode": 404}
    for headers in ({"content-type": "application/xml"}, {}, {"content-type": "text/plain"}):
        r = await client.post("/t/nope", content=b"<a/>", headers=headers)
        assert (r.status_code, r.json()) == (404, not_found)
    r = await client.request("GET", "/t/nope", content=b"{bad", headers=json_type)
    assert r.status_code == 404


async def test_multipart_is_left_to_the_handler(client: httpx.AsyncClient) -> None:
    r = await client.post("/t/raw", files={"file": ("a.txt", b"hello")})
    assert r.status_code == 200
    body = r.json()
    assert body["parsed"] is None
    assert body["raw"] > len(b"hello")


async def test_the_parsed_body_stays_readable(client: httpx.AsyncClient) -> None:
    r = await client.post("/t/raw", json={"a": 1})
    assert r.json() == {"parsed": {"a": 1}, "raw": len(b'{"a":1}')}


# -- validation over HTTP -------------------------------------------------------------


async def test_a_valid_body_keeps_known_keys_only(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/t/agent",
        json={"name": "Bot", "a2aEndpoint": "https://bot.example/a2a", "role": "admin"},
    )
    assert r.status_code == 201
    assert r.json() == {"name": "Bot", "a2aEndpoint": "https://bot.example/a2a", "isPublic": False}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, "name: is required"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": 5}, "name: must be a string"),
        ({"name": "x" * 101}, "name: must be at most 100 characters long"),
        ({"name": "ok", "description": 1}, "description: must be a string"),
        ({"name": "ok", "a2aEndpoint": "not a url"}, "a2aEndpoint: must be a valid URL"),
        ({"name": "ok", "a2aEndpoint": None}, "a2aEndpoint: must not be null"),
        (
            {"name": "ok", "quickReplies": [{"label": "a", "message": "b"}, {"label": "c"}]},
            "quickReplies[1].message: is required",
        ),
        ({"name": "ok", "quickReplies": "no"}, "quickReplies: must be an array"),
        ({"name": "ok", "isPublic": "yes"}, "isPublic: must be a boolean"),
        ([], "body: must be an object"),
    ],
)
async def test_invalid_bodies_are_400_with_details(
    client: httpx.AsyncClient, body: Any, details: str
) -> None:
    r = await client.post("/t/agent", json=body)
    assert r.status_code == 400
    assert r.json() == {"error": "Validation error", "code": "VALIDATION_ERROR", "details": details}


async def test_a_missing_body_is_a_validation_error(client: httpx.AsyncClient) -> None:
    r = await client.post("/t/agent")
    assert r.status_code == 400
    assert r.json()["details"] == "body: must be an object"


# -- the toolkit, directly ------------------------------------------------------------


def details(schema: Obj, body: Any) -> str:
    with pytest.raises(ApiError) as caught:
        schema.parse(body)
    assert caught.value.status == 400
    assert caught.value.body is not None
    return str(caught.value.body["details"])


def test_string_lengths_count_utf16_units_as_javascript() -> None:
    assert js.utf16_length("abc") == 3
    assert js.utf16_length("é") == 1
    assert js.utf16_length("😀") == 2
    schema = Obj({"s": Str(max_len=3)})
    assert schema.parse({"s": "a😀"}) == {"s": "a😀"}
    assert details(schema, {"s": "ab😀"}) == "s: must be at most 3 characters long"
    assert (
        details(Obj({"s": Str(min_len=2)}), {"s": "a"}) == "s: must be at least 2 characters long"
    )


def test_trim_and_pattern() -> None:
    schema = Obj({"s": Str(min_len=1, trim=True, pattern=r"[a-z]+", pattern_reason="lowercase")})
    assert schema.parse({"s": "  abc "}) == {"s": "abc"}
    assert details(schema, {"s": "   "}) == "s: must not be empty"
    assert details(schema, {"s": "ABC"}) == "s: lowercase"


def test_numbers() -> None:
    schema = Obj({"i": Int(minimum=1, maximum=10, optional=True), "n": Num(optional=True)})
    assert schema.parse({"i": 3.0, "n": 2.5}) == {"i": 3, "n": 2.5}
    assert isinstance(schema.parse({"i": 3.0})["i"], int)
    assert details(schema, {"i": 2.5}) == "i: must be an integer"
    assert details(schema, {"i": 0}) == "i: must be >= 1"
    assert details(schema, {"i": 11}) == "i: must be <= 10"
    assert details(schema, {"i": True}) == "i: must be a number"
    assert details(schema, {"n": "1"}) == "n: must be a number"


def test_formats() -> None:
    schema = Obj(
        {
            "id": Uuid(optional=True),
            "email": Email(optional=True),
            "url": Url(optional=True),
            "kind": Enum(["a", "b"], optional=True),
        }
    )
    assert schema.parse({"id": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"})
    assert details(schema, {"id": "a0eebc999c0b4ef8bb6d6bb9bd380a11"}) == "id: must be a UUID"
    assert schema.parse({"email": "a.b+c@example.co"})
    for bad in ("a@b", "a..b@example.com", ".a@example.com", "ab.example.com"):
        assert details(schema, {"email": bad}) == "email: must be a valid email address"
    for good in ("https://a.example/x?y=1", "http://localhost:8080", "mailto:x@y", "ws://h"):
        assert schema.parse({"url": good}) == {"url": good}
    for bad in ("example.com", "http://", "https:// spaced.example", "http://h:99999", "1http://x"):
        assert details(schema, {"url": bad}) == "url: must be a valid URL"
    assert details(schema, {"kind": "c"}) == "kind: must be one of: a, b"


def test_arrays_records_and_any() -> None:
    schema = Obj(
        {
            "ids": Arr(Uuid(), min_len=1, max_len=2, optional=True),
            "meta": Record(Any_(), max_keys=2, optional=True),
            "tags": Record(Str(), optional=True),
        }
    )
    assert details(schema, {"ids": []}) == "ids: must contain at least 1 item(s)"
    assert details(schema, {"ids": ["x"]}) == "ids[0]: must be a UUID"
    uid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert details(schema, {"ids": [uid, uid, uid]}) == "ids: must contain at most 2 item(s)"
    assert schema.parse({"meta": {"a": [1], "b": None}}) == {"meta": {"a": [1], "b": None}}
    assert details(schema, {"meta": {"a": 1, "b": 2, "c": 3}}) == "meta: must have at most 2 keys"
    assert details(schema, {"tags": {"x": 1}}) == "tags.x: must be a string"


def test_nullable_optional_and_defaults() -> None:
    schema = Obj(
        {
            "a": Str(optional=True),
            "b": Str(nullable=True),
            "c": Str(optional=True, nullable=True),
            "d": Int(default=7),
        }
    )
    assert schema.parse({"b": None}) == {"b": None, "d": 7}
    assert schema.parse({"b": "x", "c": None, "d": 1}) == {"b": "x", "c": None, "d": 1}
    assert details(schema, {"b": "x", "a": None}) == "a: must not be null"
    assert details(schema, {}) == "b: is required"


def test_parse_uuid_accepts_what_postgresql_accepts() -> None:
    expected = UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    for text in (
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
    ):
        assert parse_uuid(text) == expected, text
    for text in (
        None,
        "",
        "abc",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11x",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ):
        assert parse_uuid(text) is None, text


def request_with(query: bytes) -> Request:
    return Request("GET", b"/x?" + query if query else b"/x", [])


def test_query_numbers_parse_like_parse_int_and_are_clamped() -> None:
    assert js.parse_int(" 12abc") == 12
    assert js.parse_int("-5") == -5
    assert js.parse_int("abc") is None
    assert js.parse_int("") is None

    def limit(raw: bytes) -> int:
        return query_int(request_with(raw), "limit", default=50, minimum=1, maximum=100)

    assert limit(b"") == 50
    assert limit(b"limit=20") == 20
    assert limit(b"limit=abc") == 50
    assert limit(b"limit=0") == 1
    assert limit(b"limit=-5") == 1
    assert limit(b"limit=1000") == 100
    assert limit(b"limit=7.9") == 7
    assert limit(b"other=1&limit=3&limit=9") == 3
    assert query_int(request_with(b"offset=-1"), "offset", default=0, minimum=0) == 0
    assert query_int(request_with(b"offset=5000"), "offset", default=0, minimum=0) == 5000
