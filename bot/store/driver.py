"""Thin access to the DB-API driver under an SQLAlchemy connection, for the hot paths.

Imports and the change feed talk to aiosqlite / asyncpg directly (one round trip for a
whole batch, no per-row SQLAlchemy processing) inside transactions that SQLAlchemy
manages. SQL is written with ``?`` placeholders, numbered (``$1``...) for asyncpg; a
``?`` inside a quoted string or identifier is left alone, and every other ``?`` is a
placeholder (so PostgreSQL's jsonb ``?`` operators are not written here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import count
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

# Quoted strings and identifiers (with their doubled quotes) match whole, so only the
# placeholders outside them are numbered.
_QUOTED_OR_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


@lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders numbered ``$1``, ``$2``... (asyncpg)."""
    numbers = count(1)
    return _QUOTED_OR_PLACEHOLDER.sub(
        lambda m: f"${next(numbers)}" if m.group() == "?" else m.group(), sql
    )


class RawConnection:
    """The driver connection of an open SQLAlchemy connection (same transaction)."""

    def __init__(self, driver: Any, dialect: str) -> None:
        self.driver = driver
        self.dialect = dialect

    @classmethod
    async def of(cls, conn: AsyncConnection) -> RawConnection:
        raw = await conn.get_raw_connection()
        driver, dialect = raw.driver_connection, conn.dialect.name
        assert driver is not None  # a live connection (SQLAlchemy types it Optional)
        if dialect == "postgresql" and conn.in_transaction() and not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends BEGIN with its own first statement. Ours
            # bypass it: without this they would each commit on their own, outside the
            # transaction (and its locks) the caller opened.
            await conn.exec_driver_sql("SELECT 1")
        return cls(driver, dialect)

    def among(self, values: Sequence[Any], sql_type: str = "int") -> tuple[str, Any]:
        """Membership in ``values``, however many, as one bound parameter: the SQL to
        write after a column (`` = ANY(?::int[])`` on PostgreSQL, `` IN (SELECT value FROM
        json_each(?))`` on SQLite) and the parameter to bind for it."""
        if self.dialect == "postgresql":
            return f" = ANY(?::{sql_type}[])", list(values)
        return " IN (SELECT value FROM json_each(?))", orjson.dumps(list(values)).decode()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgresql":
            return [tuple(r) for r in await self.driver.fetch(numbered(sql), *params)]
        return list(await self.driver.execute_fetchall(sql, tuple(params)))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.dialect == "postgresql":
            await self.driver.execute(numbered(sql), *params)
        else:
            cursor = await self.driver.execute(sql, tuple(params))
            await cursor.close()

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            await self.driver.executemany(numbered(sql), rows)
        else:
            cursor = await self.driver.executemany(sql, rows)
            await cursor.close()


__all__ = ["RawConnection", "numbered"]
