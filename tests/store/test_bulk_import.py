"""Bulk imports: segment merging deferred to the end, and put back after a crash."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest

from bot.query import parse
from bot.store import Database, PaperStore, UpsertResult, native, writer
from bot.store import papers as papers_module
from bot.store.writer import set_merging
from tests.conftest import migrated_database


async def _merging(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT k, v FROM papers_fts_config WHERE k IN ('automerge', 'crisismerge')"
            )
        ).all()
    return {k: int(v) for k, v in rows}


async def _segments(db: Database, table: str = "papers_fts") -> int:
    """Segments in the FTS5 index. Rows of %_data hold (segment id << 37) + page; ids
    below 1 << 37 are the structure and averages records."""
    async with db.read() as conn:
        return (
            await conn.exec_driver_sql(
                f"SELECT count(DISTINCT id >> 37) FROM {table}_data WHERE id >= 1 << 37"
            )
        ).scalar_one()


async def _integrity(db: Database) -> None:
    async with db.write() as conn:
        for table in ("papers_fts", "papers_head_fts"):
            await conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")


async def _found_by_title(store: PaperStore, *papers) -> None:
    for paper in papers:
        found = await store.search(parse(f'"{paper.title}"'), limit=5)
        assert paper.id in [p.id for p in found.papers], paper.title


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(papers_module, "UPSERT_CHUNK", 40)
    return 40


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Database]:
    """FTS5 segment merging is SQLite's: these tests have no PostgreSQL variant."""
    async with migrated_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(params=["native", "json"])
