"""PASSWORD_HASH=legacy: passwords stay in the original's scrypt format (Better Auth
verifies only that), so the original can take over the database again (docs/switch-over.md).
The default (argon2id, and the original's hashes rehashed on sign-in) is
tests/auth/test_sessions.py::test_legacy_password_signs_in_and_is_rehashed."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from arinova.auth.passwords import legacy_scrypt_hash
from arinova.server import Server
from arinova.settings import Settings, SettingsError
from tests.support.auth import authed_client, sign_in, sign_up
from tests.support.servers import StartServer

FIXTURE = json.loads(Path("/work/shared/fixtures/legacy-auth.json").read_text())
#: Better Auth's format: 16 random bytes as hex (used as the salt string), ':', scrypt key hex
BETTER_AUTH_HASH = re.compile(r"^([0-9a-f]{32}):[0-9a-f]{128}$")


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def legacy_server(start_module_server: StartServer) -> Server:
    return await start_module_server(password_hash="legacy")


@pytest.fixture(scope="module")
async def default_server(start_module_server: StartServer) -> Server:
    return await start_module_server()


async def stored_hash(db: asyncpg.Connection, user_id: str) -> str:
    value = await db.fetchval(
        "SELECT password FROM account WHERE user_id = $1 AND provider_id = 'credential'", user_id
    )
    assert isinstance(value, str)
    return value


def better_auth_verifies(stored: str, password: str) -> bool:
    """What Better Auth's verifier computes (reproduced against the original's own hash in
    test_sessions.py::test_legacy_hash_format_is_reproduced)."""
    match = BETTER_AUTH_HASH.match(stored)
    return match is not None and legacy_scrypt_hash(password, match.group(1)) == stored


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def insert_original_user(db: asyncpg.Connection) -> None:
    """The user the original server created (its scrypt hash), without a session."""
    u, a = FIXTURE["rows"]["user"], FIXTURE["rows"]["account"]
    await db.execute(
        'INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at)'
        " VALUES ($1, $2, $3, $4, $5, $6)",
        u["id"], u["name"], u["email"], u["email_verified"],
        ts(u["created_at"]), ts(u["updated_at"]),
    )  # fmt: skip
    await db.execute(
        "INSERT INTO account (id, user_id, account_id, provider_id, password, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        a["id"], a["user_id"], a["account_id"], a["provider_id"], a["password"],
        ts(a["created_at"]), ts(a["updated_at"]),
    )  # fmt: skip


async def test_sign_up_and_password_change_write_better_auths_format(
    legacy_server: Server, db: asyncpg.Connection
) -> None:
    user = await sign_up(legacy_server.url, password="first password 1")
    stored = await stored_hash(db, user.id)
    assert BETTER_AUTH_HASH.match(stored), stored
    assert better_auth_verifies(stored, "first password 1")
    assert not better_auth_verifies(stored, "another password")

    async with authed_client(legacy_server.url, user) as client:
        response = await client.post(
            "/api/auth/change-password",
            json={"currentPassword": "first password 1", "newPassword": "second password 2"},
        )
    assert response.status_code == 200, response.text
    changed = await stored_hash(db, user.id)
    assert changed != stored
    assert better_auth_verifies(changed, "second password 2")
    await sign_in(legacy_server.url, user.email, "second password 2")
    # signing in keeps it as it is
    assert await stored_hash(db, user.id) == changed


async def test_the_originals_hash_is_not_rehashed_on_sign_in(
    legacy_server: Server, db: asyncpg.Connection
) -> None:
    await insert_original_user(db)
    user_id, original = FIXTURE["rows"]["user"]["id"], FIXTURE["rows"]["account"]["password"]
    signed = await sign_in(legacy_server.url, FIXTURE["rows"]["user"]["email"], FIXTURE["password"])
    assert signed.user["id"] == user_id
    assert await stored_hash(db, user_id) == original


async def test_an_argon2id_hash_goes_back_to_scrypt_on_sign_in(
    legacy_server: Server, default_server: Server, db: asyncpg.Connection
) -> None:
    user = await sign_up(default_server.url, password="written by argon2")
    assert (await stored_hash(db, user.id)).startswith("$argon2id$")
    await sign_in(legacy_server.url, user.email, "written by argon2")
    stored = await stored_hash(db, user.id)
    assert better_auth_verifies(stored, "written by argon2")
    # and the default server moves it to argon2id again
    await sign_in(default_server.url, user.email, "written by argon2")
    assert (await stored_hash(db, user.id)).startswith("$argon2id$")


def test_the_setting() -> None:
    assert Settings.from_env({}).password_hash == "argon2id"
    assert Settings.from_env({"PASSWORD_HASH": "Legacy"}).password_hash == "legacy"
    with pytest.raises(SettingsError, match="PASSWORD_HASH must be one of argon2id, legacy"):
        Settings.from_env({"PASSWORD_HASH": "bcrypt"})
