"""The migration runner on real PostgreSQL databases: fresh, adopted, partial, later files."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from arinova.db.migrate import (
    ORIGINAL_LAST_CREATED_AT,
    ORIGINAL_MIGRATIONS,
    MigrationError,
    baseline_sql,
    migrate,
    prepare_database,
)
from tests.support import db as testdb
from tests.support.catalog import read_catalogue

# Records every DDL command run in the database (event triggers need a superuser).
DDL_AUDIT = """
CREATE SCHEMA ddl_audit;
CREATE TABLE ddl_audit.log (id serial PRIMARY KEY, tag text NOT NULL);
CREATE FUNCTION ddl_audit.record() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ddl_audit.log (tag) VALUES (tg_tag);
END $$;
CREATE EVENT TRIGGER ddl_audit ON ddl_command_start EXECUTE FUNCTION ddl_audit.record();
"""

# What Drizzle's migrator runs before it reads its history, verbatim.
DRIZZLE_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS "drizzle";
CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (
    id SERIAL PRIMARY KEY,
    hash text NOT NULL,
    created_at bigint
);
"""


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    """DSN of a new database with nothing in it but the DDL audit."""
    name = testdb.unique_name("arinova_migrate")
    url = await testdb.create_database(name)
    await _execute(url, DDL_AUDIT)
    yield url
    await testdb.drop_database(name)


