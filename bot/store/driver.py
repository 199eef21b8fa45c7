"""Thin access to the DB-API driver under an SQLAlchemy connection, for the hot paths.

Bulk import and search talk to aiosqlite / asyncpg directly (one round trip for a whole
batch, no per-row SQLAlchemy processing) inside transactions that SQLAlchemy manages.
SQL is written with ``?`` placeholders and numbered (``$1``...) for asyncpg.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store import native

_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


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
            return [tuple(r) for r in await self.driver.fetch(_numbered(sql), *params)]
        return list(await self.driver.execute_fetchall(sql, tuple(params)))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.dialect == "postgresql":
            await self.driver.execute(_numbered(sql), *params)
        else:
            cursor = await self.driver.execute(sql, tuple(params))
            await cursor.close()

    @property
    def runs_batches_natively(self) -> bool:
        """Whether :meth:`execute_rows` runs a batch without taking the GIL per row
        (SQLite, with ``bot._sqlitebatch`` built)."""
        return self.dialect == "sqlite" and native.AVAILABLE and hasattr(self.driver, "_execute")

    async def execute_rows(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``executemany``, but on SQLite (when :attr:`runs_batches_natively`) the whole
        batch runs in C with the GIL released, on aiosqlite's thread, in order with the
        connection's other statements."""
        if not rows:
            return
        if self.runs_batches_natively:
            # aiosqlite (0.17 and later) runs `_execute`'s function on its own thread.
            await self.driver._execute(native.execute_rows, self.driver._conn, sql, rows)
        else:
            await self.executemany(sql, rows)

    async def execute_batches(self, batches: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """:meth:`execute_rows` for each ``(sql, rows)`` of ``batches``, in order; natively
        in one job on aiosqlite's thread (one hand-over of the GIL for all of them)."""
        if self.runs_batches_natively:
            await self.driver._execute(native.execute_batches, self.driver._conn, batches)
            return
        for sql, rows in batches:
            await self.execute_rows(sql, rows)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            await self.driver.executemany(_numbered(sql), rows)
        else:
            cursor = await self.driver.executemany(sql, rows)
            await cursor.close()


__all__ = ["RawConnection"]
