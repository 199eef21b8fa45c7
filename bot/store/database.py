"""The database handle: one async engine, SQLite or PostgreSQL, and its migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.config import sqlite_directory
from bot.store.driver import RawConnection

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x70627F6D6967  # any fixed key other than the leader lock's

# Per-connection SQLite settings. WAL lets readers run while an import writes;
# busy_timeout makes a second writer (a CLI import next to the bot) wait instead of fail.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",  # 64 MiB page cache
)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message says which and why (never
    the password)."""


class Database:
    """An async SQLAlchemy engine plus what the store needs to know about it.

    Use :meth:`connect` to build one and :meth:`upgrade` to apply migrations. On SQLite,
    :meth:`write` opens a ``BEGIN IMMEDIATE`` transaction (the write lock is taken up
    front, so reading then writing in one transaction never fails half-way).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self._reader: AsyncConnection | None = None
        self._reader_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, url: str) -> Database:
        """Open ``url`` (``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``)."""
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        directory = sqlite_directory(url)  # None unless an SQLite file
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        elif parsed.get_backend_name() != "sqlite":
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        engine = create_async_engine(parsed, **kwargs)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        db = cls(engine)
        try:
            if directory is not None and parsed.database:
                # A file SQLite cannot open is found here, without aiosqlite: its worker
                # thread outlives a failed open and reports to the event loop later,
                # which a CLI that exits at once has already closed (a stray traceback).
                sqlite3.connect(parsed.database).close()
            async with engine.connect() as conn:  # fail early on a bad URL or server
                await conn.exec_driver_sql("SELECT 1")
        except (OSError, DBAPIError, sqlite3.Error) as exc:
            await engine.dispose()
            where = parsed.render_as_string(hide_password=True)
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise DatabaseUnavailable(f"Cannot connect to the database {where}: {reason}") from exc
        return db

    async def upgrade(self) -> None:
        """Apply every pending migration (alembic ``upgrade head``)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_alembic_upgrade)

    async def database_id(self) -> str:
        """This database's random id (migration 0009): what derived indexes were built from."""
        async with self.reader() as raw:
            rows = await raw.fetch("SELECT value FROM meta WHERE key = 'database_id'")
        return str(rows[0][0])

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self.engine.dispose()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[RawConnection]:
        """A driver-level connection for read-only queries, outside any transaction.

        SQLite: one long-lived autocommit connection (each statement reads the latest
        committed state; no pool checkout or BEGIN per read: that overhead is several
        times the cost of a small read). PostgreSQL: a pooled connection.
        """
        if self.dialect != "sqlite" or _in_memory(self.engine):
            async with self.engine.connect() as conn:
                yield await RawConnection.of(conn)
            return
        if self._reader is None:
            async with self._reader_lock:
                if self._reader is None:
                    self._reader = await self.engine.connect()
        yield await RawConnection.of(self._reader)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, a plain one elsewhere."""
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (one consistent snapshot)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn


def _in_memory(engine: AsyncEngine) -> bool:
    database = engine.url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver's own
        # implicit transactions would not cover DDL and cannot BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def _alembic_upgrade(sync_connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    if sync_connection.dialect.name == "postgresql":
        # Replicas (or init containers) starting together: one migrates, the others wait
        # for it and then find nothing left to do. Released at the end of the transaction.
        sync_connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


__all__ = ["MIGRATIONS_DIR", "Database"]
