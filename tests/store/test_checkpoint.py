"""WAL checkpoints beside the writer: a bulk import's commits leave the log to a thread
of its own, which copies it into the database file."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Database, PaperStore, native
from bot.store import papers as papers_module
from bot.store.checkpoint import WalCheckpointer
from bot.store.database import WAL_AUTOCHECKPOINT_PAGES
from bot.store.driver import RawConnection
from tests.conftest import migrated_database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file whose log is copied into it (the schema is in the file)."""
    async with migrated_database("sqlite", tmp_path) as db:
        with sqlite3.connect(_file(db)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield db


def _file(db: Database) -> Path:
    return Path(str(db.engine.url.database))


def _papers_in_the_file_alone(db: Database, scratch: Path) -> int:
    """How many papers the database file holds without its write-ahead log (a copy of the
    file alone: what is still only in the log is not there)."""
    copy = scratch / "alone.db"
    shutil.copyfile(_file(db), copy)
    with sqlite3.connect(copy) as connection:
        return connection.execute("SELECT count(*) FROM papers").fetchone()[0]


async def _autocheckpoint(raw: RawConnection) -> int:
    return (await raw.fetch("PRAGMA wal_autocheckpoint"))[0][0]


async def test_a_write_without_checkpoint_turns_them_off_for_its_transaction_only(sqlite_db):
    async with sqlite_db.write() as conn:
        assert await _autocheckpoint(await RawConnection.of(conn)) == WAL_AUTOCHECKPOINT_PAGES
    async with sqlite_db.write(checkpoint=False) as conn:
        raw = await RawConnection.of(conn)
        assert await _autocheckpoint(raw) == 0
        assert conn.in_transaction()
    assert await _autocheckpoint(raw) == WAL_AUTOCHECKPOINT_PAGES  # the same connection

    with pytest.raises(RuntimeError):
        async with sqlite_db.write(checkpoint=False) as conn:
            raw = await RawConnection.of(conn)
            raise RuntimeError("rolled back")
    assert await _autocheckpoint(raw) == WAL_AUTOCHECKPOINT_PAGES


async def test_the_checkpointer_copies_committed_pages_into_the_file(sqlite_db, tmp_path):
    async with sqlite_db.write() as conn:
        await conn.exec_driver_sql("CREATE TABLE scratch (data BLOB)")
    checkpointer = WalCheckpointer.for_database(sqlite_db)
    assert checkpointer is not None
    try:
        await checkpointer.drain()  # nothing requested yet: returns at once
        size = _file(sqlite_db).stat().st_size
        async with sqlite_db.write(checkpoint=False) as conn:
            for _ in range(20):  # ~20 pages of 64 KiB, well below the autocheckpoint
                await conn.exec_driver_sql("INSERT INTO scratch VALUES (randomblob(60000))")
        assert _file(sqlite_db).stat().st_size == size  # still in the log only
        checkpointer.request()
        await checkpointer.drain()
        assert _file(sqlite_db).stat().st_size >= size + 20 * 60000
        assert checkpointer.log_bytes == 0  # drained: the next writer starts the log over
    finally:
        await checkpointer.close()
    assert not checkpointer._thread.is_alive()


async def test_closing_copies_what_is_left(sqlite_db, seed_papers, tmp_path):
    checkpointer = WalCheckpointer.for_database(sqlite_db)
    assert checkpointer is not None
    await PaperStore(sqlite_db).upsert(seed_papers[:50])
    assert _papers_in_the_file_alone(sqlite_db, tmp_path) == 0
    await checkpointer.close()
    assert _papers_in_the_file_alone(sqlite_db, tmp_path) == 50


async def test_a_checkpointer_that_cannot_open_its_file_never_blocks(tmp_path, caplog):
    checkpointer = WalCheckpointer(str(tmp_path / "missing" / "paperboy.db"))
    with caplog.at_level(logging.WARNING, logger="bot.store.checkpoint"):
        checkpointer.request()
        await checkpointer.drain()
        await checkpointer.close()
    assert "WAL checkpoints of" in caplog.text and "stopped" in caplog.text


async def test_no_checkpointer_for_an_in_memory_database():
    db = await Database.connect("sqlite+aiosqlite:///:memory:")
    try:
        assert WalCheckpointer.for_database(db) is None
    finally:
        await db.close()


@pytest.mark.parametrize("limit", [0, 1 << 40], ids=["drain-every-commit", "never-drain"])
async def test_a_bulk_import_leaves_every_paper_in_the_file(
    sqlite_db, seed_papers, tmp_path, monkeypatch, limit
):
    """Its commits skip the checkpoint (the log stays small here: SQLite alone would not
    copy it before 1,000 pages), the checkpointer copies each one and the rest at the end,
    whether the import waits for it after each commit or never."""
    if not native.AVAILABLE:
        pytest.skip("bulk transactions need bot._sqlitebatch")
    monkeypatch.setattr(papers_module, "UPSERT_CHUNK", 40)
    monkeypatch.setattr(papers_module, "BULK_TRANSACTION", 120)
    monkeypatch.setattr(papers_module, "WAL_LIMIT_BYTES", limit)
    result = await PaperStore(sqlite_db).upsert(seed_papers[:400])
    assert result.inserted == 400
    assert _papers_in_the_file_alone(sqlite_db, tmp_path) == 400
