"""A loopback OAuth provider speaking the Google and GitHub endpoints Better Auth uses.

It runs in the test's event loop (uvicorn on port 0) and plays the browser's login step
itself: ``/authorize`` immediately redirects back to ``redirect_uri`` with a code for the
profile the test queued with ``next_google`` / ``next_github``. The token endpoints check
the client credentials, the redirect URI and the PKCE verifier; Google's token response
carries an RS256 id token signed with a key published at ``/google/jwks``.

    provider = await OAuthProvider.start()
    settings = settings.replace(**provider.settings())
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from arinova import compat
from arinova.server.runner import bind_socket

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_SCOPE = (
    "openid https://www.googleapis.com/auth/userinfo.email "
    "https://www.googleapis.com/auth/userinfo.profile"
)
GITHUB_SCOPE = "read:user,user:email"

Scope = dict[str, Any]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class Grant:
    provider: str
    profile: dict[str, Any]
    redirect_uri: str
    challenge: str
    client_id: str


@dataclass
class OAuthProvider:
    host: str = "127.0.0.1"
    port: int = 0
    #: every authorize request's query, for assertions
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    #: every token request's form, for assertions
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _google_queue: list[dict[str, Any]] = field(default_factory=list)
    _github_queue: list[dict[str, Any]] = field(default_factory=list)
    _grants: dict[str, Grant] = field(default_factory=dict)
    _tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = "test-key-1"
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def start(cls) -> OAuthProvider:
        provider = cls()
        sock = bind_socket("127.0.0.1", 0)
        provider.port = sock.getsockname()[1]
        config = uvicorn.Config(
            provider, lifespan="off", log_config=None, access_log=False, http="httptools"
        )
        provider._server = uvicorn.Server(config)
        await compat.start_server(provider._server, [sock])
        provider._task = asyncio.create_task(compat.main_loop(provider._server))
        return provider

    async def stop(self) -> None:
        assert self._server is not None
        compat.request_exit(self._server)
        assert self._task is not None
        await self._task
        await compat.shutdown_server(self._server, None)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self) -> dict[str, Any]:
        """Settings overrides pointing both providers here."""
        return {
            "google_client_id": CLIENT_ID,
            "google_client_secret": CLIENT_SECRET,
            "github_client_id": CLIENT_ID,
            "github_client_secret": CLIENT_SECRET,
            "google_auth_url": f"{self.url}/google/authorize",
            "google_token_url": f"{self.url}/google/token",
            "google_jwks_url": f"{self.url}/google/jwks",
            "github_auth_url": f"{self.url}/github/authorize",
            "github_token_url": f"{self.url}/github/token",
            "github_api_url": f"{self.url}/github/api",
        }

    # -- what the next login returns -------------------------------------------------------
    def next_google(self, **claims: Any) -> None:
        """Queue the claims of the Google user who logs in next (sub, email, name, …)."""
        self._google_queue.append(claims)

    def next_github(self, profile: dict[str, Any], emails: list[dict[str, Any]]) -> None:
        self._github_queue.append({"profile": profile, "emails": emails})

    # -- tokens ----------------------------------------------------------------------------
    def jwk(self) -> dict[str, str]:
        numbers = self._key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _int_b64(numbers.n),
            "e": _int_b64(numbers.e),
        }

    def id_token(self, claims: dict[str, Any], key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        payload = {
            "iss": GOOGLE_ISSUER,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(payload))}"
        signature = (key or self._key).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = dict(parse_qsl(scope["query_string"].decode()))
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        form = dict(parse_qsl(body.decode())) if body else {}
        status, response_headers, payload = self._route(
            scope["method"], scope["path"], query, headers, form
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in response_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        form: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and path in ("/google/authorize", "/github/authorize"):
            return self._authorize(path.split("/")[1], query)
        if method == "POST" and path == "/google/token":
            return self._token("google", form)
        if method == "POST" and path == "/github/token":
            return self._token("github", form)
        if method == "GET" and path == "/google/jwks":
            return _json(200, {"keys": [self.jwk()]})
        if method == "GET" and path in ("/github/api/user", "/github/api/user/emails"):
            token = headers.get("authorization", "").removeprefix("Bearer ")
            grant = self._tokens.get(token)
            if grant is None or headers.get("user-agent") != "better-auth":
                return _json(401, {"message": "Bad credentials"})
            return _json(200, grant["emails"] if path.endswith("emails") else grant["profile"])
        return _json(404, {"error": "not_found"})

    def _authorize(self, provider: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.authorize_requests.append({"provider": provider, **query})
        queue = self._google_queue if provider == "google" else self._github_queue
        redirect_uri = query["redirect_uri"]
        if query.get("code_challenge_method") != "S256" or not queue:
            params = {"error": "access_denied", "state": query.get("state", "")}
            return 302, {"location": f"{redirect_uri}?{urlencode(params)}"}, b""
        code = secrets.token_urlsafe(16)
        self._grants[code] = Grant(
            provider, queue.pop(0), redirect_uri, query["code_challenge"], query["client_id"]
        )
        location = f"{redirect_uri}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"location": location}, b""

    def _token(self, provider: str, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.token_requests.append({"provider": provider, **form})
        if form.get("grant_type") == "refresh_token":
            return self._refresh(provider, form)
        grant = self._grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        valid = (
            grant is not None
            and grant.provider == provider
            and form.get("grant_type") == "authorization_code"
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
            and form.get("redirect_uri") == grant.redirect_uri
            and challenge == grant.challenge
        )
        if not valid or grant is None:
            if provider == "github":  # GitHub answers errors with 200
                return _json(200, {"error": "bad_verification_code"})
            return _json(400, {"error": "invalid_grant"})
        access = f"{provider}-access-{secrets.token_hex(8)}"
        if provider == "github":
            self._tokens[access] = grant.profile
            return _json(
                200, {"access_token": access, "token_type": "bearer", "scope": GITHUB_SCOPE}
            )
        refresh = f"google-refresh-{secrets.token_hex(8)}"
        self._refresh_tokens[refresh] = grant.profile
        return _json(
            200,
            {
                "access_token": access,
                "expires_in": 3599,
                "refresh_token": refresh,
                "scope": GOOGLE_SCOPE,
                "token_type": "Bearer",
                "id_token": self.id_token(grant.profile),
            },
        )

    def _refresh(self, provider: str, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Google's refresh grant: a new access token and id token, the same refresh token
        (not repeated in the answer)."""
        profile = self._refresh_tokens.get(form.get("refresh_token", ""))
        valid = (
            provider == "google"
            and profile is not None
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
        )
        if not valid or profile is None:
            return _json(400, {"error": "invalid_grant"})
        return _json(
            200,
            {
                "access_token": f"google-access-{secrets.token_hex(8)}",
                "expires_in": 3599,
                "scope": GOOGLE_SCOPE,
                "token_type": "Bearer",
                "id_token": self.id_token(profile),
            },
        )


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, orjson.dumps(body)
