"""``arinova check`` as an operator runs it: a real process against real services (the
test database, the test Redis, a moto S3 server), one line per check, status 1 on any
failure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.support import db as testdb
from tests.support.config import server_env
from tests.support.push_service import new_vapid_keys
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, S3Server, moto_server

VAPID_PUBLIC, VAPID_PRIVATE = new_vapid_keys()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_check(env: dict[str, str]) -> tuple[int, list[str]]:
    done = await asyncio.to_thread(
        subprocess.run,
        (sys.executable, "-m", "arinova", "check"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


def line(lines: list[str], name: str) -> str:
    [found] = [text for text in lines if text.split(" ", 1)[1].lstrip().startswith(f"{name}:")]
    return found


@pytest.fixture(scope="module")
async def s3() -> AsyncIterator[S3Server]:
    async with moto_server() as server:
        yield server


def good_env(database: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = server_env(
        database,
        tmp_path / "uploads",
        VAPID_PUBLIC_KEY=VAPID_PUBLIC,
        VAPID_PRIVATE_KEY=VAPID_PRIVATE,
        GOOGLE_CLIENT_ID="google-id",
        GOOGLE_CLIENT_SECRET="google-secret",
    )
    env.update(overrides)
    return env


async def test_good_settings_pass_every_check(database: str, tmp_path: Path) -> None:
    status, lines = await run_check(good_env(database, tmp_path))
    assert status == 0, lines
    assert lines[-1] == "all checks passed"
    assert line(lines, "PostgreSQL").startswith("ok   PostgreSQL: 127.0.0.1:5432/")
    assert line(lines, "PostgreSQL").endswith("; migrations: current")
    assert line(lines, "Redis").startswith("ok   Redis:")
    assert line(lines, "storage") == f"ok   storage: local: {tmp_path / 'uploads'} is writable"
    assert line(lines, "Google sign-in") == "ok   Google sign-in: enabled"
    assert line(lines, "GitHub sign-in") == "ok   GitHub sign-in: disabled"
    assert line(lines, "Web Push") == "ok   Web Push: VAPID key pair valid"
    assert not [text for text in lines[:-1] if not text.startswith("ok")]


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    name = testdb.unique_name("check")
    dsn = await testdb.create_database(name)
    yield dsn
    await testdb.drop_database(name)


async def test_the_migrations_a_start_would_apply_or_refuse(empty_db: str, tmp_path: Path) -> None:
    status, lines = await run_check(good_env(empty_db, tmp_path))
    assert status == 0, lines
    assert line(lines, "PostgreSQL").endswith("; migrations: 1 pending, applied at start: baseline")

    conn = await asyncpg.connect(empty_db)
    try:
        await conn.execute(
            'CREATE SCHEMA drizzle; CREATE TABLE drizzle."__drizzle_migrations" '
            "(id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint);"
            "INSERT INTO drizzle.\"__drizzle_migrations\" (hash, created_at) VALUES ('x', 1)"
        )
    finally:
        await conn.close()
    status, lines = await run_check(good_env(empty_db, tmp_path))
    assert status == 1
    assert "FAIL PostgreSQL: " in line(lines, "PostgreSQL")
    assert "none of the original's migrations" in line(lines, "PostgreSQL")
    # nothing was applied by the check
    conn = await asyncpg.connect(empty_db)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.user')") is None
    finally:
        await conn.close()


async def test_unreachable_services_and_bad_keys_fail_with_a_fix(
    database: str, tmp_path: Path
) -> None:
    pg_port, redis_port = free_port(), free_port()
    other_public, _ = new_vapid_keys()
    env = good_env(
        f"postgresql://root@127.0.0.1:{pg_port}/arinova",
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/1",
        VAPID_PUBLIC_KEY=other_public,
        GITHUB_CLIENT_ID="github-id",
    )
    status, lines = await run_check(env)
    assert status == 1, lines
    assert lines[-1] == "some checks failed"
    assert line(lines, "PostgreSQL").startswith(
        f"FAIL PostgreSQL: cannot connect to 127.0.0.1:{pg_port}/arinova: "
    )
    assert line(lines, "PostgreSQL").endswith("(fix: start PostgreSQL or correct DATABASE_URL)")
    assert line(lines, "Redis").startswith(f"FAIL Redis: cannot reach 127.0.0.1:{redis_port}/1")
    assert "(fix: start Redis or correct REDIS_URL" in line(lines, "Redis")
    assert line(lines, "Web Push").startswith(
        "FAIL Web Push: VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY (fix: "
    )
    assert line(lines, "GitHub sign-in") == (
        "FAIL GitHub sign-in: GITHUB_CLIENT_ID is set without GITHUB_CLIENT_SECRET: every "
        "sign-in would fail at the token exchange (fix: set GITHUB_CLIENT_SECRET, or unset "
        "GITHUB_CLIENT_ID)"
    )
    # what does work is still checked and said
    assert line(lines, "storage").startswith("ok   storage: local:")
    assert line(lines, "Google sign-in") == "ok   Google sign-in: enabled"


async def test_half_a_vapid_pair_and_a_key_that_is_no_key(database: str, tmp_path: Path) -> None:
    _, lines = await run_check(good_env(database, tmp_path, VAPID_PRIVATE_KEY=""))
    assert line(lines, "Web Push") == (
        "FAIL Web Push: VAPID_PUBLIC_KEY is set without VAPID_PRIVATE_KEY "
        "(fix: set VAPID_PRIVATE_KEY (the pair's other half))"
    )
    status, lines = await run_check(good_env(database, tmp_path, VAPID_PRIVATE_KEY="not*base64"))
    assert status == 1
    assert line(lines, "Web Push").startswith(
        "FAIL Web Push: VAPID_PRIVATE_KEY is not a base64url P-256 private key (fix: "
    )


async def test_an_unwritable_upload_dir_fails(database: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status, lines = await run_check(good_env(database, tmp_path, UPLOAD_DIR=str(blocker / "up")))
    assert status == 1
    assert line(lines, "storage").startswith(f"FAIL storage: {blocker / 'up'} is not a writable")
    assert line(lines, "storage").endswith(
        "(fix: create UPLOAD_DIR and let the server's user write to it)"
    )


async def test_s3_bucket_is_reached_with_head_bucket(
    database: str, tmp_path: Path, s3: S3Server
) -> None:
    r2 = {
        "R2_ENDPOINT": s3.endpoint,
        "R2_ACCESS_KEY_ID": ACCESS_KEY,
        "R2_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    status, lines = await run_check(good_env(database, tmp_path, R2_BUCKET=s3.bucket, **r2))
    assert status == 0, lines
    assert line(lines, "storage") == (
        f"ok   storage: S3 at {s3.endpoint.removeprefix('http://')}: bucket {s3.bucket!r} reachable"
    )
    status, lines = await run_check(good_env(database, tmp_path, R2_BUCKET="no-such-bucket", **r2))
    assert status == 1
    assert line(lines, "storage").startswith("FAIL storage: bucket 'no-such-bucket' cannot be ")
    assert line(lines, "storage").endswith(
        "(fix: check R2_ENDPOINT, the R2 credentials and that R2_BUCKET exists)"
    )
    del r2["R2_SECRET_ACCESS_KEY"]
    _, lines = await run_check(good_env(database, tmp_path, **r2))
    assert line(lines, "storage") == (
        "FAIL storage: R2_SECRET_ACCESS_KEY unset while the other R2 settings are set: uploads "
        "would go to UPLOAD_DIR (fix: set all three R2 settings, or none)"
    )


async def test_a_malformed_setting_is_one_failed_line(database: str, tmp_path: Path) -> None:
    status, lines = await run_check(good_env(database, tmp_path, PORT="abc"))
    assert status == 1
    assert lines == [
        "FAIL settings: PORT must be an integer, got 'abc' (fix: correct the variable it names)"
    ]
    status, lines = await run_check(good_env(database, tmp_path, NODE_ENV="production"))
    assert status == 1
    assert line(lines, "settings").startswith(
        "FAIL settings: BETTER_AUTH_SECRET must be set explicitly"
    )
