"""Properties: any input is safe, and search agrees with a brute-force evaluation.

The brute-force side evaluates the query AST over every paper's analyzed fields
(``bot.query.term_matches``, what keyword watches use): a search's candidates are
exactly the papers matching some group of the query and no excluded term, its full
matches exactly those a watch would fire on, and its order the one its scores give.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.models import Author, Paper
from bot.query import Query, QueryError, index_fields, matches, parse, term_matches
from bot.search import SearchEngine
from bot.search.lexical import Filters
from bot.store import Database, PaperStore

DB_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WORDS = ["diffusion", "video", "models", "language", "mamba", "state", "space", "graph",
         "agents", "robot", "the", "of", "Learning", "learned"]  # fmt: skip
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)

text = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)
papers_strategy = st.lists(
    st.builds(
        lambda title, abstract, keywords, authors, upvotes, day: (
            title,
            abstract,
            keywords,
            authors,
            upvotes,
            day,
        ),
        text,
        text,
        st.lists(text, max_size=2),
        st.lists(st.sampled_from(NAMES), max_size=2),
        st.one_of(st.none(), st.integers(0, 5)),
        st.integers(0, 4),
    ),
    min_size=2,
    max_size=16,
)


def _token() -> st.SearchStrategy[str]:
    word = st.sampled_from(WORDS + ["quantum"])
    name = st.sampled_from(["lovelace", "turing", "hopper", '"alan turing"', "ada"])
    return st.one_of(
        word,
        st.tuples(word, word).map(lambda ws: f'"{ws[0]} {ws[1]}"'),
        word.map(lambda w: f"-{w}"),
        name.map(lambda n: f"author:{n}"),
        word.map(lambda w: f"title:{w}"),
        st.just("OR"),
    )


query_strategy = st.lists(_token(), min_size=1, max_size=6).map(" ".join)


def build_papers(specs: list[tuple]) -> list[Paper]:
    return [
        Paper(
            id=f"2501.{i:05d}",
            title=title,
            abstract=abstract,
            ai_keywords=tuple(keywords),
            authors=tuple(Author(a) for a in authors),
            upvotes=upvotes,
            submitted_at=T0 + timedelta(days=day),
        )
        for i, (title, abstract, keywords, authors, upvotes, day) in enumerate(specs)
    ]


async def reset(db: Database) -> None:
    """Empty the papers table (the deletions reach the index through the change feed)."""
    async with db.write() as conn:
        await conn.exec_driver_sql("DELETE FROM papers")


def candidates(query: Query, papers: list[Paper], keep=lambda paper: True) -> set[str]:
    """The papers matching some group of ``query`` and none of its excluded terms."""
    found = set()
    for paper in papers:
        fields = {c: v.split() for c, v in index_fields(paper).items()}
        if not keep(paper) or any(term_matches(t, fields) for t in query.excluded):
            continue
        if any(any(term_matches(t, fields) for t in group) for group in query.groups):
            found.add(paper.id)
    return found


def full_matches(query: Query, papers: list[Paper], keep=lambda paper: True) -> set[str]:
    """The papers a watch with ``query`` fires on."""
    return {
        p.id
        for p in papers
        if keep(p) and matches(query, {c: v.split() for c, v in index_fields(p).items()})
    }


async def stored_example(
    database: Database, engine: SearchEngine, specs: list[tuple], source: str
) -> tuple[Query, list[Paper]]:
    """The example's query (examples that do not parse are rejected) and its papers,
    stored in a freshly emptied ``database``."""
    try:
        query = parse(source)
    except QueryError:
        assume(False)
    await reset(database)
    papers = build_papers(specs)
    await engine.store.upsert(papers)
    await engine.catch_up()
    return query, papers


async def check_search(engine: SearchEngine, query: Query, papers, keep, **filters) -> None:
    result = await engine.search(query, limit=100, **filters)
    expected = candidates(query, papers, keep)
    assert {p.id for p in result.papers} == expected
    assert len(result.papers) == len(expected)
    full = full_matches(query, papers, keep)
    assert result.partial == (bool(expected) and not full)
    # The order is the scores' order, and every page is a slice of it.
    hits = engine.lexical.index.ranked(query, Filters(**filters), limit=100, today=T0)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    paged = []
    for offset in range(0, len(expected), 3):
        page = await engine.search(query, limit=3, offset=offset, **filters)
        paged.extend(p.id for p in page.papers)
    assert paged == [p.id for p in result.papers]


@DB_SETTINGS
@given(specs=papers_strategy, source=query_strategy)
async def test_search_agrees_with_brute_force(database: Database, engine, specs, source) -> None:
    query, papers = await stored_example(database, engine, specs, source)
    await check_search(engine, query, papers, lambda paper: True)
    assert {p.id for p in await engine.full_matches(query)} == full_matches(query, papers)


@DB_SETTINGS
@given(
    specs=papers_strategy,
    source=query_strategy,
    min_upvotes=st.one_of(st.none(), st.integers(0, 7)),
    since_day=st.one_of(st.none(), st.integers(0, 5)),
)
async def test_filtered_search_agrees_with_brute_force(
    database: Database, engine, specs, source, min_upvotes, since_day
) -> None:
    query, papers = await stored_example(database, engine, specs, source)
    since = None if since_day is None else T0 + timedelta(days=since_day)

    def keep(paper: Paper) -> bool:
        votes_ok = not min_upvotes or (paper.upvotes or 0) >= min_upvotes
        return votes_ok and (since is None or paper.submitted_at >= since)

    await check_search(engine, query, papers, keep, min_upvotes=min_upvotes, since=since)


@DB_SETTINGS
@given(source=st.text(max_size=400) | query_strategy)
async def test_any_input_parses_or_explains_and_runs(store: PaperStore, engine, source) -> None:
    if await store.count() == 0:
        await store.upsert(build_papers([("Mamba state space", "video diffusion", [], [], 1, 0)]))
    try:
        query = parse(source)
    except QueryError as exc:
        assert str(exc)
        return
    result = await engine.search(query, limit=5, offset=1, min_upvotes=1, since=T0)
    assert len(result.papers) <= 5
