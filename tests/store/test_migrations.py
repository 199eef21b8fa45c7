"""Migrations: from empty to head, twice, and a database of the releases before the
search index moved out of it (0009)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.models import Paper
from bot.query import parse
from bot.search import SearchEngine
from bot.store import Database, PaperStore
from bot.store.database import MIGRATIONS_DIR, DatabaseUnavailable
from tests.conftest import migrated_database


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


async def test_upgrade_creates_schema_and_a_database_id(database: Database) -> None:
    tables = await _tables(database)
    assert {"papers", "meta", "paper_deletions", "paper_vectors", "alembic_version"} <= tables
    assert not {"papers_fts", "papers_head_fts", "paper_day_floors"} & tables
    assert len(await database.database_id()) == 32


async def test_second_upgrade_is_a_no_op(database: Database, tmp_path) -> None:
    store = PaperStore(database)
    await store.upsert([Paper(id="2401.00001", title="Sparse mixture of experts")])
    identity = await database.database_id()
    await database.upgrade()
    await database.upgrade()
    assert await store.count() == 1
    assert await database.database_id() == identity
    async with database.read() as conn:
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).all()
    assert version == [(_head(),)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_papers_stored_before_0009_are_indexed_and_deletable(kind, tmp_path) -> None:
    """A database of an earlier release: its papers get revisions, the search index is
    built from them, and deleting one reaches the index through the new trigger."""
    if kind == "postgresql" and not os.environ.get("PAPERBOY_TEST_DATABASE_URL"):
        pytest.skip("PAPERBOY_TEST_DATABASE_URL not set")
    async with migrated_database(kind, tmp_path, upgrade=False) as db:
        await _migrate(db, "0008")
        async with db.write() as conn:
            for n, title in enumerate(("Sparse experts", "Dense experts"), start=1):
                await conn.exec_driver_sql(
                    "INSERT INTO papers (paper_id, title, abstract, authors, ai_keywords, "
                    "sources, first_seen_at, last_seen_at) VALUES "
                    f"('2401.0000{n}', '{title}', '', '[]', '[]', '[\"huggingface\"]', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
        await db.upgrade()
        store = PaperStore(db)
        engine = await SearchEngine(store, tmp_path / "search").open()
        try:
            found = await engine.search(parse("experts"))
            assert sorted(p.id for p in found.papers) == ["2401.00001", "2401.00002"]
            async with db.write() as conn:
                await conn.exec_driver_sql("DELETE FROM papers WHERE paper_id = '2401.00001'")
            await store.upsert([Paper(id="2401.00003", title="Routed experts")])
            found = await engine.search(parse("experts"))
            assert sorted(p.id for p in found.papers) == ["2401.00002", "2401.00003"]
        finally:
            await engine.close()


async def test_connect_creates_the_sqlite_directory(tmp_path) -> None:
    path = tmp_path / "deep" / "er" / "paperboy.db"
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        assert path.exists()
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        assert mode == "wal"
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
        engine = await SearchEngine(store, None).open()  # in memory too
        await store.upsert([Paper(id="2401.00001", title="Sparse mixture of experts")])
        found = (await engine.search(parse("experts"))).papers
        assert [p.id for p in found] == ["2401.00001"]
        assert await store.count() == 1
        await engine.close()
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
