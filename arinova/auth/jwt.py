"""Just enough JOSE to verify an RS256 id token against a JWKS document."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class InvalidJwt(ValueError):
    pass


def b64url_decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidJwt("bad base64url") from None


def _b64url_int(part: str) -> int:
    return int.from_bytes(b64url_decode(part), "big")


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWS (not verified)."""
    pieces = token.split(".")
    if len(pieces) != 3:
        raise InvalidJwt("not a compact JWS")
    try:
        header = orjson.loads(b64url_decode(pieces[0]))
        claims = orjson.loads(b64url_decode(pieces[1]))
    except orjson.JSONDecodeError:
        raise InvalidJwt("bad JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidJwt("header and claims must be objects")
    return header, claims, f"{pieces[0]}.{pieces[1]}".encode(), b64url_decode(pieces[2])


def rsa_key(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    if (
        jwk.get("kty") != "RSA"
        or not isinstance(jwk.get("n"), str)
        or not isinstance(jwk.get("e"), str)
    ):
        raise InvalidJwt("not an RSA key")
    try:
        return rsa.RSAPublicNumbers(_b64url_int(jwk["e"]), _b64url_int(jwk["n"])).public_key()
    except ValueError:
        raise InvalidJwt("unusable RSA key") from None


def verify_rs256(signing_input: bytes, signature: bytes, key: rsa.RSAPublicKey) -> None:
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise InvalidJwt("bad signature") from None
