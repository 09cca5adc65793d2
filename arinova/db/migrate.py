"""Placeholder: replaced by the migration runner."""

from __future__ import annotations


async def prepare_database(dsn: str) -> None:
    return None


async def migrate(dsn: str) -> None:
    return None
