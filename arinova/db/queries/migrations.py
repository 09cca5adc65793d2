"""Bookkeeping statements of the migration runner (arinova/db/migrate.py).

The table is the original's Drizzle table, created exactly as Drizzle creates it.
"""

from __future__ import annotations

from arinova.db.queries import Query

LOCK = Query("migrations.lock", "SELECT pg_advisory_xact_lock($1::bigint)")

SESSION_SETUP = Query(
    "migrations.session_setup",
    "SELECT set_config('search_path', 'public', true), set_config('lock_timeout', $1, true)",
)

BOOKKEEPING_EXISTS = Query(
    "migrations.bookkeeping_exists",
    "SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL",
)

CREATE_BOOKKEEPING_SCHEMA = Query(
    "migrations.create_bookkeeping_schema", 'CREATE SCHEMA IF NOT EXISTS "drizzle"'
)

CREATE_BOOKKEEPING_TABLE = Query(
    "migrations.create_bookkeeping_table",
    'CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" '
    "(id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)",
)

RECORDED = Query(
    "migrations.recorded",
    'SELECT id, hash, created_at FROM "drizzle"."__drizzle_migrations" ORDER BY id',
)

RECORD = Query(
    "migrations.record",
    'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at) VALUES ($1, $2)',
)

CURRENT_DATABASE = Query("migrations.current_database", "SELECT current_database()")
