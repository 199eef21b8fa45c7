"""Upsert semantics on both databases: counters, no erasure, sources, re-indexing."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.models import Author, Paper
from bot.query import parse
from bot.search import SearchEngine
from bot.store import PaperStore, UpsertResult
from bot.store.driver import RawConnection

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def full_paper(paper_id: str = "2503.00001", **changes: object) -> Paper:
    base = Paper(
        id=paper_id,
        title="Mamba meets diffusion",
        abstract="We combine state space models with diffusion.",
        authors=(Author("Ada Lovelace"), Author("Alan Turing")),
        published_at=T0 - timedelta(days=1),
        submitted_at=T0,
        upvotes=10,
        comments=2,
        ai_summary="A state space diffusion model.",
        ai_keywords=("state space models", "diffusion"),
        github_repo="https://github.com/x/y",
        github_stars=100,
        project_page="https://x.github.io",
        thumbnail="https://cdn/x.png",
        organization="Example Lab",
        sources=("huggingface",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def ids_for(engine: SearchEngine, query: str, **filters: object) -> list[str]:
    return [p.id for p in (await engine.search(parse(query), limit=50, **filters)).papers]


async def test_round_trip_keeps_every_field(store: PaperStore, clock) -> None:
    paper = full_paper()
    assert await store.upsert([paper]) == UpsertResult(inserted=1)
    stored = await store.get(paper.id)
    assert stored is not None
    assert replace(stored, first_seen_at=None, last_seen_at=None) == paper
    assert stored.first_seen_at == stored.last_seen_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert stored.submitted_at.tzinfo is not None


async def test_counters_take_the_newest_value_and_none_never_erases(store: PaperStore) -> None:
    await store.upsert([full_paper()])
    await store.upsert([full_paper(upvotes=42, comments=None, github_stars=0)])
    stored = await store.get("2503.00001")
    assert (stored.upvotes, stored.comments, stored.github_stars) == (42, 2, 0)
    # counters may go down too (the source is the truth about its counters)
    await store.upsert([full_paper(upvotes=40)])
    assert (await store.get("2503.00001")).upvotes == 40


async def test_missing_values_never_erase_known_ones(store: PaperStore) -> None:
    await store.upsert([full_paper()])
    sparse = Paper(id="2503.00001", title="", abstract="", sources=("arxiv",))
    result = await store.upsert([sparse])
    assert result == UpsertResult(updated=1)  # only the new source changed
    stored = await store.get("2503.00001")
    expected = replace(full_paper(), sources=("huggingface", "arxiv"))
    assert replace(stored, first_seen_at=None, last_seen_at=None) == expected


async def test_sources_union_first_seen_kept_last_seen_bumped(store: PaperStore) -> None:
    await store.upsert([full_paper(sources=("arxiv",))])
    first = await store.get("2503.00001")
    await store.upsert([full_paper(sources=("huggingface", "arxiv"))])
    second = await store.get("2503.00001")
    assert second.sources == ("arxiv", "huggingface")
    assert second.first_seen_at == first.first_seen_at
    assert second.last_seen_at > first.last_seen_at


async def test_upsert_is_idempotent(store: PaperStore, seed_papers: list[Paper]) -> None:
    first = await store.upsert(seed_papers)
    assert first.inserted == len({p.id for p in seed_papers}) and first.skipped == 0
    before = await store.get_many([p.id for p in seed_papers[:20]])
    second = await store.upsert(seed_papers)
    assert second == UpsertResult()
    after = await store.get_many([p.id for p in seed_papers[:20]])
    assert [replace(p, last_seen_at=None) for p in before] == [
        replace(p, last_seen_at=None) for p in after
    ]
    assert await store.count() == first.inserted


async def test_duplicates_in_one_batch_are_merged(store: PaperStore) -> None:
    result = await store.upsert(
        [full_paper(upvotes=1, ai_summary=None), full_paper(upvotes=5, github_repo=None)]
    )
    assert result == UpsertResult(inserted=1)
    stored = await store.get("2503.00001")
    assert stored.upvotes == 5 and stored.ai_summary and stored.github_repo


async def test_text_change_reindexes_the_paper(store: PaperStore, engine) -> None:
    await store.upsert([full_paper()])
    assert await ids_for(engine, "mamba") == ["2503.00001"]
    await store.upsert([full_paper(title="Transformers for weather", ai_keywords=("weather",))])
    assert await ids_for(engine, "mamba") == []
    assert await ids_for(engine, "title:weather") == ["2503.00001"]
    assert await ids_for(engine, '"state space"') == ["2503.00001"]  # abstract kept
    assert await ids_for(engine, "author:turing") == ["2503.00001"]
    await store.upsert([full_paper(authors=(Author("Grace Hopper"),))])
    assert await ids_for(engine, "author:turing") == []
    assert await ids_for(engine, "author:hopper") == ["2503.00001"]


async def test_counter_updates_reach_min_upvotes_searches(store: PaperStore, engine) -> None:
    await store.upsert([full_paper(upvotes=12), full_paper("2503.00002", upvotes=60)])
    assert await ids_for(engine, "mamba", min_upvotes=50) == ["2503.00002"]
    assert await store.upsert([full_paper(upvotes=99)]) == UpsertResult(updated=1)
    assert await ids_for(engine, "mamba", min_upvotes=50) == ["2503.00001", "2503.00002"]
    assert await ids_for(engine, "mamba", min_upvotes=70) == ["2503.00001"]
    await store.upsert([full_paper(upvotes=4)])  # and back down (counts can drop)
    assert await ids_for(engine, "mamba", min_upvotes=10) == ["2503.00002"]
    assert await ids_for(engine, '"state space"', min_upvotes=1) == [
        "2503.00002",
        "2503.00001",
    ]


async def test_bad_papers_are_skipped_and_logged(store: PaperStore, caplog) -> None:
    caplog.set_level(logging.WARNING)
    bad = [
        full_paper("2503.00010", title="nul \x00 byte"),
        full_paper("2503.00011", abstract="lone surrogate \ud800"),
        full_paper("2503.00012", upvotes=2**70),
        full_paper("2503.00013", upvotes="12"),  # type: ignore[arg-type]
        full_paper("   "),
        full_paper("2503.00014", submitted_at="2025-01-01"),  # type: ignore[arg-type]
        full_paper("2503.00015", authors=("not an Author",)),  # type: ignore[arg-type]
        "not a paper",
        None,
    ]
    good = [full_paper("2503.00020"), full_paper("2503.00021", title="Another one")]
    result = await store.upsert([bad[0], good[0], *bad[1:], good[1]])  # type: ignore[list-item]
    assert result == UpsertResult(inserted=2, skipped=len(bad))
    assert await store.count() == 2
    assert "2503.00010" in caplog.text and "NUL" in caplog.text


async def test_naive_and_offset_datetimes_are_stored_as_utc(store: PaperStore) -> None:
    naive = datetime(2025, 3, 1, 12, 0)
    plus_two = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    await store.upsert([full_paper(submitted_at=naive, published_at=plus_two)])
    stored = await store.get("2503.00001")
    assert stored.submitted_at == T0 and stored.submitted_at.utcoffset() == timedelta(0)
    assert stored.published_at == T0


async def test_get_many_keeps_the_requested_order(store: PaperStore) -> None:
    await store.upsert([full_paper(f"2503.0000{i}", title=f"Paper {i}") for i in range(1, 6)])
    ids = ["2503.00004", "missing", "2503.00001", "2503.00004", "2503.00003"]
    assert [p.id for p in await store.get_many(ids)] == ["2503.00004", "2503.00001", "2503.00003"]
    assert await store.get("missing") is None
    assert await store.get_many([]) == []


async def test_top_orders_by_upvotes_within_the_window(store: PaperStore) -> None:
    day = timedelta(days=1)
    papers = [
        full_paper("2503.00001", submitted_at=T0, upvotes=5),
        full_paper("2503.00002", submitted_at=T0 + timedelta(hours=1), upvotes=50),
        full_paper("2503.00003", submitted_at=T0 + timedelta(hours=2), upvotes=5),
        full_paper("2503.00004", submitted_at=T0 - day, upvotes=500),  # before the window
        full_paper("2503.00005", submitted_at=T0 + day, upvotes=500),  # at the end: excluded
        full_paper("2503.00006", submitted_at=None, published_at=T0, upvotes=7),
        full_paper("2503.00007", submitted_at=T0, upvotes=None),
    ]
    await store.upsert(papers)
    top = await store.top(since=T0, until=T0 + day)
    assert [p.id for p in top] == [
        "2503.00002", "2503.00006", "2503.00003", "2503.00001", "2503.00007",
    ]  # fmt: skip
    assert [p.id for p in await store.top(since=T0, until=T0 + day, limit=2, offset=1)] == [
        "2503.00006",
        "2503.00003",
    ]
    assert [p.id for p in await store.top(since=T0, until=T0 + day, min_upvotes=6)] == [
        "2503.00002",
        "2503.00006",
    ]
    assert len(await store.top(since=T0 - day)) == 7


async def test_count_and_latest_submitted_at(store: PaperStore) -> None:
    assert await store.count() == 0
    assert await store.latest_submitted_at() is None
    await store.upsert(
        [full_paper("2503.00001"), full_paper("2503.00002", submitted_at=T0 + timedelta(days=2))]
    )
    assert await store.count() == 2
    assert await store.latest_submitted_at() == T0 + timedelta(days=2)


async def test_large_batches_span_several_transactions(
    store: PaperStore, monkeypatch, engine
) -> None:
    import bot.store.papers as papers_module

    monkeypatch.setattr(papers_module, "UPSERT_CHUNK", 7)
    batch = [full_paper(f"2503.{i:05d}", title=f"Topic{i} study") for i in range(30)]
    assert await store.upsert(iter(batch)) == UpsertResult(inserted=30)
    assert await store.count() == 30
    for i in (0, 6, 7, 29):
        assert await ids_for(engine, f"topic{i}") == [f"2503.{i:05d}"]
    assert await store.upsert(batch[::-1]) == UpsertResult()


async def test_concurrent_writers_and_readers_do_not_fail(store: PaperStore, engine) -> None:
    import asyncio

    batches = [
        [full_paper(f"2503.{b}{i:04d}", title=f"Batch{b} paper {i}") for i in range(200)]
        for b in range(4)
    ]

    async def search_while_writing() -> int:
        found = 0
        for _ in range(20):
            found = len((await engine.search(parse("paper"), limit=5)).papers)
            await asyncio.sleep(0)
        return found

    results = await asyncio.gather(*(store.upsert(b) for b in batches), search_while_writing())
    assert [r.inserted for r in results[:4]] == [200] * 4
    assert await store.count() == 800
    assert len(await ids_for(engine, "batch3")) == 50  # limit=50 in ids_for


async def test_very_long_abstracts_are_indexed(store: PaperStore, engine) -> None:
    words = " ".join(f"filler{i % 500}" for i in range(20_000))
    await store.upsert([full_paper(abstract=f"beginning {words} finale")])
    assert await ids_for(engine, "beginning") == ["2503.00001"]
    assert await ids_for(engine, "finale") == ["2503.00001"]


async def test_a_rebuilt_index_keeps_following_updates(store: PaperStore, engine) -> None:
    await store.upsert([full_paper(), full_paper("2503.00002", title="Weather transformers")])
    assert await engine.rebuild() == 2
    assert await ids_for(engine, "mamba") == ["2503.00001"]
    assert await ids_for(engine, "weather") == ["2503.00002"]
    # updates after a rebuild still find and replace the right index entries
    await store.upsert([full_paper(title="Quantum annealing")])
    assert await ids_for(engine, "mamba") == []
    assert await ids_for(engine, "quantum") == ["2503.00001"]


async def test_seen_since_returns_papers_first_seen_after(store: PaperStore, clock) -> None:
    await store.upsert([full_paper("2503.00001")])  # first seen at clock start
    middle = clock.now
    await store.upsert([full_paper("2503.00002"), full_paper("2503.00003")])
    await store.upsert([full_paper("2503.00001", upvotes=77)])  # seen again: not new
    assert [p.id for p in await store.seen_since(middle)] == ["2503.00003", "2503.00002"]
    assert [p.id for p in await store.seen_since(middle, limit=1)] == ["2503.00003"]
    assert len(await store.seen_since(datetime(2000, 1, 1, tzinfo=UTC))) == 3


async def test_a_paper_the_database_refuses_is_skipped_alone(store, monkeypatch, caplog) -> None:
    import bot.store.writer as writer

    real_encode = writer.encode

    def refusing_encode(paper, **kwargs):
        if paper.id == "2503.00002":
            raise ValueError("refused by the database")
        return real_encode(paper, **kwargs)

    monkeypatch.setattr(writer, "encode", refusing_encode)
    batch = [full_paper(f"2503.0000{i}", title=f"Paper {i}") for i in range(1, 5)]
    assert await store.upsert(batch) == UpsertResult(inserted=3, skipped=1)
    assert [p.id for p in await store.get_many([p.id for p in batch])] == [
        "2503.00001",
        "2503.00003",
        "2503.00004",
    ]
    assert "2503.00002" in caplog.text


def unavailable_error(dialect: str) -> Exception:
    """What the driver raises when the database is locked: not a data error."""
    if dialect == "postgresql":
        import asyncpg

        return asyncpg.exceptions.LockNotAvailableError("could not obtain lock")
    import sqlite3

    return sqlite3.OperationalError("database is locked")


async def test_an_unavailable_database_raises_instead_of_skipping(store, monkeypatch) -> None:
    error = unavailable_error(store.db.dialect)

    async def locked(self, *_statements):
        raise error

    # The database itself fails inside upsert_chunk (encoding the rows went fine): the
    # error must reach the caller, not be taken for a refused paper and skipped.
    monkeypatch.setattr(RawConnection, "executemany", locked)
    with pytest.raises(type(error)) as raised:
        await store.upsert([full_paper("2503.00001"), full_paper("2503.00002")])
    assert raised.value is error
    monkeypatch.undo()
    assert await store.count() == 0


async def test_an_arxiv_record_only_fills_gaps_in_a_hugging_face_paper(store) -> None:
    from datetime import UTC, datetime

    from bot.models import Author, Paper

    hf = Paper(
        id="2611.60001",
        title="Mamba: Linear-Time Sequence Modeling",
        abstract="From Hugging Face.",
        authors=(Author("Albert Gu"),),
        submitted_at=datetime(2026, 11, 20, 8, tzinfo=UTC),
        upvotes=12,
        sources=("huggingface",),
    )
    await store.upsert([hf])
    arxiv = Paper(
        id="2611.60001",
        title="Mamba:  Linear-Time   Sequence Modeling",
        abstract="From arXiv,\nwith other line breaks.",
        authors=(Author("Albert Gu"), Author("Tri Dao")),
        published_at=datetime(2026, 11, 19, tzinfo=UTC),
        sources=("arxiv",),
    )
    await store.upsert([arxiv])
    kept = await store.get("2611.60001")
    assert kept.title == hf.title and kept.abstract == hf.abstract
    assert kept.authors == hf.authors and kept.upvotes == 12
    assert kept.published_at == arxiv.published_at  # a gap: filled
    assert set(kept.sources) == {"huggingface", "arxiv"}


async def test_since_searches_find_a_paper_whose_date_moved_into_the_window(
    store: PaperStore, engine
) -> None:
    from datetime import timedelta

    old = full_paper("2503.00001")
    await store.upsert([old])
    newer = [full_paper(f"2503.{n:05d}") for n in range(2, 22)]
    later = old.submitted_at + timedelta(days=30)
    await store.upsert([replace(p, submitted_at=later) for p in newer])
    since = later - timedelta(hours=1)
    assert "2503.00001" not in await ids_for(engine, "mamba", since=since)
    # The oldest row is re-dated into the window: the date floor must follow it.
    await store.upsert([replace(old, submitted_at=later + timedelta(days=1))])
    found = await ids_for(engine, "mamba", since=since)
    assert found[0] == "2503.00001" and len(found) == 21  # newest day first
    assert await ids_for(engine, "mamba", since=later + timedelta(days=5)) == []


async def test_since_goes_by_the_submitted_day_before_the_published_one(
    store: PaperStore, engine
) -> None:
    # The oldest row's submitted day is the newest of all: its date floor must be kept
    # under that day, not under its (much older) publication day.
    late = full_paper(
        "2503.00001", published_at=T0 - timedelta(days=60), submitted_at=T0 + timedelta(days=9)
    )
    dated = [full_paper(f"2503.{n:05d}", published_at=None) for n in range(2, 5)]
    await store.upsert([late, *dated])
    assert await ids_for(engine, "mamba", since=T0 + timedelta(days=8)) == ["2503.00001"]
    undated = full_paper("2503.00009", published_at=T0 + timedelta(days=20), submitted_at=None)
    await store.upsert([undated])
    assert await ids_for(engine, "mamba", since=T0 + timedelta(days=15)) == ["2503.00009"]


async def test_driver_statements_belong_to_the_write_transaction(database) -> None:
    """Hot paths talk to the driver directly; a failed transaction must take their
    writes with it (asyncpg under SQLAlchemy only begins with SQLAlchemy's statement)."""
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            raw = await RawConnection.of(conn)
            await raw.execute("INSERT INTO meta (key, value) VALUES ('probe', '1')")
            raise RuntimeError("roll back")
    async with database.read() as conn:
        found = await conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'probe'")
        assert found.first() is None
