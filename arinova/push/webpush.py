"""Web Push delivery: RFC 8291 payload encryption (aes128gcm) and RFC 8292 VAPID.

Why not pywebpush's ``webpush()``: it sends with ``requests``, i.e. one blocked thread per
delivery. Here the encryption is ``http_ece`` (what pywebpush uses too), the VAPID token
is an ES256 JWT signed with PyJWT, and the POST goes out on the event loop with
httpx, through the SSRF-guarded transport of ``arinova.outbound`` (subscription endpoints
are URLs users supply). Encryption and signing cost well under a millisecond.

Requests look like the ``web-push`` library's with its defaults: ``TTL: 2419200``,
``Content-Encoding: aes128gcm``, ``Authorization: vapid t=<jwt>, k=<public key>``.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

#: web-push's default TTL (four weeks)
DEFAULT_TTL_S: Final = 2_419_200
#: VAPID tokens are valid for 12 hours, as web-push makes them; reused for 11
TOKEN_LIFETIME_S: Final = 12 * 3600
TOKEN_REUSE_S: Final = 11 * 3600
MAX_CACHED_TOKENS: Final = 256


class VapidKeyError(ValueError):
    """The configured VAPID keys cannot be used."""


class SubscriptionKeyError(ValueError):
    """A subscription's ``p256dh``/``auth`` keys are not usable."""


def b64url_decode(text: str) -> bytes:
    """Base64url (or standard base64), with or without padding."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    endpoint: str
    p256dh: str
    auth: str


class VapidSigner:
    """Makes (and briefly caches) the ``Authorization`` header for a push service origin."""

    def __init__(self, public_key: str, private_key: str, subject: str) -> None:
        try:
            scalar = int.from_bytes(b64url_decode(private_key), "big")
            self._key = ec.derive_private_key(scalar, ec.SECP256R1())
        except (ValueError, TypeError) as exc:
            raise VapidKeyError("VAPID_PRIVATE_KEY is not a base64url P-256 private key") from exc
        derived = self._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        try:
            given = b64url_decode(public_key)
        except ValueError as exc:
            raise VapidKeyError("VAPID_PUBLIC_KEY is not base64url") from exc
        if given != derived:
            raise VapidKeyError("VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY")
        self.public_key = b64url_encode(derived)
        self.subject = subject
        self._cache: dict[str, tuple[float, str]] = {}

    def header(self, endpoint: str, now: float | None = None) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time() if now is None else now
        cached = self._cache.get(audience)
        if cached is not None and cached[0] > now:
            return cached[1]
        token = self._token(audience, int(now) + TOKEN_LIFETIME_S)
        value = f"vapid t={token}, k={self.public_key}"
        if len(self._cache) >= MAX_CACHED_TOKENS:
            self._cache.clear()
        self._cache[audience] = (now + TOKEN_REUSE_S, value)
        return value

    def _token(self, audience: str, expires: int) -> str:
        """RFC 8292 §2: header ``{"typ": "JWT", "alg": "ES256"}``, claims aud/exp/sub."""
        claims = {"aud": audience, "exp": expires, "sub": self.subject}
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})


def encrypt_payload(payload: bytes, p256dh: str, auth: str) -> bytes:
    """The aes128gcm body for one subscription (a fresh sender key and salt each time)."""
    try:
        receiver = b64url_decode(p256dh)
        secret = b64url_decode(auth)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), receiver)
    except (ValueError, TypeError) as exc:
        raise SubscriptionKeyError("p256dh is not a P-256 public key") from exc
    if len(secret) < 16:
        raise SubscriptionKeyError("auth secret is shorter than 16 bytes")
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=sender,
        dh=receiver,
        auth_secret=secret,
        version="aes128gcm",
    )
    return body


class WebPushSender:
    """Sends one encrypted message to one subscription; returns the push service's status."""

    def __init__(self, signer: VapidSigner, client: httpx.AsyncClient) -> None:
        self._signer = signer
        self._client = client

    async def send(self, subscription: Subscription, payload: bytes) -> int:
        body = encrypt_payload(payload, subscription.p256dh, subscription.auth)
        headers = {
            "TTL": str(DEFAULT_TTL_S),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self._signer.header(subscription.endpoint),
        }
        # the answer's body is never read: only its status matters
        async with self._client.stream(
            "POST", subscription.endpoint, content=body, headers=headers
        ) as response:
            return response.status_code
