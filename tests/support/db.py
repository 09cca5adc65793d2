"""Fresh PostgreSQL databases for tests: one migrated template per run, cloned per module."""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_HOST = os.environ.get("ARINOVA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ARINOVA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("ARINOVA_TEST_PG_USER", "root")


def dsn(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


ADMIN_DSN = dsn("postgres")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


async def create_database(name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        tmpl = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
    finally:
        await conn.close()
    return dsn(name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_template() -> str:
    """Create and migrate the run's template database; returns its name."""
    from arinova.db.migrate import migrate

    name = unique_name("arinova_tmpl")
    url = await create_database(name)
    await migrate(url)
    return name
