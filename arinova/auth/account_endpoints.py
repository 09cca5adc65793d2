"""The other Better Auth 1.4.18 core endpoints the original exposed (contract rest.md
§3.2.8: reachable, used by no client), answered as its configuration made them answer:
linked accounts and password checks work; password reset, email verification, email
change and account deletion were never configured, so they fail the way Better Auth fails
when they are off."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from blacksheep import Request, Response

from arinova.auth import errors as msg
from arinova.auth.authenticator import Authenticator
from arinova.auth.clock import now_ms
from arinova.auth.errors import AuthError
from arinova.auth.oauth import form_encode
from arinova.auth.records import SessionWithUser
from arinova.auth.schema import Field, check, check_password_length
from arinova.auth.social import auth_base_url
from arinova.auth.web import (
    Reply,
    check_callback_urls,
    check_origin,
    cookies_of,
    read_auth_body,
)
from arinova.db.queries import auth as q
from arinova.timefmt import iso

PASSWORD_FIELDS = (Field("password", "string", required=True),)
UNLINK_FIELDS = (
    Field("providerId", "string", required=True),
    Field("accountId", "string"),
)
PROVIDER_TOKEN_FIELDS = (
    Field("providerId", "string", required=True),
    Field("accountId", "string"),
    Field("userId", "string"),
)
CHANGE_EMAIL_FIELDS = (
    Field("newEmail", "email", required=True),
    Field("callbackURL", "string"),
)
DELETE_USER_FIELDS = (
    Field("callbackURL", "string"),
    Field("password", "string"),
    Field("token", "string"),
)
RESET_REQUEST_FIELDS = (Field("email", "email", required=True), Field("redirectTo", "string"))
RESET_FIELDS = (Field("newPassword", "string", required=True), Field("token", "string"))
SEND_VERIFICATION_FIELDS = (
    Field("email", "email", required=True),
    Field("callbackURL", "string"),
)
TOKEN_QUERY = (Field("token", "string", required=True), Field("callbackURL", "string"))
CALLBACK_QUERY = (Field("callbackURL", "string", required=True),)


def _query(request: Request) -> dict[str, str]:
    return {key: values[0] for key, values in request.query.items() if values}


def with_param(url: str, key: str, value: str) -> str:
    """``url.searchParams.set(key, value)`` followed by ``url.href``."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    pairs.append((key, value))
    return urlunsplit(parts._replace(path=parts.path or "/", query=form_encode(pairs)))


