"""``/sign-in/social``, ``/callback/:provider`` and ``/error`` (contract rest.md §3.2.7)."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from typing import Any

import orjson
from blacksheep import Content, Request, Response

from arinova.auth import errors as msg
from arinova.auth.authenticator import Authenticator
from arinova.auth.clock import now_ms
from arinova.auth.cookies import STATE_MAX_AGE_S, sign, unsign
from arinova.auth.errors import AuthError
from arinova.auth.ids import new_id
from arinova.auth.linking import Linked, link_account, link_or_create
from arinova.auth.oauth import (
    Provider,
    ProviderUser,
    Tokens,
    form_encode,
    random_string,
)
from arinova.auth.schema import Field, check
from arinova.auth.web import (
    AUTH_PREFIX,
    TEXT_TYPE,
    Reply,
    check_callback_urls,
    check_origin,
    cookies_of,
    query_value,
    read_auth_body,
    session_ip,
    set_session_cookies,
)
from arinova.db.queries import auth as q
from arinova.state import AppState

STATE_LIFETIME = timedelta(minutes=10)
STATE_LENGTH = 32
VERIFIER_LENGTH = 128
_SAFE_CODE = re.compile(r"^['A-Za-z0-9_-]+$")
_CALLBACK_PARAMS = ("code", "error", "device_id", "state", "user")

SOCIAL_FIELDS = (
    Field("callbackURL", "string"),
    Field("newUserCallbackURL", "string"),
    Field("errorCallbackURL", "string"),
    Field("provider", "string", required=True, any_string=True),
    Field("disableRedirect", "boolean"),
    Field("idToken", "object"),
    Field("scopes", "string[]"),
    Field("requestSignUp", "boolean"),
    Field("loginHint", "string"),
    Field("additionalData", "object"),
)
LINK_FIELDS = (
    Field("callbackURL", "string"),
    Field("provider", "string", required=True, any_string=True),
    Field("idToken", "object"),
    Field("requestSignUp", "boolean"),
    Field("scopes", "string[]"),
    Field("errorCallbackURL", "string"),
    Field("disableRedirect", "boolean"),
    Field("additionalData", "object"),
)


class Redirect(Exception):
    """Answer 302 to ``location`` (with the cookies gathered so far)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def auth_base_url(better_auth_url: str) -> str:
    """Better Auth's ``baseURL``: ``BETTER_AUTH_URL`` + ``/api/auth`` unless it has a path."""
    stripped = better_auth_url.rstrip("/")
    scheme_end = stripped.find("://")
    has_path = scheme_end >= 0 and "/" in stripped[scheme_end + 3 :]
    return better_auth_url if has_path else f"{stripped}{AUTH_PREFIX}"


def _with_params(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}{'&' if '?' in base else '?'}{form_encode(params)}"


