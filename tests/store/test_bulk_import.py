"""Bulk imports: segment merging deferred to the end, and put back after a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.query import parse
from bot.store import Database, PaperStore
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


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(papers_module, "UPSERT_CHUNK", 40)
    return 40


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Database]:
    """FTS5 segment merging is SQLite's: these tests have no PostgreSQL variant."""
    async with migrated_database("sqlite", tmp_path) as db:
        yield db


async def test_a_large_upsert_defers_merging_and_leaves_one_merged_index(
    sqlite_db: Database, seed_papers, small_chunks
):
    store = PaperStore(sqlite_db)
    seen: list[dict[str, int]] = []
    original = papers_module.PaperStore._write

    async def spy(self, *args, **kwargs):
        seen.append(await _merging(self.db))
        return await original(self, *args, **kwargs)

    papers_module.PaperStore._write = spy
    try:
        result = await store.upsert(seed_papers[:400])
    finally:
        papers_module.PaperStore._write = original
    assert result.inserted == 400
    assert len(seen) == 10 and all(s["automerge"] == 0 for s in seen)  # 10 transactions
    assert await _merging(store.db) == {"automerge": 4, "crisismerge": 16}
    assert await _segments(store.db) == 1  # most of the index was new: fully optimized
    await _integrity(store.db)
    found = await store.search(parse(f'"{seed_papers[123].title}"'), limit=5)
    assert seed_papers[123].id in [p.id for p in found.papers]


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
        await store.upsert(seed_papers[start : start + 20])
    assert await _segments(database) > 1
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
