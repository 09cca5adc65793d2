"""Outbound GETs: the probe table of behaviours.md §5, the JSON fetch, and SSRF refusals (Q30).

A real HTTP server on loopback plays the agent endpoint; it is reachable only with
``allow_private`` (or an address policy that admits it).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from arinova.outbound import (
    OFFLINE,
    IPAddress,
    Outbound,
    ProbeResult,
    fetch_json,
    probe,
    public_address,
)

Handler = Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes, float]]


@dataclass
class LocalTarget:
    """A tiny HTTP/1.1 server: each path maps to (status, headers, body, delay seconds)."""

    host: str = "127.0.0.1"
    routes: dict[str, tuple[int, dict[str, str], bytes, float]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(
        self,
        path: str,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> str:
        self.routes[path] = (status, headers or {}, body, delay)
        return self.url(path)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            self.seen.append((target, headers))
            status, extra, body, delay = self.routes.get(target, (404, {}, b"not found", 0.0))
            if delay:
                await asyncio.sleep(delay)
            out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
            out += [f"{k}: {v}" for k, v in extra.items()]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def target() -> AsyncIterator[LocalTarget]:
    srv = LocalTarget()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def open_outbound() -> AsyncIterator[Outbound]:
    client = Outbound(allow_private=True)
    yield client
    await client.aclose()


@pytest.fixture
async def guarded() -> AsyncIterator[Outbound]:
    client = Outbound(allow_private=False)
    yield client
    await client.aclose()


# --- the address policy -----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert public_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert public_address(ipaddress.ip_address(address)) is True


# --- probe: the behaviours.md §5 table ---------------------------------------------


async def test_probeout_url_is_offline(open_outbound: Outbound) -> None:
    assert await probe(open_outbound, None) == OFFLINE
    assert await probe(open_outbound, "") == ProbeResult("offline", None)


async def test_probe_2xx_is_online_with_latency(
    open_outbound: Outbound, target: LocalTarget
) -> None:
    url = target.route("/ok", 204, delay=0.05)
    result = await probe(open_outbound, url)
    assert result.status == "online"
    assert result.latency_ms is not None and 40 <= result.latency_ms < 2000
    assert target.seen[0][0] == "/ok"


async def test_probe_non_2xx_is_error_with_latency(
    open_outbound: Outbound, target: LocalTarget
) -> None:
    for status in (301, 404, 500):
        path = f"/s{status}"
        result = await probe(open_outbound, target.route(path, status))
        assert result.status == "error", status
        assert isinstance(result.latency_ms, int)


async def test_probe_network_failure_is_offline(open_outbound: Outbound) -> None:
    closed = LocalTarget()
    await closed.start()
    url = closed.url("/gone")
    await closed.stop()
    assert await probe(open_outbound, url) == OFFLINE
    assert await probe(open_outbound, "http://nonexistent.invalid/") == OFFLINE
    assert await probe(open_outbound, "not a url") == OFFLINE
    assert await probe(open_outbound, "ftp://127.0.0.1/") == OFFLINE
    assert await probe(open_outbound, "mailto:someone@example.com") == OFFLINE


async def test_probe_timeout_is_offline(target: LocalTarget) -> None:
    client = Outbound(allow_private=True, timeout_s=0.3)
    try:
        url = target.route("/slow", 200, delay=3.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await probe(client, url) == OFFLINE
        assert loop.time() - started < 1.5
    finally:
        await client.aclose()


async def test_probe_follows_redirects(open_outbound: Outbound, target: LocalTarget) -> None:
    final = target.route("/final", 200)
    target.route("/hop2", 302, headers={"Location": final})
    start = target.route("/hop1", 301, headers={"Location": "/hop2"})
    assert (await probe(open_outbound, start)).status == "online"
    assert [path for path, _ in target.seen] == ["/hop1", "/hop2", "/final"]


async def test_redirect_chains_are_bounded(open_outbound: Outbound, target: LocalTarget) -> None:
    loop_url = target.route("/loop", 302, headers={"Location": "/loop"})
    assert await probe(open_outbound, loop_url) == OFFLINE
    assert len(target.seen) == 4  # the first request and 3 redirects, then it gives up


async def test_redirect_to_other_scheme_is_refused(
    open_outbound: Outbound, target: LocalTarget
) -> None:
    url = target.route("/to-file", 302, headers={"Location": "file:///etc/passwd"})
    assert await probe(open_outbound, url) == OFFLINE


# --- SSRF refusals with the setting off --------------------------------------------


async def test_loopback_target_is_refused_when_private_is_not_allowed(
    guarded: Outbound, target: LocalTarget
) -> None:
    url = target.route("/ok", 200, b'{"skills":[]}')
    assert await probe(guarded, url) == OFFLINE
    assert await fetch_json(guarded, url) is None
    assert target.seen == []  # the server was never contacted


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost/",
        "http://2130706433/",
    ],
)
async def test_private_urls_are_refused_quickly(guarded: Outbound, url: str) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await probe(guarded, url) == OFFLINE
    assert loop.time() - started < 1.0  # refused before any connection attempt


async def test_hostname_resolving_to_loopback_is_refused(
    guarded: Outbound, target: LocalTarget
) -> None:
    url = f"http://localhost:{target.port}/ok"
    target.route("/ok", 200)
    assert await probe(guarded, url) == OFFLINE
    assert target.seen == []


async def test_every_redirect_hop_is_checked() -> None:
    """A hop to an address the policy refuses fails, although that server is up."""
    first, second = LocalTarget("127.0.0.1"), LocalTarget("127.0.0.2")
    await first.start()
    await second.start()

    def only_first(ip: IPAddress) -> bool:
        return str(ip) == "127.0.0.1"

    strict = Outbound(policy=only_first)
    lenient = Outbound(allow_private=True)
    try:
        second.route("/inside", 200)
        url = first.route("/out", 302, headers={"Location": second.url("/inside")})
        assert await probe(strict, url) == OFFLINE
        assert second.seen == []
        assert (await probe(lenient, url)).status == "online"
        assert [p for p, _ in second.seen] == ["/inside"]
    finally:
        await strict.aclose()
        await lenient.aclose()
        await first.stop()
        await second.stop()


# --- fetch_json ---------------------------------------------------------------------


async def test_fetch_json_returns_parsed_body_and_sends_accept(
    open_outbound: Outbound, target: LocalTarget
) -> None:
    url = target.route("/card", 200, b'{"skills":[{"id":"a","name":"A"}]}')
    assert await fetch_json(open_outbound, url) == {"skills": [{"id": "a", "name": "A"}]}
    assert target.seen[0][1]["accept"] == "application/json"


async def test_fetch_json_failures_are_none(open_outbound: Outbound, target: LocalTarget) -> None:
    assert await fetch_json(open_outbound, target.route("/e", 500, b"{}")) is None
    assert await fetch_json(open_outbound, target.route("/html", 200, b"<html>")) is None
    assert await fetch_json(open_outbound, target.url("/missing")) is None


async def test_fetch_json_caps_the_body(target: LocalTarget) -> None:
    client = Outbound(allow_private=True, max_body_bytes=1000)
    try:
        small = target.route("/small", 200, b'"' + b"x" * 900 + b'"')
        big = target.route("/big", 200, b'"' + b"x" * 5000 + b'"')
        assert await fetch_json(client, small) == "x" * 900
        assert await fetch_json(client, big) is None
    finally:
        await client.aclose()


async def test_client_is_reusable_after_close(target: LocalTarget) -> None:
    client = Outbound(allow_private=True)
    url = target.route("/ok", 200)
    assert (await probe(client, url)).status == "online"
    await client.aclose()
    assert (await probe(client, url)).status == "online"
    await client.aclose()
