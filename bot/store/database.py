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
READER_CACHE_KIB = -262144  # negative: KiB, i.e. up to 256 MiB for the search connection
SQLITE_PAGE_SIZE = 65536  # bytes, for new database files (SQLite's largest)
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, kept by every connection but a bulk writer

# Per-connection SQLite settings. WAL lets searches run while an import writes;
# busy_timeout makes a second writer (a CLI import next to the bot) wait instead of fail.
_SQLITE_PRAGMAS = (
    # Only a new, empty file takes it (before WAL is set); an existing file keeps its
    # page size. 64 KiB pages instead of the default 4 KiB: a paper row (~2 KB) and
    # FTS5's 4 KB segment blocks fill far fewer B-tree pages, which cut the import's CPU
    # by ~15% (bench/README.md, "Page size").
    f"PRAGMA page_size={SQLITE_PAGE_SIZE}",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",  # 64 MiB page cache
    "PRAGMA mmap_size=1073741824",
    # Some builds (Debian's among them) compile SQLite with SECURE_DELETE, which zeroes
    # every freed byte: 4% of an import's SQLite work (FTS5 rewrites and frees segment
    # pages). Deleted papers are public metadata, nothing to scrub.
    "PRAGMA secure_delete=OFF",
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
            # asyncpg prepares every statement, and after five runs PostgreSQL may switch
            # a statement to a generic plan made without its parameters. For a search
            # the plan depends on the query's words (a rare title AND wants the GIN
            # index, a common word the primary key walked newest first): a generic plan
            # walked the whole table for rare ones (167 ms instead of 6 ms).
            kwargs["connect_args"] = {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
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
        """Apply every pending migration (alembic ``upgrade head``), then make sure the
        full-text index was built by the current analyzer (rebuilding it if not)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_alembic_upgrade)
        from bot.store.fulltext import ensure_analyzer_version

        await ensure_analyzer_version(self)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self.engine.dispose()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[RawConnection]:
        """A driver-level connection for read-only queries, outside any transaction.

        SQLite: one long-lived autocommit connection (each statement reads the latest
        committed state; no pool checkout or BEGIN per search: that overhead is several
        times the cost of a search). PostgreSQL: a pooled connection.
        """
        if self.dialect != "sqlite" or _in_memory(self.engine):
            async with self.engine.connect() as conn:
                yield await RawConnection.of(conn)
            return
        if self._reader is None:
            async with self._reader_lock:
                if self._reader is None:
                    reader = await self.engine.connect()
                    # Searches revisit the same doclist tails and head index pages: a
                    # bigger private cache keeps them hot (the OS may reclaim its own).
                    await (await RawConnection.of(reader)).execute(
                        f"PRAGMA cache_size={READER_CACHE_KIB}"
                    )
                    self._reader = reader
        yield await RawConnection.of(self._reader)

    @asynccontextmanager
    async def write(self, *, checkpoint: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, a plain one elsewhere.

        ``checkpoint=False`` (SQLite): its ``COMMIT`` leaves the write-ahead log as it is
        instead of copying it into the database file when it is large; for a caller that
        has the checkpoints run elsewhere (:class:`bot.store.checkpoint.WalCheckpointer`).
        """
        async with self.engine.connect() as conn:
            if self.dialect != "sqlite":
                async with conn.begin():
                    yield conn
                return
            conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            if checkpoint:
                async with conn.begin():
                    yield conn
                return
            # Set on the driver connection: a statement through SQLAlchemy would begin
            # the transaction (a deferred one) before conn.begin() could.
            raw = await RawConnection.of(conn)
            await raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                async with conn.begin():
                    yield conn
            finally:  # before the connection goes back to the pool
                await raw.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")

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
