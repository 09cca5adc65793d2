"""The user an OAuth sign-in lands on, as Better Auth's handleOAuthUserInfo decides:
the account's owner, else the user with that email (linked only when the provider
vouches for the email), else a new user (contract rest.md §3.2.7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arinova.auth.clock import now_ms
from arinova.auth.ids import new_id
from arinova.auth.oauth import ProviderUser, Tokens
from arinova.auth.records import UserRecord
from arinova.db.pool import AnyConnection, Database
from arinova.db.queries import auth as q


@dataclass(frozen=True, slots=True)
class Linked:
    user: UserRecord
    is_register: bool


async def link_or_create(
    db: Database, provider_id: str, profile: ProviderUser, tokens: Tokens
) -> Linked | str:
    """Better Auth's handleOAuthUserInfo: the user to sign in, or an error phrase
    (``"account not linked"``, ``"unable to create user"``)."""
    assert profile.email is not None
    email = profile.email.lower()
    now = now_ms()
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q.OAUTH_ACCOUNT.sql, provider_id, profile.id)
        if row is not None:
            user = UserRecord.from_row(row)
            await conn.execute(
                q.OAUTH_ACCOUNT_UPDATE_TOKENS.sql,
                row["account_id"],
                tokens.access_token,
                tokens.refresh_token,
                tokens.access_expires_at,
                tokens.refresh_expires_at,
                tokens.id_token,
                tokens.scope,
                now,
            )
            return Linked(await _mark_verified(conn, user, profile, email, now), False)
        row = await conn.fetchrow(q.USER_BY_EMAIL.sql, email)
        if row is not None:
            user = UserRecord.from_row(row)
            if not profile.email_verified:
                return "account not linked"
            await _insert_account(conn, user.id, provider_id, profile, tokens, now)
            return Linked(await _mark_verified(conn, user, profile, email, now), False)
        row = await conn.fetchrow(
            q.OAUTH_USER_INSERT.sql,
            new_id(),
            profile.name or profile.email,
            email,
            profile.email_verified,
            profile.image,
            now,
        )
        if row is None:
            return "unable to create user"
        user = UserRecord.from_row(row)
        await _insert_account(conn, user.id, provider_id, profile, tokens, now)
        return Linked(user, True)


async def _insert_account(
    conn: AnyConnection,
    user_id: str,
    provider_id: str,
    profile: ProviderUser,
    tokens: Tokens,
    now: datetime,
) -> None:
    await conn.execute(
        q.OAUTH_ACCOUNT_INSERT.sql,
        new_id(),
        user_id,
        profile.id,
        provider_id,
        tokens.access_token,
        tokens.refresh_token,
        tokens.access_expires_at,
        tokens.refresh_expires_at,
        tokens.scope,
        tokens.id_token,
        now,
    )


async def _mark_verified(
    conn: AnyConnection,
    user: UserRecord,
    profile: ProviderUser,
    email: str,
    now: datetime,
) -> UserRecord:
    if profile.email_verified and not user.email_verified and email == user.email:
        await conn.execute(q.USER_MARK_EMAIL_VERIFIED.sql, user.id, now)
        return UserRecord(user.id, user.name, user.email, True, user.image, user.created_at, now)
    return user


async def link_account(
    db: Database,
    provider_id: str,
    profile: ProviderUser,
    tokens: Tokens,
    user_id: str,
    user_email: str,
    *,
    from_id_token: bool = False,
) -> str | None:
    """``/link-social``: add the provider's account to the signed-in user. None when done,
    else Better Auth's error code (``unable_to_link_account`` when the provider does not
    vouch for the email, ``email_doesn't_match``, ``account_already_linked_to_different_user``,
    ``account_already_linked_to_current_user``). With an id token, an account the user
    already has is accepted before the email checks and its tokens are left alone."""
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q.OAUTH_ACCOUNT.sql, provider_id, profile.id)
        if from_id_token and row is not None and row["id"] == user_id:
            return "account_already_linked_to_current_user"
        if not profile.email_verified:
            return "unable_to_link_account"
        if profile.email != user_email:
            return "email_doesn't_match"
        if row is not None and row["id"] != user_id:
            return "account_already_linked_to_different_user"
        now = now_ms()
        if row is None:
            await _insert_account(conn, user_id, provider_id, profile, tokens, now)
            return None
        await conn.execute(
            q.OAUTH_ACCOUNT_UPDATE_TOKENS.sql,
            row["account_id"],
            tokens.access_token,
            tokens.refresh_token,
            tokens.access_expires_at,
            tokens.refresh_expires_at,
            tokens.id_token,
            tokens.scope,
            now,
        )
        return "account_already_linked_to_current_user"
