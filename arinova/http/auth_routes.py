"""``/api/auth/*``: the Better Auth 1.4.18 endpoints the clients use, answered as the
original's proxy relayed them (contract rest.md §3.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from blacksheep import Request, Response

from arinova import js
from arinova.auth import errors as msg
from arinova.auth.account_endpoints import AccountEndpoints
from arinova.auth.authenticator import Authenticator, Found
from arinova.auth.clock import SESSION_LIFETIME, SHORT_SESSION_LIFETIME, now_ms
from arinova.auth.errors import AuthError
from arinova.auth.ids import new_id
from arinova.auth.records import SessionRecord, SessionWithUser, UserRecord
from arinova.auth.schema import (
    Field,
    check,
    check_password_length,
    is_email,
    js_type,
)
from arinova.auth.social import SocialEndpoints
from arinova.auth.web import (
    AUTH_PREFIX,
    Reply,
    api_error_response,
    check_callback_urls,
    check_form_csrf,
    check_origin,
    cookies_of,
    error_response,
    query_value,
    rate_limited,
    read_auth_body,
    session_ip,
    set_session_cookies,
)
from arinova.db.queries import auth as q
from arinova.errors import ApiError
from arinova.http import auth_docs
from arinova.http.router import ArinovaRouter
from arinova.ratelimit.http import client_ip
from arinova.state import AppState

SIGN_UP_FIELDS = (
    Field("name", "string", required=True),
    Field("email", "email", required=True),
    Field("password", "string", required=True, nonempty=True),
    Field("image", "string"),
    Field("callbackURL", "string"),
    Field("rememberMe", "boolean"),
)
SIGN_IN_FIELDS = (
    Field("email", "string", required=True),
    Field("password", "string", required=True),
    Field("callbackURL", "string"),
    Field("rememberMe", "boolean"),
)
CHANGE_PASSWORD_FIELDS = (
    Field("newPassword", "string", required=True),
    Field("currentPassword", "string", required=True),
    Field("revokeOtherSessions", "boolean"),
)

Endpoint = Callable[[Request, Authenticator], Awaitable[Response]]


class CredentialEndpoints:
    """Email and password accounts, sessions and the profile."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    @property
    def development(self) -> bool:
        return self.state.settings.node_env in ("development", "test")

    async def _body(self, request: Request, auth: Authenticator) -> Any:
        body = await read_auth_body(request)
        check_origin(request, auth)
        check_callback_urls(auth, body, request)
        return body

    async def _session(self, request: Request, auth: Authenticator) -> SessionWithUser:
        """The session of a request to a session-only endpoint (401, empty body, if none)."""
        found = await auth.lookup(cookies_of(request))
        if found.entry is None:
            raise AuthError(401, None)
        return found.entry

    # -- sign-up / sign-in / sign-out -----------------------------------------------------
    async def sign_up(self, request: Request, auth: Authenticator) -> Response:
        body = check(await self._body(request, auth), SIGN_UP_FIELDS, also_record=True)
        check_form_csrf(request, auth)
        password: str = body["password"]
        check_password_length(password)
        email = str(body["email"]).lower()
        if await auth.db.fetchval(q.USER_EXISTS_BY_EMAIL.sql, email) is not None:
            raise AuthError(422, msg.USER_ALREADY_EXISTS)
        hashed = await auth.passwords.hash(password)
        remember = body.get("rememberMe") is not False
        now = now_ms()
        expires = now + (SESSION_LIFETIME if remember else SHORT_SESSION_LIFETIME)
        session_id, token = new_id(), new_id()
        ip, agent = session_ip(request, self.development), _user_agent(request)
        try:
            row = await auth.db.fetchrow(
                q.SIGN_UP.sql,
                new_id(),
                body["name"],
                email,
                body.get("image"),
                now,
                new_id(),
                hashed,
                session_id,
                token,
                expires,
                ip,
                agent,
            )
        except asyncpg.DataError:
            # e.g. a NUL character in the name: the database refuses the user
            raise AuthError(422, msg.FAILED_TO_CREATE_USER) from None
        if row is None:
            raise AuthError(422, msg.USER_ALREADY_EXISTS)
        user = UserRecord.from_row(row)
        session = SessionRecord(session_id, token, user.id, expires, ip, agent, now, now)
        reply = Reply()
        set_session_cookies(reply, auth, session, dont_remember=not remember)
        return reply.json({"token": token, "user": user.to_json()})

    async def sign_in(self, request: Request, auth: Authenticator) -> Response:
        body = check(await self._body(request, auth), SIGN_IN_FIELDS)
        check_form_csrf(request, auth)
        email: str = body["email"]
        if not is_email(email):
            raise AuthError(400, msg.INVALID_EMAIL)
        row = await auth.db.fetchrow(q.USER_WITH_CREDENTIAL_BY_EMAIL.sql, email.lower())
        stored = row["password"] if row is not None else None
        verdict = await auth.passwords.verify(stored, body["password"])
        if row is None or not verdict.ok:
            raise AuthError(401, msg.INVALID_EMAIL_OR_PASSWORD)
        if verdict.needs_rehash:
            rehashed = await auth.passwords.hash(body["password"])
            await auth.db.execute(q.ACCOUNT_SET_PASSWORD.sql, row["account_id"], rehashed, now_ms())
        user = UserRecord.from_row(row)
        remember = body.get("rememberMe") is not False
        session = await auth.sessions.create(
            user.id, session_ip(request, self.development), _user_agent(request), remember=remember
        )
        reply = Reply()
        set_session_cookies(reply, auth, session, dont_remember=not remember)
        callback = body.get("callbackURL")
        if callback:
            reply.header("location", callback)
        result: dict[str, Any] = {"redirect": bool(callback), "token": session.token}
        if callback is not None:
            result["url"] = callback
        result["user"] = user.to_json()
        return reply.json(result)

    async def sign_out(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth)
        token = auth.session_token(cookies_of(request))
        if token is not None:
            await auth.sessions.delete(token)
        reply = Reply()
        for value in auth.cookies.expire_session():
            reply.cookie(value)
        return reply.json({"success": True})

    # -- session ---------------------------------------------------------------------------
    async def get_session(self, request: Request, auth: Authenticator) -> Response:
        # zod's coerce.boolean: any non-empty value (even "false") is true
        disable_refresh = bool(query_value(request, "disableRefresh"))
        try:
            found = await auth.lookup(cookies_of(request), refresh=not disable_refresh)
        except Exception:
            auth.log.exception("get-session failed")
            raise AuthError(500, "Failed to get session") from None
        reply = Reply()
        if found.entry is None:
            if found.found is Found.GONE:
                for value in auth.cookies.expire_session():
                    reply.cookie(value)
            return reply.json(None)
        if found.found is Found.REFRESHED:
            remaining = found.entry.session.expires_at - now_ms()
            set_session_cookies(
                reply,
                auth,
                found.entry.session,
                dont_remember=False,
                max_age=int(remaining.total_seconds()),
            )
        return reply.json(found.entry.to_json())

    # -- profile and password -------------------------------------------------------------
    async def update_user(self, request: Request, auth: Authenticator) -> Response:
        body = await self._body(request, auth)
        if not isinstance(body, dict):
            received = "undefined" if body is None else js_type(body)
            raise AuthError(
                400,
                f"[body] Invalid input: expected record, received {received}",
                "VALIDATION_ERROR",
            )
        current = await self._session(request, auth)
        if js.is_truthy(body.get("email")):
            raise AuthError(400, msg.EMAIL_CAN_NOT_BE_UPDATED)
        if "name" not in body and "image" not in body:
            raise AuthError(400, msg.NO_FIELDS_TO_UPDATE)
        # Better Auth passes any JSON value on and the driver stores String(value). A null
        # name broke the NOT NULL column there (an empty 500); here it is refused (Q46).
        name, image = body.get("name"), body.get("image")
        if "name" in body and name is None:
            raise AuthError(
                400, "[body.name] Invalid input: expected string, received null", "VALIDATION_ERROR"
            )
        new_name = None if name is None else js.to_string(name)
        new_image = None if image is None else js.to_string(image)
        for key, text in (("name", new_name), ("image", new_image)):
            if text is not None and "\x00" in text:
                # PostgreSQL text cannot hold it (the original's database refused it: 500)
                raise AuthError(
                    400, f"[body.{key}] must not contain NUL characters", "VALIDATION_ERROR"
                )
        await auth.db.fetchrow(
            q.USER_UPDATE_PROFILE.sql,
            current.user.id,
            new_name,
            "image" in body,
            new_image,
            now_ms(),
        )
        await auth.sessions.invalidate_user(current.user.id)
        reply = Reply()
        set_session_cookies(
            reply, auth, current.session, dont_remember=auth.dont_remember(cookies_of(request))
        )
        return reply.json({"status": True})

    async def change_password(self, request: Request, auth: Authenticator) -> Response:
        body = check(await self._body(request, auth), CHANGE_PASSWORD_FIELDS)
        current = await self._session(request, auth)
        new_password: str = body["newPassword"]
        check_password_length(new_password)
        account = await auth.db.fetchrow(q.CREDENTIAL_FOR_USER.sql, current.user.id)
        if account is None or not account["password"]:
            raise AuthError(400, msg.CREDENTIAL_ACCOUNT_NOT_FOUND)
        verdict = await auth.passwords.verify(account["password"], body["currentPassword"])
        if not verdict.ok:
            raise AuthError(400, msg.INVALID_PASSWORD)
        hashed = await auth.passwords.hash(new_password)
        await auth.db.execute(q.ACCOUNT_SET_PASSWORD.sql, account["id"], hashed, now_ms())
        reply = Reply()
        token: str | None = None
        if body.get("revokeOtherSessions") is True:
            await auth.sessions.delete_all_for_user(current.user.id)
            session = await auth.sessions.create(
                current.user.id, session_ip(request, self.development), _user_agent(request)
            )
            set_session_cookies(
                reply, auth, session, dont_remember=auth.dont_remember(cookies_of(request))
            )
            token = session.token
        return reply.json({"token": token, "user": current.user.to_json()})

    # -- the user's sessions (no client uses these; Better Auth serves them) ----------------
    async def list_sessions(self, request: Request, auth: Authenticator) -> Response:
        current = await self._session(request, auth)
        rows = await auth.db.fetch(q.SESSIONS_FOR_USER.sql, current.user.id, now_ms())
        return Reply().json([SessionRecord.from_row(row).to_json() for row in rows])

    async def revoke_session(self, request: Request, auth: Authenticator) -> Response:
        body = check(await self._body(request, auth), (Field("token", "string", required=True),))
        current = await self._session(request, auth)
        token: str = body["token"]
        if "\x00" not in token:  # a token with one matches no session
            rows = await auth.db.fetch(
                q.SESSION_DELETE_FOR_USER_BY_TOKEN.sql, current.user.id, token
            )
            await auth.sessions.invalidate([row["token"] for row in rows])
        return Reply().json({"status": True})

    async def revoke_sessions(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth)
        current = await self._session(request, auth)
        await auth.sessions.delete_all_for_user(current.user.id)
        return Reply().json({"status": True})

    async def revoke_other_sessions(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth)
        current = await self._session(request, auth)
        rows = await auth.db.fetch(
            q.SESSIONS_DELETE_OTHERS.sql, current.user.id, current.session.token
        )
        await auth.sessions.invalidate([row["token"] for row in rows])
        return Reply().json({"status": True})

    async def ok(self, request: Request, auth: Authenticator) -> Response:
        return Reply().json({"ok": True})


