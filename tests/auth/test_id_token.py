"""Id token verification (arinova.auth.id_token) on tokens signed by the loopback
provider's own RS256 signer (tests/support/oauth_provider.py), not by PyJWT."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from arinova.auth.id_token import (
    LEEWAY_S,
    IdTokenRules,
    InvalidIdToken,
    unverified_claims,
    unverified_header,
    verify_id_token,
)
from tests.support.oauth_provider import CLIENT_ID, GOOGLE_ISSUER, OAuthProvider

SIGNER = OAuthProvider()
RULES = IdTokenRules(
    (GOOGLE_ISSUER, "accounts.google.com"), CLIENT_ID, max_age_s=3600, leeway_s=LEEWAY_S
)


def token(**claims: Any) -> str:
    """A token with the provider's defaults (iss, aud, iat now, exp in an hour)."""
    return SIGNER.id_token({"sub": "42", **claims})


def without(name: str) -> str:
    """A signed token whose payload lacks ``name``."""
    now = int(time.time())
    payload = {
        "iss": GOOGLE_ISSUER,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 3600,
        "sub": "42",
    }
    del payload[name]
    header = {"alg": "RS256", "kid": SIGNER.kid, "typ": "JWT"}
    return _sign(header, payload)


def _sign(header: dict[str, Any], payload: dict[str, Any] | bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    signing_input = f"{b64(orjson.dumps(header))}.{b64(raw)}"
    signature = SIGNER._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def test_a_good_token_gives_its_claims() -> None:
    claims = verify_id_token(token(email="a@example.com"), SIGNER.jwk(), RULES)
    assert (claims["sub"], claims["email"], claims["aud"]) == ("42", "a@example.com", CLIENT_ID)
    assert unverified_header(token())["kid"] == SIGNER.kid
    assert unverified_claims(token(email="b@example.com"))["email"] == "b@example.com"


#: claims made at test time from the current time (parameters are built at collection)
Claims = Callable[[int], dict[str, Any]]


@pytest.mark.parametrize(
    "claims",
    [
        lambda now: {"iss": "accounts.google.com"},
        lambda now: {"aud": ["other", CLIENT_ID]},
        lambda now: {"sub": 42},  # the profile is the caller's business
        lambda now: {"nbf": now - 10},
        lambda now: {"exp": now + 600.5, "iat": now - 0.5},
    ],
)
def test_accepted_claims(claims: Claims) -> None:
    assert verify_id_token(token(**claims(int(time.time()))), SIGNER.jwk(), RULES)


@pytest.mark.parametrize(
    "claims",
    [
        lambda now: {"iss": "https://evil.example"},
        lambda now: {"aud": "someone-else"},
        lambda now: {"aud": ["someone-else"]},
        lambda now: {"exp": str(now + 600)},  # PyJWT alone would take a numeric string
        lambda now: {"iat": str(now)},
        lambda now: {"nbf": str(now)},
        lambda now: {"exp": True},
        lambda now: {"iat": now + LEEWAY_S + 30},
        lambda now: {"nbf": now + LEEWAY_S + 30},
        lambda now: {"exp": now - LEEWAY_S - 30},
        lambda now: {"iat": now - 3600 - LEEWAY_S - 30},
    ],
)
def test_refused_claims(claims: Claims) -> None:
    with pytest.raises(InvalidIdToken):
        verify_id_token(token(**claims(int(time.time()))), SIGNER.jwk(), RULES)


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
def test_time_claims_must_be_finite(claim: str) -> None:
    now = int(time.time())
    times = {"iat": str(now), "exp": str(now + 600), claim: "NaN"}
    payload = (
        f'{{"iss":"{GOOGLE_ISSUER}","aud":"{CLIENT_ID}","iat":{times["iat"]},'
        f'"exp":{times["exp"]},"nbf":{times.get("nbf", now)}}}'
    )
    signed = _sign({"alg": "RS256", "kid": SIGNER.kid}, payload.encode())
    with pytest.raises(InvalidIdToken):
        verify_id_token(signed, SIGNER.jwk(), RULES)


@pytest.mark.parametrize("name", ["exp", "iat", "iss", "aud"])
def test_required_claims(name: str) -> None:
    assert verify_id_token(without("sub"), SIGNER.jwk(), RULES)
    with pytest.raises(InvalidIdToken):
        verify_id_token(without(name), SIGNER.jwk(), RULES)


def test_signature_algorithm_and_key() -> None:
    other = OAuthProvider()
    with pytest.raises(InvalidIdToken):
        verify_id_token(token(), other.jwk(), RULES)
    now = int(time.time())
    claims = {"iss": GOOGLE_ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 60}
    unsigned = _sign({"alg": "none"}, claims).rsplit(".", 1)[0] + "."
    with pytest.raises(InvalidIdToken):
        verify_id_token(unsigned, SIGNER.jwk(), RULES)
    for jwk in (
        {**SIGNER.jwk(), "kty": "EC"},
        {**SIGNER.jwk(), "n": 5},
        {**SIGNER.jwk(), "n": "!!!"},
        {**SIGNER.jwk(), "e": ""},
        {"kty": "RSA"},
    ):
        with pytest.raises(InvalidIdToken):
            verify_id_token(token(), jwk, RULES)
    # members beyond the public key are ignored
    assert verify_id_token(token(), {**SIGNER.jwk(), "alg": "RS512", "d": "AQAB"}, RULES)


@given(st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9_\-]{0,40}(\.[A-Za-z0-9_\-=]{0,40}){0,4}"))
def test_malformed_tokens_are_refused_not_crashed(text: str) -> None:
    for read in (unverified_header, unverified_claims):
        with contextlib.suppress(InvalidIdToken):
            read(text)
    with pytest.raises(InvalidIdToken):
        verify_id_token(text, SIGNER.jwk(), RULES)
