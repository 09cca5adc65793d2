"""Google and GitHub sign-in end to end against the loopback provider
(tests/support/oauth_provider.py): the browser's redirects are followed by hand."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import orjson
import pytest

from arinova.server import Server
from arinova.server.runner import bind_socket
from tests.support.auth import TRUSTED_ORIGIN, sign_up, unique_email
from tests.support.oauth_provider import CLIENT_ID, OAuthProvider
from tests.support.servers import StartServer

STATE_COOKIE = re.compile(
    r"^better-auth\.state=([A-Za-z0-9_-]{32})\.[A-Za-z0-9%]+; Max-Age=300; Path=/; HttpOnly; SameSite=Lax$"
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[OAuthProvider]:
    p = await OAuthProvider.start()
    yield p
    await p.stop()


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer, provider: OAuthProvider) -> Server:
    sock = bind_socket("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return await start_module_server(better_auth_url=base, **provider.settings(), sock=sock)


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database, server_settings={"timezone": "UTC"})
    yield conn
    await conn.close()


class Browser:
    """Follows the sign-in redirects as a browser would, keeping the API's cookies."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.client = httpx.AsyncClient(base_url=server.url, follow_redirects=False)

    async def close(self) -> None:
        await self.client.aclose()

    async def start(self, provider: str, **body: Any) -> httpx.Response:
        return await self.client.post(
            "/api/auth/sign-in/social",
            json={"provider": provider, "callbackURL": "/", **body},
            headers={"origin": TRUSTED_ORIGIN},
        )

    async def login(self, provider: str, **body: Any) -> httpx.Response:
        """The whole round trip; returns our callback's answer."""
        started = await self.start(provider, **body)
        assert started.status_code == 200, started.text
        async with httpx.AsyncClient(follow_redirects=False) as outside:
            at_provider = await outside.get(started.json()["url"])
        assert at_provider.status_code == 302
        callback = at_provider.headers["location"]
        assert callback.startswith(f"{self.server.settings.better_auth_url}/api/auth/callback/")
        return await self.client.get(callback)

    async def session(self) -> Any:
        return (await self.client.get("/api/auth/get-session")).json()


@pytest.fixture
async def browser(server: Server) -> AsyncIterator[Browser]:
    b = Browser(server)
    yield b
    await b.close()


