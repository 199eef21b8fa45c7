"""Migrations: from empty to head, twice, and the analyzer-version bookkeeping."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.models import Paper
from bot.query import parse
from bot.store import Database, PaperStore
from bot.store.database import MIGRATIONS_DIR, SQLITE_PAGE_SIZE, DatabaseUnavailable
from bot.store.fulltext import stored_analyzer_version
from bot.store.writer import FTS_TABLES
from bot.terms import ANALYZER_VERSION


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


async def _migrate(database: Database, target: str, *, down: bool = False) -> None:
    """Run alembic to ``target`` (up, or ``down``) on ``database``."""
    from alembic import command
    from alembic.config import Config

    def run(sync_connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = sync_connection
        (command.downgrade if down else command.upgrade)(config, target)

    async with database.engine.begin() as conn:
        await conn.run_sync(run)


async def _tables(db: Database) -> set[str]:
    async with db.read() as conn:
        if db.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        return {row[0] for row in (await conn.exec_driver_sql(sql)).all()}


async def test_upgrade_creates_schema_and_records_analyzer(database: Database) -> None:
    tables = await _tables(database)
    assert {"papers", "meta", "alembic_version"} <= tables
    if database.dialect == "sqlite":
        assert "papers_fts" in tables
    assert await stored_analyzer_version(database) == ANALYZER_VERSION


async def test_second_upgrade_is_a_no_op(database: Database) -> None:
    store = PaperStore(database)
    await store.upsert([Paper(id="2401.00001", title="Sparse mixture of experts")])
    await database.upgrade()
    await database.upgrade()
    assert await store.count() == 1
    async with database.read() as conn:
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).all()
    assert version == [(_head(),)]
    assert [p.id for p in (await store.search(parse("experts"))).papers] == ["2401.00001"]


async def test_stale_analyzer_version_rebuilds_the_index(database: Database) -> None:
    store = PaperStore(database)
    await store.upsert(
        [
            Paper(id="2401.00001", title="Sparse mixture of experts"),
            Paper(id="2401.00002", title="Dense retrieval", abstract="experts agree"),
        ]
    )
    async with database.write() as conn:
        await conn.exec_driver_sql("UPDATE meta SET value = '0' WHERE key = 'analyzer_version'")
        if database.dialect == "sqlite":
            for table in FTS_TABLES:
                await conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
        else:
            await conn.exec_driver_sql("UPDATE papers SET search = NULL, search_head = NULL")
    assert (await store.search(parse("experts"))).papers == []
    await database.upgrade()
    assert await stored_analyzer_version(database) == ANALYZER_VERSION
    found = (await store.search(parse("experts"))).papers
    assert [p.id for p in found] == ["2401.00001", "2401.00002"]


async def test_connect_creates_the_sqlite_directory(tmp_path) -> None:
    path = tmp_path / "deep" / "er" / "paperboy.db"
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        assert path.exists()
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            page_size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
        assert (mode, page_size) == ("wal", SQLITE_PAGE_SIZE)
        assert SQLITE_PAGE_SIZE != 4096  # SQLite's default: the pragma must take effect
    finally:
        await db.close()


async def test_an_existing_sqlite_file_keeps_its_page_size_and_papers(tmp_path) -> None:
    path = tmp_path / "paperboy.db"
    first = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await first.upgrade()
        await PaperStore(first).upsert([Paper(id="2401.00001", title="Sparse experts")])
    finally:
        await first.close()
    # An older release's file: 4 KiB pages (converted through a rollback journal,
    # because a WAL database cannot change its page size).
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=4096")
        conn.execute("VACUUM")
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        store = PaperStore(db)
        await store.upsert([Paper(id="2401.00002", title="Dense experts")])
        found = (await store.search(parse("experts"))).papers
        async with db.read() as conn:
            page_size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
        assert sorted(p.id for p in found) == ["2401.00001", "2401.00002"]
        assert page_size == 4096
    finally:
        await db.close()


async def test_a_sqlite_file_that_cannot_be_opened_never_reaches_aiosqlite(
    tmp_path, monkeypatch
) -> None:
    # aiosqlite's worker thread outlives a failed open and later reports to the event
    # loop; a CLI that exits at once has closed it by then and printed a traceback.
    import aiosqlite

    opened: list[object] = []
    real_connect = aiosqlite.connect
    monkeypatch.setattr(
        aiosqlite, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k)
    )
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        await Database.connect(f"sqlite+aiosqlite:///{tmp_path}")  # a directory
    assert opened == []
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'paperboy.db'}")
    await db.close()
    assert len(opened) == 1  # the stand-in is the one SQLAlchemy calls


async def test_in_memory_sqlite_works_end_to_end() -> None:
    db = await Database.connect("sqlite+aiosqlite:///:memory:")
    try:
        await db.upgrade()
        store = PaperStore(db)
        await store.upsert([Paper(id="2401.00001", title="Sparse mixture of experts")])
        assert [p.id for p in (await store.search(parse("experts"))).papers] == ["2401.00001"]
        assert await store.count() == 1
    finally:
        await db.close()


async def test_concurrent_upgrades_on_a_fresh_database_do_not_collide(tmp_path) -> None:
    """Replicas starting together: the migration lock makes the second wait, not fail."""
    import asyncio
    import os

    import pytest

    from bot.store import Database
    from tests.conftest import create_postgres_database, drop_postgres_database

    base = os.environ.get("PAPERBOY_TEST_DATABASE_URL")
    if not base:
        pytest.skip("PAPERBOY_TEST_DATABASE_URL not set")
    admin, name, url = await create_postgres_database(base)
    dbs: list[Database] = []
    try:  # from here on the database is dropped (and the engine disposed) whatever happens
        for _ in range(3):
            dbs.append(await Database.connect(url))
        await asyncio.wait_for(asyncio.gather(*(db.upgrade() for db in dbs)), timeout=60)
        async with dbs[0].read() as conn:
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ).scalar()
        assert version == _head()
    finally:
        try:
            for db in dbs:
                await db.close()
        finally:
            await drop_postgres_database(admin, name)


async def test_vote_tier_migration_rebuilds_the_sqlite_index(database: Database) -> None:
    """0004 recreates the FTS5 tables (a `votes` column); the next start re-indexes."""
    store = PaperStore(database)
    await store.upsert(
        [
            Paper(id="2401.00001", title="Sparse mixture of experts", upvotes=12),
            Paper(id="2401.00002", title="Dense experts", upvotes=3),
        ]
    )

    await _migrate(database, "0003", down=True)
    await _migrate(database, "head")
    if database.dialect == "sqlite":  # the old index is gone until the next start
        assert (await store.search(parse("experts"))).papers == []
    await database.upgrade()
    found = await store.search(parse("experts"), min_upvotes=10)
    assert [p.id for p in found.papers] == ["2401.00001"]
    found = await store.search(parse("experts"))
    assert {p.id for p in found.papers} == {"2401.00001", "2401.00002"}


async def test_day_floor_migrations_backfill_from_the_papers(database: Database) -> None:
    """0005 (SQLite) and 0006 (PostgreSQL) fill `paper_day_floors` from the stored papers:
    down to before both, then up again, and `since` searches use the rebuilt floors."""
    from datetime import UTC, datetime

    store = PaperStore(database)
    day = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    await store.upsert(
        [
            Paper(id="2411.00001", title="Old sparse experts", submitted_at=day.replace(day=1)),
            Paper(id="2411.00002", title="New sparse experts", submitted_at=day),
            Paper(id="2411.00003", title="Newer sparse experts", submitted_at=day),
        ]
    )

    await _migrate(database, "0004", down=True)
    assert "paper_day_floors" not in await _tables(database)
    await _migrate(database, "head")
    async with database.read() as conn:
        floors = dict((await conn.exec_driver_sql("SELECT * FROM paper_day_floors")).all())
        rows = dict((await conn.exec_driver_sql("SELECT paper_id, id FROM papers")).all())
    assert floors == {  # UTC days, each with its smallest row id
        "2026-11-01": rows["2411.00001"],
        "2026-11-20": min(rows["2411.00002"], rows["2411.00003"]),
    }
    found = await store.search(parse("sparse experts"), since=day.replace(hour=0))
    assert {p.id for p in found.papers} == {"2411.00002", "2411.00003"}


def test_the_alembic_command_line_migrates_with_paperboy_s_own_drivers(tmp_path) -> None:
    # For writing migrations: the CLI connects through aiosqlite/asyncpg, the drivers
    # paperboy installs (it asked for psycopg before, which nothing installs).
    path = tmp_path / "cli.db"
    alembic = Path(sys.executable).parent / "alembic"
    env = {**os.environ, "PAPERBOY_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    ini = str(MIGRATIONS_DIR / "alembic.ini")
    result = subprocess.run(
        [str(alembic), "-c", ini, "upgrade", "head"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    heads = subprocess.run(
        [str(alembic), "-c", ini, "heads"], env=env, capture_output=True, text=True
    ).stdout.split()[0]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(heads,)]
        assert conn.execute("SELECT count(*) FROM papers").fetchone() == (0,)
