"""PostgreSQL: the title tier of a search runs on the title-only GIN index (0008).
(SQLite's title tier is FTS5's, on ``papers_head_fts``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.models import Paper
from bot.query import parse
from bot.store import Database, PaperStore
from bot.store.driver import RawConnection
from bot.store.search import TITLE_VECTOR
from tests.conftest import migrated_database


@pytest.fixture
async def postgresql(tmp_path) -> AsyncIterator[Database]:
    async with migrated_database("postgresql", tmp_path) as db:
        yield db


async def test_the_title_tier_can_use_the_title_index(postgresql: Database, monkeypatch) -> None:
    """The tier's SQL must say exactly what the index indexes, or PostgreSQL silently
    never uses it: the title tier filters on TITLE_VECTOR, and a filter on TITLE_VECTOR
    alone can be answered from ix_papers_search_title (with sequential scans off, the
    only way left to answer it)."""
    store = PaperStore(postgresql)
    # 60+ title-or-keywords matches, so the title-only tier runs after it.
    await store.upsert(
        [
            Paper(id=f"2411.{i:05d}", title=f"Data paper {i}", ai_keywords=("data",))
            for i in range(70)
        ]
    )
    statements: list[tuple[str, list]] = []
    fetch = RawConnection.fetch

    async def spy(self, sql, params=()):
        statements.append((sql, list(params)))
        return await fetch(self, sql, params)

    monkeypatch.setattr(RawConnection, "fetch", spy)
    found = await store.search(parse("data"))
    monkeypatch.undo()
    assert len(found.papers) == 10
    title_tier = [sql for sql, _ in statements if f"{TITLE_VECTOR} @@" in sql]
    assert len(title_tier) == 1, [sql for sql, _ in statements]
    async with postgresql.read() as conn:
        raw = await RawConnection.of(conn)
        await raw.execute("SET LOCAL enable_seqscan = off")
        rows = await raw.fetch(
            f"EXPLAIN SELECT p.id FROM papers p WHERE {TITLE_VECTOR} @@ CAST(? AS tsquery)",
            ["'data':A"],
        )
    plan = "\n".join(row[0] for row in rows)
    assert "ix_papers_search_title" in plan, plan
