"""What the Better Auth endpoints (``arinova.http.auth_routes``) tell the API document
(contract rest.md §3.2). Their errors are ``{"code","message"}``; a session endpoint
called without a session answers 401 with an empty body; a POST with a cookie needs a
trusted ``Origin`` (403)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from arinova.auth.account_endpoints import (
    CHANGE_EMAIL_FIELDS,
    DELETE_USER_FIELDS,
    PASSWORD_FIELDS,
    PROVIDER_TOKEN_FIELDS,
    RESET_FIELDS,
    RESET_REQUEST_FIELDS,
    SEND_VERIFICATION_FIELDS,
    UNLINK_FIELDS,
)
from arinova.auth.schema import Field, fields_schema
from arinova.auth.social import LINK_FIELDS, SOCIAL_FIELDS
from arinova.http import schemas as s
from arinova.http.apidoc import BOOL, JSON, STR, Doc, Raw, Reply, arr, null, obj

REDIRECT: Final = Reply({}, headers=("location",))
ANY_OBJECT: Final = {"type": "object"}
NO_BODY: Final = Raw({"type": "object"})


def _get(
    summary: str,
    ok: Mapping[int, JSON | Reply | None],
    *,
    errors: tuple[int, ...] = (),
    session: bool = False,
    query: Mapping[str, JSON] | None = None,
) -> Doc:
    return Doc(
        summary,
        ok,
        errors=(*errors, 401) if session else errors,
        empty_errors=(401,) if session else (),
        query=query or {},
        access="better-auth",
        tag="auth",
    )


def _post(
    summary: str,
    ok: Mapping[int, JSON | Reply | None],
    body: tuple[Field, ...] | Raw,
    *,
    errors: tuple[int, ...] = (),
    session: bool = False,
    empty: tuple[int, ...] = (),
) -> Doc:
    return Doc(
        summary,
        ok,
        errors=(*errors, 403, *((401,) if session else ())),
        body=body if isinstance(body, Raw) else Raw(fields_schema(body)),
        body_required=not isinstance(body, Raw) or body is not NO_BODY,
        empty_errors=(*empty, *((401,) if session else ())),
        access="better-auth",
        tag="auth",
    )


def credentials(
    sign_up: tuple[Field, ...], sign_in: tuple[Field, ...], change_password: tuple[Field, ...]
) -> dict[str, Doc]:
    """The docs of the email-and-password endpoints (their fields live with them)."""
    return {
        "sign-up/email": _post(
            "Sign up with email and password", {200: s.SIGNED_IN}, sign_up, errors=(422,)
        ),
        "sign-in/email": _post(
            "Sign in with email and password", {200: s.SIGNED_IN}, sign_in, errors=(401,)
        ),
        "sign-out": _post("Sign out", {200: obj({"success": BOOL})}, NO_BODY),
        "get-session": _get(
            "The current session",
            {200: null(obj({"session": s.SESSION, "user": s.USER}))},
            query={"disableCookieCache": STR, "disableRefresh": STR},
        ),
        "update-user": _post(
            "Update the name or image",
            {200: s.STATUS_TRUE},
            Raw(obj({}, {"name": STR, "image": null(STR)})),
            session=True,
        ),
        "change-password": _post(
            "Change the password",
            {200: obj({"token": null(STR), "user": s.USER})},
            change_password,
            session=True,
        ),
        "ok": _get("Better Auth is up", {200: obj({"ok": BOOL})}),
        "list-sessions": _get("The user's sessions", {200: arr(s.SESSION)}, session=True),
        "revoke-session": _post(
            "Revoke one session",
            {200: s.STATUS_TRUE},
            (Field("token", "string", required=True),),
            session=True,
        ),
        "revoke-sessions": _post(
            "Revoke every session", {200: s.STATUS_TRUE}, NO_BODY, session=True
        ),
        "revoke-other-sessions": _post(
            "Revoke the other sessions", {200: s.STATUS_TRUE}, NO_BODY, session=True
        ),
    }


SOCIAL: Final = {
    "sign-in/social": _post(
        "Start a social sign-in (or sign in with an id token)",
        {200: Reply({"application/json": ANY_OBJECT}, headers=("location",))},
        SOCIAL_FIELDS,
        errors=(401, 404),
    ),
    "link-social": _post(
        "Link a social account",
        {200: ANY_OBJECT},
        LINK_FIELDS,
        errors=(404, 417),
        session=True,
    ),
    "callback/:provider GET": _get(
        "The provider's redirect back",
        {302: REDIRECT},
        query={"code": STR, "state": STR, "error": STR, "error_description": STR},
    ),
    "callback/:provider POST": Doc(
        "The provider's form post back (redirected to the GET form)",
        {302: REDIRECT},
        body=Raw(ANY_OBJECT),
        body_required=False,
        access="better-auth",
        tag="auth",
    ),
    "error": _get(
        "The error page",
        {200: Reply({"text/html": STR}), 302: REDIRECT},
        query={"error": STR, "error_description": STR},
    ),
}

ACCOUNTS: Final = {
    "list-accounts": _get("The user's linked accounts", {200: arr(ANY_OBJECT)}, session=True),
    "unlink-account": _post("Unlink an account", {200: s.STATUS_TRUE}, UNLINK_FIELDS, session=True),
    "get-access-token": _post(
        "A provider access token", {200: ANY_OBJECT}, PROVIDER_TOKEN_FIELDS, session=True
    ),
    "refresh-token": _post(
        "Refresh a provider token", {200: ANY_OBJECT}, PROVIDER_TOKEN_FIELDS, session=True
    ),
    "account-info": _get(
        "A linked account's provider profile",
        {200: ANY_OBJECT},
        errors=(400,),
        session=True,
        query={"accountId": STR},
    ),
    "verify-password": _post(
        "Check the password", {200: s.STATUS_TRUE}, PASSWORD_FIELDS, session=True
    ),
    "change-email": _post("Change the email (disabled)", {}, CHANGE_EMAIL_FIELDS, session=True),
    "delete-user": _post(
        "Delete the user (disabled)",
        {},
        DELETE_USER_FIELDS,
        errors=(404,),
        session=True,
        empty=(404,),
    ),
    "delete-user/callback": Doc(
        "Confirm a deletion (disabled)",
        {},
        errors=(400, 403, 404),
        empty_errors=(404,),
        query={key: STR for key in ("token", "callbackURL")},
        access="better-auth",
        tag="auth",
    ),
    "request-password-reset": _post(
        "Request a password reset (disabled)", {}, RESET_REQUEST_FIELDS
    ),
    "reset-password": _post("Reset the password", {}, RESET_FIELDS),
    "reset-password/:token": _get(
        "A reset link", {302: REDIRECT}, errors=(400, 403), query={"callbackURL": STR}
    ),
    "send-verification-email": _post(
        "Send a verification email (disabled)", {}, SEND_VERIFICATION_FIELDS
    ),
    "verify-email": _get(
        "Verify an email address",
        {302: REDIRECT},
        errors=(400, 401, 403),
        query={key: STR for key in ("token", "callbackURL")},
    ),
}

NOT_FOUND: Final = Doc(
    "Any other path under /api/auth: not a Better Auth endpoint",
    {},
    errors=(404,),
    empty_errors=(404,),
    access="better-auth",
    tag="auth",
)
