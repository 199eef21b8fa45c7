"""Search as a user meets it, on both databases: the query language, relevance, filters,
paging. (The ranking formula is in bot/search/ranking.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import Author, Paper
from bot.query import index_fields, matches, parse
from bot.search import SearchEngine
from bot.store import PaperStore

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def paper(
    n: int,
    title: str,
    abstract: str = "",
    *,
    keywords: tuple[str, ...] = (),
    summary: str | None = None,
    authors: tuple[str, ...] = ("Jane Doe",),
    upvotes: int | None = 0,
    days_ago: int = 0,
) -> Paper:
    return Paper(
        id=f"2506.{n:05d}",
        title=title,
        abstract=abstract,
        ai_keywords=keywords,
        ai_summary=summary,
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
async def loaded(store: PaperStore, engine: SearchEngine) -> SearchEngine:
    await store.upsert(CORPUS)
    return engine


async def ids(engine: SearchEngine, query: str, **kwargs: object) -> list[str]:
    result = await engine.search(parse(query), **kwargs)  # type: ignore[arg-type]
    return [str(int(p.id.split(".")[1])) for p in result.papers]


async def test_papers_with_every_word_come_first_then_those_with_some(loaded) -> None:
    found = await ids(loaded, "video diffusion", limit=10)
    assert found[0] == "1"
    assert sorted(found[1:]) == ["5", "6", "8"]  # one of the two words: still candidates
    assert sorted(await ids(loaded, "videos")) == ["1", "6"]  # stemmed: video == videos


async def test_a_title_match_beats_a_single_mention_in_the_abstract(store, engine) -> None:
    await store.upsert(
        [
            paper(1, "Scaling laws for reward models", "We also touch on distillation.",
                  upvotes=400),
            paper(2, "Distillation of reasoning traces", "Small students, big teachers.",
                  upvotes=2),
        ]
    )  # fmt: skip
    assert await ids(engine, "distillation") == ["2", "1"]


async def test_a_six_word_paraphrase_finds_the_paper_that_has_four_of_them(store, engine):
    await store.upsert(
        [
            paper(1, "Transformers without normalization",
                  "We remove layer normalization from transformers using a tanh."),
            paper(2, "Layer-wise learning rates", "Learning rates per layer, from scratch."),
            paper(3, "Photos of cats", "A dataset of photos."),
        ]
    )  # fmt: skip
    # No paper has all six words ("drop", "every" are in none): the one with four leads.
    result = await engine.search(parse("drop every layer normalization from transformers"))
    assert result.partial
    assert [p.id for p in result.papers][:2] == ["2506.00001", "2506.00002"]


async def test_phrases_keep_word_order(loaded) -> None:
    # "state-space" is a phrase too, and so is "state of space" (stop words are dropped)
    assert sorted(await ids(loaded, '"state space"')) == ["3", "4", "7"]
    assert await ids(loaded, '"selective state space"') == ["3"]
    assert await ids(loaded, '"space state"') == ["7"]
    assert sorted(await ids(loaded, "space state")) == ["3", "4", "7"]


async def test_or_and_exclusion(loaded) -> None:
    assert sorted(await ids(loaded, "mamba OR ssm")) == ["3", "4"]
    assert sorted(await ids(loaded, "diffusion -survey")) == ["1", "8"]
    assert await ids(loaded, "diffusion -author:doe") == []
    assert await ids(loaded, "diffusion -survey -video") == ["8"]


async def test_fielded_terms(loaded) -> None:
    assert sorted(await ids(loaded, "author:gu")) == ["3", "4"]
    assert await ids(loaded, "author:gu author:dao") == ["3", "4"]  # both names first
    unfielded = await loaded.search(parse('"albert gu" title:mamba'))
    assert unfielded.partial  # author names are only found with author:
    assert await ids(loaded, 'author:"albert gu" title:mamba') == ["3", "4"]
    assert sorted(await ids(loaded, "title:diffusion")) == ["1", "5"]  # not 8's keyword


async def test_the_ai_summary_is_searched_too(store, engine) -> None:
    await store.upsert([paper(1, "ReLU routing", summary="A new gate for sparse experts.")])
    assert await ids(engine, "gate") == ["1"]


async def test_acronyms_are_found_singular_or_plural(store, engine) -> None:
    await store.upsert(
        [
            paper(1, "Hybrid SSMs for long context", "We compare LLMs on GPUs."),
            paper(2, "One SSM is enough", "An LLM on one GPU."),
        ]
    )
    for query in ("ssm", "SSMs", "llms", "gpu", '"llms on gpus"'):
        assert sorted(await ids(engine, query)) == (["1"] if '"' in query else ["1", "2"])


async def test_model_names_with_versions_are_found_by_name_and_by_version(store, engine):
    await store.upsert(
        [
            paper(1, "Mamba2 for vision", "Trained on an A100 with Llama3."),
            paper(2, "Mamba strikes back", "Llama 3 on 100 GPUs: a study."),
            paper(3, "Three llamas", "A llama, then 3 more; a 100 of them."),
        ]
    )
    assert sorted(await ids(engine, "mamba")) == ["1", "2"]
    assert sorted(await ids(engine, "llama3")) == ["1", "2"]  # the phrase "llama 3"
    assert await ids(engine, "a100") == ["1"]  # not "a ... 100"
    assert await ids(engine, "mamba2") == ["1"]


async def test_upvotes_then_recency_only_break_near_ties(store, engine) -> None:
    await store.upsert(
        [
            paper(1, "Diffusion once", "about diffusion", upvotes=1000),
            paper(2, "Diffusion beats", upvotes=1),
            paper(3, "Diffusion rules", upvotes=40),
            paper(4, "Diffusion older", upvotes=1, days_ago=400),
            paper(5, "Diffusion newer", upvotes=1, days_ago=0),
        ]
    )
    # 1 mentions it twice, so it leads. 2-5 have the same lexical score: upvotes, then
    # recency, then the newest row order them.
    assert await ids(engine, "diffusion") == ["1", "3", "5", "2", "4"]


async def test_full_matches_and_the_partial_flag(loaded) -> None:
    full = await loaded.search(parse("diffusion video"))
    assert not full.partial and full.papers[0].id == "2506.00001"
    partial = await loaded.search(parse("diffusion quantum"))
    assert partial.partial
    assert sorted(p.id[-1] for p in partial.papers) == ["1", "5", "8"]
    none = await loaded.search(parse("quantum"))
    assert none.papers == [] and not none.partial


async def test_since_and_min_upvotes(store, engine) -> None:
    await store.upsert(
        [
            paper(1, "Diffusion old", upvotes=50, days_ago=30),
            paper(2, "Diffusion new", upvotes=1, days_ago=1),
            paper(3, "Diffusion new popular", upvotes=20, days_ago=2),
        ]
    )
    await store.upsert([Paper(id="2506.00004", title="Undated diffusion", upvotes=60)])
    since = T0 - timedelta(days=7)
    assert sorted(await ids(engine, "diffusion", since=since)) == ["2", "3"]  # 4 has no date
    assert sorted(await ids(engine, "diffusion", min_upvotes=10)) == ["1", "3", "4"]
    assert sorted(await ids(engine, "diffusion", since=since, min_upvotes=10)) == ["3"]
    assert await ids(engine, "diffusion", since=T0 + timedelta(days=1)) == []


async def test_pages_neither_repeat_nor_skip(store, engine) -> None:
    # Scores differ only by priors here, and more papers than the first candidate pool.
    many = 130
    await store.upsert(
        [
            paper(i, f"Study {i}", "A zeta function result.", upvotes=(i * 37) % 101,
                  days_ago=(i * 11) % 50)
            for i in range(1, many + 1)
        ]
    )  # fmt: skip
    everything = [p.id for p in (await engine.search(parse("zeta"), limit=many)).papers]
    assert sorted(everything) == sorted(f"2506.{i:05d}" for i in range(1, many + 1))
    pages: list[str] = []
    for offset in range(0, many, 7):
        result = await engine.search(parse("zeta"), limit=7, offset=offset)
        pages.extend(p.id for p in result.papers)
    assert pages == everything
    assert (await engine.search(parse("zeta"), limit=10, offset=many)).papers == []
    assert (await engine.search(parse("zeta"), limit=0)).papers == []


async def test_seed_corpus_full_matches_really_match(store, engine, seed_papers) -> None:
    await store.upsert(seed_papers)
    by_id = {p.id: p for p in seed_papers}
    for text in ["language model", '"large language models"', "video OR image -survey",
                 "diffusion transformer", "agent"]:  # fmt: skip
        query = parse(text)
        result = await engine.search(query, limit=20)
        assert result.papers and not result.partial, text
        best = result.papers[0]
        assert matches(query, {c: v.split() for c, v in index_fields(by_id[best.id]).items()})
        for found in await engine.full_matches(query, limit=50):
            fields = {c: v.split() for c, v in index_fields(by_id[found.id]).items()}
            assert matches(query, fields), (text, found.id)


async def test_count_matching_agrees_with_watches(loaded, store) -> None:
    for text in ["diffusion", "video OR robots", '"state space"', "diffusion -survey", "quantum"]:
        query = parse(text)
        expected = sum(
            matches(query, {c: v.split() for c, v in index_fields(p).items()}) for p in CORPUS
        )
        assert await loaded.count_matching(query) == expected, text
    since = T0 - timedelta(days=1)
    recent = paper(9, "Diffusion today", days_ago=0)
    old = paper(10, "Diffusion long ago", days_ago=40)
    await store.upsert([recent, old])
    assert await loaded.count_matching(parse("diffusion"), since=T0 - timedelta(days=30)) == 4
    assert await loaded.count_matching(parse("diffusion")) == 5
    assert await store.count_since(since) == len(CORPUS) + 1
    assert await store.count_since(T0 + timedelta(days=1)) == 0


async def test_sqlite_and_postgresql_deployments_answer_alike(tmp_path, seed_papers) -> None:
    """Replicas on PostgreSQL build the same index from the same papers as SQLite does."""
    from tests.conftest import PG_URL, migrated_database

    if not PG_URL:
        pytest.skip("PAPERBOY_TEST_DATABASE_URL not set")
    queries = ["diffusion transformer", '"language model" -survey', "author:author title:video",
               "remove rain streaks from photos", "mamba OR ssm"]  # fmt: skip
    answers = []
    for kind in ("sqlite", "postgresql"):
        async with migrated_database(kind, tmp_path / kind) as db:
            store = PaperStore(db, clock=lambda: T0)
            await store.upsert(seed_papers)
            engine = await SearchEngine(store, tmp_path / kind / "search", clock=lambda: T0).open()
            try:
                since = T0 - timedelta(days=900)
                found = [await engine.search(parse(q), limit=20, since=since) for q in queries]
                answers.append([[p.id for p in result.papers] for result in found])
            finally:
                await engine.close()
    assert answers[0] == answers[1]
    assert all(answers[0])
