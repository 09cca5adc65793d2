"""Signing users in over real HTTP, for any test that needs an authenticated client.

user = await sign_up(server.url)                 # a fresh user, signed in
async with authed_client(server.url, user) as c:  # sends its cookie and a trusted Origin
    r = await c.get("/api/agents")
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import httpx

#: the default ``CORS_ORIGIN``: Better Auth trusts it, so POSTs with cookies pass the
#: origin check
TRUSTED_ORIGIN = "http://localhost:3500"
DEFAULT_PASSWORD = "correct horse battery"
SESSION_COOKIE = "better-auth.session_token"

_counter = itertools.count(1)


@dataclass(frozen=True)
class SignedIn:
    user: dict[str, Any]
    token: str
    #: the ``name=value`` pair to send in a ``Cookie`` header
    cookie: str
    email: str
    password: str

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"cookie": self.cookie, "origin": TRUSTED_ORIGIN}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{os.getpid()}.{next(_counter)}@example.com"


def session_cookie_pair(response: httpx.Response, name: str = SESSION_COOKIE) -> str:
    """``name=value`` of the session cookie a response sets (raises if it sets none)."""
    for header in response.headers.get_list("set-cookie"):
        pair = header.split(";", 1)[0]
        if pair.startswith(f"{name}=") and pair != f"{name}=":
            return pair
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


async def sign_up(
    base_url: str,
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    name: str = "Test User",
) -> SignedIn:
    email = email or unique_email()
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/api/auth/sign-up/email",
            json={"name": name, "email": email, "password": password},
            headers={"origin": TRUSTED_ORIGIN},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    return SignedIn(body["user"], body["token"], session_cookie_pair(response), email, password)


async def sign_in(base_url: str, email: str, password: str = DEFAULT_PASSWORD) -> SignedIn:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/api/auth/sign-in/email",
            json={"email": email, "password": password},
            headers={"origin": TRUSTED_ORIGIN},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    return SignedIn(body["user"], body["token"], session_cookie_pair(response), email, password)


def authed_client(base_url: str, user: SignedIn, **kwargs: Any) -> httpx.AsyncClient:
    """A client that sends the user's session cookie and a trusted ``Origin`` on every
    request (it keeps no cookie jar of its own)."""
    headers = {**user.headers, **kwargs.pop("headers", {})}
    return httpx.AsyncClient(base_url=base_url, headers=headers, **kwargs)
