"""HTTP behaviour every route shares (contract rest.md §1), over real HTTP.

A test-only area is mounted next to the real ones (``Server(extra_areas=...)``).
Rate-limit tests use ``trust_proxy`` and a fresh ``X-Forwarded-For`` address each, so
their counters (in the shared Redis) start at zero.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from blacksheep import Request, Response, Router

from arinova.errors import ApiError
from arinova.http.responses import json_response
from arinova.logs import JsonFormatter
from arinova.server import Server
from arinova.settings import Settings, SettingsError
from arinova.state import AppState
from tests.support.servers import StartServer

ALLOWED = "http://localhost:3500"
OTHER_ALLOWED = "https://app.example"
JSON = "application/json; charset=utf-8"
INTERNAL = {"error": "Internal server error", "code": "INTERNAL_ERROR"}
RATE_LIMIT_BODY = {"error": "Too many requests. Please try again later.", "code": "RATE_LIMIT"}
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")

_ips = itertools.count(1)


def fresh_ip() -> str:
    """An X-Forwarded-For address no other test (or run) has used."""
    n = next(_ips)
    return f"10.{uuid.uuid4().int % 250}.{n // 250}.{n % 250}"


class ProbeArea:
    """Routes that exercise the pipeline."""

    def __init__(self) -> None:
        self.slow_started = asyncio.Event()

    def mount(self, router: Router, state: AppState) -> None:
        async def ok(request: Request) -> Response:
            return json_response(200, {"ok": True})

        async def item(request: Request) -> Response:
            return json_response(200, {"route": "item", "params": request.route_values})

        async def static(request: Request) -> Response:
            return json_response(200, {"route": "static"})

        async def sub(request: Request) -> Response:
            return json_response(200, {"route": "sub", "params": request.route_values})

        async def files(request: Request) -> Response:
            return json_response(200, {"route": "files", "params": request.route_values})

        async def api_error(request: Request) -> Response:
            raise ApiError(418, {"error": "I'm a teapot"}, {"X-Extra": "yes"})

        async def framework_error(request: Request) -> Response:
            raise ApiError.framework(409, "Conflicting thing")

        async def crash(request: Request) -> Response:
            raise RuntimeError("secret detail of the crash")

        async def nothing(request: Request) -> None:
            return None

        async def slow(request: Request) -> Response:
            self.slow_started.set()
            await asyncio.sleep(0.5)
            return json_response(200, {"slow": "done"})

        router.add_get("/t/ok", ok)
        router.add_get("/t/items/:id", item)
        router.add_get("/t/items/static", static)
        router.add_get("/t/items/:id/sub", sub)
        router.add_get("/t/files/*", files)
        router.add_get("/t/api-error", api_error)
        router.add_get("/t/framework-error", framework_error)
        router.add_get("/t/crash", crash)
        router.add_get("/t/nothing", nothing)
        router.add_delete("/t/nothing", nothing)
        router.add_get("/t/slow", slow)


async def started(start: StartServer, area: ProbeArea | None = None, **overrides: object) -> Server:
    """A server from ``start`` (a server factory fixture) with the probe area mounted."""
    return await start(extra_areas=(area or ProbeArea(),), **overrides)


@pytest.fixture(scope="module")
async def srv(start_module_server: StartServer) -> Server:
    return await started(
        start_module_server,
        cors_origin=f"{ALLOWED}, {OTHER_ALLOWED}",
        rate_limit_max=1000,
        trust_proxy=True,
    )


@pytest.fixture
async def client(srv: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own rate-limit bucket."""
    async with httpx.AsyncClient(base_url=srv.url, headers={"x-forwarded-for": fresh_ip()}) as c:
        yield c


