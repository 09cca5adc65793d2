"""The normalised schema catalogue of a database, in the shape of contract/schema.json.

``{"enums": {name: [labels in order]},
   "tables": {name: {"columns": {name: {"type", "nullable", "default"}},
                     "constraints": ["<contype>: <definition>", ...],
                     "indexes": ["<CREATE INDEX ...>", ...]}}}``

Constraint and index lists are sorted, so comparing two catalogues ignores creation order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import asyncpg

#: the contract folder, when present (tests then check the copies below against it)
CONTRACT_DIR = Path(os.environ.get("ARINOVA_CONTRACT_DIR", "/work/shared/contract"))
#: verbatim copy of contract/schema.json, so the suite runs without the contract folder
SCHEMA_JSON = Path(__file__).with_name("schema.json")

#: physical column order per table, as contract/schema.md gives it (§2-§4)
COLUMN_ORDER: dict[str, list[str]] = {
    "user": ["id", "name", "email", "email_verified", "image", "created_at", "updated_at"],
    "session": [
        "id", "user_id", "token", "expires_at", "ip_address", "user_agent",
        "created_at", "updated_at",
    ],
    "account": [
        "id", "user_id", "account_id", "provider_id", "access_token", "refresh_token",
        "access_token_expires_at", "refresh_token_expires_at", "scope", "id_token",
        "password", "created_at", "updated_at",
    ],
    "verification": ["id", "identifier", "value", "expires_at", "created_at", "updated_at"],
    "agents": [
        "id", "name", "description", "avatar_url", "a2a_endpoint", "owner_id", "created_at",
        "updated_at", "is_public", "category", "usage_count", "system_prompt",
        "welcome_message", "quick_replies", "notifications_enabled", "secret_token",
    ],
    "conversations": [
        "id", "title", "user_id", "agent_id", "pinned_at", "created_at", "updated_at", "type",
    ],
    "conversation_members": ["id", "conversation_id", "agent_id", "added_at"],
    "messages": [
        "id", "conversation_id", "role", "content", "status", "created_at", "updated_at", "seq",
    ],
    "conversation_reads": [
        "id", "user_id", "conversation_id", "last_read_seq", "updated_at", "muted",
    ],
    "attachments": [
        "id", "message_id", "file_name", "file_type", "file_size", "storage_path", "created_at",
    ],
    "message_reactions": ["id", "message_id", "user_id", "emoji", "created_at"],
    "push_subscriptions": [
        "id", "user_id", "endpoint", "p256dh", "auth", "device_info", "created_at",
    ],
    "notification_preferences": [
        "id", "user_id", "global_enabled", "message_enabled", "playground_invite_enabled",
        "playground_turn_enabled", "playground_result_enabled", "quiet_hours_start",
        "quiet_hours_end",
    ],
    "communities": [
        "id", "name", "description", "avatar_url", "owner_id", "is_public", "created_at",
        "updated_at",
    ],
    "channels": [
        "id", "community_id", "name", "description", "agent_id", "position", "created_at",
        "updated_at",
    ],
    "community_members": ["id", "community_id", "user_id", "role", "joined_at"],
    "channel_messages": [
        "id", "channel_id", "user_id", "role", "content", "status", "created_at", "updated_at",
    ],
    "developer_accounts": [
        "id", "user_id", "display_name", "contact_email", "payout_info", "terms_accepted_at",
        "created_at",
    ],
    "apps": [
        "id", "developer_id", "app_id", "name", "description", "category", "icon", "status",
        "current_version_id", "created_at", "updated_at",
    ],
    "app_versions": [
        "id", "app_id", "version", "manifest_json", "package_path", "status", "review_notes",
        "created_at",
    ],
    "coin_balances": ["user_id", "balance", "updated_at"],
    "coin_transactions": [
        "id", "user_id", "type", "amount", "related_app_id", "related_product_id",
        "receipt_id", "description", "created_at",
    ],
    "app_purchases": [
        "id", "user_id", "app_version_id", "product_id", "amount", "status", "created_at",
    ],
}  # fmt: skip

_ENUMS = """
SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = 'public'
GROUP BY t.typname
"""

_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS "default"
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT c.relname AS table_name, k.conname AS name, k.contype::text AS kind,
       pg_get_constraintdef(k.oid) AS definition,
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(num, ord)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
             ORDER BY u.ord)::text[] AS columns,
       coalesce(r.relname, '') AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u(num, ord)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num
             ORDER BY u.ord)::text[] AS ref_columns
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class r ON r.oid = k.confrelid
WHERE n.nspname = 'public'
"""