def batches(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a batch reaches FTS5: rows through bot._sqlitebatch, or one JSON array
    per statement (the fallback when the C module is not built)."""
    if request.param == "native" and not native.AVAILABLE:
        pytest.skip("bot._sqlitebatch is not built")
    if request.param == "json":
        monkeypatch.setattr(native, "AVAILABLE", False)
    return request.param


async def _upsert_counting(store: PaperStore, papers) -> tuple[object, int, bool]:
    """Upsert ``papers``; returns the result, how many write transactions wrote its
    batches, and whether the index was optimized at the end."""
    connections: list[object] = []  # kept alive, so that their ids stay distinct
    optimized: list[bool] = []
    real_chunk, real_optimize = papers_module.upsert_chunk, writer.optimize_index

    async def chunk(conn, *args, **kwargs):
        connections.append(conn)
        return await real_chunk(conn, *args, **kwargs)

    async def optimize(db: Database) -> None:
        optimized.append(True)
        await real_optimize(db)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(papers_module, "upsert_chunk", chunk)
        patch.setattr(writer, "optimize_index", optimize)
        result = await store.upsert(papers)
    return result, len({id(c) for c in connections}), bool(optimized)


async def test_a_large_upsert_defers_merging_and_leaves_one_segment(
    sqlite_db: Database, seed_papers, batches, monkeypatch
):
    monkeypatch.setattr(papers_module, "UPSERT_CHUNK", 25)  # 16 batches
    store = PaperStore(sqlite_db)
    result, transactions, optimized = await _upsert_counting(store, seed_papers[:400])
    assert result.inserted == 400
    if batches == "native":
        # One bulk transaction for all the batches: one segment, nothing to merge.
        assert (transactions, optimized) == (1, False)
    else:
        # A transaction per batch, each at least a segment: merged at the end.
        assert (transactions, optimized) == (16, True)
    assert await _merging(store.db) == {"automerge": 4, "crisismerge": 16}
    assert await _segments(store.db) == 1
    assert await _segments(store.db, "papers_head_fts") == 1
    await _integrity(store.db)
    found = await store.search(parse(f'"{seed_papers[123].title}"'), limit=5)
    assert seed_papers[123].id in [p.id for p in found.papers]


async def test_bulk_transactions_are_merged_into_one_segment_at_the_end(
    sqlite_db: Database, seed_papers, small_chunks, monkeypatch
):
    if not native.AVAILABLE:
        pytest.skip("bot._sqlitebatch is not built")
    monkeypatch.setattr(papers_module, "BULK_TRANSACTION", 120)  # 3 batches of 40
    store = PaperStore(sqlite_db)
    counted = await _upsert_counting(store, seed_papers[:400])
    assert counted == (UpsertResult(inserted=400), 4, True)  # 120 + 120 + 120 + 40
    assert await _segments(store.db) == 1
    assert await _segments(store.db, "papers_head_fts") == 1
    await _integrity(store.db)
    await _found_by_title(store, seed_papers[0], seed_papers[200], seed_papers[399])


async def test_a_paper_refused_inside_a_bulk_transaction_loses_only_itself(
    sqlite_db: Database, seed_papers, small_chunks, batches, monkeypatch, caplog
):
    monkeypatch.setattr(papers_module, "BULK_TRANSACTION", 120)
    refused = seed_papers[250].id
    real_encode = writer.encode

    def refusing_encode(paper, **kwargs):
        if paper.id == refused:
            raise ValueError("refused by the database")
        return real_encode(paper, **kwargs)

    monkeypatch.setattr(writer, "encode", refusing_encode)
    store = PaperStore(sqlite_db)
    result = await store.upsert(seed_papers[:400])
    assert (result.inserted, result.skipped) == (399, 1)
    assert await store.count() == 399
    assert await store.get(refused) is None
    assert refused in caplog.text
    monkeypatch.undo()
    await _integrity(store.db)
    again = await store.upsert(seed_papers[:400])  # everything else is stored, once
    assert (again.inserted, again.updated) == (1, 0)
    await _found_by_title(store, *(seed_papers[i] for i in (0, 249, 251, 399)))


async def test_a_failing_database_rolls_the_bulk_transaction_back(
    sqlite_db: Database, seed_papers, small_chunks, monkeypatch
):
    if not native.AVAILABLE:
        pytest.skip("bot._sqlitebatch is not built")
    monkeypatch.setattr(papers_module, "BULK_TRANSACTION", 120)
    store = PaperStore(sqlite_db)
    batches_written = 0
    real = native.execute_batches

    def fail_on_the_fifth(connection, batches):  # runs on aiosqlite's thread
        nonlocal batches_written
        batches_written += 1
        if batches_written == 5:
            raise sqlite3.OperationalError("disk I/O error")
        return real(connection, batches)

    monkeypatch.setattr(native, "execute_batches", fail_on_the_fifth)
    with pytest.raises(sqlite3.OperationalError):
        await store.upsert(seed_papers[:400])
    monkeypatch.undo()
    # The first bulk transaction (batches 1-3) committed; the second (4-5) rolled back.
    assert await store.count() == 120
    await _integrity(store.db)
    await store.upsert(seed_papers[:400])
    assert await store.count() == 400


async def test_a_small_bulk_into_a_large_index_merges_incrementally(
    sqlite_db: Database, seed_papers, small_chunks
):
    store = PaperStore(sqlite_db)
    await store.upsert(seed_papers[:400])
    async with store.bulk():
        async with store.bulk():  # nested: one bulk
            await store.upsert(seed_papers[400:440])
            await store.upsert(seed_papers[440:480])
        assert (await _merging(store.db))["automerge"] == 0
    assert await _merging(store.db) == {"automerge": 4, "crisismerge": 16}
    await _integrity(store.db)
    for paper in (seed_papers[5], seed_papers[450]):
        found = await store.search(parse(f'"{paper.title}"'), limit=5)
        assert paper.id in [p.id for p in found.papers]


async def test_start_up_finishes_what_a_killed_bulk_import_left(sqlite_db: Database, seed_papers):
    database = sqlite_db
    store = PaperStore(database)
    await set_merging(database, "bulk")  # as if the process died inside bulk()
    for start in range(0, 120, 20):
        await store.upsert(seed_papers[start : start + 20])  # a transaction, a segment
    assert await _segments(database) == 6
    await database.upgrade()  # what every start does
    assert await _merging(database) == {"automerge": 4, "crisismerge": 16}
    assert await _segments(database) == 1
    await _integrity(database)


async def test_bulk_is_harmless_on_postgresql_and_counts_nothing_twice(
    store: PaperStore, seed_papers, small_chunks
):
    async with store.bulk():
        first = await store.upsert(seed_papers[:100])
        again = await store.upsert(seed_papers[:100])
    assert (first.inserted, again.inserted, again.updated) == (100, 0, 0)
    assert await store.count() == 100