class LogCapture(logging.Handler):
    """The JSON lines the server writes, as dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    logger = logging.getLogger("arinova")
    old_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(old_level)


# -- CORS -----------------------------------------------------------------------------


async def test_every_response_varies_on_origin_and_allows_credentials(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/t/ok", "/health", "/nope", "/t/crash", "/ws"):
        r = await client.get(path)
        assert r.headers["vary"] == "Origin", path
        assert r.headers["access-control-allow-credentials"] == "true", path
        assert "access-control-allow-origin" not in r.headers, path


async def test_an_allowed_origin_is_reflected(client: httpx.AsyncClient) -> None:
    for origin in (ALLOWED, OTHER_ALLOWED):
        r = await client.get("/t/ok", headers={"origin": origin})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
    r = await client.get("/nope", headers={"origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED


async def test_an_unknown_origin_gets_no_allow_origin_but_the_request_runs(
    client: httpx.AsyncClient,
) -> None:
    for origin in ("https://evil.example", "http://localhost:3500/", "HTTP://LOCALHOST:3500"):
        r = await client.get("/t/ok", headers={"origin": origin})
        assert r.status_code == 200
        assert r.json() == {"ok": True}
        assert "access-control-allow-origin" not in r.headers
        assert r.headers["access-control-allow-credentials"] == "true"


async def test_preflight_on_any_path(client: httpx.AsyncClient) -> None:
    for path in ("/t/ok", "/api/agents", "/no/such/route", "/ws"):
        r = await client.options(
            path,
            headers={
                "origin": ALLOWED,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,x-custom",
            },
        )
        assert r.status_code == 204, path
        assert r.content == b""
        assert r.headers["content-length"] == "0"
        assert "content-type" not in r.headers
        assert r.headers["access-control-allow-origin"] == ALLOWED
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == "GET, HEAD, POST, PUT, DELETE, PATCH"
        assert r.headers["access-control-allow-headers"] == "content-type,x-custom"
        assert r.headers["vary"] == "Origin, Access-Control-Request-Headers"
        assert "access-control-max-age" not in r.headers
        assert "access-control-expose-headers" not in r.headers
        assert not any(h in r.headers for h in RATE_HEADERS)


async def test_preflight_without_requested_headers_and_from_an_unknown_origin(
    client: httpx.AsyncClient,
) -> None:
    r = await client.options(
        "/t/ok",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert r.status_code == 204
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-headers" not in r.headers
    assert r.headers["vary"] == "Origin, Access-Control-Request-Headers"


async def test_invalid_preflight(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"origin": ALLOWED},
        {"access-control-request-method": "POST"},
        {"origin": "", "access-control-request-method": "POST"},
    ):
        r = await client.options("/t/ok", headers=headers)
        assert r.status_code == 400, headers
        assert r.content == b"Invalid Preflight Request"
        assert r.headers["content-type"] == "text/plain"
        assert r.headers["vary"] == "Origin"
        assert r.headers["access-control-allow-credentials"] == "true"
    r = await client.options("/t/ok", headers={"origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED


async def test_wildcard_cors_origin_reflects_every_origin(
    start_server: StartServer,
) -> None:
    server = await started(start_server, cors_origin="*", redis_url="")
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/t/ok", headers={"origin": "https://anything.example"})
        assert r.headers["access-control-allow-origin"] == "https://anything.example"
        r = await c.get("/t/ok")
        assert "access-control-allow-origin" not in r.headers


# -- routing --------------------------------------------------------------------------


async def test_unknown_route_has_fastifys_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == JSON
    assert r.json() == {
        "message": "Route GET:/nope not found",
        "error": "Not Found",
        "statusCode": 404,
    }
    assert not any(h in r.headers for h in RATE_HEADERS)
    r = await client.post("/api/nope/x?a=1&b=%20")
    assert r.json()["message"] == "Route POST:/api/nope/x?a=1&b=%20 not found"
    r = await client.delete("/health")
    assert r.json()["message"] == "Route DELETE:/health not found"
    r = await client.request("PATCH", "/t/ok")
    assert r.json()["message"] == "Route PATCH:/t/ok not found"


async def test_a_path_decodeuri_refuses_is_fastifys_bad_url_400(client: httpx.AsyncClient) -> None:
    for target in ("/t/items/%zz", "/n%zz/x?a=%22", "/a%2", "/t/items/%FF", "/x/%E2%82x"):
        for method in ("GET", "POST", "OPTIONS"):
            r = await client.request(method, target, headers={"origin": ALLOWED})
            assert r.status_code == 400
            assert r.json() == {
                "error": "Bad Request",
                "code": "FST_ERR_BAD_URL",
                "message": f"'{target}' is not a valid url component",
                "statusCode": 400,
            }
            assert r.headers["content-type"] == "application/json"
            assert "vary" not in r.headers  # answered before any hook
            assert "x-ratelimit-limit" not in r.headers
    r = await client.get("/t/items/%E2%82%AC%2F")
    assert r.json() == {"route": "item", "params": {"id": "€/"}}


async def test_head_answers_for_get_routes(client: httpx.AsyncClient) -> None:
    get = await client.get("/t/items/abc")
    head = await client.head("/t/items/abc")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == JSON
    assert head.headers["content-length"] == get.headers["content-length"]
    r = await client.head("/nope")
    assert r.status_code == 404
    assert r.content == b""
    r = await client.head("/health")
    assert r.status_code == 200
    assert r.content == b""


async def test_path_parameters(client: httpx.AsyncClient) -> None:
    r = await client.get("/t/items/abc")
    assert r.json() == {"route": "item", "params": {"id": "abc"}}
    r = await client.get("/t/items/a%20b%2Fc")
    assert r.json() == {"route": "item", "params": {"id": "a b/c"}}
    r = await client.get("/t/items/abc/sub")
    assert r.json() == {"route": "sub", "params": {"id": "abc"}}


async def test_static_segments_win_over_parameters(client: httpx.AsyncClient) -> None:
    r = await client.get("/t/items/static")
    assert r.json() == {"route": "static"}
    # backtracking: no static /t/items/static/sub, so the parameter route matches
    r = await client.get("/t/items/static/sub")
    assert r.json() == {"route": "sub", "params": {"id": "static"}}


async def test_paths_are_exact(client: httpx.AsyncClient) -> None:
    for path in ("/t/ok/", "/T/ok", "/t/OK", "/health/", "/t//ok", "/t/items/abc/sub/"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json()["message"] == f"Route GET:{path} not found"


async def test_an_empty_parameter_is_an_unknown_route(client: httpx.AsyncClient) -> None:
    """Quirk Q56 (FIX-SAFE): never the handler with an empty id."""
    for path in ("/t/items/", "/t/items//sub"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json() == {
            "message": f"Route GET:{path} not found",
            "error": "Not Found",
            "statusCode": 404,
        }


async def test_a_parameter_longer_than_100_characters_does_not_match(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/t/items/" + "x" * 100)
    assert r.status_code == 200
    r = await client.get("/t/items/" + "x" * 101)
    assert r.status_code == 404
    assert r.json()["statusCode"] == 404


async def test_a_wildcard_takes_the_rest_of_the_path(client: httpx.AsyncClient) -> None:
    r = await client.get("/t/files/a/b.png")
    assert r.json() == {"route": "files", "params": {"tail": "a/b.png"}}
    r = await client.get("/t/files/")
    assert r.json() == {"route": "files", "params": {"tail": ""}}
    r = await client.get("/t/files")
    assert r.status_code == 404


async def test_socket_paths_without_upgrade_are_404_with_no_body(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/ws", "/ws/agent"):
        r = await client.get(path, headers={"origin": ALLOWED})
        assert r.status_code == 404
        assert r.content == b""
        assert r.headers["content-length"] == "0"
        assert "content-type" not in r.headers
        assert r.headers["access-control-allow-origin"] == ALLOWED
        assert not any(h in r.headers for h in RATE_HEADERS)


# -- errors ---------------------------------------------------------------------------


async def test_api_error_is_rendered_with_its_status_body_and_headers(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/t/api-error")
    assert r.status_code == 418
    assert r.headers["content-type"] == JSON
    assert r.json() == {"error": "I'm a teapot"}
    assert r.headers["x-extra"] == "yes"
    r = await client.get("/t/framework-error")
    assert r.status_code == 409
    assert r.json() == {"error": "Conflicting thing", "code": "INTERNAL_ERROR"}


async def test_unexpected_errors_are_500_and_logged_with_the_request_id(
    client: httpx.AsyncClient, logs: LogCapture
) -> None:
    r = await client.get("/t/crash", headers={"x-request-id": "req-abc-123"})
    assert r.status_code == 500
    assert r.headers["content-type"] == JSON
    assert r.json() == INTERNAL
    assert "secret" not in r.text
    assert "x-request-id" not in r.headers
    errors = [line for line in logs.lines if line["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-abc-123"
    assert errors[0]["logger"] == "arinova.http"
    assert "secret detail of the crash" in errors[0]["exc"]


async def test_a_request_id_is_generated_when_none_is_sent(
    client: httpx.AsyncClient, logs: LogCapture
) -> None:
    r = await client.get("/t/crash")
    assert r.status_code == 500
    assert "x-request-id" not in r.headers
    (error,) = [line for line in logs.lines if line["level"] == "error"]
    assert uuid.UUID(error["request_id"]).version == 4


async def test_no_content_has_no_length_and_no_type(client: httpx.AsyncClient) -> None:
    for method in ("GET", "DELETE"):
        r = await client.request(method, "/t/nothing")
        assert r.status_code == 204
        assert r.content == b""
        assert "content-length" not in r.headers
        assert "content-type" not in r.headers
        assert r.headers["x-ratelimit-limit"] == "1000"


# -- rate limit -----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def limited(start_module_server: StartServer) -> Server:
    return await started(start_module_server, rate_limit_max=3, trust_proxy=True)


async def test_rate_limit_headers_then_429(limited: Server) -> None:
    async with httpx.AsyncClient(
        base_url=limited.url, headers={"x-forwarded-for": fresh_ip()}
    ) as c:
        for remaining in (2, 1, 0):
            r = await c.get("/t/ok")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit"] == "3"
            assert r.headers["x-ratelimit-remaining"] == str(remaining)
            assert r.headers["x-ratelimit-reset"] in ("59", "60")
            assert "retry-after" not in r.headers
        for path in ("/t/ok", "/t/crash", "/api/agents"):
            r = await c.get(path, headers={"origin": ALLOWED})
            assert r.status_code == 429
            assert r.headers["content-type"] == JSON
            assert r.json() == RATE_LIMIT_BODY
            assert r.headers["x-ratelimit-limit"] == "3"
            assert r.headers["x-ratelimit-remaining"] == "0"
            reset = int(r.headers["x-ratelimit-reset"])
            assert 1 <= reset <= 60
            assert r.headers["retry-after"] == str(reset)
            assert r.headers["access-control-allow-origin"] == ALLOWED


async def test_errors_carry_the_rate_limit_headers(limited: Server) -> None:
    async with httpx.AsyncClient(
        base_url=limited.url, headers={"x-forwarded-for": fresh_ip()}
    ) as c:
        r = await c.get("/t/crash")
        assert r.status_code == 500
        assert r.headers["x-ratelimit-remaining"] == "2"
        r = await c.get("/t/api-error")
        assert r.headers["x-ratelimit-remaining"] == "1"


def header_names(r: httpx.Response) -> list[str]:
    """Header names in the order they came, without the server's own ``date``/``server``."""
    names = [name.decode().lower() for name, _ in r.headers.raw]
    return [n for n in names if n not in ("date", "server", "keep-alive")]