_INDEXES = """
SELECT c.relname AS table_name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
"""


def expected_catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_JSON.read_text())
    for table in data["tables"].values():
        table["constraints"] = sorted(table["constraints"])
        table["indexes"] = sorted(table["indexes"])
    return data


async def _connect(dsn: str) -> asyncpg.Connection:
    # Definitions render unqualified names exactly when public is on the search path.
    return await asyncpg.connect(dsn, server_settings={"search_path": "public"})


async def read_catalogue(dsn: str) -> dict[str, Any]:
    conn = await _connect(dsn)
    try:
        enums = {r["name"]: list(r["labels"]) for r in await conn.fetch(_ENUMS)}
        tables: dict[str, dict[str, Any]] = {}
        for r in await conn.fetch(_COLUMNS):
            table = tables.setdefault(
                r["table_name"], {"columns": {}, "constraints": [], "indexes": []}
            )
            table["columns"][r["name"]] = {
                "default": r["default"],
                "nullable": r["nullable"],
                "type": r["type"],
            }
        for r in await conn.fetch(_CONSTRAINTS):
            tables[r["table_name"]]["constraints"].append(f"{r['kind']}: {r['definition']}")
        for r in await conn.fetch(_INDEXES):
            # pg_get_indexdef always qualifies the table; schema.json does not
            definition = r["definition"].replace(" ON public.", " ON ", 1)
            tables[r["table_name"]]["indexes"].append(definition)
    finally:
        await conn.close()
    for table in tables.values():
        table["constraints"].sort()
        table["indexes"].sort()
    return {"enums": dict(sorted(enums.items())), "tables": dict(sorted(tables.items()))}


async def read_constraints(dsn: str) -> list[asyncpg.Record]:
    """Every constraint of schema public, with its name, columns and referenced table."""
    conn = await _connect(dsn)
    try:
        return list(await conn.fetch(_CONSTRAINTS + " ORDER BY c.relname, k.conname"))
    finally:
        await conn.close()


async def read_column_order(dsn: str) -> dict[str, list[str]]:
    conn = await _connect(dsn)
    try:
        order: dict[str, list[str]] = {}
        for r in await conn.fetch(_COLUMNS):
            order.setdefault(r["table_name"], []).append(r["name"])
        return order
    finally:
        await conn.close()


def _diff_list(path: str, expected: list[str], actual: list[str]) -> list[str]:
    lines: list[str] = []
    remaining = list(actual)
    for item in expected:
        if item in remaining:
            remaining.remove(item)
        else:
            lines.append(f"{path}: missing   {item}")
    lines.extend(f"{path}: unexpected {item}" for item in remaining)
    return lines


def diff_catalogues(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """One readable line per difference; empty when the catalogues are equal."""
    lines: list[str] = []
    for name in sorted(expected["enums"].keys() | actual["enums"].keys()):
        want, got = expected["enums"].get(name), actual["enums"].get(name)
        if want != got:
            lines.append(f"enum {name}: expected {want}, got {got}")
    for tname in sorted(expected["tables"].keys() | actual["tables"].keys()):
        want_t, got_t = expected["tables"].get(tname), actual["tables"].get(tname)
        if want_t is None or got_t is None:
            lines.append(f"table {tname}: {'unexpected' if want_t is None else 'missing'}")
            continue
        for col in sorted(want_t["columns"].keys() | got_t["columns"].keys()):
            want_c, got_c = want_t["columns"].get(col), got_t["columns"].get(col)
            if want_c is None or got_c is None:
                state = "unexpected" if want_c is None else "missing"
                lines.append(f"{tname}.{col}: {state} column")
                continue
            for attr in sorted(want_c.keys() | got_c.keys()):
                if want_c.get(attr) != got_c.get(attr):
                    lines.append(
                        f"{tname}.{col}.{attr}: expected {want_c.get(attr)!r}, "
                        f"got {got_c.get(attr)!r}"
                    )
        for key in ("constraints", "indexes"):
            lines += _diff_list(f"{tname} {key}", want_t[key], got_t[key])
        for key in sorted(want_t.keys() ^ got_t.keys()):
            lines.append(f"table {tname}: key {key!r} present on one side only")
    for key in sorted(expected.keys() ^ actual.keys()):
        lines.append(f"catalogue key {key!r} present on one side only")
    return lines