async def _execute(dsn: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def _fetch(dsn: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def _ddl_log(dsn: str) -> list[str]:
    return [str(tag) for (tag,) in await _fetch(dsn, "SELECT tag FROM ddl_audit.log ORDER BY id")]


async def _bookkeeping(dsn: str) -> list[tuple[object, ...]]:
    return await _fetch(
        dsn, 'SELECT id, hash, created_at FROM "drizzle"."__drizzle_migrations" ORDER BY id'
    )


ORIGINAL_ROWS = [(i + 1, m.hash, m.created_at) for i, m in enumerate(ORIGINAL_MIGRATIONS)]


async def _as_migrated_by_the_original(dsn: str, entries: int = 15) -> None:
    """The end-state schema plus the bookkeeping rows Drizzle's migrator writes."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(DRIZZLE_BOOKKEEPING)
        async with conn.transaction():
            await conn.execute(baseline_sql())
            for m in ORIGINAL_MIGRATIONS[:entries]:
                await conn.execute(
                    'insert into "drizzle"."__drizzle_migrations" ("hash", "created_at") '
                    "values($1, $2)",
                    m.hash,
                    m.created_at,
                )
        await conn.execute("TRUNCATE ddl_audit.log")
    finally:
        await conn.close()


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql, encoding="utf-8")


# --- fresh, current, adopted ------------------------------------------------------------


async def test_fresh_database_gets_baseline_and_the_original_history(empty_db: str) -> None:
    report = await migrate(empty_db)

    assert report.baseline == "applied"
    assert report.applied == ("baseline",)
    assert report.status == "applied"
    assert await _bookkeeping(empty_db) == ORIGINAL_ROWS
    ddl = await _ddl_log(empty_db)
    assert ddl[:2] == ["CREATE SCHEMA", "CREATE TABLE"]  # drizzle bookkeeping
    assert ddl.count("CREATE TABLE") == 1 + 23
    assert ddl.count("CREATE TYPE") == 8
    assert ddl.count("CREATE INDEX") == 7


async def test_second_run_changes_nothing_and_runs_no_ddl(empty_db: str) -> None:
    await migrate(empty_db)
    catalogue = await read_catalogue(empty_db)
    await _execute(empty_db, "TRUNCATE ddl_audit.log")

    report = await migrate(empty_db)

    assert report.baseline == "present"
    assert report.applied == ()
    assert report.status == "current"
    assert report.describe().endswith("already current")
    assert await _ddl_log(empty_db) == []
    assert await _bookkeeping(empty_db) == ORIGINAL_ROWS
    assert await read_catalogue(empty_db) == catalogue


async def test_database_migrated_by_the_original_is_adopted_without_ddl(empty_db: str) -> None:
    await _as_migrated_by_the_original(empty_db)
    catalogue = await read_catalogue(empty_db)

    report = await migrate(empty_db)

    assert (report.baseline, report.applied, report.ahead) == ("present", (), ())
    assert await _ddl_log(empty_db) == []
    assert await _bookkeeping(empty_db) == ORIGINAL_ROWS
    assert await read_catalogue(empty_db) == catalogue


# --- refusals -----------------------------------------------------------------------------


async def test_partial_original_history_is_refused_without_change(empty_db: str) -> None:
    await _as_migrated_by_the_original(empty_db, entries=12)
    before = await _bookkeeping(empty_db)

    with pytest.raises(MigrationError) as raised:
        await migrate(empty_db)

    message = str(raised.value)
    assert "only 12 of the original's 15 migrations" in message
    assert "0012_whole_darkstar, 0013_young_tempest, 0014_curly_squadron_supreme" in message
    assert "node dist/migrate.js" in message
    assert await _bookkeeping(empty_db) == before
    assert await _ddl_log(empty_db) == []


async def test_foreign_hash_for_an_original_entry_is_refused(empty_db: str) -> None:
    await _as_migrated_by_the_original(empty_db)
    await _execute(
        empty_db,
        'UPDATE "drizzle"."__drizzle_migrations" SET hash = $1 WHERE created_at = $2',
        "0" * 64,
        ORIGINAL_MIGRATIONS[3].created_at,
    )
    with pytest.raises(MigrationError, match="0003_ambiguous_venus"):
        await migrate(empty_db)
    assert await _ddl_log(empty_db) == []


async def test_history_of_another_application_is_refused(empty_db: str) -> None:
    await _execute(empty_db, DRIZZLE_BOOKKEEPING)
    await _execute(
        empty_db,
        'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at) VALUES ($1, $2)',
        "f" * 64,
        1700000000000,
    )
    await _execute(empty_db, "TRUNCATE ddl_audit.log")
    with pytest.raises(MigrationError, match="not a database of this application"):
        await migrate(empty_db)
    assert await _ddl_log(empty_db) == []


async def test_tables_without_history_are_refused_and_rolled_back(empty_db: str) -> None:
    await _execute(empty_db, 'CREATE TABLE "user" (id text)')
    with pytest.raises(MigrationError, match="no migration history but already has tables"):
        await migrate(empty_db)
    assert await _fetch(empty_db, "SELECT to_regclass('drizzle.__drizzle_migrations')") == [(None,)]
    assert await _fetch(empty_db, "SELECT to_regtype('message_role')") == [(None,)]


# --- our later migrations -----------------------------------------------------------------


async def test_later_migration_is_applied_once_and_recorded_after_the_original(
    empty_db: str, tmp_path: Path
) -> None:
    await migrate(empty_db)
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note text;\n")
    await _execute(empty_db, "TRUNCATE ddl_audit.log")

    report = await migrate(empty_db, tmp_path)

    assert (report.baseline, report.applied) == ("present", ("0015_agent_note",))
    assert await _ddl_log(empty_db) == ["ALTER TABLE"]
    rows = await _bookkeeping(empty_db)
    assert len(rows) == 16
    _, hash_, created_at = rows[-1]
    assert created_at == ORIGINAL_LAST_CREATED_AT + 15
    assert isinstance(created_at, int) and created_at > 1771605691621
    assert len(str(hash_)) == 64

    again = await migrate(empty_db, tmp_path)
    assert again.applied == ()
    assert await _ddl_log(empty_db) == ["ALTER TABLE"]
    assert len(await _bookkeeping(empty_db)) == 16

    _write(tmp_path, "0016_agent_note_index.sql", "CREATE INDEX agents_note_idx ON agents (note);")
    assert (await migrate(empty_db, tmp_path)).applied == ("0016_agent_note_index",)
    assert [c for (_, _, c) in await _bookkeeping(empty_db)][-2:] == [
        ORIGINAL_LAST_CREATED_AT + 15,
        ORIGINAL_LAST_CREATED_AT + 16,
    ]


async def test_fresh_database_gets_baseline_then_later_files(empty_db: str, tmp_path: Path) -> None:
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note text;")
    report = await migrate(empty_db, tmp_path)
    assert report.applied == ("baseline", "0015_agent_note")
    assert len(await _bookkeeping(empty_db)) == 16


async def test_adopted_database_gets_later_files(empty_db: str, tmp_path: Path) -> None:
    await _as_migrated_by_the_original(empty_db)
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note text;")
    report = await migrate(empty_db, tmp_path)
    assert (report.baseline, report.applied) == ("present", ("0015_agent_note",))
    assert await _ddl_log(empty_db) == ["ALTER TABLE"]


async def test_failing_migration_applies_nothing(empty_db: str, tmp_path: Path) -> None:
    await migrate(empty_db)
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note text;")
    _write(tmp_path, "0016_broken.sql", "ALTER TABLE no_such_table ADD COLUMN x int;")

    with pytest.raises(MigrationError) as raised:
        await migrate(empty_db, tmp_path)

    assert str(raised.value).startswith(
        "migration 0016_broken failed, nothing was applied: UndefinedTableError:"
    )
    assert len(await _bookkeeping(empty_db)) == 15
    columns = await _fetch(
        empty_db,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'agents' AND column_name = 'note'",
    )
    assert columns == []


async def test_edited_applied_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note text;")
    await migrate(empty_db, tmp_path)
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note varchar(10);")
    with pytest.raises(MigrationError, match="0015_agent_note was changed after it was applied"):
        await migrate(empty_db, tmp_path)


async def test_migration_older_than_the_newest_applied_is_refused(
    empty_db: str, tmp_path: Path
) -> None:
    _write(tmp_path, "0016_second.sql", "SELECT 1;")
    await migrate(empty_db, tmp_path)
    _write(tmp_path, "0015_first.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="0015_first are older than the newest applied"):
        await migrate(empty_db, tmp_path)


async def test_newer_history_from_a_later_release_is_tolerated(
    empty_db: str, tmp_path: Path
) -> None:
    await migrate(empty_db)
    await _execute(
        empty_db,
        'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at) VALUES ($1, $2)',
        "a" * 64,
        ORIGINAL_LAST_CREATED_AT + 40,
    )
    report = await migrate(empty_db, tmp_path)
    assert (report.applied, report.ahead) == ((), (ORIGINAL_LAST_CREATED_AT + 40,))


async def test_unknown_entry_between_known_ones_is_refused(empty_db: str, tmp_path: Path) -> None:
    await migrate(empty_db)
    await _execute(
        empty_db,
        'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at) VALUES ($1, $2)',
        "a" * 64,
        ORIGINAL_LAST_CREATED_AT + 15,
    )
    _write(tmp_path, "0016_second.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="does not know"):
        await migrate(empty_db, tmp_path)


@pytest.mark.parametrize(
    ("file_name", "message"),
    [
        ("15_short.sql", "is not named NNNN_name.sql"),
        ("0015-dash.sql", "is not named NNNN_name.sql"),
        ("0015_Upper.sql", "is not named NNNN_name.sql"),
        ("0014_clash.sql", "numbers 0000-0014 belong to the original's migrations"),
    ],
)
async def test_badly_named_files_are_refused_before_connecting(
    tmp_path: Path, file_name: str, message: str
) -> None:
    _write(tmp_path, file_name, "SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        await migrate("postgresql://nobody@127.0.0.1:1/none", tmp_path)


async def test_two_files_with_one_number_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "0015_a.sql", "SELECT 1;")
    _write(tmp_path, "0015_b.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="two migration files are numbered 0015"):
        await migrate("postgresql://nobody@127.0.0.1:1/none", tmp_path)


# --- concurrency and database creation ----------------------------------------------------


async def test_concurrent_migrations_apply_once(empty_db: str, tmp_path: Path) -> None:
    _write(tmp_path, "0015_agent_note.sql", "ALTER TABLE agents ADD COLUMN note text;")

    reports = await asyncio.gather(*(migrate(empty_db, tmp_path) for _ in range(4)))

    applied = [r.applied for r in reports]
    assert applied.count(("baseline", "0015_agent_note")) == 1
    assert applied.count(()) == 3
    assert len(await _bookkeeping(empty_db)) == 16
    assert (await _ddl_log(empty_db)).count("CREATE TYPE") == 8


def _dsn_for(name: str) -> str:
    return testdb.dsn(urllib.parse.quote(name, safe=""))


async def test_prepare_database_creates_a_missing_database() -> None:
    name = testdb.unique_name('arinova New "db"')
    dsn = _dsn_for(name)
    try:
        report = await prepare_database(dsn)
        assert (report.database, report.database_created) == (name, True)
        assert report.applied == ("baseline",)
        assert await _bookkeeping(dsn) == ORIGINAL_ROWS

        again = await prepare_database(dsn)
        assert (again.database_created, again.status) == (False, "current")
    finally:
        await testdb.drop_database(name.replace('"', '""'))


async def test_concurrent_prepare_database_creates_once() -> None:
    name = testdb.unique_name("arinova_race")
    dsn = _dsn_for(name)
    try:
        reports = await asyncio.gather(*(prepare_database(dsn) for _ in range(4)))
        assert [r.database_created for r in reports].count(True) == 1
        assert [r.applied for r in reports].count(("baseline",)) == 1
        assert await _bookkeeping(dsn) == ORIGINAL_ROWS
    finally:
        await testdb.drop_database(name)


async def test_prepare_database_on_an_existing_database_only_migrates(empty_db: str) -> None:
    report = await prepare_database(empty_db)
    assert (report.database_created, report.applied) == (False, ("baseline",))


async def test_prepare_database_with_the_name_in_the_query_string() -> None:
    name = testdb.unique_name("arinova_query")
    dsn = f"postgresql://{testdb.PG_USER}@{testdb.PG_HOST}:{testdb.PG_PORT}?dbname={name}"
    try:
        report = await prepare_database(dsn)
        assert (report.database, report.database_created) == (name, True)
    finally:
        await testdb.drop_database(name)