def error_of(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302
    location = response.headers["location"]
    return parse_qs(urlsplit(location).query)


# -- starting the flow ------------------------------------------------------------------------
async def test_sign_in_social_answers_the_authorize_url(
    browser: Browser, server: Server, provider: OAuthProvider, db: asyncpg.Connection
) -> None:
    r = await browser.start("google")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["url", "redirect"] and body["redirect"] is True
    assert r.headers["location"] == body["url"]
    [cookie] = r.headers.get_list("set-cookie")
    state = STATE_COOKIE.match(cookie).group(1)  # type: ignore[union-attr]
    url = urlsplit(body["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.url}/google/authorize"
    query = parse_qs(url.query)
    assert list(query) == [
        "response_type", "client_id", "state", "scope", "redirect_uri",
        "code_challenge_method", "code_challenge", "include_granted_scopes",
    ]  # fmt: skip
    assert query["scope"] == ["email profile openid"]
    assert query["state"] == [state] and query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{server.settings.better_auth_url}/api/auth/callback/google"]
    row = await db.fetchrow("SELECT * FROM verification WHERE identifier = $1", state)
    value = orjson.loads(row["value"])
    assert list(value) == ["callbackURL", "codeVerifier", "expiresAt"]
    assert value["callbackURL"] == "/" and re.match(r"^[A-Za-z0-9_-]{128}$", value["codeVerifier"])
    assert row["expires_at"] - row["created_at"] == timedelta(minutes=10)

    r = await browser.start("github", disableRedirect=True)
    assert r.json()["redirect"] is False and "location" not in r.headers
    assert parse_qs(urlsplit(r.json()["url"]).query)["scope"] == ["read:user user:email"]


async def test_unknown_or_disabled_provider_is_404(browser: Browser) -> None:
    r = await browser.start("twitter")
    assert (r.status_code, r.json()) == (
        404,
        {"code": "PROVIDER_NOT_FOUND", "message": "Provider not found"},
    )


async def test_untrusted_callback_url_is_refused(browser: Browser) -> None:
    r = await browser.start("google", callbackURL="https://evil.example/")
    assert (r.status_code, r.json()["code"]) == (403, "INVALID_CALLBACKURL")
    r = await browser.start("google", errorCallbackURL="https://evil.example/")
    assert (r.status_code, r.json()["code"]) == (403, "INVALID_ERRORCALLBACKURL")


# -- Google ---------------------------------------------------------------------------------
async def test_google_new_user_then_returning_user(
    browser: Browser, provider: OAuthProvider, db: asyncpg.Connection
) -> None:
    email = unique_email("Google.User")
    claims = {
        "sub": "1000001",
        "email": email,
        "email_verified": True,
        "name": "Goo Gle",
        "picture": "https://img.example/g.png",
    }
    provider.next_google(**claims)
    r = await browser.login("google", newUserCallbackURL="/welcome")
    assert r.status_code == 302 and r.headers["location"] == "/welcome"
    cookies = r.headers.get_list("set-cookie")
    assert cookies[0] == "better-auth.state=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    assert cookies[1].startswith("better-auth.session_token=")
    assert cookies[1].endswith("; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax")
    session = await browser.session()
    user = session["user"]
    assert (user["email"], user["name"], user["image"], user["emailVerified"]) == (
        email.lower(), "Goo Gle", "https://img.example/g.png", True,
    )  # fmt: skip
    account = await db.fetchrow("SELECT * FROM account WHERE user_id = $1", user["id"])
    assert (account["provider_id"], account["account_id"]) == ("google", "1000001")
    assert account["scope"] == (
        "openid,https://www.googleapis.com/auth/userinfo.email,"
        "https://www.googleapis.com/auth/userinfo.profile"
    )
    assert account["access_token"].startswith("google-access-")
    assert account["refresh_token"].startswith("google-refresh-")
    assert account["id_token"].count(".") == 2 and account["password"] is None
    expires_in = account["access_token_expires_at"] - utcnow()
    assert timedelta(seconds=3500) < expires_in <= timedelta(seconds=3599)
    state = provider.authorize_requests[-1]["state"]
    assert await db.fetchval("SELECT count(*) FROM verification WHERE identifier = $1", state) == 0

    # the token request carried the PKCE verifier and the same redirect URI
    token_request = provider.token_requests[-1]
    assert token_request["redirect_uri"].endswith("/api/auth/callback/google")
    assert len(token_request["code_verifier"]) == 128

    # returning user: same user, tokens refreshed, lands on callbackURL
    provider.next_google(**claims)
    again = Browser(browser.server)
    try:
        r = await again.login("google", newUserCallbackURL="/welcome")
        assert r.status_code == 302 and r.headers["location"] == "/"
        assert (await again.session())["user"]["id"] == user["id"]
    finally:
        await again.close()
    accounts = await db.fetch("SELECT * FROM account WHERE user_id = $1", user["id"])
    assert len(accounts) == 1 and accounts[0]["access_token"] != account["access_token"]
    assert await db.fetchval('SELECT count(*) FROM "user" WHERE email = $1', email.lower()) == 1


async def test_google_links_an_existing_user_with_a_verified_email(
    browser: Browser, provider: OAuthProvider, db: asyncpg.Connection, server: Server
) -> None:
    existing = await sign_up(server.url)
    provider.next_google(sub="1000002", email=existing.email, email_verified=True, name="Other")
    r = await browser.login("google")
    assert (r.status_code, r.headers["location"]) == (302, "/")
    user = (await browser.session())["user"]
    assert user["id"] == existing.id and user["name"] == "Test User"
    assert user["emailVerified"] is True
    providers = await db.fetch(
        "SELECT provider_id FROM account WHERE user_id = $1 ORDER BY provider_id", existing.id
    )
    assert [p["provider_id"] for p in providers] == ["credential", "google"]


async def test_google_id_token_must_verify(
    browser: Browser, provider: OAuthProvider, server: Server
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    email = unique_email("idtoken")
    good = provider.id_token(
        {"sub": "1000003", "email": email, "email_verified": True, "name": "I"}
    )
    forged = provider.id_token(
        {"sub": "1000003", "email": email, "email_verified": True},
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    r = await browser.start("google", idToken={"token": forged})
    assert (r.status_code, r.json()) == (401, {"code": "INVALID_TOKEN", "message": "Invalid token"})
    wrong_audience = provider.id_token({"sub": "1", "email": email, "aud": "someone-else"})
    r = await browser.start("google", idToken={"token": wrong_audience})
    assert r.status_code == 401
    r = await browser.start("google", idToken={"token": good})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["redirect", "token", "user"] and body["redirect"] is False
    assert body["user"]["email"] == email
    r = await browser.start("github", idToken={"token": good})
    assert (r.status_code, r.json()["code"]) == (404, "ID_TOKEN_NOT_SUPPORTED")


@pytest.mark.parametrize(
    ("offsets", "accepted"),
    [
        ({"iat": 20, "exp": 3600}, True),  # issued a little ahead of our clock
        ({"iat": 120, "exp": 3600}, False),
        ({"nbf": 20}, True),
        ({"nbf": 120}, False),
        ({"iat": -3600, "exp": -20}, True),  # expired a moment ago by our clock
        ({"iat": -3600, "exp": -120}, False),
        ({"iat": -3640, "exp": 3600}, True),  # a little past the maximum age
        ({"iat": -3720, "exp": 3600}, False),
    ],
)
async def test_google_id_token_times_have_a_clock_skew_leeway(
    browser: Browser, provider: OAuthProvider, offsets: dict[str, int], accepted: bool
) -> None:
    """60 s either way on iat, nbf, exp and the one-hour age (arinova.auth.id_token)."""
    now = int(time.time())
    claims = {name: now + offset for name, offset in offsets.items()}
    email = unique_email("skew")
    token = provider.id_token({"sub": email, "email": email, "email_verified": True, **claims})
    r = await browser.start("google", idToken={"token": token})
    if accepted:
        assert r.status_code == 200, r.text
        assert r.json()["user"]["email"] == email
    else:
        assert (r.status_code, r.json()) == (
            401,
            {"code": "INVALID_TOKEN", "message": "Invalid token"},
        )


# -- GitHub ---------------------------------------------------------------------------------
async def test_github_new_user_then_returning_user(
    browser: Browser, provider: OAuthProvider, db: asyncpg.Connection
) -> None:
    email = unique_email("hub")
    profile = {
        "id": 4242,
        "login": "octo",
        "name": None,
        "email": None,
        "avatar_url": "https://a/o",
    }
    emails = [
        {"email": "secondary@example.com", "primary": False, "verified": True},
        {"email": email, "primary": True, "verified": True},
    ]
    provider.next_github(profile, emails)
    r = await browser.login("github")
    assert (r.status_code, r.headers["location"]) == (302, "/")
    user = (await browser.session())["user"]
    assert (user["email"], user["name"], user["image"], user["emailVerified"]) == (
        email, "octo", "https://a/o", True,
    )  # fmt: skip
    account = await db.fetchrow("SELECT * FROM account WHERE user_id = $1", user["id"])
    assert (account["provider_id"], account["account_id"]) == ("github", "4242")
    assert account["scope"] == "read:user,user:email"
    assert account["access_token_expires_at"] is None and account["refresh_token"] is None

    provider.next_github(profile, emails)
    again = Browser(browser.server)
    try:
        r = await again.login("github")
        assert r.status_code == 302
        assert (await again.session())["user"]["id"] == user["id"]
    finally:
        await again.close()
    assert await db.fetchval("SELECT count(*) FROM account WHERE user_id = $1", user["id"]) == 1


async def test_github_unverified_email_of_an_existing_user_is_not_linked(
    browser: Browser, provider: OAuthProvider, server: Server
) -> None:
    existing = await sign_up(server.url)
    provider.next_github(
        {"id": 777, "login": "x", "email": existing.email, "avatar_url": None},
        [{"email": existing.email, "primary": True, "verified": False}],
    )
    r = await browser.login("github")
    assert error_of(r) == {"error": ["account_not_linked"]}
    assert r.headers["location"].startswith(f"{server.settings.better_auth_url}/api/auth/error?")
    assert await browser.session() is None


async def test_github_without_any_email(browser: Browser, provider: OAuthProvider) -> None:
    provider.next_github({"id": 778, "login": "noemail", "email": None}, [])
    r = await browser.login("github")
    assert error_of(r) == {"error": ["email_not_found"]}


# -- callback failures ------------------------------------------------------------------------
async def test_callback_state_failures(browser: Browser, server: Server) -> None:
    base = f"{server.settings.better_auth_url}/api/auth/error"
    r = await browser.client.get("/api/auth/callback/google", params={"code": "x"})
    assert (r.status_code, r.headers["location"]) == (302, f"{base}?state=state_not_found")
    r = await browser.client.get("/api/auth/callback/google", params={"code": "x", "state": "nope"})
    assert r.headers["location"] == f"{base}?error=please_restart_the_process"

    started = await browser.start("google")
    state = parse_qs(urlsplit(started.json()["url"]).query)["state"][0]
    async with httpx.AsyncClient(base_url=server.url) as cookieless:
        r = await cookieless.get("/api/auth/callback/google", params={"code": "x", "state": state})
        assert r.headers["location"] == f"{base}?error=state_mismatch"
    # the state survived the mismatch; with its cookie a provider error is forwarded
    r = await browser.client.get(
        "/api/auth/callback/google",
        params={"state": state, "error": "access_denied", "error_description": "no thanks"},
    )
    assert r.headers["location"] == f"{base}?error=access_denied&error_description=no+thanks"
    # used once
    r = await browser.client.get("/api/auth/callback/google", params={"code": "x", "state": state})
    assert r.headers["location"] == f"{base}?error=please_restart_the_process"


async def test_callback_with_a_bad_code(browser: Browser, server: Server) -> None:
    base = f"{server.settings.better_auth_url}/api/auth/error"
    for provider_id in ("google", "github"):
        started = await browser.start(provider_id, errorCallbackURL="/oops")
        state = parse_qs(urlsplit(started.json()["url"]).query)["state"][0]
        r = await browser.client.get(
            f"/api/auth/callback/{provider_id}", params={"code": "forged", "state": state}
        )
        assert r.headers["location"] == "/oops?error=invalid_code"
        started = await browser.start(provider_id)
        state = parse_qs(urlsplit(started.json()["url"]).query)["state"][0]
        r = await browser.client.get(f"/api/auth/callback/{provider_id}", params={"state": state})
        assert r.headers["location"] == f"{base}?error=no_code"


async def test_callback_post_becomes_a_get(browser: Browser, server: Server) -> None:
    r = await browser.client.post(
        "/api/auth/callback/google",
        json={"code": "c", "state": "s"},
        headers={"origin": TRUSTED_ORIGIN},
    )
    assert r.status_code == 302
    assert r.headers["location"] == (
        f"{server.settings.better_auth_url}/api/auth/callback/google?code=c&state=s"
    )


async def test_callback_state_with_a_nul_character_is_an_unknown_state(
    browser: Browser, server: Server
) -> None:
    r = await browser.client.get("/api/auth/callback/google", params={"state": "a\x00b"})
    assert r.status_code == 302
    base = f"{server.settings.better_auth_url}/api/auth/error"
    assert r.headers["location"] == f"{base}?error=please_restart_the_process"


async def test_callback_post_with_control_characters_in_the_provider_still_redirects(
    browser: Browser, server: Server
) -> None:
    # the provider comes percent-decoded from the path; the Location is a valid header
    r = await browser.client.post(
        "/api/auth/callback/R%0F%C2%889",
        json={"code": "c"},
        headers={"origin": TRUSTED_ORIGIN},
    )
    assert r.status_code == 302
    assert r.headers["location"] == (
        f"{server.settings.better_auth_url}/api/auth/callback/R%0F%C2%889?code=c"
    )


async def test_error_page_in_production_redirects(start_server: StartServer) -> None:
    srv = await start_server(
        node_env="production", secret_explicit=True, better_auth_secret="s" * 40
    )
    async with httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.get(
            "/api/auth/error",
            params={"error": "access_denied", "error_description": "hi there"},
        )
        assert (r.status_code, r.headers["location"]) == (
            302,
            "/?error=access_denied&error_description=hi+there",
        )
        r = await client.get("/api/auth/error", params={"state": "state_not_found"})
        assert r.headers["location"] == "/?error=UNKNOWN"


# -- linking a provider to the signed-in user --------------------------------------------------
async def test_link_social_adds_the_account_to_the_signed_in_user(
    provider: OAuthProvider, db: asyncpg.Connection, server: Server
) -> None:
    user = await sign_up(server.url)
    b = Browser(server)
    try:
        r = await b.client.post(
            "/api/auth/link-social",
            json={"provider": "google", "callbackURL": "/linked"},
            headers={"origin": TRUSTED_ORIGIN},
        )
        assert r.status_code == 401 and r.content == b""  # not signed in
        b.client.headers["cookie"] = user.cookie
        r = await b.client.post(
            "/api/auth/link-social", json={"provider": "bogus"}, headers={"origin": TRUSTED_ORIGIN}
        )
        assert (r.status_code, r.json()["code"]) == (404, "PROVIDER_NOT_FOUND")
        r = await b.client.post(
            "/api/auth/link-social",
            json={"provider": "google", "callbackURL": "/linked"},
            headers={"origin": TRUSTED_ORIGIN},
        )
        assert r.status_code == 200 and list(r.json()) == ["url", "redirect"]
        state = parse_qs(urlsplit(r.json()["url"]).query)["state"][0]
        stored = orjson.loads(
            await db.fetchval("SELECT value FROM verification WHERE identifier = $1", state)
        )
        assert stored["link"] == {"userId": user.id, "email": user.email}
        assert list(stored) == ["callbackURL", "codeVerifier", "link", "expiresAt"]
        state_cookie = session_state_cookie(r)
        provider.next_google(sub="2000001", email=user.email, email_verified=True, name="G")
        async with httpx.AsyncClient(follow_redirects=False) as outside:
            at_provider = await outside.get(r.json()["url"])
        callback = await b.client.get(
            at_provider.headers["location"],
            headers={"cookie": f"{user.cookie}; {state_cookie}"},
        )
        assert (callback.status_code, callback.headers["location"]) == (302, "/linked")
        # no new session: only the state cookie is cleared
        assert callback.headers.get_list("set-cookie") == [
            "better-auth.state=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
        ]
        rows = await db.fetch(
            "SELECT provider_id, account_id FROM account WHERE user_id = $1 ORDER BY provider_id",
            user.id,
        )
        assert [tuple(row) for row in rows] == [
            ("credential", user.id),
            ("google", "2000001"),
        ]
    finally:
        await b.close()


async def test_link_social_refuses_another_email_or_an_unverified_one(
    provider: OAuthProvider, db: asyncpg.Connection, server: Server
) -> None:
    user = await sign_up(server.url)
    headers = {"origin": TRUSTED_ORIGIN, "cookie": user.cookie}
    base = f"{server.settings.better_auth_url}/api/auth/error"
    cases = [
        ({"email": unique_email("other"), "email_verified": True}, "email_doesn%27t_match"),
        ({"email": user.email, "email_verified": False}, "unable_to_link_account"),
    ]
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False) as client:
        for claims, code in cases:
            r = await client.post(
                "/api/auth/link-social", json={"provider": "google"}, headers=headers
            )
            provider.next_google(sub="2000002", name="G", **claims)
            at_provider = await client.get(r.json()["url"])
            callback = await client.get(
                at_provider.headers["location"],
                headers={"cookie": f"{user.cookie}; {session_state_cookie(r)}"},
            )
            assert callback.headers["location"] == f"{base}?error={code}"
    assert await db.fetchval("SELECT count(*) FROM account WHERE user_id = $1", user.id) == 1


def session_state_cookie(response: httpx.Response) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith("better-auth.state="):
            return value.split(";", 1)[0]
    raise AssertionError("no state cookie")


# -- the provider's tokens and profile of a signed-in user -------------------------------------
async def test_access_tokens_refresh_and_account_info(
    browser: Browser, provider: OAuthProvider, db: asyncpg.Connection
) -> None:
    email = unique_email("tokens")
    claims = {"sub": "3000001", "email": email, "email_verified": True, "name": "T"}
    provider.next_google(**claims)
    assert (await browser.login("google")).status_code == 302
    headers = {"origin": TRUSTED_ORIGIN}
    account = await db.fetchrow("SELECT * FROM account WHERE account_id = '3000001'")
    scopes = account["scope"].split(",")

    r = await browser.client.post(
        "/api/auth/get-access-token", json={"providerId": "google"}, headers=headers
    )
    assert r.status_code == 200
    assert r.json() == {
        "accessToken": account["access_token"],
        "accessTokenExpiresAt": account["access_token_expires_at"].isoformat(
            timespec="milliseconds"
        )
        + "Z",
        "scopes": scopes,
        "idToken": account["id_token"],
    }
    r = await browser.client.post(
        "/api/auth/get-access-token", json={"providerId": "github"}, headers=headers
    )
    assert (r.status_code, r.json()["message"]) == (400, "Account not found")

    # an access token about to expire is refreshed first
    await db.execute(
        "UPDATE account SET access_token_expires_at = now() at time zone 'utc'"
        " WHERE account_id = '3000001'"
    )
    r = await browser.client.post(
        "/api/auth/get-access-token", json={"providerId": "google"}, headers=headers
    )
    assert r.status_code == 200 and r.json()["accessToken"] != account["access_token"]
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"
    assert provider.token_requests[-1]["refresh_token"] == account["refresh_token"]
    stored = await db.fetchrow("SELECT * FROM account WHERE account_id = '3000001'")
    assert stored["access_token"] == r.json()["accessToken"]
    assert stored["refresh_token"] == account["refresh_token"]  # Google sent none: kept

    r = await browser.client.post(
        "/api/auth/refresh-token", json={"providerId": "google"}, headers=headers
    )
    body = r.json()
    assert r.status_code == 200 and list(body) == [
        "accessToken",
        "accessTokenExpiresAt",
        "scope",
        "idToken",
        "providerId",
        "accountId",
    ]
    assert (body["scope"], body["providerId"], body["accountId"]) == (
        account["scope"], "google", "3000001",
    )  # fmt: skip

    r = await browser.client.get("/api/auth/account-info", params={"accountId": "3000001"})
    assert r.status_code == 200
    info = r.json()
    assert info["user"] == {
        "id": "3000001",
        "name": "T",
        "email": email,
        "emailVerified": True,
    }
    assert info["data"]["sub"] == "3000001" and info["data"]["iss"] == "https://accounts.google.com"
    own = (await browser.session())["user"]["id"]
    r = await browser.client.get("/api/auth/account-info", params={"accountId": own})
    assert r.status_code == 400  # the credential-less user has no account with that id


async def test_github_account_info_and_refresh_without_a_refresh_token(
    browser: Browser, provider: OAuthProvider
) -> None:
    email = unique_email("ghinfo")
    profile = {"id": 5151, "login": "octo5", "name": None, "email": None, "avatar_url": "a.png"}
    provider.next_github(profile, [{"email": email, "primary": True, "verified": True}])
    assert (await browser.login("github")).status_code == 302
    headers = {"origin": TRUSTED_ORIGIN}
    r = await browser.client.post(
        "/api/auth/refresh-token", json={"providerId": "github"}, headers=headers
    )
    assert (r.status_code, r.json()["message"]) == (400, "Refresh token not found")
    r = await browser.client.get("/api/auth/account-info", params={"accountId": "5151"})
    assert r.status_code == 200
    assert r.json() == {
        "user": {
            "id": 5151,
            "name": "octo5",
            "email": email,
            "image": "a.png",
            "emailVerified": True,
        },
        "data": {**profile, "email": email},
    }


async def test_id_token_accounts_keep_what_better_auth_keeps(
    browser: Browser, provider: OAuthProvider, db: asyncpg.Connection, server: Server
) -> None:
    email = unique_email("idkeep")
    token = provider.id_token({"sub": "4000001", "email": email, "email_verified": True})
    r = await browser.start("google", idToken={"token": token, "accessToken": "at-1"})
    assert r.status_code == 200
    row = await db.fetchrow("SELECT * FROM account WHERE account_id = '4000001'")
    # signing in stores only the access token: no id token, no scope
    assert (row["access_token"], row["id_token"], row["scope"]) == ("at-1", None, None)
    await db.execute("UPDATE account SET scope = 'kept' WHERE account_id = '4000001'")
    assert (await browser.start("google", idToken={"token": token})).status_code == 200
    assert await db.fetchval("SELECT scope FROM account WHERE account_id = '4000001'") == "kept"

    user = await sign_up(server.url)
    linked = provider.id_token({"sub": "4000002", "email": user.email, "email_verified": True})
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.post(
            "/api/auth/link-social",
            json={
                "provider": "google",
                "idToken": {"token": linked, "accessToken": "at-2", "scopes": ["a", "b"]},
            },
            headers={"origin": TRUSTED_ORIGIN, "cookie": user.cookie},
        )
    assert (r.status_code, r.json()) == (200, {"url": "", "status": True, "redirect": False})
    row = await db.fetchrow("SELECT * FROM account WHERE account_id = '4000002'")
    assert (row["user_id"], row["access_token"], row["id_token"], row["scope"]) == (
        user.id, "at-2", linked, "a,b",
    )  # fmt: skip
