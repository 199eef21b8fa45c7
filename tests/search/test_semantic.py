"""Semantic search with a tiny real model (tests/fakes/tiny_model.py): found by meaning,
embedded in the background, its index persisted and caught up, and words alone when the
model is missing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import Author, Paper
from bot.query import parse
from bot.search import SearchEngine
from bot.search.embedding import FastEmbedder, ModelUnavailable, paper_texts
from bot.store import PaperStore
from tests.fakes.tiny_model import MODEL_NAME, build_tiny_model

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def paper(n: int, title: str, abstract: str = "", **fields: object) -> Paper:
    return Paper(
        id=f"2508.{n:05d}",
        title=title,
        abstract=abstract,
        authors=(Author("Ada Lovelace"),),
        submitted_at=T0,
        **fields,  # type: ignore[arg-type]
    )


DERAINING = paper(1, "Deraining networks", "Precipitation streaks are cleaned from images.")
RESTORATION = paper(2, "Image restoration at scale", "Images restored at scale.")
CATS = paper(3, "Cats on the internet", "A kitten dataset.")
ROBOTS = paper(4, "Robot grasping", "Robots learn grasping.")
LIBRARY = [DERAINING, RESTORATION, CATS, ROBOTS]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def load_tiny(tiny_model, tmp_path):
    def load() -> FastEmbedder:
        return FastEmbedder(
            MODEL_NAME, cache_dir=tmp_path / "models", model_path=tiny_model, threads=1
        )

    return load


@pytest.fixture
async def semantic(store: PaperStore, load_tiny, tmp_path):
    engine = await SearchEngine(store, tmp_path / "semantic", embedder=load_tiny).open()
    await engine.semantic.wait_loaded()
    try:
        yield engine
    finally:
        await engine.close()


async def titles(engine: SearchEngine, text: str) -> list[str]:
    return [p.title for p in (await engine.search(parse(text), limit=10)).papers]


async def test_a_query_in_other_words_finds_the_paper_once_it_is_embedded(store, semantic):
    await store.upsert(LIBRARY)
    # No paper has "rain" or "photos": by words there is nothing to show yet.
    assert await titles(semantic, "rain photos") == []
    assert await semantic.semantic.embed_pending() == 4
    found = await titles(semantic, "rain photos")
    assert found[:2] == ["Deraining networks", "Image restoration at scale"]
    assert "Cats on the internet" not in found  # nothing in common: not a result at all


async def test_papers_with_the_query_s_words_still_lead(store, semantic):
    await store.upsert(LIBRARY)
    await semantic.semantic.embed_pending()
    assert (await titles(semantic, "kitten"))[0] == "Cats on the internet"
    result = await semantic.search(parse("deraining"))
    assert result.papers[0].title == "Deraining networks" and not result.partial


async def test_meaning_waits_until_most_papers_are_embedded(store, semantic):
    await store.upsert(LIBRARY)
    await semantic.semantic.embed_pending()
    await store.upsert([paper(n, f"Unrelated study {n}") for n in range(10, 20)])
    await semantic.catch_up()
    await semantic.semantic.refresh(force=True)
    assert not semantic.semantic.usable  # 4 of 14 papers embedded: words alone
    assert await titles(semantic, "rain photos") == []
    await semantic.semantic.embed_pending()
    assert semantic.semantic.usable
    assert (await titles(semantic, "rain photos"))[0] == "Deraining networks"


async def test_similar_papers_by_meaning_then_by_words_without_vectors(store, semantic):
    await store.upsert(LIBRARY)
    papers, by_meaning = await semantic.similar(DERAINING)
    assert not by_meaning  # not embedded yet: the words of its title
    await semantic.semantic.embed_pending()
    papers, by_meaning = await semantic.similar(DERAINING, limit=2)
    assert by_meaning
    assert papers[0].title == "Image restoration at scale"
    assert len(papers) == 2 and DERAINING.id not in {p.id for p in papers}
    page_two, _ = await semantic.similar(DERAINING, limit=2, offset=2)
    assert {p.id for p in page_two}.isdisjoint(p.id for p in papers)


async def test_the_vector_index_is_saved_and_followed_after_a_restart(
    store, load_tiny, tmp_path, database
):
    directory = tmp_path / "restart"
    engine = await SearchEngine(store, directory, embedder=load_tiny).open()
    await engine.semantic.wait_loaded()
    await store.upsert(LIBRARY)
    await engine.semantic.embed_pending()
    await engine.close()  # saves the vector index beside the lexical one
    assert (directory / "vectors.usearch").exists()

    async with database.write() as conn:
        await conn.exec_driver_sql("DELETE FROM papers WHERE paper_id = '2508.00002'")
    engine = await SearchEngine(store, directory, embedder=load_tiny).open()
    try:
        await engine.semantic.wait_loaded()
        follower = engine.semantic.follower
        assert follower is not None and follower.revision > 0  # loaded, not rebuilt
        await engine.catch_up()
        await engine.semantic.refresh(force=True)
        assert engine.semantic.usable
        found = await titles(engine, "rain photos")
        assert found[0] == "Deraining networks"
        assert "Image restoration at scale" not in found  # its deletion was followed
    finally:
        await engine.close()


async def test_a_paper_whose_text_changes_is_embedded_again(store, semantic):
    await store.upsert(LIBRARY)
    await semantic.semantic.embed_pending()
    await store.upsert([paper(3, "Cats on the internet", "Now about rain on photos.")])
    assert await semantic.semantic.embed_pending() == 1
    await store.upsert([paper(3, "Cats on the internet", "Now about rain on photos.", upvotes=9)])
    assert await semantic.semantic.embed_pending() == 0  # counters: nothing to embed


async def test_without_the_model_search_uses_words_and_says_why(store, tmp_path, caplog):
    caplog.set_level(logging.WARNING)

    def missing() -> FastEmbedder:
        return FastEmbedder(MODEL_NAME, cache_dir=tmp_path, model_path=tmp_path / "nowhere")

    engine = await SearchEngine(store, tmp_path / "missing", embedder=missing).open()
    try:
        await engine.semantic.wait_loaded()
        await store.upsert(LIBRARY)
        assert await titles(engine, "deraining") == ["Deraining networks"]
        status = await engine.status()
        assert status["semantic"] == "unavailable"
        assert "nowhere" in str(status["semantic_reason"])
        warnings = [r for r in caplog.records if "semantic search is off" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        await engine.close()


def test_a_model_that_is_not_downloaded_is_not_fetched_by_quick_commands(tmp_path):
    with pytest.raises(ModelUnavailable, match="not downloaded yet"):
        FastEmbedder(MODEL_NAME, cache_dir=tmp_path, download=False)


async def test_a_paper_the_model_fails_on_is_skipped_and_the_rest_embedded(
    store, semantic, monkeypatch
):
    await store.upsert(LIBRARY)
    job = semantic.semantic.job
    assert job is not None
    real = job.embedder.embed_passages

    def refusing(texts):
        if any("kitten" in t for t in texts):
            raise RuntimeError("the model refused")
        return real(texts)

    monkeypatch.setattr(job.embedder, "embed_passages", refusing)
    assert await semantic.semantic.embed_pending() == 3
    assert job.progress.failed == 1
    assert await semantic.semantic.embed_pending() == 0  # not retried in a loop


def test_a_paper_is_embedded_whole_then_in_passages_and_its_ai_summary():
    abstract = "One. Two! Three? Four. Five."
    texts = paper_texts(paper(9, "Title", abstract, ai_summary="In short."))
    assert texts == ["Title. One. Two! Three? Four. Five.", "One. Two!", "Three? Four.",
                     "Five.", "In short."]  # fmt: skip
    assert paper_texts(paper(9, "Only a title")) == ["Only a title"]
