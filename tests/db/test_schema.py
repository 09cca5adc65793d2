"""The migrated schema is the original's, as contract/schema.json and schema.md describe it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support import db as testdb
from tests.support.catalog import (
    COLUMN_ORDER,
    CONTRACT_DIR,
    SCHEMA_JSON,
    diff_catalogues,
    expected_catalogue,
    read_catalogue,
    read_column_order,
    read_constraints,
)


def _report(differences: list[str]) -> str:
    return "schema differs from contract/schema.json:\n  " + "\n  ".join(differences)


async def test_catalogue_equals_the_contract(database: str) -> None:
    differences = diff_catalogues(expected_catalogue(), await read_catalogue(database))
    assert not differences, _report(differences)


async def test_catalogue_counts(database: str) -> None:
    catalogue = await read_catalogue(database)
    assert len(catalogue["tables"]) == 23
    assert len(catalogue["enums"]) == 8
    assert sorted(catalogue["tables"]["conversation_reads"]["indexes"]) == [
        "CREATE UNIQUE INDEX conversation_reads_pkey ON conversation_reads USING btree (id)",
        "CREATE UNIQUE INDEX conversation_reads_user_conv_idx ON conversation_reads"
        " USING btree (user_id, conversation_id)",
        "CREATE UNIQUE INDEX conversation_reads_user_conversation_idx ON conversation_reads"
        " USING btree (user_id, conversation_id)",
    ]


def _expected_constraint_name(row: asyncpg.Record) -> str:
    table, columns = row["table_name"], row["columns"]
    if row["kind"] == "p":
        return f"{table}_pkey"
    if row["kind"] == "u":
        return f"{table}_{'_'.join(columns)}_unique"
    if row["kind"] == "f":
        return f"{table}_{columns[0]}_{row['ref_table']}_{row['ref_columns'][0]}_fk"
    raise AssertionError(f"unexpected constraint kind {row['kind']!r} on {table}")


async def test_constraint_names_follow_the_original(database: str) -> None:
    rows = await read_constraints(database)
    wrong = [
        f"{r['table_name']}: {r['name']} (expected {_expected_constraint_name(r)})"
        for r in rows
        if r["name"] != _expected_constraint_name(r)
    ]
    assert not wrong, "constraint names differ from the original's:\n  " + "\n  ".join(wrong)
    assert len(rows) == 23 + 6 + 30  # primary keys, unique constraints, foreign keys


def _documented_column_order() -> dict[str, list[str]]:
    """Physical column order per table, read from schema.md's tables and prose (§2-§4)."""
    order: dict[str, list[str]] = {}
    text = (CONTRACT_DIR / "schema.md").read_text()
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        heading, _, body = section.partition("\n")
        name = re.fullmatch(r"`(\w+)`", heading.strip())
        if name is None:
            continue
        rows = re.findall(r"^\| (\d+) \| (\w+) \|", body, flags=re.M)
        if rows:
            order[name.group(1)] = [column for _, column in rows]
            continue
        prose = " ".join(body.strip().split("\n\n")[0].split())
        columns: list[str] = []
        for segment in prose.split(";"):
            match = re.match(r"\s*((?:\w+, )*\w+) ", segment)
            assert match, f"cannot read schema.md segment {segment!r}"
            columns += match.group(1).split(", ")
        order[name.group(1)] = columns
    return order


async def test_physical_column_order_matches_schema_md(database: str) -> None:
    assert await read_column_order(database) == COLUMN_ORDER


needs_contract = pytest.mark.skipif(
    not (CONTRACT_DIR / "schema.md").exists(), reason="contract folder not available"
)


@needs_contract
def test_schema_json_copy_is_the_contract() -> None:
    assert SCHEMA_JSON.read_bytes() == (CONTRACT_DIR / "schema.json").read_bytes()


@needs_contract
def test_column_order_is_the_one_schema_md_gives() -> None:
    documented = _documented_column_order()
    assert len(documented) == 23
    assert documented == COLUMN_ORDER


@pytest.fixture
async def scratch_db(pg_template: str) -> AsyncIterator[str]:
    name = testdb.unique_name("arinova_schema_scratch")
    url = await testdb.create_database(name, template=pg_template)
    yield url
    await testdb.drop_database(name)


async def test_any_difference_is_reported(scratch_db: str) -> None:
    conn = await asyncpg.connect(scratch_db)
    try:
        await conn.execute(
            """
            ALTER TABLE agents ALTER COLUMN name TYPE varchar(101);
            ALTER TABLE messages ALTER COLUMN content DROP DEFAULT;
            ALTER TABLE attachments ALTER COLUMN file_size DROP NOT NULL;
            DROP INDEX conversation_reads_user_conversation_idx;
            ALTER TABLE conversations DROP CONSTRAINT conversations_agent_id_agents_id_fk;
            ALTER TABLE conversations ADD CONSTRAINT conversations_agent_id_agents_id_fk
                FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE SET NULL;
            ALTER TYPE message_role ADD VALUE 'system';
            CREATE TABLE extra (id int);
            """
        )
    finally:
        await conn.close()
    differences = diff_catalogues(expected_catalogue(), await read_catalogue(scratch_db))
    assert differences == [
        "enum message_role: expected ['user', 'agent'], got ['user', 'agent', 'system']",
        "agents.name.type: expected 'character varying(100)', got 'character varying(101)'",
        "attachments.file_size.nullable: expected False, got True",
        "conversation_reads indexes: missing   CREATE UNIQUE INDEX"
        " conversation_reads_user_conversation_idx ON conversation_reads"
        " USING btree (user_id, conversation_id)",
        "conversations constraints: missing   f: FOREIGN KEY (agent_id) REFERENCES agents(id)",
        "conversations constraints: unexpected f: FOREIGN KEY (agent_id) REFERENCES agents(id)"
        " ON DELETE SET NULL",
        "table extra: unexpected",
        "messages.content.default: expected \"''::text\", got ''",
    ]