class SocialEndpoints:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.base = auth_base_url(state.settings.better_auth_url)

    @property
    def development(self) -> bool:
        return self.state.settings.node_env in ("development", "test")

    def _provider(self, auth: Authenticator, provider_id: str) -> Provider | None:
        return auth.oauth.providers.get(provider_id)

    def _redirect_uri(self, provider: Provider) -> str:
        return f"{self.base}/callback/{provider.id}"

    # -- POST /sign-in/social ---------------------------------------------------------------
    async def sign_in_social(self, request: Request, auth: Authenticator) -> Response:
        raw = await read_auth_body(request)
        check_origin(request, auth)
        check_callback_urls(auth, raw, request)
        body = check(raw, SOCIAL_FIELDS)
        provider = self._provider(auth, body["provider"])
        if provider is None:
            raise AuthError(404, msg.PROVIDER_NOT_FOUND)
        if body.get("idToken") is not None:
            return await self._sign_in_with_id_token(request, auth, provider, body)
        return await self._authorize(auth, provider, body, None)

    async def link_social(self, request: Request, auth: Authenticator) -> Response:
        """``/link-social``: the same redirect flow, with the signed-in user in the state;
        the callback then adds the account to that user instead of signing in."""
        raw = await read_auth_body(request)
        check_origin(request, auth)
        check_callback_urls(auth, raw, request)
        body = check(raw, LINK_FIELDS)
        found = await auth.lookup(cookies_of(request))
        if found.entry is None:
            raise AuthError(401, None)
        user = found.entry.user
        provider = self._provider(auth, body["provider"])
        if provider is None:
            raise AuthError(404, msg.PROVIDER_NOT_FOUND)
        if body.get("idToken") is not None:
            return await self._link_id_token(auth, provider, body, user.id, user.email)
        return await self._authorize(auth, provider, body, {"userId": user.id, "email": user.email})

    async def _link_id_token(
        self, auth: Authenticator, provider: Provider, body: Any, user_id: str, email: str
    ) -> Response:
        id_token = body["idToken"]
        profile, signed_in = await self._id_token_profile(auth, provider, id_token)
        # linking keeps more of the id token than signing in does
        refresh, scopes = id_token.get("refreshToken"), id_token.get("scopes")
        tokens = Tokens(
            signed_in.access_token,
            refresh if isinstance(refresh, str) else None,
            id_token["token"],
            None,
            None,
            ",".join(str(s) for s in scopes) if isinstance(scopes, list) else None,
        )
        problem = await link_account(
            auth.db, provider.id, profile, tokens, user_id, email, from_id_token=True
        )
        if problem == "account_already_linked_to_current_user":
            return Reply().json({"url": "", "status": True, "redirect": False})
        if problem == "unable_to_link_account":
            raise AuthError(401, msg.LINKING_NOT_ALLOWED)
        if problem == "email_doesn't_match":
            raise AuthError(401, msg.LINKING_DIFFERENT_EMAILS)
        if problem is not None:
            raise AuthError(417, msg.LINKING_FAILED)
        return Reply().json({"url": "", "status": True, "redirect": False})

    async def _authorize(
        self,
        auth: Authenticator,
        provider: Provider,
        body: Any,
        link: dict[str, str] | None,
    ) -> Response:
        state_data: dict[str, Any] = {}
        if isinstance(body.get("additionalData"), dict):
            state_data.update(body["additionalData"])
        verifier = random_string(VERIFIER_LENGTH)
        state_data["callbackURL"] = body.get("callbackURL") or self.state.settings.better_auth_url
        state_data["codeVerifier"] = verifier
        for key, source in (("errorURL", "errorCallbackURL"), ("newUserURL", "newUserCallbackURL")):
            if body.get(source) is not None:
                state_data[key] = body[source]
        if link is not None:
            state_data["link"] = link
        state_data["expiresAt"] = int(time.time() * 1000) + int(
            STATE_LIFETIME.total_seconds() * 1000
        )
        if body.get("requestSignUp") is not None:
            state_data["requestSignUp"] = body["requestSignUp"]
        state = random_string(STATE_LENGTH)
        now = now_ms()
        await auth.db.execute(
            q.VERIFICATION_INSERT.sql,
            new_id(),
            state,
            orjson.dumps(state_data).decode(),
            now + STATE_LIFETIME,
            now,
        )
        url = auth.oauth.authorization_url(
            provider,
            state=state,
            verifier=verifier,
            redirect_uri=self._redirect_uri(provider),
            scopes=body.get("scopes"),
            login_hint=body.get("loginHint"),
        )
        names = auth.cookies
        reply = Reply().cookie(
            names.set_cookie(
                names.state, sign(state, auth.settings.better_auth_secret), STATE_MAX_AGE_S
            )
        )
        redirect = body.get("disableRedirect") is not True
        if redirect:
            reply.header("location", url)
        return reply.json({"url": url, "redirect": redirect})

    async def _sign_in_with_id_token(
        self, request: Request, auth: Authenticator, provider: Provider, body: Any
    ) -> Response:
        profile, tokens = await self._id_token_profile(auth, provider, body["idToken"])
        linked = await link_or_create(auth.db, provider.id, profile, tokens)
        if isinstance(linked, str):
            raise AuthError(401, linked)
        reply = Reply()
        session = await self._start_session(request, auth, reply, linked)
        return reply.json({"redirect": False, "token": session, "user": linked.user.to_json()})

    async def _id_token_profile(
        self, auth: Authenticator, provider: Provider, id_token: Any
    ) -> tuple[ProviderUser, Tokens]:
        """The verified profile inside a Google id token (the only provider here that
        verifies them), or the 401/404 Better Auth answers."""
        if provider.id != "google":
            raise AuthError(404, msg.ID_TOKEN_NOT_SUPPORTED)
        token, nonce = id_token.get("token"), id_token.get("nonce")
        if not isinstance(token, str) or (nonce is not None and not isinstance(nonce, str)):
            raise AuthError(
                400,
                "[body.idToken.token] Invalid input: expected string, received undefined",
                "VALIDATION_ERROR",
            )
        claims = await auth.oauth.verify_google_id_token(token, nonce)
        if claims is None:
            raise AuthError(401, msg.INVALID_TOKEN)
        profile = auth.oauth.google_profile(claims)
        if profile is None:
            raise AuthError(401, msg.FAILED_TO_GET_USER_INFO)
        if not profile.email:
            raise AuthError(401, msg.USER_EMAIL_NOT_FOUND)
        access = id_token.get("accessToken")
        return profile, Tokens(
            access if isinstance(access, str) else None, None, None, None, None, None
        )

    async def _start_session(
        self, request: Request, auth: Authenticator, reply: Reply, linked: Linked
    ) -> str:
        agent = request.get_first_header(b"user-agent")
        session = await auth.sessions.create(
            linked.user.id,
            session_ip(request, self.development),
            "" if agent is None else agent.decode("latin-1"),
        )
        set_session_cookies(
            reply, auth, session, dont_remember=auth.dont_remember(cookies_of(request))
        )
        return session.token

    # -- /callback/:provider ----------------------------------------------------------------
    async def callback_post(self, request: Request, auth: Authenticator) -> Response:
        """A form-post callback becomes a GET, so the browser sends its cookies."""
        body = await read_auth_body(request)
        check_origin(request, auth)
        merged: dict[str, str] = {}
        for source in (body if isinstance(body, dict) else {}, _query_dict(request)):
            for key in _CALLBACK_PARAMS:
                value = source.get(key)
                if value is not None:
                    merged[key] = str(value)
        provider = request.route_values.get("provider", "")
        location = f"{self.base}/callback/{provider}?{form_encode(list(merged.items()))}"
        return Reply().redirect(location)

    async def callback(self, request: Request, auth: Authenticator) -> Response:
        reply = Reply()
        try:
            await self._callback(request, auth, reply)
        except Redirect as redirect:
            return reply.redirect(redirect.location)
        raise AssertionError("the callback always redirects")

    async def _callback(self, request: Request, auth: Authenticator, reply: Reply) -> None:
        default_error_url = f"{self.base}/error"
        state = query_value(request, "state")
        if not state:
            raise Redirect(_with_params(default_error_url, [("state", "state_not_found")]))
        state_data = await self._take_state(request, auth, reply, state, default_error_url)
        error_url = state_data.get("errorURL") or default_error_url

        def fail(code: str, description: str | None = None) -> Redirect:
            params = [("error", code)]
            if description:
                params.append(("error_description", description))
            return Redirect(_with_params(error_url, params))

        error = query_value(request, "error")
        if error:
            raise fail(error, query_value(request, "error_description"))
        code = query_value(request, "code")
        if not code:
            raise fail("no_code")
        provider = self._provider(auth, request.route_values.get("provider") or "")
        if provider is None:
            raise fail("oauth_provider_not_found")
        tokens = await auth.oauth.exchange(
            provider, code, str(state_data.get("codeVerifier", "")), self._redirect_uri(provider)
        )
        if tokens is None:
            raise fail("invalid_code")
        profile: ProviderUser | None = await auth.oauth.user_info(provider, tokens)
        if profile is None:
            raise fail("unable_to_get_user_info")
        callback_url = state_data.get("callbackURL")
        if not callback_url:
            raise fail("no_callback_url")
        link = state_data.get("link")
        if isinstance(link, dict):
            problem = await link_account(
                auth.db,
                provider.id,
                profile,
                tokens,
                str(link.get("userId")),
                str(link.get("email")),
            )
            if problem not in (None, "account_already_linked_to_current_user"):
                raise fail(str(problem))
            raise Redirect(str(callback_url))
        if not profile.email:
            raise fail("email_not_found")
        linked = await link_or_create(auth.db, provider.id, profile, tokens)
        if isinstance(linked, str):
            raise fail(linked.replace(" ", "_"))
        await self._start_session(request, auth, reply, linked)
        target = state_data.get("newUserURL") if linked.is_register else None
        raise Redirect(str(target or callback_url))

    async def _take_state(
        self, request: Request, auth: Authenticator, reply: Reply, state: str, error_url: str
    ) -> dict[str, Any]:
        """The stored state for ``state`` after checking the signed state cookie; the
        row is deleted once the cookie matched."""
        restart = Redirect(_with_params(error_url, [("error", "please_restart_the_process")]))
        if "\x00" in state:
            raise restart  # no stored state has one (PostgreSQL text cannot hold it)
        row = await auth.db.fetchrow(q.VERIFICATION_FIND.sql, state)
        if row is None:
            raise restart
        try:
            data = orjson.loads(row["value"])
        except orjson.JSONDecodeError:
            raise restart from None
        if not isinstance(data, dict) or not isinstance(data.get("expiresAt"), int | float):
            raise restart
        names = auth.cookies
        raw_cookie = cookies_of(request).get(names.state)
        signed = unsign(raw_cookie, auth.settings.better_auth_secret) if raw_cookie else None
        if signed is None or signed != state:
            raise Redirect(_with_params(error_url, [("error", "state_mismatch")]))
        reply.cookie(names.expire(names.state))
        await auth.db.execute(q.VERIFICATION_DELETE.sql, row["id"])
        if data["expiresAt"] < time.time() * 1000:
            raise restart
        return data

    # -- GET /error ----------------------------------------------------------------------------
    async def error_page(self, request: Request, auth: Authenticator) -> Response:
        raw_code = query_value(request, "error") or "UNKNOWN"
        code = raw_code if _SAFE_CODE.match(raw_code) else "UNKNOWN"
        description = query_value(request, "error_description")
        if self.state.settings.production:
            params = [("error", code)]
            if description:
                params.append(("error_description", description))
            # a plain Response without a content type (the proxy made it text/plain)
            return Reply().redirect(f"/?{form_encode(params)}", TEXT_TYPE)
        page = _error_html(code, description)
        return Response(200, None, Content(b"text/html; charset=utf-8", page.encode()))


def _query_dict(request: Request) -> dict[str, str]:
    return {key: values[0] for key, values in request.query.items() if values}


def _error_html(code: str, description: str | None) -> str:
    detail = f"<p>{html.escape(description)}</p>" if description else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Error</title></head><body><main>"
        f"<h1>Error</h1><p><code>{html.escape(code)}</code></p>{detail}"
        '<p><a href="/">Go Home</a></p></main></body></html>'
    )
