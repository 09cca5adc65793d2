"""Better Auth's error bodies: ``{"code": <derived from message>, "message": ...}``."""

from __future__ import annotations

import re

_NOT_CODE = re.compile(r"[^A-Z0-9_]")


def code_of(message: str) -> str:
    """better-call derives the code: upper-case, spaces to ``_``, other symbols dropped."""
    return _NOT_CODE.sub("", message.upper().replace(" ", "_"))


class AuthError(Exception):
    """An error answer of an ``/api/auth/*`` endpoint; ``message=None`` is an empty body."""

    def __init__(self, status: int, message: str | None, code: str | None = None) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message
        self.code = code if code is not None else (code_of(message) if message else None)

    @property
    def body(self) -> dict[str, str] | None:
        if self.message is None or self.code is None:
            return None
        return {"code": self.code, "message": self.message}


# The messages clients see (Better Auth 1.4.18 BASE_ERROR_CODES and route messages).
INVALID_EMAIL_OR_PASSWORD = "Invalid email or password"
INVALID_EMAIL = "Invalid email"
INVALID_PASSWORD = "Invalid password"
PASSWORD_TOO_SHORT = "Password too short"
PASSWORD_TOO_LONG = "Password too long"
USER_ALREADY_EXISTS = "User already exists. Use another email."
FAILED_TO_CREATE_USER = "Failed to create user"
EMAIL_CAN_NOT_BE_UPDATED = "Email can not be updated"
NO_FIELDS_TO_UPDATE = "No fields to update"
CREDENTIAL_ACCOUNT_NOT_FOUND = "Credential account not found"
PROVIDER_NOT_FOUND = "Provider not found"
ID_TOKEN_NOT_SUPPORTED = "id_token not supported"
INVALID_TOKEN = "Invalid token"
FAILED_TO_GET_USER_INFO = "Failed to get user info"
USER_EMAIL_NOT_FOUND = "User email not found"
MISSING_OR_NULL_ORIGIN = "Missing or null Origin"
INVALID_ORIGIN = "Invalid origin"
CROSS_SITE_NAVIGATION = (
    "Cross-site navigation login blocked. This request appears to be a CSRF attack."
)
BODY_MUST_BE_OBJECT = "Body must be an object"
RATE_LIMITED = "Too many requests. Please try again later."
FAILED_TO_UNLINK_LAST_ACCOUNT = "You can't unlink your last account"
ACCOUNT_NOT_FOUND = "Account not found"
FAILED_TO_GET_ACCESS_TOKEN = "Failed to get a valid access token"
CHANGE_EMAIL_DISABLED = "Change email is disabled"
RESET_PASSWORD_DISABLED = "Reset password isn't enabled"
VERIFICATION_EMAIL_DISABLED = "Verification email isn't enabled"
LINKING_NOT_ALLOWED = "Account not linked - linking not allowed"
LINKING_DIFFERENT_EMAILS = "Account not linked - different emails not allowed"
LINKING_FAILED = "Account not linked - unable to create account"
REFRESH_TOKEN_NOT_FOUND = "Refresh token not found"
FAILED_TO_REFRESH_ACCESS_TOKEN = "Failed to refresh access token"
ACCESS_TOKEN_NOT_FOUND = "Access token not found"