def _user_agent(request: Request) -> str:
    value = request.get_first_header(b"user-agent")
    return "" if value is None else value.decode("latin-1")


async def _not_found(request: Request) -> Response:
    return Reply(404).empty()


def mount(router: ArinovaRouter, state: AppState) -> None:
    def endpoint(handler: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            auth = state.auth
            try:
                if state.settings.production:
                    path = request.url.path.decode("latin-1")[len(AUTH_PREFIX) :]
                    ip = client_ip(request, state.settings.trust_proxy)
                    wait = await auth.limiter.retry_after(ip, path)
                    if wait is not None:
                        return rate_limited(wait)
                if request.method == "HEAD":
                    # Better Auth's router has no HEAD routes (the server answers GET ones)
                    return await _not_found(request)
                return await handler(request, auth)
            except AuthError as error:
                return error_response(error)
            except ApiError as error:
                return api_error_response(error)
            except Exception:
                # Better Auth answers an unexpected failure with an empty 500
                state.log.exception("auth endpoint failed: %s", request.url.path)
                return Reply(500).empty()

        return handle

    creds = CredentialEndpoints(state)
    social = SocialEndpoints(state)
    accounts = AccountEndpoints(state.settings.better_auth_url)
    docs = {
        **auth_docs.credentials(SIGN_UP_FIELDS, SIGN_IN_FIELDS, CHANGE_PASSWORD_FIELDS),
        **auth_docs.SOCIAL,
        **auth_docs.ACCOUNTS,
    }
    routes: tuple[tuple[str, str, Endpoint], ...] = (
        ("POST", "sign-up/email", creds.sign_up),
        ("POST", "sign-in/email", creds.sign_in),
        ("POST", "sign-out", creds.sign_out),
        ("GET", "get-session", creds.get_session),
        ("POST", "update-user", creds.update_user),
        ("POST", "change-password", creds.change_password),
        ("GET", "ok", creds.ok),
        ("GET", "list-sessions", creds.list_sessions),
        ("POST", "revoke-session", creds.revoke_session),
        ("POST", "revoke-sessions", creds.revoke_sessions),
        ("POST", "revoke-other-sessions", creds.revoke_other_sessions),
        ("POST", "sign-in/social", social.sign_in_social),
        ("POST", "link-social", social.link_social),
        ("GET", "callback/:provider", social.callback),
        ("POST", "callback/:provider", social.callback_post),
        ("GET", "error", social.error_page),
        ("GET", "list-accounts", accounts.list_accounts),
        ("POST", "unlink-account", accounts.unlink_account),
        ("POST", "get-access-token", accounts.get_access_token),
        ("POST", "refresh-token", accounts.refresh_token),
        ("GET", "account-info", accounts.account_info),
        ("POST", "verify-password", accounts.verify_password),
        ("POST", "change-email", accounts.change_email),
        ("POST", "delete-user", accounts.delete_user),
        ("GET", "delete-user/callback", accounts.delete_user_callback),
        ("POST", "request-password-reset", accounts.request_password_reset),
        ("POST", "reset-password", accounts.reset_password),
        ("GET", "reset-password/:token", accounts.reset_password_callback),
        ("POST", "send-verification-email", accounts.send_verification_email),
        ("GET", "verify-email", accounts.verify_email),
    )
    for method, path, handler in routes:
        doc = docs.get(f"{path} {method}") or docs[path]
        router.add(method, f"{AUTH_PREFIX}/{path}", endpoint(handler), doc=doc)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        router.add(
            method,
            f"{AUTH_PREFIX}/*",
            endpoint(lambda r, a: _not_found(r)),
            doc=auth_docs.NOT_FOUND,
        )