async def test_headers_come_in_fastifys_order(limited: Server) -> None:
    # CORS first, then the rate limit, then the route's own headers, then the body's
    async with httpx.AsyncClient(
        base_url=limited.url, headers={"x-forwarded-for": fresh_ip(), "origin": ALLOWED}
    ) as c:
        r = await c.get("/t/ok")
        assert header_names(r) == [
            "vary",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "content-type",
            "content-length",
        ]
        r = await c.get("/t/api-error")
        assert header_names(r)[:6] == header_names(await c.get("/t/ok"))[:6]
        assert header_names(r)[6:] == ["x-extra", "content-type", "content-length"]
        await c.get("/t/ok")
        r = await c.get("/t/ok")
        assert r.status_code == 429
        assert header_names(r) == [
            "vary",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "retry-after",
            "content-type",
            "content-length",
        ]
        r = await c.options("/t/ok", headers={"access-control-request-method": "GET"})
        assert header_names(r) == [
            "vary",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-allow-methods",
            "content-length",
        ]


async def test_health_sockets_preflight_and_unknown_routes_are_not_limited(
    limited: Server,
) -> None:
    async with httpx.AsyncClient(
        base_url=limited.url, headers={"x-forwarded-for": fresh_ip()}
    ) as c:
        for _ in range(5):
            r = await c.get("/health")
            assert r.status_code == 200
            assert not any(h in r.headers for h in RATE_HEADERS)
            assert (await c.get("/ws")).status_code == 404
            assert (await c.get("/ws/agent")).status_code == 404
            assert (await c.get("/unknown")).status_code == 404
            r = await c.options(
                "/t/ok", headers={"origin": ALLOWED, "access-control-request-method": "GET"}
            )
            assert r.status_code == 204
        r = await c.get("/t/ok")
        assert r.headers["x-ratelimit-remaining"] == "2"


