"""Search semantics on both databases: the query language, ranking, filters, paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import Author, Paper
from bot.query import index_fields, matches, parse
from bot.store import PaperStore
from bot.store.search import POOL_MIN
from tests.conftest import migrated_database

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def paper(
    n: int,
    title: str,
    abstract: str = "",
    *,
    keywords: tuple[str, ...] = (),
    authors: tuple[str, ...] = ("Jane Doe",),
    upvotes: int | None = 0,
    days_ago: int = 0,
) -> Paper:
    return Paper(
        id=f"2506.{n:05d}",
        title=title,
        abstract=abstract,
        ai_keywords=keywords,
        authors=tuple(Author(a) for a in authors),
        upvotes=upvotes,
        submitted_at=T0 - timedelta(days=days_ago),
        published_at=T0 - timedelta(days=days_ago + 1),
    )


CORPUS = [
    paper(1, "Video diffusion models", "We generate videos with diffusion.", upvotes=5),
    paper(2, "Language models are few-shot learners", "Scaling language models.", upvotes=90,
          keywords=("large language models",), authors=("Tom Brown", "Ilya Sutskever")),
    paper(3, "Mamba: linear-time sequence modeling", "Selective state space models.",
          upvotes=70, authors=("Albert Gu", "Tri Dao")),
    paper(4, "Efficient SSM for long sequences", "A structured state-space model (SSM).",
          upvotes=10, authors=("Albert Gu",)),
    paper(5, "A survey of diffusion models", "We survey diffusion in vision.", upvotes=30),
    paper(6, "Robot learning from video", "Robots watch videos and learn.", upvotes=3),
    paper(7, "Space state estimation", "Estimating the state of space robots.", upvotes=1),
    paper(8, "Graph neural networks", "Message passing on graphs.", upvotes=0,
          keywords=("diffusion",)),
]  # fmt: skip


@pytest.fixture
async def loaded(store: PaperStore) -> PaperStore:
    await store.upsert(CORPUS)
    return store


async def ids(store: PaperStore, query: str, **kwargs: object) -> list[str]:
    result = await store.search(parse(query), **kwargs)  # type: ignore[arg-type]
    return [p.id[-1] for p in result.papers]


async def test_all_words_must_match(loaded: PaperStore) -> None:
    assert await ids(loaded, "video diffusion") == ["1"]
    assert sorted(await ids(loaded, "videos")) == ["1", "6"]  # stemmed: video == videos


async def test_phrases_keep_word_order(loaded: PaperStore) -> None:
    # "state-space" is a phrase too, and so is "state of space" (stop words are dropped)
    assert sorted(await ids(loaded, '"state space"')) == ["3", "4", "7"]
    assert await ids(loaded, '"selective state space"') == ["3"]
    assert await ids(loaded, '"space state"') == ["7"]
    assert sorted(await ids(loaded, "space state")) == ["3", "4", "7"]


async def test_or_and_exclusion(loaded: PaperStore) -> None:
    assert sorted(await ids(loaded, "mamba OR ssm")) == ["3", "4"]
    assert sorted(await ids(loaded, "diffusion -survey")) == ["1", "8"]
    assert sorted(await ids(loaded, "diffusion -author:doe")) == []
    assert await ids(loaded, "diffusion -survey -video") == ["8"]


async def test_fielded_terms(loaded: PaperStore) -> None:
    assert sorted(await ids(loaded, "author:gu")) == ["3", "4"]
    assert await ids(loaded, "author:gu author:dao") == ["3"]
    unfielded = await loaded.search(parse('"albert gu" title:mamba'))
    assert unfielded.partial  # author names are only found with author:
    assert await ids(loaded, 'author:"albert gu" title:mamba') == ["3"]
    assert sorted(await ids(loaded, "title:diffusion")) == ["1", "5"]  # not 8's keyword


async def test_acronyms_are_found_singular_or_plural(store: PaperStore) -> None:
    await store.upsert(
        [
            paper(1, "Hybrid SSMs for long context", "We compare LLMs on GPUs."),
            paper(2, "One SSM is enough", "An LLM on one GPU."),
        ]
    )
    for query in ("ssm", "SSMs", "llms", "gpu", '"llms on gpus"'):
        assert sorted(await ids(store, query)) == (["1"] if '"' in query else ["1", "2"])


async def test_model_names_with_versions_are_found_by_name_and_by_version(
    store: PaperStore,
) -> None:
    await store.upsert(
        [
            paper(1, "Mamba2 for vision", "Trained on an A100 with Llama3."),
            paper(2, "Mamba strikes back", "Llama 3 on 100 GPUs: a study."),
            paper(3, "Three llamas", "A llama, then 3 more; a 100 of them."),
        ]
    )
    assert sorted(await ids(store, "mamba")) == ["1", "2"]
    assert sorted(await ids(store, "llama3")) == ["1", "2"]  # the phrase "llama 3"
    assert await ids(store, "a100") == ["1"]  # not "a ... 100"
    assert await ids(store, "mamba2") == ["1"]


async def test_relevance_beats_upvotes_then_upvotes_then_recency(store: PaperStore) -> None:
    await store.upsert(
        [
            paper(1, "Abstract only", "about diffusion", upvotes=1000),
            paper(2, "Keyword only", keywords=("diffusion",), upvotes=500),
            paper(3, "Diffusion in title", upvotes=1),
            paper(4, "Diffusion in title, more votes", upvotes=2),
            paper(5, "Diffusion in title, older", upvotes=1, days_ago=3),
            paper(6, "Diffusion in title, newer", upvotes=1, days_ago=0),
        ]
    )
    # 4 (title, 2 votes); 6 and 3 (title, 1 vote, same day: newer row first); 5 (older);
    # then keyword, then abstract matches whatever their votes.
    assert await ids(store, "diffusion") == ["4", "6", "3", "5", "2", "1"]


async def test_full_matches_beat_partial_ones_and_partial_is_flagged(loaded: PaperStore) -> None:
    full = await loaded.search(parse("diffusion video"))
    assert not full.partial and [p.id[-1] for p in full.papers] == ["1"]
    partial = await loaded.search(parse("diffusion quantum"))
    assert partial.partial
    # every paper matching one of the two groups, title matches first, then by upvotes
    assert [p.id[-1] for p in partial.papers] == ["5", "1", "8"]
    three = await loaded.search(parse("diffusion video robots"))
    assert three.partial
    assert [p.id[-1] for p in three.papers][:2] == ["1", "6"]  # two of three groups first
    none = await loaded.search(parse("quantum"))
    assert none.papers == [] and not none.partial


async def test_since_and_min_upvotes(store: PaperStore) -> None:
    await store.upsert(
        [
            paper(1, "Diffusion old", upvotes=50, days_ago=30),
            paper(2, "Diffusion new", upvotes=1, days_ago=1),
            paper(3, "Diffusion new popular", upvotes=20, days_ago=2),
        ]
    )
    since = T0 - timedelta(days=7)
    assert await ids(store, "diffusion", since=since) == ["3", "2"]
    assert await ids(store, "diffusion", min_upvotes=10) == ["1", "3"]
    assert await ids(store, "diffusion", since=since, min_upvotes=10) == ["3"]
    assert await ids(store, "diffusion", since=T0 + timedelta(days=1)) == []


async def test_offset_pages_through_the_same_order(store: PaperStore) -> None:
    await store.upsert([paper(i, f"Diffusion number {i}", upvotes=i % 7) for i in range(1, 41)])
    everything = [p.id for p in (await store.search(parse("diffusion"), limit=40)).papers]
    assert len(everything) == len(set(everything)) == 40
    pages = []
    for page in range(4):
        result = await store.search(parse("diffusion"), limit=10, offset=page * 10)
        pages.extend(p.id for p in result.papers)
    assert pages == everything
    assert (await store.search(parse("diffusion"), limit=10, offset=40)).papers == []
    assert (await store.search(parse("diffusion"), limit=0)).papers == []


async def test_the_most_upvoted_title_matches_lead_whatever_the_limit(store: PaperStore) -> None:
    # More title matches than one page's candidate pool (POOL_MIN): the best-voted ones
    # are old, and must still lead, and a small limit must be a prefix of a large one.
    many = POOL_MIN * 2
    await store.upsert(
        [
            paper(i, f"Transformer number {i}", upvotes=100 - i if i <= 3 else 1)
            for i in range(1, many)
        ]
    )
    top = await ids_of(store, "transformer", limit=5)
    assert top[:3] == ["2506.00001", "2506.00002", "2506.00003"]
    assert (await ids_of(store, "transformer", limit=many))[:5] == top


async def test_pages_neither_repeat_nor_skip_papers_past_the_first_pool(
    store: PaperStore,
) -> None:
    # Abstract matches only (the "anywhere" tier, newest first), upvotes unrelated to
    # age: each larger candidate pool brings in older papers that outrank some shown.
    many = POOL_MIN * 3
    abstract = "A zeta function result."
    await store.upsert(
        [
            paper(i, f"Study {i}", abstract, upvotes=(i * 37) % 101, days_ago=many - i)
            for i in range(1, many + 1)
        ]
    )
    everything = await ids_of(store, "zeta", limit=many)
    assert sorted(everything) == sorted(f"2506.{i:05d}" for i in range(1, many + 1))
    pages: list[str] = []
    for offset in range(0, many, 7):
        pages.extend(await ids_of(store, "zeta", limit=7, offset=offset))
    assert pages == everything
    assert await ids_of(store, "zeta", limit=10) == everything[:10]


async def ids_of(store: PaperStore, query: str, **kwargs: object) -> list[str]:
    return [p.id for p in (await store.search(parse(query), **kwargs)).papers]  # type: ignore[arg-type]


async def test_seed_corpus_results_really_match(store: PaperStore, seed_papers) -> None:
    await store.upsert(seed_papers)
    by_id = {p.id: p for p in seed_papers}
    for text in ["language model", '"large language models"', "video OR image -survey",
                 "diffusion transformer", "agent"]:  # fmt: skip
        query = parse(text)
        result = await store.search(query, limit=20)
        assert result.papers and not result.partial, text
        for found in result.papers:
            fields = {c: v.split() for c, v in index_fields(by_id[found.id]).items()}
            assert matches(query, fields), (text, found.id)


async def test_count_matching_agrees_with_watches(loaded: PaperStore) -> None:
    for text in ["diffusion", "video OR robots", '"state space"', "diffusion -survey", "quantum"]:
        query = parse(text)
        expected = sum(
            matches(query, {c: v.split() for c, v in index_fields(p).items()}) for p in CORPUS
        )
        assert await loaded.count_matching(query) == expected, text
    since = T0 - timedelta(days=1)
    recent = paper(9, "Diffusion today", days_ago=0)
    old = paper(10, "Diffusion long ago", days_ago=40)
    await loaded.upsert([recent, old])
    assert await loaded.count_matching(parse("diffusion"), since=T0 - timedelta(days=30)) == 4
    assert await loaded.count_matching(parse("diffusion")) == 5
    assert await loaded.count_since(since) == len(CORPUS) + 1
    assert await loaded.count_since(T0 + timedelta(days=1)) == 0


async def test_postgresql_plans_each_search_with_its_own_words(tmp_path):
    """asyncpg prepares statements; a generic plan (made without the query's words after
    five runs) walked the whole table for rare title matches. Every connection asks for
    custom plans."""
    async with migrated_database("postgresql", tmp_path) as db:
        for _ in range(3):  # pooled connections, reused or not
            async with db.reader() as raw:
                assert await raw.fetch("SHOW plan_cache_mode") == [("force_custom_plan",)]
