"""Statements of the authentication area (tables ``user``, ``session``, ``account``,
``verification`` as Better Auth left them; contract schema.md §2)."""

from arinova.db.queries import Query

_USER_COLS = (
    "u.id AS user_id, u.name, u.email, u.email_verified, u.image, "
    "u.created_at AS user_created_at, u.updated_at AS user_updated_at"
)
_SESSION_COLS = (
    "s.id AS session_id, s.token, s.expires_at, s.ip_address, s.user_agent, "
    "s.created_at AS session_created_at, s.updated_at AS session_updated_at"
)

# --- sessions --------------------------------------------------------------------------
SESSION_WITH_USER = Query(
    "auth.session_with_user",
    f'SELECT {_SESSION_COLS}, {_USER_COLS} FROM "session" s '
    'JOIN "user" u ON u.id = s.user_id WHERE s.token = $1',
)
SESSION_INSERT = Query(
    "auth.session_insert",
    'INSERT INTO "session" (id, user_id, token, expires_at, ip_address, user_agent, '
    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
)
SESSION_REFRESH = Query(
    "auth.session_refresh",
    'UPDATE "session" s SET expires_at = $2, updated_at = $3 WHERE s.token = $1 RETURNING s.id',
)
SESSION_DELETE = Query("auth.session_delete", 'DELETE FROM "session" WHERE token = $1')
SESSIONS_DELETE_FOR_USER = Query(
    "auth.sessions_delete_for_user",
    'DELETE FROM "session" WHERE user_id = $1 RETURNING token',
)
SESSION_TOKENS_FOR_USER = Query(
    "auth.session_tokens_for_user", 'SELECT token FROM "session" WHERE user_id = $1'
)
SESSIONS_FOR_USER = Query(
    "auth.sessions_for_user",
    f'SELECT {_SESSION_COLS}, s.user_id FROM "session" s WHERE s.user_id = $1 '
    "AND s.expires_at > $2 ORDER BY s.created_at",
)
SESSION_DELETE_FOR_USER_BY_TOKEN = Query(
    "auth.session_delete_for_user_by_token",
    'DELETE FROM "session" WHERE user_id = $1 AND token = $2 RETURNING token',
)
SESSIONS_DELETE_OTHERS = Query(
    "auth.sessions_delete_others",
    'DELETE FROM "session" WHERE user_id = $1 AND token <> $2 RETURNING token',
)

# --- users and credentials -------------------------------------------------------------
USER_EXISTS_BY_EMAIL = Query("auth.user_exists_by_email", 'SELECT 1 FROM "user" WHERE email = $1')
#: sign-up: user, credential account and session in one atomic statement;
#: no row when the email is taken
SIGN_UP = Query(
    "auth.sign_up",
    "WITH new_user AS ("
    ' INSERT INTO "user" (id, name, email, email_verified, image, created_at, updated_at)'
    " VALUES ($1, $2, $3, false, $4, $5, $5) ON CONFLICT (email) DO NOTHING"
    " RETURNING id, name, email, email_verified, image, created_at, updated_at"
    "), new_account AS ("
    " INSERT INTO account (id, user_id, account_id, provider_id, password, created_at,"
    " updated_at) SELECT $6, id, id, 'credential', $7, $5, $5 FROM new_user"
    "), new_session AS ("
    ' INSERT INTO "session" (id, user_id, token, expires_at, ip_address, user_agent,'
    " created_at, updated_at) SELECT $8, id, $9, $10, $11, $12, $5, $5 FROM new_user"
    " RETURNING id"
    ") SELECT u.id, u.name, u.email, u.email_verified, u.image, u.created_at, u.updated_at"
    " FROM new_user u, new_session",
)
USER_WITH_CREDENTIAL_BY_EMAIL = Query(
    "auth.user_with_credential_by_email",
    "SELECT u.id, u.name, u.email, u.email_verified, u.image, u.created_at, u.updated_at,"
    " a.id AS account_id, a.password"
    ' FROM "user" u LEFT JOIN account a'
    " ON a.user_id = u.id AND a.provider_id = 'credential'"
    " WHERE u.email = $1 ORDER BY a.created_at LIMIT 1",
)
CREDENTIAL_FOR_USER = Query(
    "auth.credential_for_user",
    "SELECT id, password FROM account WHERE user_id = $1 AND provider_id = 'credential'"
    " ORDER BY created_at LIMIT 1",
)
ACCOUNT_SET_PASSWORD = Query(
    "auth.account_set_password",
    "UPDATE account SET password = $2, updated_at = $3 WHERE id = $1",
)
USER_UPDATE_PROFILE = Query(
    "auth.user_update_profile",
    'UPDATE "user" SET name = COALESCE($2, name), image = CASE WHEN $3 THEN $4 ELSE image END,'
    " updated_at = $5 WHERE id = $1"
    " RETURNING id, name, email, email_verified, image, created_at, updated_at",
)