async def test_each_forwarded_client_has_its_own_bucket(limited: Server) -> None:
    first, second = fresh_ip(), fresh_ip()
    async with httpx.AsyncClient(base_url=limited.url) as c:
        for _ in range(3):
            await c.get("/t/ok", headers={"x-forwarded-for": f"{first}, 192.0.2.1"})
        r = await c.get("/t/ok", headers={"x-forwarded-for": first})
        assert r.status_code == 429
        r = await c.get("/t/ok", headers={"x-forwarded-for": f"{second}, {first}"})
        assert r.status_code == 200
        assert r.headers["x-ratelimit-remaining"] == "2"


async def test_without_trust_proxy_the_peer_address_is_the_key(
    start_server: StartServer,
) -> None:
    # in-memory counters: the peer (127.0.0.1) bucket is this server's alone
    server = await started(start_server, rate_limit_max=2, trust_proxy=False, redis_url="")
    async with httpx.AsyncClient(base_url=server.url) as c:
        assert (await c.get("/t/ok", headers={"x-forwarded-for": fresh_ip()})).status_code == 200
        assert (await c.get("/t/ok", headers={"x-forwarded-for": fresh_ip()})).status_code == 200
        r = await c.get("/t/ok", headers={"x-forwarded-for": fresh_ip()})
        assert r.status_code == 429
        assert r.json() == RATE_LIMIT_BODY


