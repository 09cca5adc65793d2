"""Google and GitHub sign-in: authorization URL with PKCE, code exchange, the user's
profile, and the account/user rows Better Auth writes (contract rest.md §3.2.7).

Provider endpoints come from settings, so tests run the whole flow against a loopback
provider. Google's user comes from the id token, verified against the provider's JWKS
(``arinova.auth.id_token``); GitHub's from ``/user`` and ``/user/emails``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import httpx

from arinova.auth.clock import now_ms
from arinova.auth.id_token import (
    ALGORITHM,
    IdTokenRules,
    InvalidIdToken,
    unverified_claims,
    unverified_header,
    verify_id_token,
)
from arinova.settings import Settings

HTTP_TIMEOUT_S = 10.0
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
ID_TOKEN_MAX_AGE_S = 3600
JWKS_MIN_REFRESH_S = 10.0
JWKS_MAX_KEYS = 32
_STATE_ALPHABET = string.ascii_letters + string.digits + "-_"


def random_string(length: int) -> str:
    """Better Auth's ``generateRandomString``: ``[A-Za-z0-9_-]``."""
    return "".join(secrets.choice(_STATE_ALPHABET) for _ in range(length))


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_encode(pairs: list[tuple[str, str]]) -> str:
    """``URLSearchParams.toString()``: form encoding that keeps ``*`` and escapes ``~``."""
    return "&".join(
        f"{quote_plus(k, safe='*').replace('~', '%7E')}={quote_plus(v, safe='*').replace('~', '%7E')}"
        for k, v in pairs
    )


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    client_id: str
    client_secret: str
    auth_url: str
    token_url: str
    scopes: tuple[str, ...]
    extra_params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str | None
    refresh_token: str | None
    id_token: str | None
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    #: the granted scopes, comma-joined as Better Auth stores them (None: not reported)
    scope: str | None


@dataclass(frozen=True, slots=True)
class ProviderUser:
    id: str
    name: str
    email: str | None
    image: str | None
    email_verified: bool


def providers_from(settings: Settings) -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    if settings.google_client_id:
        found["google"] = Provider(
            "google",
            settings.google_client_id,
            settings.google_client_secret,
            settings.google_auth_url,
            settings.google_token_url,
            ("email", "profile", "openid"),
            (("include_granted_scopes", "true"),),
        )
    if settings.github_client_id:
        found["github"] = Provider(
            "github",
            settings.github_client_id,
            settings.github_client_secret,
            settings.github_auth_url,
            settings.github_token_url,
            ("read:user", "user:email"),
        )
    return found


def _expiry(seconds: Any) -> datetime | None:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds:
        return now_ms() + timedelta(seconds=seconds)
    return None


def _tokens(data: dict[str, Any]) -> Tokens:
    scope = data.get("scope")
    scopes: list[str] | None = scope.split(" ") if isinstance(scope, str) else None
    if isinstance(scope, list):
        scopes = [str(s) for s in scope]

    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) else None

    return Tokens(
        text("access_token"),
        text("refresh_token"),
        text("id_token"),
        _expiry(data.get("expires_in")),
        _expiry(data.get("refresh_token_expires_in")),
        None if scopes is None else ",".join(scopes),
    )


class OAuthClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.providers = providers_from(settings)
        self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False)
        self._jwks: dict[str, dict[str, Any]] = {}
        self._jwks_fetched = float("-inf")

    async def aclose(self) -> None:
        await self._http.aclose()

    def authorization_url(
        self,
        provider: Provider,
        *,
        state: str,
        verifier: str,
        redirect_uri: str,
        scopes: list[str] | None = None,
        login_hint: str | None = None,
    ) -> str:
        params = [
            ("response_type", "code"),
            ("client_id", provider.client_id),
            ("state", state),
            ("scope", " ".join([*provider.scopes, *(scopes or [])])),
            ("redirect_uri", redirect_uri),
        ]
        if login_hint:
            params.append(("login_hint", login_hint))
        params.append(("code_challenge_method", "S256"))
        params.append(("code_challenge", code_challenge(verifier)))
        params.extend(provider.extra_params)
        separator = "&" if "?" in provider.auth_url else "?"
        return f"{provider.auth_url}{separator}{form_encode(params)}"

    async def exchange(
        self, provider: Provider, code: str, verifier: str, redirect_uri: str
    ) -> Tokens | None:
        """Trade the authorization code for tokens; None when the provider refuses."""
        return await self._token_request(
            provider,
            [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect_uri),
                ("client_id", provider.client_id),
                ("client_secret", provider.client_secret),
            ],
        )

    async def refresh(self, provider: Provider, refresh_token: str) -> Tokens | None:
        """A refresh-token grant; None when the provider refuses."""
        return await self._token_request(
            provider,
            [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", provider.client_id),
                ("client_secret", provider.client_secret),
            ],
        )

    async def _token_request(
        self, provider: Provider, form: list[tuple[str, str]]
    ) -> Tokens | None:
        body = form_encode(form)
        try:
            response = await self._http.post(
                provider.token_url,
                content=body,
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "accept": "application/json",
                },
            )
            data = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code >= 400 or not isinstance(data, dict) or "error" in data:
            return None
        return _tokens(data)

    async def user_info(self, provider: Provider, tokens: Tokens) -> ProviderUser | None:
        if provider.id == "google":
            if tokens.id_token is None:
                return None
            claims = await self.verify_google_id_token(tokens.id_token, None)
            return None if claims is None else self.google_profile(claims)
        return await self._github_user(tokens)

    async def _github_profile(
        self, access_token: str | None
    ) -> tuple[dict[str, Any], str | None, bool] | None:
        """GitHub's ``/user`` with the email filled from ``/user/emails`` as Better Auth
        fills it, the email and whether GitHub verified it."""
        headers = {"User-Agent": "better-auth", "authorization": f"Bearer {access_token}"}
        api = self.settings.github_api_url.rstrip("/")
        try:
            response = await self._http.get(f"{api}/user", headers=headers)
            profile = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code >= 400 or not isinstance(profile, dict):
            return None
        emails: list[dict[str, Any]] = []
        try:
            listed = await self._http.get(f"{api}/user/emails", headers=headers)
            if listed.status_code < 400 and isinstance(listed.json(), list):
                emails = [e for e in listed.json() if isinstance(e, dict)]
        except (httpx.HTTPError, ValueError):
            emails = []
        email = profile.get("email") if isinstance(profile.get("email"), str) else None
        if not email and emails:
            chosen = next((e for e in emails if e.get("primary")), emails[0])
            email = chosen.get("email") if isinstance(chosen.get("email"), str) else None
            profile["email"] = chosen.get("email")
        verified = next((bool(e.get("verified")) for e in emails if e.get("email") == email), False)
        return profile, email, verified

    async def _github_user(self, tokens: Tokens) -> ProviderUser | None:
        found = await self._github_profile(tokens.access_token)
        if found is None:
            return None
        profile, email, verified = found
        if profile.get("id") is None:
            return None
        name = profile.get("name") or profile.get("login") or ""
        avatar = profile.get("avatar_url")
        return ProviderUser(
            str(profile["id"]),
            str(name),
            email,
            avatar if isinstance(avatar, str) else None,
            verified,
        )

    async def account_info(
        self, provider: Provider, access_token: str, id_token: str | None
    ) -> dict[str, Any] | None:
        """``/account-info``'s answer: the provider's user in Better Auth's shape and the
        raw profile (Google: the stored id token's claims, decoded, not verified again)."""
        user: dict[str, Any]
        if provider.id == "google":
            if not id_token:
                return None
            try:
                claims = unverified_claims(id_token)
            except InvalidIdToken:
                return None
            pairs = (
                ("id", "sub"),
                ("name", "name"),
                ("email", "email"),
                ("image", "picture"),
                ("emailVerified", "email_verified"),
            )
            user = {key: claims[claim] for key, claim in pairs if claim in claims}
            return {"user": user, "data": claims}
        found = await self._github_profile(access_token)
        if found is None:
            return None
        profile, _, verified = found
        # JavaScript drops the undefined members: only what the profile has
        user = {}
        if "id" in profile:
            user["id"] = profile["id"]
        name = profile.get("name") or profile.get("login")
        if name or "login" in profile:
            user["name"] = name
        if "email" in profile:
            user["email"] = profile["email"]
        if "avatar_url" in profile:
            user["image"] = profile["avatar_url"]
        user["emailVerified"] = verified
        return {"user": user, "data": profile}

    @staticmethod
    def google_profile(claims: dict[str, Any]) -> ProviderUser | None:
        return google_profile(claims)

    async def _jwk(self, kid: str) -> dict[str, Any] | None:
        key = self._jwks.get(kid)
        if key is not None or time.monotonic() - self._jwks_fetched < JWKS_MIN_REFRESH_S:
            return key
        self._jwks_fetched = time.monotonic()
        try:
            response = await self._http.get(self.settings.google_jwks_url)
            document = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            return None
        self._jwks = {
            k["kid"]: k for k in keys[:JWKS_MAX_KEYS] if isinstance(k, dict) and "kid" in k
        }
        return self._jwks.get(kid)

    async def verify_google_id_token(self, token: str, nonce: str | None) -> dict[str, Any] | None:
        """The claims of a Google id token whose signature and claims check out
        (``arinova.auth.id_token``: signature, issuer, audience, expiry, age, not-before, with its
        clock-skew leeway) and whose nonce matches when one is given, else None."""
        try:
            header = unverified_header(token)
            if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
                return None
            jwk = await self._jwk(header["kid"])
            if jwk is None:
                return None
            rules = IdTokenRules(GOOGLE_ISSUERS, self.settings.google_client_id, ID_TOKEN_MAX_AGE_S)
            claims = verify_id_token(token, jwk, rules)
        except InvalidIdToken:
            return None
        if nonce is not None and claims.get("nonce") != nonce:
            return None
        return claims


def google_profile(claims: dict[str, Any]) -> ProviderUser | None:
    if not isinstance(claims.get("sub"), str):
        return None
    email = claims.get("email")
    picture = claims.get("picture")
    return ProviderUser(
        claims["sub"],
        str(claims.get("name") or ""),
        email if isinstance(email, str) else None,
        picture if isinstance(picture, str) else None,
        claims.get("email_verified") is True,
    )
