"""Outbound HTTP GETs to URLs that users supply (A2A cards, agent status probes).

Guarded against SSRF (quirk Q30): every TCP connection, including each redirect hop,
resolves the host itself and refuses private, loopback, link-local, multicast, reserved
and unspecified addresses unless ``settings.allow_private_outbound`` is on. The check and
the connect use the same resolved address, so a DNS answer cannot change in between.
A whole request (resolution, redirects, body) gets ``TOTAL_TIMEOUT_S``; bodies are capped.
No proxy from the environment is used (it would bypass the address check).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpcore
import httpx
import orjson

log = logging.getLogger("arinova.outbound")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]

TOTAL_TIMEOUT_S = 5.0
MAX_REDIRECTS = 3
MAX_BODY_BYTES = 1_048_576
MAX_CONNECTIONS = 100
USER_AGENT = "Arinova"

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundRefused(Exception):
    """The URL or one of its addresses is not allowed, or the response broke a limit."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (also for the IPv4 inside an IPv6 one)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not public_address(inner):
            return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def any_address(ip: IPAddress) -> bool:
    return True


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    found: dict[IPAddress, None] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            found[ipaddress.ip_address(sockaddr[0])] = None
    if not found:
        raise httpcore.ConnectError(f"no address for {host!r}")
    return list(found)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address against the policy, then connects to a checked one."""

    def __init__(self, allowed: AddressPolicy) -> None:
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        refused = [ip for ip in addresses if not self._allowed(ip)]
        if refused:
            raise httpcore.ConnectError(f"address {refused[0]} of {host!r} is not allowed")
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections go through GuardedBackend."""

    def __init__(self, allowed: AddressPolicy) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=MAX_CONNECTIONS,
            # probes go to arbitrary hosts, rarely twice within seconds: no idle sockets
            max_keepalive_connections=0,
            network_backend=GuardedBackend(allowed),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.NetworkError(str(exc), request=request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.ProtocolError(str(exc), request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_BodyStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class Outbound:
    """The process's one outbound HTTP client (created on first use)."""

    def __init__(
        self,
        allow_private: bool = False,
        *,
        policy: AddressPolicy | None = None,
        timeout_s: float = TOTAL_TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.policy: AddressPolicy = policy or (any_address if allow_private else public_address)
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=GuardedTransport(self.policy),
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self.timeout_s),
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    @asynccontextmanager
    async def get(
        self, url: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """GET ``url`` following at most ``MAX_REDIRECTS`` redirects (each hop checked);
        yields the final response with its body not yet read. Raises on any failure."""
        client = self._http()
        try:
            request = client.build_request("GET", url, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise OutboundRefused(f"bad url: {exc}") from exc
        for _hop in range(MAX_REDIRECTS + 1):
            if request.url.scheme not in ("http", "https") or not request.url.host:
                raise OutboundRefused(f"not an http(s) url: {request.url}")
            response = await client.send(request, stream=True)
            next_request = response.next_request
            if next_request is None:
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            await response.aclose()
            request = next_request
        raise OutboundRefused(f"more than {MAX_REDIRECTS} redirects")

    async def read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise OutboundRefused("response body too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise OutboundRefused("response body too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


ProbeStatus = Literal["online", "offline", "error"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: ProbeStatus
    latency_ms: int | None


OFFLINE = ProbeResult("offline", None)


async def probe(outbound: Outbound, url: str | None) -> ProbeResult:
    """behaviours.md §5: no URL or any failure -> offline/None; 2xx -> online; else error."""
    if not url:
        return OFFLINE
    start = time.monotonic()
    try:
        async with asyncio.timeout(outbound.timeout_s), outbound.get(url) as response:
            latency_ms = int((time.monotonic() - start) * 1000)
            ok = 200 <= response.status_code < 300
    except Exception as exc:
        log.debug("probe of %s failed: %r", url, exc)
        return OFFLINE
    return ProbeResult("online" if ok else "error", latency_ms)


async def fetch_json(outbound: Outbound, url: str) -> Any | None:
    """GET ``url`` with ``Accept: application/json``; the parsed body of a 2xx response,
    else None (any failure, non-2xx, too large, not JSON)."""
    try:
        async with (
            asyncio.timeout(outbound.timeout_s),
            outbound.get(url, {"Accept": "application/json"}) as response,
        ):
            if not 200 <= response.status_code < 300:
                return None
            body = await outbound.read_capped(response)
        return orjson.loads(body)
    except Exception as exc:
        log.debug("fetch of %s failed: %r", url, exc)
        return None
