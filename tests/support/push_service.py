"""A local Web Push service for tests: a real HTTP server on loopback.

It plays the browser vendor's push service and the browser at once: each subscription it
hands out has a P-256 key pair and an auth secret made here (``cryptography``), and every
POST it receives must carry a valid VAPID token (RFC 8292: ES256 JWT checked with the
public key from ``Authorization: vapid t=…, k=…``, audience = this server's origin,
expiry within 24 h, a subject) and an aes128gcm body (RFC 8291) that decrypts with the
subscription's private key. Decrypted payloads are kept for the test to assert; anything
that fails a check is answered 400 and recorded in ``errors``.

    async with LocalPushService() as service:
        sub = service.subscription("phone")              # {"endpoint", "keys": {...}}
        gone = service.subscription("old", status=410)   # answered 410 Gone
        ...
        assert service.received("phone")[0].payload == {...}
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece  # type: ignore[import-untyped]
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_vapid_keys() -> tuple[str, str]:
    """``(public, private)`` in the form ``web-push generate-vapid-keys`` prints."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return b64url(public), b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@dataclass
class Delivery:
    name: str
    payload: Any
    headers: dict[str, str]
    claims: dict[str, Any]


@dataclass
class _Endpoint:
    name: str
    key: ec.EllipticCurvePrivateKey
    auth: bytes
    status: int
    delay_s: float
    deliveries: list[Delivery] = field(default_factory=list)


class LocalPushService:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0
        self._endpoints: dict[str, _Endpoint] = {}
        self.errors: list[str] = []
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LocalPushService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def subscription(self, name: str, status: int = 201, delay_s: float = 0.0) -> dict[str, Any]:
        """A browser subscription (the JSON a client posts to /api/push/subscribe)."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self._endpoints[name] = _Endpoint(name, key, auth, status, delay_s)
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
        }

    def received(self, name: str) -> list[Delivery]:
        return self._endpoints[name].deliveries

    # -- HTTP ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = await self._handle(method, target, headers, body)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode("latin-1"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> int:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            name = target.removeprefix("/push/")
            endpoint = self._endpoints.get(name)
            if method != "POST" or endpoint is None:
                self.errors.append(f"unexpected {method} {target}")
                return 404
            if endpoint.delay_s:
                await asyncio.sleep(endpoint.delay_s)
            try:
                claims = self._check_vapid(headers)
                payload = self._decrypt(endpoint, headers, body)
            except AssertionError as exc:
                self.errors.append(f"{name}: {exc}")
                return 400
            endpoint.deliveries.append(Delivery(name, payload, headers, claims))
            return endpoint.status
        finally:
            self.in_flight -= 1

    def _check_vapid(self, headers: dict[str, str]) -> dict[str, Any]:
        authorization = headers.get("authorization", "")
        assert authorization.startswith("vapid "), f"authorization {authorization!r}"
        params = dict(
            part.strip().split("=", 1) for part in authorization[len("vapid ") :].split(",")
        )
        token, public = params.get("t", ""), params.get("k", "")
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = orjson.loads(unb64url(header_b64))
        assert header == {"typ": "JWT", "alg": "ES256"}, f"JWT header {header}"
        signature = unb64url(signature_b64)
        assert len(signature) == 64, "ES256 signature is not 64 bytes"
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public))
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise AssertionError("VAPID signature does not verify") from None
        claims: dict[str, Any] = orjson.loads(unb64url(claims_b64))
        assert claims.get("aud") == self.origin, f"aud {claims.get('aud')!r}"
        now = time.time()
        assert now < claims["exp"] <= now + 24 * 3600, f"exp {claims['exp']}"
        assert str(claims.get("sub", "")).startswith(("mailto:", "https:")), "sub"
        return claims

    def _decrypt(self, endpoint: _Endpoint, headers: dict[str, str], body: bytes) -> Any:
        assert headers.get("content-encoding") == "aes128gcm", "content-encoding"
        assert headers.get("ttl", "").isdigit(), "TTL header"
        try:
            plain = http_ece.decrypt(
                body, private_key=endpoint.key, auth_secret=endpoint.auth, version="aes128gcm"
            )
        except Exception as exc:
            raise AssertionError(f"payload does not decrypt: {exc!r}") from None
        return orjson.loads(plain)