@pytest.mark.parametrize(
    ("trust_proxy", "client"),
    [("1", 2), ("2", 1), ("3", 0), ("9", 0), ("true", 0), ("yes", 0)],
)
async def test_trust_proxy_trusts_that_many_hops_of_the_forwarded_chain(
    start_server: StartServer, trust_proxy: str, client: int
) -> None:
    """Express/Fastify ``trust proxy``: N hops make the N-th entry from the right the
    client (the left-most when the chain is shorter), ``true`` every hop. The bucket the
    chain was counted in is the client's: a request forwarded for that address alone
    finds it started, one for any other entry of the chain finds its own."""
    setting = Settings.from_env({"TRUST_PROXY": trust_proxy}).trust_proxy
    server = await started(start_server, rate_limit_max=10, trust_proxy=setting)
    chain = [fresh_ip(), fresh_ip(), fresh_ip()]
    async with httpx.AsyncClient(base_url=server.url) as c:
        # the middle hop arrives as a second header, as some proxies append it
        r = await c.get(
            "/t/ok",
            headers=[
                ("x-forwarded-for", f"{chain[0]}, {chain[1]}"),
                ("x-forwarded-for", chain[2]),
            ],
        )
        assert r.headers["x-ratelimit-remaining"] == "9"
        for index, address in enumerate(chain):
            r = await c.get("/t/ok", headers={"x-forwarded-for": address})
            expected = "8" if index == client else "9"
            assert r.headers["x-ratelimit-remaining"] == expected, address


@pytest.mark.parametrize("trust_proxy", ["false", "0", ""])
async def test_trust_proxy_off_keys_the_peer_address(
    start_server: StartServer, trust_proxy: str
) -> None:
    setting = Settings.from_env({"TRUST_PROXY": trust_proxy}).trust_proxy
    server = await started(start_server, rate_limit_max=10, trust_proxy=setting, redis_url="")
    async with httpx.AsyncClient(base_url=server.url) as c:
        for remaining in ("9", "8"):
            r = await c.get("/t/ok", headers={"x-forwarded-for": fresh_ip()})
            assert r.headers["x-ratelimit-remaining"] == remaining


@pytest.mark.parametrize("trust_proxy", ["-1", "maybe", "1.5", "10.0.0.1"])
def test_trust_proxy_refuses_what_is_not_a_flag_or_a_hop_count(trust_proxy: str) -> None:
    with pytest.raises(SettingsError, match="TRUST_PROXY must be true, false or a number"):
        Settings.from_env({"TRUST_PROXY": trust_proxy})


async def test_the_window_is_fixed_from_the_first_request(
    start_server: StartServer,
) -> None:
    server = await started(start_server, rate_limit_max=1, rate_limit_window_s=1, redis_url="")
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/t/ok")
        assert (r.status_code, r.headers["x-ratelimit-reset"]) == (200, "1")
        assert (await c.get("/t/ok")).status_code == 429
        await asyncio.sleep(1.1)
        r = await c.get("/t/ok")
        assert r.status_code == 200
        assert r.headers["x-ratelimit-remaining"] == "0"


# -- lifecycle ------------------------------------------------------------------------


async def test_graceful_shutdown_lets_in_flight_requests_finish(
    start_server: StartServer,
) -> None:
    area = ProbeArea()
    server = await started(start_server, area, redis_url="")
    async with httpx.AsyncClient(base_url=server.url) as c:
        request = asyncio.create_task(c.get("/t/slow"))
        await asyncio.wait_for(area.slow_started.wait(), 5)
        await server.stop()
        r = await request
    assert r.status_code == 200
    assert r.json() == {"slow": "done"}


def test_log_lines_are_json_objects() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("arinova.x", logging.WARNING, __file__, 1, "hi %s", ("you",), None)
    record.__dict__["agent_id"] = "a1"
    line = orjson.loads(formatter.format(record))
    assert line["msg"] == "hi you"
    assert line["level"] == "warning"
    assert line["logger"] == "arinova.x"
    assert line["agent_id"] == "a1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert "request_id" not in line
