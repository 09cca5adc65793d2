"""The other Better Auth 1.4.18 core endpoints the original exposed (contract rest.md
§3.2.8: reachable, used by no client), answered as its configuration made them answer:
linked accounts and password checks work; password reset, email verification, email
change and account deletion were never configured, so they fail the way Better Auth fails
when they are off."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from blacksheep import Request, Response

from arinova.auth import errors as msg
from arinova.auth.authenticator import Authenticator
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
                    "scopes": row["scope"].split(",") if row["scope"] else [],
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

    # Tokens are only refreshed by calls to the provider this server does not make yet, so
    # a found account is refused the way Better Auth refuses a failed refresh.
    async def get_access_token(self, request: Request, auth: Authenticator) -> Response:
        await self._provider_account(request, auth, "Provider {} is not supported.")
        raise AuthError(400, msg.FAILED_TO_GET_ACCESS_TOKEN)

    async def refresh_token(self, request: Request, auth: Authenticator) -> Response:
        _, row = await self._provider_account(request, auth, "Provider {} not found.")
        if not row["has_refresh_token"]:
            raise AuthError(400, msg.REFRESH_TOKEN_NOT_FOUND)
        raise AuthError(400, msg.FAILED_TO_REFRESH_ACCESS_TOKEN)

    async def account_info(self, request: Request, auth: Authenticator) -> Response:
        current = await self._session(request, auth)
        account_id = _query(request).get("accountId")
        if account_id:
            rows = await auth.db.fetch(q.ACCOUNTS_FOR_USER.sql, current.user.id)
            if any(row["id"] == account_id for row in rows):
                raise AuthError(400, msg.FAILED_TO_GET_ACCESS_TOKEN)
        raise AuthError(400, msg.ACCOUNT_NOT_FOUND)

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