class AccountEndpoints:
    def __init__(self, better_auth_url: str) -> None:
        self.base = auth_base_url(better_auth_url)

    async def _body(
        self, request: Request, auth: Authenticator, fields: tuple[Field, ...]
    ) -> dict[str, Any]:
        body = await read_auth_body(request)
        check_origin(request, auth)
        check_callback_urls(auth, body, request)
        return dict(check(body, fields))

    async def _session(self, request: Request, auth: Authenticator) -> SessionWithUser:
        found = await auth.lookup(cookies_of(request))
        if found.entry is None:
            raise AuthError(401, None)
        return found.entry

    # -- linked accounts ----------------------------------------------------------------------
    async def list_accounts(self, request: Request, auth: Authenticator) -> Response:
        current = await self._session(request, auth)
        rows = await auth.db.fetch(q.ACCOUNTS_FOR_USER.sql, current.user.id)
        return Reply().json(
            [
                {
                    "accountId": row["account_id"],
                    "providerId": row["provider_id"],
                    "userId": row["user_id"],
                    "createdAt": iso(row["created_at"]),
                    "updatedAt": iso(row["updated_at"]),
                    "id": row["id"],
                    "scopes": row["scope"].split(",") if row["scope"] is not None else [],
                }
                for row in rows
            ]
        )

    async def unlink_account(self, request: Request, auth: Authenticator) -> Response:
        body = await self._body(request, auth, UNLINK_FIELDS)
        current = await self._session(request, auth)
        rows = await auth.db.fetch(q.ACCOUNTS_FOR_USER.sql, current.user.id)
        if len(rows) == 1:
            raise AuthError(400, msg.FAILED_TO_UNLINK_LAST_ACCOUNT)
        account_id = body.get("accountId")
        match = next(
            (
                row
                for row in rows
                if row["provider_id"] == body["providerId"]
                and (not account_id or row["account_id"] == account_id)
            ),
            None,
        )
        if match is None:
            raise AuthError(400, msg.ACCOUNT_NOT_FOUND)
        await auth.db.execute(q.ACCOUNT_DELETE.sql, match["id"], current.user.id)
        return Reply().json({"status": True})

    async def _provider_account(
        self, request: Request, auth: Authenticator, unknown: str
    ) -> tuple[dict[str, Any], Any]:
        body = await self._body(request, auth, PROVIDER_TOKEN_FIELDS)
        current = await self._session(request, auth)
        provider_id = body["providerId"]
        if provider_id not in auth.oauth.providers:
            raise AuthError(400, unknown.format(provider_id))
        rows = await auth.db.fetch(q.ACCOUNTS_FOR_USER.sql, current.user.id)
        account_id = body.get("accountId")
        for row in rows:
            if row["provider_id"] == provider_id and (not account_id or row["id"] == account_id):
                return body, row
        raise AuthError(400, msg.ACCOUNT_NOT_FOUND)

    async def _current_tokens(
        self, auth: Authenticator, row: Any
    ) -> tuple[str, datetime | None, str | None]:
        """Access token, its expiry and the id token of an account; refreshed first when
        the access token expires within 5 s and a refresh token is stored."""
        provider = auth.oauth.providers[row["provider_id"]]
        expires = row["access_token_expires_at"]
        access, id_token = row["access_token"] or "", row["id_token"]
        expiring = expires is not None and expires - now_ms() < timedelta(seconds=5)
        if row["refresh_token"] and expiring:
            fresh = await auth.oauth.refresh(provider, row["refresh_token"])
            if fresh is None or fresh.access_token is None:
                raise AuthError(400, msg.FAILED_TO_GET_ACCESS_TOKEN)
            await auth.db.execute(
                q.ACCOUNT_SET_REFRESHED.sql,
                row["id"],
                fresh.access_token,
                fresh.refresh_token,
                fresh.access_expires_at,
                fresh.refresh_expires_at,
                None,
                None,
                now_ms(),
            )
            access, expires = fresh.access_token, fresh.access_expires_at or expires
            id_token = fresh.id_token or id_token
        return access, expires, id_token

    async def get_access_token(self, request: Request, auth: Authenticator) -> Response:
        _, row = await self._provider_account(request, auth, "Provider {} is not supported.")
        access, expires, id_token = await self._current_tokens(auth, row)
        result: dict[str, Any] = {"accessToken": access}
        if expires is not None:
            result["accessTokenExpiresAt"] = iso(expires)
        result["scopes"] = row["scope"].split(",") if row["scope"] is not None else []
        if id_token is not None:
            result["idToken"] = id_token
        return Reply().json(result)

    async def refresh_token(self, request: Request, auth: Authenticator) -> Response:
        """A refresh grant now, whatever the access token's age."""
        _, row = await self._provider_account(request, auth, "Provider {} not found.")
        if not row["refresh_token"]:
            raise AuthError(400, msg.REFRESH_TOKEN_NOT_FOUND)
        provider = auth.oauth.providers[row["provider_id"]]
        fresh = await auth.oauth.refresh(provider, row["refresh_token"])
        if fresh is None or fresh.access_token is None:
            raise AuthError(400, msg.FAILED_TO_REFRESH_ACCESS_TOKEN)
        scope = fresh.scope or row["scope"]
        id_token = fresh.id_token or row["id_token"]
        await auth.db.execute(
            q.ACCOUNT_SET_REFRESHED.sql,
            row["id"],
            fresh.access_token,
            fresh.refresh_token,
            fresh.access_expires_at,
            fresh.refresh_expires_at,
            id_token,
            scope,
            now_ms(),
        )
        result: dict[str, Any] = {"accessToken": fresh.access_token}
        if fresh.refresh_token is not None:
            result["refreshToken"] = fresh.refresh_token
        if fresh.access_expires_at is not None:
            result["accessTokenExpiresAt"] = iso(fresh.access_expires_at)
        if fresh.refresh_expires_at is not None:
            result["refreshTokenExpiresAt"] = iso(fresh.refresh_expires_at)
        result["scope"] = scope
        result["idToken"] = id_token
        result["providerId"] = row["provider_id"]
        result["accountId"] = row["account_id"]
        return Reply().json(result)

    async def account_info(self, request: Request, auth: Authenticator) -> Response:
        """The provider's view of one of the user's accounts, named by its provider-side
        ``accountId``."""
        current = await self._session(request, auth)
        account_id = _query(request).get("accountId")
        row = None
        if account_id and "\x00" not in account_id:  # no stored id has one
            row = await auth.db.fetchrow(q.ACCOUNT_BY_ACCOUNT_ID.sql, account_id)
        if row is None or row["user_id"] != current.user.id:
            raise AuthError(400, msg.ACCOUNT_NOT_FOUND)
        provider = auth.oauth.providers.get(row["provider_id"])
        if provider is None:
            raise AuthError(
                500,
                f"Provider account provider is {row['provider_id']} but it is not configured",
            )
        access, _, id_token = await self._current_tokens(auth, row)
        if not access:
            raise AuthError(400, msg.ACCESS_TOKEN_NOT_FOUND)
        return Reply().json(await auth.oauth.account_info(provider, access, id_token))

    # -- password checks and the features the original left off ------------------------------
    async def verify_password(self, request: Request, auth: Authenticator) -> Response:
        body = await self._body(request, auth, PASSWORD_FIELDS)
        current = await self._session(request, auth)
        account = await auth.db.fetchrow(q.CREDENTIAL_FOR_USER.sql, current.user.id)
        stored = account["password"] if account is not None else None
        if not (await auth.passwords.verify(stored, body["password"])).ok:
            raise AuthError(400, msg.INVALID_PASSWORD)
        return Reply().json({"status": True})

    async def change_email(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth, CHANGE_EMAIL_FIELDS)
        await self._session(request, auth)
        raise AuthError(400, msg.CHANGE_EMAIL_DISABLED)

    async def delete_user(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth, DELETE_USER_FIELDS)
        await self._session(request, auth)
        raise AuthError(404, None)

    async def delete_user_callback(self, request: Request, auth: Authenticator) -> Response:
        check(_query(request), TOKEN_QUERY, where="query")
        check_callback_urls(auth, None, request)
        raise AuthError(404, None)

    async def request_password_reset(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth, RESET_REQUEST_FIELDS)
        raise AuthError(400, msg.RESET_PASSWORD_DISABLED)

    async def reset_password(self, request: Request, auth: Authenticator) -> Response:
        body = await self._body(request, auth, RESET_FIELDS)
        if not (body.get("token") or _query(request).get("token")):
            raise AuthError(400, msg.INVALID_TOKEN)
        check_password_length(body["newPassword"])
        # no reset token was ever issued: sending reset emails was never configured
        raise AuthError(400, msg.INVALID_TOKEN)

    async def reset_password_callback(self, request: Request, auth: Authenticator) -> Response:
        query = check(_query(request), CALLBACK_QUERY, where="query")
        check_callback_urls(auth, None, request)
        target = urljoin(self.base, query["callbackURL"])
        return Reply().redirect(with_param(target, "error", "INVALID_TOKEN"))

    async def send_verification_email(self, request: Request, auth: Authenticator) -> Response:
        await self._body(request, auth, SEND_VERIFICATION_FIELDS)
        raise AuthError(400, msg.VERIFICATION_EMAIL_DISABLED)

    async def verify_email(self, request: Request, auth: Authenticator) -> Response:
        query = check(_query(request), TOKEN_QUERY, where="query")
        check_callback_urls(auth, None, request)
        # no verification token was ever issued (verification emails were never configured)
        callback = query.get("callbackURL")
        if callback:
            return Reply().redirect(
                f"{callback}{'&' if '?' in callback else '?'}error=invalid_token"
            )
        raise AuthError(401, "invalid_token")