# --- OAuth -----------------------------------------------------------------------------
VERIFICATION_INSERT = Query(
    "auth.verification_insert",
    "INSERT INTO verification (id, identifier, value, expires_at, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $5)",
)
VERIFICATION_FIND = Query(
    "auth.verification_find",
    "SELECT id, value FROM verification WHERE identifier = $1 ORDER BY created_at DESC LIMIT 1",
)
VERIFICATION_DELETE = Query("auth.verification_delete", "DELETE FROM verification WHERE id = $1")
OAUTH_ACCOUNT = Query(
    "auth.oauth_account",
    "SELECT a.id AS account_id, u.id, u.name, u.email, u.email_verified, u.image,"
    " u.created_at, u.updated_at"
    ' FROM account a JOIN "user" u ON u.id = a.user_id'
    " WHERE a.provider_id = $1 AND a.account_id = $2 LIMIT 1",
)
USER_BY_EMAIL = Query(
    "auth.user_by_email",
    'SELECT id, name, email, email_verified, image, created_at, updated_at FROM "user"'
    " WHERE email = $1",
)
OAUTH_ACCOUNT_UPDATE_TOKENS = Query(
    "auth.oauth_account_update_tokens",
    "UPDATE account SET access_token = COALESCE($2, access_token),"
    " refresh_token = COALESCE($3, refresh_token),"
    " access_token_expires_at = COALESCE($4, access_token_expires_at),"
    " refresh_token_expires_at = COALESCE($5, refresh_token_expires_at),"
    " id_token = COALESCE($6, id_token), scope = COALESCE($7, scope), updated_at = $8"
    " WHERE id = $1",
)
OAUTH_ACCOUNT_INSERT = Query(
    "auth.oauth_account_insert",
    "INSERT INTO account (id, user_id, account_id, provider_id, access_token, refresh_token,"
    " access_token_expires_at, refresh_token_expires_at, scope, id_token, created_at,"
    " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
)
USER_MARK_EMAIL_VERIFIED = Query(
    "auth.user_mark_email_verified",
    'UPDATE "user" SET email_verified = true, updated_at = $2 WHERE id = $1 AND NOT email_verified',
)
OAUTH_USER_INSERT = Query(
    "auth.oauth_user_insert",
    'INSERT INTO "user" (id, name, email, email_verified, image, created_at, updated_at)'
    " VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (email) DO NOTHING"
    " RETURNING id, name, email, email_verified, image, created_at, updated_at",
)

# --- the user's linked accounts (list-accounts, unlink-account) ----------------------------
ACCOUNTS_FOR_USER = Query(
    "auth.accounts_for_user",
    "SELECT id, account_id, provider_id, user_id, scope, created_at, updated_at, access_token,"
    " refresh_token, id_token, access_token_expires_at FROM account"
    " WHERE user_id = $1 ORDER BY created_at, id LIMIT 100",
)
ACCOUNT_DELETE = Query("auth.account_delete", "DELETE FROM account WHERE id = $1 AND user_id = $2")
ACCOUNT_SET_REFRESHED = Query(
    "auth.account_set_refreshed",
    "UPDATE account SET access_token = COALESCE($2, access_token),"
    " refresh_token = COALESCE($3, refresh_token),"
    " access_token_expires_at = COALESCE($4, access_token_expires_at),"
    " refresh_token_expires_at = COALESCE($5, refresh_token_expires_at),"
    " id_token = COALESCE($6, id_token), scope = COALESCE($7, scope), updated_at = $8"
    " WHERE id = $1",
)
ACCOUNT_BY_ACCOUNT_ID = Query(
    "auth.account_by_account_id",
    "SELECT id, account_id, provider_id, user_id, scope, access_token, refresh_token, id_token,"
    " access_token_expires_at FROM account WHERE account_id = $1 ORDER BY created_at, id LIMIT 1",
)
