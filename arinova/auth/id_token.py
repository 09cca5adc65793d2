"""OpenID Connect id tokens (Google's), verified with PyJWT (contract rest.md §3.2.7).

A token is accepted when its RS256 signature checks out against the provider's key and
its claims hold, each time claim with ``LEEWAY_S`` seconds of clock skew either way:

* ``iss`` is one of the provider's issuers and ``aud`` holds our client id;
* ``exp`` is a number and not more than ``LEEWAY_S`` in the past;
* ``iat`` is a number, not more than ``LEEWAY_S`` in the future, and the token is not
  older than ``max_age_s`` + ``LEEWAY_S``;
* ``nbf``, when present, is a number not more than ``LEEWAY_S`` in the future.

Other claims (``sub``, ``jti``, ...) are not judged here: the caller reads the profile.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

import jwt

#: clock skew tolerated between the provider and us, on every time claim
LEEWAY_S: Final = 60
ALGORITHM: Final = "RS256"
#: time claims that must be finite JSON numbers (PyJWT alone also takes numeric strings)
_TIME_CLAIMS: Final = ("exp", "iat", "nbf")


class InvalidIdToken(ValueError):
    """The token is malformed, its signature or key is unusable, or a claim fails."""


@dataclass(frozen=True, slots=True)
class IdTokenRules:
    issuers: Collection[str]
    audience: str
    max_age_s: int
    leeway_s: int = LEEWAY_S


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, not verified (to pick the key by ``kid``)."""
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise InvalidIdToken("malformed token") from None


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a token verified before (e.g. when it was stored), not verified again."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise InvalidIdToken("malformed token") from None
    return claims


def verify_id_token(
    token: str, jwk: dict[str, Any], rules: IdTokenRules, now: float | None = None
) -> dict[str, Any]:
    """The claims of ``token`` if its signature (by ``jwk``) and claims hold (see the
    module doc), else ``InvalidIdToken``. ``now`` is for ``iat`` only: PyJWT reads the
    clock itself for ``exp`` and ``nbf``."""
    n, e = jwk.get("n"), jwk.get("e")
    if jwk.get("kty") != "RSA" or not isinstance(n, str) or not isinstance(e, str):
        raise InvalidIdToken("not an RSA public key")
    try:
        # only the public members: a published key is never used as a private one
        key = jwt.PyJWK({"kty": "RSA", "n": n, "e": e}, algorithm=ALGORITHM)
    except (jwt.PyJWTError, ValueError):
        raise InvalidIdToken("unusable RSA key") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=rules.audience,
            issuer=rules.issuers,
            leeway=rules.leeway_s,
            options={
                "require": ["exp", "iat", "iss", "aud"],
                # iat is judged below, with the age (PyJWT means to stop judging it)
                "verify_iat": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidTokenError:
        raise InvalidIdToken("token refused") from None
    for name in _TIME_CLAIMS:
        if name in claims and not _is_number(claims[name]):
            raise InvalidIdToken(f"{name} is not a number")
    now = time.time() if now is None else now
    issued = claims["iat"]
    if issued > now + rules.leeway_s:
        raise InvalidIdToken("token issued in the future")
    if now - issued > rules.max_age_s + rules.leeway_s:
        raise InvalidIdToken("token too old")
    return claims


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)
